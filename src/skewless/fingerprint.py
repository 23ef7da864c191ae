"""Fingerprints: a data hash and a metadata hash for every definition.

The data hash covers everything that changes the values a definition produces (source,
schema, ttl, keys, expressions, aggregations). The metadata hash covers what does not
(description, tags, owner, a view's schedule and expected freshness). Parents are folded
in: a view's data hash includes its entities' and its source's data hashes, a service's
includes its views'. So editing a description or a schedule never asks for
re-materialization, while a changed ttl or source does.

The canonical form is JSON with sorted keys and no whitespace; changing it changes every
hash, which tests/unit/test_fingerprint.py pins with golden values.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from skewless.definitions import (
    Aggregation,
    DeltaSource,
    Entity,
    FeatureService,
    FeatureView,
    Field,
    FileSource,
    OnDemandFeatureView,
    RequestSource,
    Schedule,
)
from skewless.expr.nodes import to_data
from skewless.timeutil import micros

SCHEME = 1


@dataclass(frozen=True)
class Fingerprint:
    data_hash: str
    metadata_hash: str

    def to_dict(self) -> dict[str, str]:
        return {"data_hash": self.data_hash, "metadata_hash": self.metadata_hash}


def canonical(payload: Any) -> str:
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def digest(payload: Any) -> str:
    body = canonical({"scheme": SCHEME, "payload": payload})
    return hashlib.sha256(body.encode()).hexdigest()[:16]


AnyView = FeatureView | OnDemandFeatureView


def _meta(
    obj: Entity
    | FeatureView
    | OnDemandFeatureView
    | FeatureService
    | FileSource
    | DeltaSource
    | RequestSource,
) -> dict[str, Any]:
    return {"description": obj.description, "tags": dict(obj.tags), "owner": obj.owner}


def entity_fingerprint(entity: Entity) -> Fingerprint:
    data = {"kind": "entity", "name": entity.name, "join_keys": list(entity.join_keys)}
    return Fingerprint(digest(data), digest(_meta(entity)))


def source_fingerprint(source: FileSource | DeltaSource) -> Fingerprint:
    data: dict[str, Any] = {
        "type": source.type,
        "path": source.path,
        "timestamp_field": source.timestamp_field,
        "created_timestamp_column": source.created_timestamp_column,
    }
    if isinstance(source, FileSource):
        data["file_format"] = source.file_format
    return Fingerprint(digest(data), digest({"name": source.name, **_meta(source)}))


def feature_view_fingerprint(view: FeatureView) -> Fingerprint:
    entities = [entity_fingerprint(e) for e in view.entities]
    source = source_fingerprint(view.source)
    data: dict[str, Any] = {
        "kind": "feature_view",
        "name": view.name,
        "entities": [e.data_hash for e in entities],
        # a derived feature's expression is data; without one, an entry keeps its old form
        "schema": [
            [f.name, f.dtype.name, *([] if f.expr is None else [to_data(f.expr)])]
            for f in view.schema_
        ],
        "source": source.data_hash,
        "ttl_us": None if view.ttl is None else micros(view.ttl),
        "online": view.online,
    }
    if view.aggregations:  # absent otherwise: a view without keeps its hash
        data["aggregations"] = [
            [a.name, a.column, a.function, micros(a.time_window)] for a in view.aggregations
        ]
    described: list[Field | Aggregation] = [*view.schema_, *view.aggregations]
    meta: dict[str, Any] = {
        **_meta(view),
        "fields": {f.name: f.description for f in described if f.description},
        "entities": [e.metadata_hash for e in entities],
        "source": source.metadata_hash,
    }
    # when to materialize is no part of what is materialized; absent when unset, so a
    # view without keeps its hash
    if view.materialization is not None:
        meta["materialization"] = _schedule(view.materialization)
    if view.expected_freshness is not None:
        meta["expected_freshness_us"] = micros(view.expected_freshness)
    return Fingerprint(digest(data), digest(meta))


def _schedule(schedule: Schedule) -> dict[str, Any]:
    return {
        "cron": schedule.cron,
        "delay_us": micros(schedule.delay),
        "catch_up_us": micros(schedule.catch_up),
        "timezone": schedule.timezone,
    }


def on_demand_fingerprint(odfv: OnDemandFeatureView, views: Mapping[str, AnyView]) -> Fingerprint:
    """Its expressions, its inputs and the data hashes of the views it reads (parents
    folded in, as for a service): nothing is materialized for it, but a training set's
    values of it change with them."""
    sources: list[dict[str, Any]] = []
    meta_sources: list[dict[str, Any]] = []
    for source in odfv.sources:
        if isinstance(source, RequestSource):
            sources.append(
                {"request": source.name, "schema": [[f.name, f.dtype.name] for f in source.schema_]}
            )
            meta_sources.append(
                {
                    **_meta(source),
                    "fields": {f.name: f.description for f in source.schema_ if f.description},
                }
            )
            continue
        view = views.get(source.view)
        sources.append(
            {
                "view": source.view,
                "features": [[f.name, f.dtype.name] for f in source.features],
                "view_data": (
                    feature_view_fingerprint(view).data_hash
                    if isinstance(view, FeatureView)
                    else None
                ),
            }
        )
    data = {
        "kind": "on_demand_feature_view",
        "name": odfv.name,
        "sources": sources,
        "schema": [
            [f.name, f.dtype.name, None if f.expr is None else to_data(f.expr)]
            for f in odfv.schema_
        ],
    }
    meta = {
        **_meta(odfv),
        "fields": {f.name: f.description for f in odfv.schema_ if f.description},
        "request_sources": meta_sources,
    }
    return Fingerprint(digest(data), digest(meta))


def _view_data_hash(view: AnyView | None, views: Mapping[str, AnyView]) -> str | None:
    match view:
        case FeatureView():
            return feature_view_fingerprint(view).data_hash
        case OnDemandFeatureView():
            return on_demand_fingerprint(view, views).data_hash
    return None


def feature_service_fingerprint(
    service: FeatureService, views: Mapping[str, AnyView]
) -> Fingerprint:
    parts = []
    for proj in service.features:
        parts.append(
            {
                "view": proj.view,
                "features": list(proj.features),
                "view_data": _view_data_hash(views.get(proj.view), views),
            }
        )
    data = {"kind": "feature_service", "name": service.name, "features": parts}
    return Fingerprint(digest(data), digest(_meta(service)))


def fingerprint(
    obj: Entity | FeatureView | OnDemandFeatureView | FeatureService,
    views: Mapping[str, AnyView],
) -> Fingerprint:
    """`views`: every view of the same definitions (feature and on-demand views), by name."""
    match obj:
        case Entity():
            return entity_fingerprint(obj)
        case FeatureView():
            return feature_view_fingerprint(obj)
        case OnDemandFeatureView():
            return on_demand_fingerprint(obj, views)
        case FeatureService():
            return feature_service_fingerprint(obj, views)
