"""Build feature views over real files for the integration tests."""

from __future__ import annotations

import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from skewless.definitions import Entity, FeatureView, Field, FileSource
from skewless.feature_request import FeatureRequest, compile_requests
from skewless.types import DType, to_arrow

TS_TYPE = pa.timestamp("us", tz="UTC")


def write_rows(
    folder: Path,
    rows: list[dict[str, Any]],
    columns: dict[str, pa.DataType],
) -> str:
    """Write rows as a parquet file with a unique name (Spark caches file listings)."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{uuid.uuid4().hex}.parquet"
    table = pa.Table.from_pylist(rows, schema=pa.schema(list(columns.items())))
    pq.write_table(table, path)
    return str(path)


def make_view(
    name: str,
    entities: list[Entity],
    features: dict[str, DType],
    path: str,
    *,
    created: bool,
    ttl: timedelta | None,
    key_types: dict[str, DType] | None = None,
) -> FeatureView:
    schema = [Field(k, t) for k, t in (key_types or {}).items()]
    schema += [Field(f, t) for f, t in features.items()]
    return FeatureView(
        name,
        entities=entities,
        schema=schema,
        source=FileSource(
            path, timestamp_field="ts", created_timestamp_column="cts" if created else None
        ),
        ttl=ttl,
    )


def columns_for(
    keys: dict[str, pa.DataType], features: dict[str, DType], created: bool
) -> dict[str, pa.DataType]:
    cols: dict[str, pa.DataType] = dict(keys)
    cols["ts"] = TS_TYPE
    if created:
        cols["cts"] = TS_TYPE
    for f, t in features.items():
        cols[f] = to_arrow(t)
    return cols


def requests_for(views: list[FeatureView], refs: list[str]) -> FeatureRequest:
    return compile_requests(refs, {v.name: v for v in views}, full_feature_names=False)


def type_names(features: dict[str, DType]) -> dict[str, str]:
    """The reference's form of a view's features: name -> type name, in schema order."""
    return {name: dtype.name for name, dtype in features.items()}
