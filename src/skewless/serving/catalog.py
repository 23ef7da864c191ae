"""The applied definitions a server answers from: an immutable snapshot of the registry.

The server swaps in a new Catalog when the registry version changes (serving/service.py),
and FeatureStore does the same before a lookup; a call in flight keeps the snapshot it
started with, so it never sees half an apply.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from skewless.definitions import FeatureService, FeatureView, OnDemandFeatureView
from skewless.errors import NothingAppliedError, RegistryError, SkewlessError
from skewless.feature_request import FeatureRequest, compile_requests, service_refs
from skewless.registry import ObjectKind, ObjectRecord, RegistryReader
from skewless.serving.plan import LookupPlan

_MAX_PLANS = 1024  # distinct (refs, full_feature_names) kept per snapshot


class CatalogNotLoadedError(SkewlessError):
    """The server has not read the registry yet (or could not); retry shortly."""

    retryable = True

    def __init__(self, detail: str) -> None:
        super().__init__(f"the registry is not loaded yet: {detail}")


@dataclass(frozen=True)
class Catalog:
    project: str
    registry_version: int
    views: Mapping[str, FeatureView]
    services: Mapping[str, FeatureService]
    # The registry's record of each view and service ((kind, name) -> its version,
    # fingerprint, when applied): what a training set's manifest pins.
    records: Mapping[tuple[str, str], ObjectRecord] = field(
        default_factory=dict, compare=False, repr=False
    )
    on_demand: Mapping[str, OnDemandFeatureView] = field(default_factory=dict)
    _plans: dict[tuple[tuple[str, ...] | str, bool], LookupPlan] = field(
        default_factory=dict, compare=False, repr=False
    )

    def plan(self, features: Sequence[str] | str, *, full_feature_names: bool) -> LookupPlan:
        """The compiled lookup of compile()'s requests, cached: the snapshot never
        changes, so neither does the plan of the same refs."""
        key = (features if isinstance(features, str) else tuple(features), full_feature_names)
        plan = self._plans.get(key)
        if plan is None:
            plan = LookupPlan(
                self.project, self.compile(features, full_feature_names=full_feature_names)
            )
            if len(self._plans) >= _MAX_PLANS:
                self._plans.clear()
            self._plans[key] = plan
        return plan

    def compile(
        self,
        features: Sequence[str] | FeatureService | str,
        *,
        full_feature_names: bool,
        reserved: Sequence[str] = (),
    ) -> FeatureRequest:
        """Per-view requests for feature refs, a feature service or its name; output
        names may not clash with `reserved` (a training set's input columns)."""
        if not self.views:
            raise NothingAppliedError(self.project)
        refs = service_refs(features, self.services)
        return compile_requests(
            refs,
            self.views,
            full_feature_names=full_feature_names,
            reserved=reserved,
            on_demand=self.on_demand,
        )


def load_catalog(registry: RegistryReader, project: str, at: int | None = None) -> Catalog:
    """The registry's current views and services, or those right after apply `at`. The
    version is read first: if an apply lands meanwhile, the next poll sees a newer
    version and loads again."""
    version = registry.registry_version() if at is None else at
    records: dict[tuple[str, str], ObjectRecord] = {}

    def current(kind: ObjectKind) -> list[ObjectRecord]:
        # as of one version, read once: an apply landing meanwhile cannot mix in
        found = registry.current_at(version, kind)
        records.update({(r.kind, r.name): r for r in found})
        return found

    views: dict[str, FeatureView] = {}
    for record in current("feature_view"):
        view = record.definition()
        if not isinstance(view, FeatureView):  # pragma: no cover - the registry's invariant
            raise RegistryError(f"registry record '{record.name}' is not a feature view")
        views[view.name] = view
    on_demand: dict[str, OnDemandFeatureView] = {}
    for record in current("on_demand_feature_view"):
        odfv = record.definition()
        if not isinstance(odfv, OnDemandFeatureView):  # pragma: no cover
            raise RegistryError(f"registry record '{record.name}' is not an on-demand view")
        on_demand[odfv.name] = odfv
    services: dict[str, FeatureService] = {}
    for record in current("feature_service"):
        service = record.definition()
        if not isinstance(service, FeatureService):  # pragma: no cover
            raise RegistryError(f"registry record '{record.name}' is not a feature service")
        services[service.name] = service
    return Catalog(project, version, views, services, records, on_demand)
