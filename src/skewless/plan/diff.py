"""Diff the repo's definitions against the registry into a Plan."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from skewless.definitions import Entity, FeatureService, FeatureView
from skewless.fingerprint import fingerprint
from skewless.plan.stages import AddObject, Plan, RemoveObject, Stage, UpdateObject
from skewless.registry import KINDS, ObjectKind, RegistryReader
from skewless.repo import RepoContents
from skewless.source_schema import check_view_source


def _objects(
    contents: RepoContents,
) -> dict[ObjectKind, dict[str, Entity | FeatureView | FeatureService]]:
    return {
        "entity": dict(contents.entities),
        "feature_view": dict(contents.feature_views),
        "feature_service": dict(contents.feature_services),
    }


def check_sources(contents: RepoContents, repo_path: Path) -> None:
    """Plan-time schema checks of every view's source (reads footers/logs, no Spark)."""
    for view in contents.feature_views.values():
        check_view_source(view, repo_path, contents.file_of("feature_view", view.name))


def make_plan(contents: RepoContents, registry: RegistryReader, project: str) -> Plan:
    base = registry.registry_version()
    current = {(r.kind, r.name): r for r in registry.current()}
    desired = _objects(contents)
    stages: list[Stage] = []
    unchanged: list[tuple[ObjectKind, str]] = []
    for kind in KINDS:  # entities, then views, then services: parents first
        for name, obj in sorted(desired[kind].items()):
            fp = fingerprint(obj, contents.feature_views)
            spec = obj.model_dump(mode="json")
            old = current.get((kind, name))
            if old is None:
                stages.append(AddObject(kind, name, fp, spec))
            elif (old.data_hash, old.metadata_hash) != (fp.data_hash, fp.metadata_hash):
                stages.append(UpdateObject(kind, name, old, fp, spec, _changed(old.spec, spec)))
            else:
                unchanged.append((kind, name))
    for kind in reversed(KINDS):  # removals: children first
        for (k, name), old in sorted(current.items()):
            if k == kind and name not in desired[kind]:
                stages.append(RemoveObject(kind, name, old))
    return Plan(project, base, stages, unchanged)


def _changed(old: dict[str, Any], new: dict[str, Any]) -> tuple[str, ...]:
    keys = sorted(set(old) | set(new))
    return tuple(k for k in keys if old.get(k) != new.get(k))
