"""Compile feature references into per-view retrieval requests. Pure: no Spark, no I/O.

A reference is `"view:feature"`. Output columns are named after the feature, or
`view__feature` with `full_feature_names=True`; a name clash is an error, never a silent
overwrite.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta

from skewless.definitions import FeatureService, FeatureView
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
) -> list[ViewRequest]:
    """Group refs by view (first-mention order), validate them and name output columns."""
    by_view: dict[str, list[str]] = {}
    position = {ref: i for i, ref in enumerate(refs)}
    for ref in refs:
        view_name, feature = parse_ref(ref)
        view = views.get(view_name)
        if view is None:
            raise FeatureViewNotFoundError(view_name, views)
        view.feature(feature)  # raises FeatureNotFoundError with a suggestion
        chosen = by_view.setdefault(view_name, [])
        if feature in chosen:
            raise InvalidFeatureRefError(ref, "requested twice")
        chosen.append(feature)
    taken: dict[str, str] = dict.fromkeys(reserved, "the entity dataframe")
    requests = []
    for view_name, features in by_view.items():
        view = views[view_name]
        columns = []
        for feature in features:
            out = f"{view_name}__{feature}" if full_feature_names else feature
            if out in taken:
                hint = "" if full_feature_names else " (pass full_feature_names=True)"
                raise InvalidFeatureRefError(
                    f"{view_name}:{feature}",
                    f"output column '{out}' clashes with {taken[out]}{hint}",
                )
            taken[out] = f"'{view_name}:{feature}'"
            columns.append(
                FeatureColumn(
                    feature, out, view.feature(feature).dtype, position[f"{view_name}:{feature}"]
                )
            )
        requests.append(ViewRequest(view, tuple(columns)))
    return requests


def output_columns(requests: Sequence[ViewRequest]) -> list[str]:
    """Feature output columns in the order they were requested."""
    cols = [c for r in requests for c in r.columns]
    return [c.output for c in sorted(cols, key=lambda c: c.position)]


def check_entity_columns(
    columns: Sequence[str], requests: Sequence[ViewRequest], timestamp_column: str
) -> None:
    present = set(columns)
    if timestamp_column not in present:
        raise EntityDataFrameError(
            f"missing the timestamp column '{timestamp_column}' (columns: {sorted(present)})",
            column=timestamp_column,
        )
    for req in requests:
        for key in req.join_keys:
            if key not in present:
                raise EntityDataFrameError(
                    f"missing join key '{key}' needed by feature view '{req.name}' "
                    f"(columns: {sorted(present)})",
                    column=key,
                )
