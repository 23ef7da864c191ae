"""Compile feature references into per-view retrieval requests. Pure: no Spark, no I/O.

A reference is `"view:feature"`, of a feature view or an on-demand view. Output columns
are named after the feature, or `view__feature` with `full_feature_names=True`; a name
clash is an error, never a silent overwrite.

An on-demand feature reads features of other views: those are looked up (or joined) as
hidden columns of their view's request, named `__in__<view>:<feature>`, which never
appear in the output; its request fields are columns of the entity rows.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta

from skewless.definitions import FeatureService, FeatureView, OnDemandFeatureView
from skewless.errors import (
    EntityDataFrameError,
    FeatureServiceNotFoundError,
    FeatureViewNotFoundError,
    InvalidFeatureRefError,
)
from skewless.types import DType


@dataclass(frozen=True)
class FeatureColumn:
    feature: str
    output: str
    dtype: DType
    position: int  # where the ref stood in the request: output columns keep that order
    hidden: bool = False  # read for an on-demand feature only: not an output


@dataclass(frozen=True)
class ViewRequest:
    """What one retrieval needs from one feature view."""

    view: FeatureView
    columns: tuple[FeatureColumn, ...]

    @property
    def name(self) -> str:
        return self.view.name

    @property
    def join_keys(self) -> tuple[str, ...]:
        return self.view.join_keys

    @property
    def ttl(self) -> timedelta | None:
        return self.view.ttl


@dataclass(frozen=True)
class OnDemandRequest:
    """What one retrieval needs from one on-demand view: its outputs, and where each
    input it reads is found (a hidden view column, or a request field)."""

    view: OnDemandFeatureView
    columns: tuple[FeatureColumn, ...]
    inputs: tuple[tuple[str, str], ...]  # (the name col() uses, the column that holds it)
    request_fields: tuple[str, ...]  # request fields read, which the entity rows carry

    @property
    def name(self) -> str:
        return self.view.name


@dataclass(frozen=True)
class FeatureRequest:
    """Every view's part of one retrieval."""

    views: tuple[ViewRequest, ...]
    on_demand: tuple[OnDemandRequest, ...] = ()

    @property
    def _shown(self) -> list[FeatureColumn]:
        """Every output column, in the order they were requested (hidden inputs left out)."""
        cols = [c for r in self.views for c in r.columns if not c.hidden]
        cols += [c for r in self.on_demand for c in r.columns]
        return sorted(cols, key=lambda c: c.position)

    @property
    def outputs(self) -> list[str]:
        return [c.output for c in self._shown]

    @property
    def output_dtypes(self) -> dict[str, DType]:
        return {c.output: c.dtype for c in self._shown}

    @property
    def request_fields(self) -> tuple[str, ...]:
        """Request fields some on-demand feature reads, in first-use order."""
        return tuple(dict.fromkeys(f for r in self.on_demand for f in r.request_fields))


def hidden_name(view: str, feature: str) -> str:
    # ':' appears in no view or feature name, so no two inputs share a name
    return f"__in__{view}:{feature}"


def parse_ref(ref: str) -> tuple[str, str]:
    if not isinstance(ref, str) or ref.count(":") != 1:
        raise InvalidFeatureRefError(str(ref), "expected 'view:feature'")
    view, feature = ref.split(":")
    if not view or not feature:
        raise InvalidFeatureRefError(ref, "expected 'view:feature'")
    return view, feature


def service_refs(
    features: Sequence[str] | FeatureService | str,
    services: Mapping[str, FeatureService],
) -> list[str]:
    """Feature refs from a list of refs, a FeatureService, or a service's name."""
    if isinstance(features, FeatureService):
        return features.refs
    if isinstance(features, str):
        if ":" in features:
            return [features]
        service = services.get(features)
        if service is None:
            raise FeatureServiceNotFoundError(features, services)
        return service.refs
    refs = list(features)
    if not refs:
        raise InvalidFeatureRefError("[]", "no features requested")
    return refs


def compile_requests(
    refs: Sequence[str],
    views: Mapping[str, FeatureView],
    *,
    full_feature_names: bool,
    reserved: Sequence[str] = (),
    on_demand: Mapping[str, OnDemandFeatureView] | None = None,
) -> FeatureRequest:
    """Group refs by view (first-mention order), validate them and name output columns;
    add the hidden columns on-demand features read."""
    on_demand = on_demand or {}
    by_view: dict[str, list[str]] = {}
    position = {ref: i for i, ref in enumerate(refs)}
    for ref in refs:
        view_name, feature = parse_ref(ref)
        view = views.get(view_name) or on_demand.get(view_name)
        if view is None:
            raise FeatureViewNotFoundError(view_name, [*views, *on_demand])
        view.feature(feature)  # raises FeatureNotFoundError with a suggestion
        chosen = by_view.setdefault(view_name, [])
        if feature in chosen:
            raise InvalidFeatureRefError(ref, "requested twice")
        chosen.append(feature)
    taken: dict[str, str] = dict.fromkeys(reserved, "the entity dataframe")

    def named(view_name: str, feature: str, dtype: DType) -> FeatureColumn:
        out = f"{view_name}__{feature}" if full_feature_names else feature
        if out in taken:
            hint = "" if full_feature_names else " (pass full_feature_names=True)"
            raise InvalidFeatureRefError(
                f"{view_name}:{feature}", f"output column '{out}' clashes with {taken[out]}{hint}"
            )
        taken[out] = f"'{view_name}:{feature}'"
        return FeatureColumn(feature, out, dtype, position[f"{view_name}:{feature}"])

    columns: dict[str, list[FeatureColumn]] = {}
    demands: list[OnDemandRequest] = []
    for view_name, features in by_view.items():
        if view_name in views:
            view = views[view_name]
            columns.setdefault(view_name, []).extend(
                named(view_name, f, view.feature(f).dtype) for f in features
            )
            continue
        odfv = on_demand[view_name]
        outputs = tuple(named(view_name, f, odfv.feature(f).dtype) for f in features)
        needed = odfv.inputs_of(tuple(features))
        inputs: list[tuple[str, str]] = []
        for source_view, read in needed.views.items():
            base = views.get(source_view)
            if base is None:
                raise FeatureViewNotFoundError(source_view, views)
            held = columns.setdefault(source_view, [])
            for feature in read:
                hidden = hidden_name(source_view, feature)
                if all(c.output != hidden for c in held):
                    dtype = base.feature(feature).dtype
                    held.append(FeatureColumn(feature, hidden, dtype, -1, hidden=True))
                inputs.append((feature, hidden))
        inputs += [(f, f) for f in needed.request]
        demands.append(OnDemandRequest(odfv, outputs, tuple(inputs), needed.request))
    requests = tuple(ViewRequest(views[name], tuple(cols)) for name, cols in columns.items())
    return FeatureRequest(requests, tuple(demands))


def check_entity_columns(
    columns: Sequence[str], request: FeatureRequest, timestamp_column: str
) -> None:
    present = set(columns)
    if timestamp_column not in present:
        raise EntityDataFrameError(
            f"missing the timestamp column '{timestamp_column}' (columns: {sorted(present)})",
            column=timestamp_column,
        )
    for req in request.views:
        for key in req.join_keys:
            if key not in present:
                raise EntityDataFrameError(
                    f"missing join key '{key}' needed by feature view '{req.name}' "
                    f"(columns: {sorted(present)})",
                    column=key,
                )
    for odfv in request.on_demand:
        for name in odfv.request_fields:
            if name not in present:
                raise EntityDataFrameError(
                    f"missing request field '{name}' needed by on-demand feature view "
                    f"'{odfv.name}' (columns: {sorted(present)})",
                    column=name,
                )
