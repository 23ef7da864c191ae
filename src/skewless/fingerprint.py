"""Fingerprints: a data hash and a metadata hash for every definition.

The data hash covers everything that changes the values a definition produces (source,
schema, ttl, keys; later: transformations). The metadata hash covers what does not
(description, tags, owner). Parents are folded in: a view's data hash includes its
entities' and its source's data hashes, a service's includes its views'. So editing a
description never asks for re-materialization, while a changed ttl or source does.

The canonical form is JSON with sorted keys and no whitespace; changing it changes every
hash, which tests/unit/test_fingerprint.py pins with golden values.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from skewless.definitions import DeltaSource, Entity, FeatureService, FeatureView, FileSource
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


def _meta(obj: Entity | FeatureView | FeatureService | FileSource | DeltaSource) -> dict[str, Any]:
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
    data = {
        "kind": "feature_view",
        "name": view.name,
        "entities": [e.data_hash for e in entities],
        "schema": [[f.name, f.dtype.name] for f in view.schema_],
        "source": source.data_hash,
        "ttl_us": None if view.ttl is None else micros(view.ttl),
        "online": view.online,
    }
    meta = {
        **_meta(view),
        "fields": {f.name: f.description for f in view.schema_ if f.description},
        "entities": [e.metadata_hash for e in entities],
        "source": source.metadata_hash,
    }
    return Fingerprint(digest(data), digest(meta))


def feature_service_fingerprint(
    service: FeatureService, views: Mapping[str, FeatureView]
) -> Fingerprint:
    parts = []
    for proj in service.features:
        view = views.get(proj.view)
        parts.append(
            {
                "view": proj.view,
                "features": list(proj.features),
                "view_data": feature_view_fingerprint(view).data_hash if view else None,
            }
        )
    data = {"kind": "feature_service", "name": service.name, "features": parts}
    return Fingerprint(digest(data), digest(_meta(service)))


def fingerprint(
    obj: Entity | FeatureView | FeatureService, views: Mapping[str, FeatureView]
) -> Fingerprint:
    match obj:
        case Entity():
            return entity_fingerprint(obj)
        case FeatureView():
            return feature_view_fingerprint(obj)
        case FeatureService():
            return feature_service_fingerprint(obj, views)
