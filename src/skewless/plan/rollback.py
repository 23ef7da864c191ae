"""Rolling a feature view back to an earlier definition version, as a Plan.

The desired state is the registry's current definitions with the view replaced by its
version-N spec: edits in the repo's files that were never applied are not applied by a
rollback. The plan is made and applied by the same make_plan/apply_plan as `apply`, so
the services that use the view follow it as they would after an edit, and the rollback
is recorded as a new version (N is never rewritten: history only grows).
"""

from __future__ import annotations

from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path

from skewless.definitions import Entity, FeatureService, FeatureView, OnDemandFeatureView
from skewless.errors import (
    DefinitionError,
    DefinitionVersionNotFoundError,
    FeatureViewNotFoundError,
    RegistryConflictError,
    RollbackError,
    SkewlessError,
)
from skewless.fingerprint import Fingerprint, fingerprint
from skewless.plan.diff import make_plan
from skewless.plan.stages import AddObject, Plan, UpdateObject
from skewless.registry import MaterializationRecord, ObjectRecord, RegistryReader
from skewless.repo import RepoContents, load_repo, validate_repo
from skewless.source_schema import check_view_source


@dataclass(frozen=True)
class Rematerialization:
    """What the view's data needs once rolled back."""

    needed: bool  # the data hash changes (or the view comes back): its values may differ
    data_hash: str  # the data hash the view has after the rollback
    # The last recorded run of that data hash: its Delta table exists from earlier runs,
    # and `materialize-incremental` brings it up to date. None: a full run is needed.
    table: MaterializationRecord | None = None


@dataclass(frozen=True)
class Rollback:
    view: str
    target: ObjectRecord  # the version rolled back to
    current: ObjectRecord | None  # the live version now (None: the view is removed)
    plan: Plan  # apply it with apply_plan, as any plan
    fingerprint: Fingerprint  # the view's, as the plan records it
    rematerialization: Rematerialization
    services: tuple[str, ...] = field(default=())  # the services the plan changes with it

    @property
    def view_is_online(self) -> bool:
        """Whether the view as rolled back or as it is now writes to the online store."""
        specs = [self.target.spec] + ([] if self.current is None else [self.current.spec])
        return any(spec.get("online", True) for spec in specs)


def plan_rollback(
    registry: RegistryReader, project: str, repo_path: Path, view: str, to_version: int
) -> Rollback:
    """The plan that makes version `to_version` of feature view `view` current again.

    Raises FeatureViewNotFoundError (no version of the view was applied),
    DefinitionVersionNotFoundError (no such version), or RollbackError: the version is
    the current one (or the same definition), it is the view's removal, its entities no
    longer exist as it uses them, its source no longer matches it, or a current service
    uses a feature it lacks. RegistryConflictError (retryable) when an apply lands while
    the plan is made."""
    base = registry.registry_version()  # read first: see the check after make_plan
    history = registry.history("feature_view", view)
    if not history:
        raise FeatureViewNotFoundError(view, [r.name for r in registry.current("feature_view")])
    target = next((r for r in history if r.version == to_version), None)
    if target is None:
        raise DefinitionVersionNotFoundError(
            "feature view", view, to_version, [r.version for r in history]
        )
    if target.removed:
        raise RollbackError(view, to_version, "that version is the view's removal")
    current = None if history[-1].removed else history[-1]
    if current is not None and current.version == to_version:
        raise RollbackError(view, to_version, f"v{to_version} is already its current version")
    restored = target.definition()
    assert isinstance(restored, FeatureView)
    contents = _desired(registry, restored, view, to_version, repo_path)
    plan = make_plan(contents, registry, project)
    if plan.base_registry_version != base:
        # An apply landed while the desired state was read: it may lack that apply's
        # changes, which this plan would then undo.
        raise RegistryConflictError(base, plan.base_registry_version)
    stage = next(
        (s for s in plan.stages if s.kind == "feature_view" and s.name == view),
        None,
    )
    if not isinstance(stage, AddObject | UpdateObject):
        assert current is not None
        raise RollbackError(
            view,
            to_version,
            f"the current version v{current.version} is the same definition (same "
            "fingerprints): there is nothing to roll back",
        )
    data_hash = stage.fingerprint.data_hash
    needed = current is None or current.data_hash != data_hash
    return Rollback(
        view=view,
        target=target,
        current=current,
        plan=plan,
        fingerprint=stage.fingerprint,
        rematerialization=Rematerialization(
            needed=needed,
            data_hash=data_hash,
            table=_last_run(registry, view, data_hash) if needed else None,
        ),
        services=tuple(s.name for s in plan.stages if s.kind == "feature_service"),
    )


def _desired(
    registry: RegistryReader, restored: FeatureView, view: str, version: int, repo_path: Path
) -> RepoContents:
    """The registry's current definitions, with `restored` in place of the view."""
    contents = RepoContents()
    for record in registry.current():
        obj = record.definition()
        if isinstance(obj, Entity):
            contents.entities[obj.name] = obj
        elif isinstance(obj, FeatureView):
            contents.feature_views[obj.name] = obj
        elif isinstance(obj, OnDemandFeatureView):
            contents.on_demand_views[obj.name] = obj
        elif isinstance(obj, FeatureService):
            contents.feature_services[obj.name] = obj
    for entity in restored.entities:
        known = contents.entities.get(entity.name)
        if known is None:
            raise RollbackError(view, version, f"its entity '{entity.name}' no longer exists")
        if known.join_keys != entity.join_keys:
            raise RollbackError(
                view,
                version,
                f"its entity '{entity.name}' had join keys {list(entity.join_keys)}, and now "
                f"has {list(known.join_keys)}",
            )
    try:
        checked = check_view_source(restored, repo_path, None)
    except DefinitionError as exc:
        raise RollbackError(
            view, version, f"its source no longer fits that version: {exc.detail}"
        ) from None
    contents.feature_views[view] = checked
    try:
        validate_repo(contents)
    except DefinitionError as exc:
        raise RollbackError(view, version, str(exc)) from None
    return contents


def _last_run(registry: RegistryReader, view: str, data_hash: str) -> MaterializationRecord | None:
    runs = [r for r in registry.materializations(view) if r.data_hash == data_hash]
    return runs[-1] if runs else None


@dataclass(frozen=True)
class RepoDrift:
    """How the repo's files compare with a rollback: the next `apply` plans from the
    files, so files that still define another version of the view undo it."""

    detail: str


def repo_drift(rollback: Rollback, repo_path: Path) -> RepoDrift | None:
    """None when the repo's files define the view exactly as the rollback restores it;
    else what the next `skewless apply` would do to it."""
    try:
        contents = load_repo(repo_path)
    except SkewlessError as exc:
        return RepoDrift(f"the feature repo does not load ({exc}), so it was not compared")
    name, version = rollback.view, rollback.target.version
    view = contents.feature_views.get(name)
    if view is None:
        return RepoDrift(
            f"the feature repo no longer defines feature view '{name}': the next "
            "`skewless apply` would remove it"
        )
    with suppress(DefinitionError):  # a source that does not check: compared as written
        view = check_view_source(view, repo_path, contents.file_of("feature_view", name))
    if fingerprint(view, contents.feature_views) == rollback.fingerprint:
        return None
    return RepoDrift(
        f"the feature repo's files still define '{name}' differently from v{version}: the "
        "next `skewless apply` would undo this rollback unless its definition there is "
        f"edited to match v{version}"
    )
