"""Materialization into the online store: a Spark job, written from the executors.

For each view, the rows of the interval [start, end] (both inclusive, on event time) are
reduced to one row per entity: the greatest by (event_ts, created_ts, the view's feature
values in schema order), which is exactly the row the point-in-time join picks for that
entity at `end` (same ordering: null lowest, NaN highest). Each Spark partition then
encodes its rows and writes them to Redis in pipelined batches of ordered writes, so
nothing is collected on the driver, and a replayed or concurrent older run can never
overwrite a newer value.

Not yet here (next increments): the versioned Delta feature tables with MERGE, run
records in the registry, and incremental runs on an arrival watermark.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F  # noqa: N812

from skewless.batch.sources import CTS, TS, read_source
from skewless.definitions import FeatureView
from skewless.online.codec import Record, encode_value, entity_key
from skewless.online.redis import RedisOnlineStore, expire_at_ms
from skewless.types import ArrayType, DType, ScalarType

_WIN = "__win"
_VALUES = "__values"
_TIMESTAMP = ScalarType("unix_timestamp")


@dataclass(frozen=True)
class ViewMaterialization:
    view: str
    rows_read: int
    keys_offered: int
    keys_written: int

    @property
    def keys_skipped(self) -> int:
        """Entities whose stored value was as new or newer (replays, older runs)."""
        return self.keys_offered - self.keys_written


def latest_per_entity(rows: DataFrame, view: FeatureView) -> DataFrame:
    """One row per entity: keys, __ts, __cts and the features of the winning row."""
    keys = list(view.join_keys)
    values = F.struct(*[F.col(f"`{f}`") for f in view.feature_names])
    ranked = F.struct(F.col(TS), F.col(CTS), values.alias(_VALUES))
    best = rows.groupBy(*keys).agg(F.max(ranked).alias(_WIN))
    return best.select(
        *keys,
        F.col(f"{_WIN}.{TS}").alias(TS),
        F.col(f"{_WIN}.{CTS}").alias(CTS),
        *[F.col(f"{_WIN}.{_VALUES}").getField(f).alias(f) for f in view.feature_names],
    )


def interval_rows(
    spark: SparkSession, view: FeatureView, repo_path: Path, start_us: int | None, end_us: int
) -> DataFrame:
    """The view's source rows with start <= event time <= end and no null join key."""
    rows = read_source(spark, view, repo_path)
    us = F.unix_micros(F.col(TS))
    rows = rows.where(us <= F.lit(end_us))
    if start_us is not None:
        rows = rows.where(us >= F.lit(start_us))
    for key in view.join_keys:
        rows = rows.where(F.col(key).isNotNull())
    return rows


def _micros(column: pa.ChunkedArray | pa.Array) -> list[int | None]:
    if pa.types.is_timestamp(column.type):
        column = pc.cast(pc.cast(column, pa.timestamp("us")), pa.int64())
    result: list[int | None] = column.to_pylist()
    return result


def _python_values(batch: pa.RecordBatch, name: str, dtype: DType) -> list[object]:
    column = batch.column(name)
    if dtype == _TIMESTAMP:
        return list(_micros(column))
    if isinstance(dtype, ArrayType) and dtype.element == _TIMESTAMP:
        return [
            None if v is None else [None if x is None else int(x.timestamp() * 1e6) for x in v]
            for v in column.to_pylist()
        ]
    values: list[object] = column.to_pylist()
    return values


@dataclass(frozen=True)
class OnlineWriter:
    """The per-partition write, run on the executors (so it is plain, picklable data)."""

    project: str
    view: str
    keys: tuple[str, ...]
    features: tuple[tuple[str, DType], ...]
    ttl: timedelta | None
    url: str
    password: str | None = None

    def _items(self, batch: pa.RecordBatch, now_ms: int) -> Iterator[tuple[bytes, bytes, int]]:
        dtypes = [d for _, d in self.features]
        key_cols = [batch.column(k).to_pylist() for k in self.keys]
        ts = _micros(batch.column(TS))
        cts = _micros(batch.column(CTS))
        cols = [_python_values(batch, name, dtype) for name, dtype in self.features]
        for i in range(batch.num_rows):
            event = ts[i]
            if event is None:  # filtered out upstream; never write an undated value
                continue
            record = Record(event, cts[i], tuple(col[i] for col in cols))
            yield (
                entity_key(self.project, self.view, [kc[i] for kc in key_cols]),
                encode_value(record, dtypes),
                expire_at_ms(event, self.ttl, now_ms),
            )

    def __call__(self, batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        store = RedisOnlineStore.from_url(self.url, password=self.password)
        offered = written = 0
        now = store.now_ms()
        for batch in batches:
            result = store.write(self._items(batch, now))
            offered += result.offered
            written += result.written
        yield pa.RecordBatch.from_pydict(
            {"offered": [offered], "written": [written]},
            schema=pa.schema([("offered", pa.int64()), ("written", pa.int64())]),
        )


def materialize_view(
    spark: SparkSession,
    view: FeatureView,
    repo_path: Path,
    interval: tuple[int | None, int],
    writer: OnlineWriter,
) -> ViewMaterialization:
    """Write the latest row per entity of `interval` ((start or None, end) in UTC
    microseconds, inclusive) to the online store through `writer`."""
    start_us, end_us = interval
    rows = interval_rows(spark, view, repo_path, start_us, end_us).cache()
    try:
        rows_read = rows.count()
        latest = latest_per_entity(rows, view)
        counts = latest.mapInArrow(writer, "offered long, written long").agg(
            F.sum("offered").alias("offered"), F.sum("written").alias("written")
        )
        row = counts.collect()[0]
    finally:
        rows.unpersist()
    return ViewMaterialization(
        view.name, rows_read, int(row["offered"] or 0), int(row["written"] or 0)
    )
