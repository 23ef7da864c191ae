"""Materialization: a Spark batch job per view, offline into Delta, then online into Redis.

For each view and interval:

1. Read the source rows with start <= event time <= end (an incremental run reads the
   rows that arrived since the last run instead, whatever their event time, so late rows
   are never missed; see `interval_rows`).
   Rows with a null join key or event time cannot be written anywhere: they are counted
   (`rows_rejected`, recorded with the run) and left out.
2. Keep one row per (join keys, event time): the greatest by the ranking rule
   (rules/ranking.py: created time, tie hash, values), as the point-in-time join does.
3. MERGE them into the view's Delta feature table on (join keys, event time): a new key
   is inserted, a matched row is replaced only by a row that ranks higher (a correction),
   so re-running an interval leaves the table's content unchanged. A run that changes
   the table is one Delta commit, a run that changes nothing commits nothing; Delta's
   history gives time travel per view.
4. Reduce to one row per entity (the highest ranked: the row the point-in-time join
   picks at `end`) and write it to Redis in pipelined batches of ordered writes
   (online/redis.py): a stored value is only replaced by one of a higher rank, so runs
   in any order, replays included, leave the row the join picks over all of them.
   Up to `driver_write_max_keys` entities are written by the driver itself, from Arrow
   batches: a small run then pays no Python worker start-up on the executors (seconds
   for a first run). Larger runs write from the executors, partition by partition, and
   nothing is collected on the driver.

A run killed half-way and run again ends in the same state: the MERGE is idempotent and
the online writes are ordered and idempotent.

The Delta feature table (its path, columns and MERGE) is batch/feature_table.py. A view
with aggregations stores events, not latest rows: batch/window_materialize.py
materializes it with the pieces of both modules.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pyspark import StorageLevel
from pyspark.sql import Column, DataFrame, Row, SparkSession, Window
from pyspark.sql import functions as F  # noqa: N812

from skewless.batch.feature_stats import summarize_frame
from skewless.batch.feature_table import (
    TableWrite,
    current_version,
    merge_into_table,
    timestamp_literal,
)
from skewless.batch.presort import KEY_HASH, presorted
from skewless.batch.ranking import TIE, rank_fields, values_struct
from skewless.batch.sources import (
    CTS,
    TS,
    event_time_after,
    naming_unreadable_files,
    read_raw,
    read_source,
)
from skewless.batch.spark import local_master
from skewless.config import DRIVER_WRITE_MAX_KEYS
from skewless.definitions import FeatureView
from skewless.online.codec import arrow_entity_keys, encode_values
from skewless.online.redis import RedisOnlineStore, expire_at_ms_many
from skewless.stats.summary import DEFAULT_BINS, DEFAULT_TOP_K, Summary
from skewless.timeutil import utc_micros
from skewless.types import DType

ARRIVAL = "__arrival"
FILE = "__file"  # the path of the row's source file
SIZE = "__size"  # and its size
_WIN = "__win"
_VALUES = "__values"
_ROWS = "__rows"  # source rows a deduplicated row stands for
_ARRIVED_US = "__arrived_us"  # the latest arrival among them
_LATEST = "__latest"  # the entity's row with the greatest event time
_NEWEST = "__newest"  # the entity's greatest event time
_LAST = "__last"  # the last of its (keys, event time)'s rows in the window's order
_REJECTED = "__rejected"  # a null join key or event time: never materialized, counted
# Files modified up to this long before the last run's newest file are read again, so a
# file written while that run was listing files is never skipped (re-reading is harmless).
ARRIVAL_OVERLAP_US = 10 * 60 * 1_000_000


@dataclass(frozen=True)
class Interval:
    """Which rows a run takes, in UTC microseconds."""

    end_us: int
    start_us: int | None = None  # full runs: event time >= start (None: all history)
    arrived_after_us: int | None = None  # incremental: arrival watermark of the last run
    previous_end_us: int | None = None  # incremental: the last run's end
    # incremental: the files of the overlap before the watermark that the base run read
    # (path, modification time in us, size): not read again
    seen_files: tuple[tuple[str, int, int], ...] = ()
    # an incremental run, the first one included: it records the files it read
    records_seen: bool = False

    @property
    def incremental(self) -> bool:
        """Whether the run starts from a base (an earlier run over all history)."""
        return self.arrived_after_us is not None


@dataclass(frozen=True)
class ViewMaterialization:
    view: str
    rows_read: int
    rows_written_offline: int  # inserted + updated
    keys_offered: int
    keys_written: int
    delta_path: str
    delta_version: int
    arrival_watermark_us: int | None
    seconds: float
    online_seconds: float = 0.0
    rows_rejected: int = 0  # of rows_read: a null join key or event time
    rows_inserted_offline: int = 0
    rows_updated_offline: int = 0
    # the files within the overlap before the new watermark that the next run must not read
    seen_files: tuple[tuple[str, int, int], ...] = ()
    # feature statistics of the rows the run materialized, when it committed a version
    statistics: Mapping[str, Summary] | None = None


@dataclass(frozen=True)
class StatisticsRequest:
    """Summarize the rows a run commits (batch/feature_stats.py): numeric features over
    `edges` (the definition's reference edges; a feature without any gets them from this
    run), with `bins` bins for new edges and the `top_k` most frequent values."""

    edges: Mapping[str, tuple[float, ...]]
    bins: int = DEFAULT_BINS
    top_k: int = DEFAULT_TOP_K


def _rank(view: FeatureView) -> Column:
    """The rank within one event time: (created time, tie hash, values)."""
    return F.struct(*rank_fields(view, event_time=False), values_struct(view).alias(_VALUES))


def latest_per_entity(rows: DataFrame, view: FeatureView) -> DataFrame:
    """One row per entity: keys, __ts, __cts, the features and the tie hash of the
    highest ranked row."""
    keys = list(view.join_keys)
    ranked = F.struct(*rank_fields(view), values_struct(view).alias(_VALUES))
    best = rows.groupBy(*keys).agg(F.max(ranked).alias(_WIN))
    return best.select(
        *keys,
        F.col(f"{_WIN}.{TS}").alias(TS),
        F.col(f"{_WIN}.{CTS}").alias(CTS),
        *[F.col(f"{_WIN}.{_VALUES}").getField(f).alias(f) for f in view.stored_names],
        F.col(f"{_WIN}.{TIE}").alias(TIE),
    )


def deduplicate(rows: DataFrame, view: FeatureView) -> DataFrame:
    """One row per (join keys, event time), the highest ranked (keys, __ts, __cts, the
    features and TIE, its tie hash), with four more columns: _ROWS (the source rows each
    row stands for), _ARRIVED_US (their latest ARRIVAL, in microseconds), _LATEST (true on
    each entity's row with the greatest event time: the row latest_per_entity() picks, as
    a row already wins within its event time) and _REJECTED (a null join key or event
    time: such groups are only counted, never written).

    One shuffle, one sort and one window: the rows are clustered by the join keys and
    sorted by (KEY_HASH, keys, event time), with a radix-sorted head start
    (batch/presort.py), and one window pass over each entity's rows computes, for each
    row, the aggregates of its event time's rows (its peers in that order: the winning
    (created, values), the count, the latest arrival) and the entity's newest event
    time, then keeps the last row of each event time. A grouping per (keys, event time)
    instead runs two sort-based aggregations (Spark aggregates structs only by sorting),
    and took a fifth longer at 10M rows."""
    keys = list(view.join_keys)
    key_columns = [F.col(f"`{k}`") for k in keys]
    entity = Window.partitionBy(KEY_HASH, *keys).orderBy(F.col(TS))
    peers = entity.rangeBetween(Window.currentRow, Window.currentRow)
    so_far = entity.rangeBetween(Window.unboundedPreceding, Window.currentRow)
    whole = entity.rowsBetween(Window.unboundedPreceding, Window.unboundedFollowing)
    one = F.lit(1)
    per_row = presorted(rows, keys, TS).select(
        *key_columns,
        TS,
        F.max(_rank(view)).over(peers).alias(_WIN),
        F.count(one).over(peers).alias(_ROWS),
        F.max(F.unix_micros(F.col(ARRIVAL))).over(peers).alias(_ARRIVED_US),
        F.max(F.col(TS)).over(whole).alias(_NEWEST),
        # the last of its event time's rows: as many rows up to it, peers included, as
        # its position (null event times are peers of each other, as in a grouping)
        (F.row_number().over(entity) == F.count(one).over(so_far)).alias(_LAST),
    )
    best = per_row.where(F.col(_LAST))
    newest = F.col(_NEWEST)
    rejected = F.col(TS).isNull()
    for key in key_columns:
        rejected = rejected | key.isNull()
    return best.select(
        *key_columns,
        TS,
        F.col(f"{_WIN}.{CTS}").alias(CTS),
        *[F.col(f"{_WIN}.{_VALUES}").getField(f).alias(f) for f in view.stored_names],
        F.col(f"{_WIN}.{TIE}").alias(TIE),
        _ROWS,
        _ARRIVED_US,
        F.coalesce((F.col(TS) == newest) & ~rejected, F.lit(False)).alias(_LATEST),
        rejected.alias(_REJECTED),
    )


# A file modified this close to a run's start may still change within the same tick of a
# coarse clock (object stores keep whole seconds): it is not recorded as seen.
SEEN_SETTLE_US = 2_000_000

SeenFile = tuple[str, int, int]  # path, modification time (us), size (bytes)


def _file_key(path: Column, modified: Column, size: Column) -> Column:
    """A file's identity for `seen_files`: its path, modification time and size."""
    return F.concat_ws("@", path, F.unix_micros(modified).cast("string"), size.cast("string"))


def _seen_files(
    rows: DataFrame, interval: Interval, watermark: int | None, started_us: int
) -> tuple[SeenFile, ...]:
    """What an incremental run tells the next run to skip: the files modified within the
    overlap before the new watermark that this run or its base read, every row of them
    up to its end (rows past the end are the next run's second scan). The same DataFrame
    as the run's, so the same listing of files (a Delta source is read at a pinned
    version)."""
    if watermark is None:
        return interval.seen_files
    low = watermark - ARRIVAL_OVERLAP_US
    recent = rows.where(F.col(ARRIVAL) >= F.expr(timestamp_literal(low)))
    found = recent.select(FILE, F.unix_micros(F.col(ARRIVAL)), SIZE).distinct().collect()
    read = {
        (str(path), int(mtime), int(size))
        for path, mtime, size in found
        if int(mtime) < started_us - SEEN_SETTLE_US
    }
    kept = {f for f in interval.seen_files if f[1] >= low}
    return tuple(sorted(kept | read))


def interval_rows(
    spark: SparkSession, view: FeatureView, repo_path: Path, interval: Interval
) -> DataFrame:
    """The view's source rows the run takes, with ARRIVAL (the row's file modification
    time), FILE and SIZE (its file's path and size). Rows with a null event time (in no
    interval) are kept, like rows with a null join key, for deduplicate() to flag as
    rejected: the run counts them, never writes them (an incremental run counts them
    once, when they arrive).

    An incremental run starts from its base, the last run over all history: it takes
    the rows of the files that arrived since (modified at or after the base's watermark
    minus ARRIVAL_OVERLAP_US, a margin for files written while the base listed them,
    except the files the base had read: `seen_files`), and from every other file the
    rows with an event time past the base's end. So each file's rows up to the base's
    end were taken by the base or before it, and its rows past it are taken now,
    whatever order the runs' ends come in. The two are separate scans: Spark lists only
    the new files (a condition on a file's path, modification time and size prunes
    files), and the older files' rows are skipped by their event-time statistics
    (Parquet footers, Delta's file statistics) without reading their data; CSV files
    have no statistics and are read again."""

    def read(raw: DataFrame) -> DataFrame:
        raw = raw.select(
            "*",
            F.col("_metadata.file_modification_time").alias(ARRIVAL),
            F.col("_metadata.file_path").alias(FILE),
            F.col("_metadata.file_size").alias(SIZE),
        )
        return read_source(spark, view, repo_path, raw=raw, extra=[ARRIVAL, FILE, SIZE])

    raw = read_raw(spark, view, repo_path)
    rows = read(raw)
    us = F.unix_micros(F.col(TS))
    within = us <= F.lit(interval.end_us)
    if interval.start_us is not None:
        within = within & (us >= F.lit(interval.start_us))
    if not interval.incremental:
        return rows.where(F.col(TS).isNull() | within)
    since = (interval.arrived_after_us or 0) - ARRIVAL_OVERLAP_US
    arrived = F.col(ARRIVAL) >= F.expr(timestamp_literal(since))
    if interval.seen_files:
        key = _file_key(F.col(FILE), F.col(ARRIVAL), F.col(SIZE))
        arrived = arrived & ~key.isin(
            [f"{path}@{mtime}@{size}" for path, mtime, size in interval.seen_files]
        )
    new = rows.where(arrived & (F.col(TS).isNull() | within))
    if interval.previous_end_us is None or interval.previous_end_us >= interval.end_us:
        return new
    # the second scan's rows, filtered on the source's own column too: what Parquet's
    # statistics are compared with (a nanosecond column is a bigint until it is read)
    after = event_time_after(raw, view, interval.previous_end_us)
    older = read(raw if after is None else raw.where(after))
    left = F.col(TS) > F.expr(timestamp_literal(interval.previous_end_us))
    return new.unionByName(older.where(~arrived & left & within))


# --- online: the Redis writer ----------------------------------------------------------


def event_micros(column: pa.Array) -> np.ndarray:
    micros = pc.cast(pc.cast(column, pa.timestamp("us")), pa.int64())
    return np.asarray(micros.to_numpy(zero_copy_only=False), dtype=np.int64)


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

    @classmethod
    def for_view(
        cls, project: str, view: FeatureView, url: str, password: str | None = None
    ) -> OnlineWriter:
        return cls(
            project=project,
            view=view.name,
            keys=view.join_keys,
            features=tuple((f.name, f.dtype) for f in view.stored),
            ttl=view.ttl,
            url=url,
            password=password,
        )

    def items(self, batch: pa.RecordBatch, now_ms: int) -> list[tuple[bytes, bytes, int]]:
        """(key, value, expire_at_ms) of every row, encoded column by column."""
        events = batch.column(TS)
        if events.null_count:  # filtered out upstream; never write an undated value
            batch = batch.filter(events.is_valid())
            events = batch.column(TS)
        keys = arrow_entity_keys(self.project, self.view, [batch.column(k) for k in self.keys])
        values = encode_values(
            events,
            batch.column(CTS),
            batch.column(TIE),
            [batch.column(name) for name, _ in self.features],
            [dtype for _, dtype in self.features],
        )
        expire = expire_at_ms_many(event_micros(events), self.ttl, now_ms)
        return list(zip(keys, values, expire, strict=True))

    def __call__(self, batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        store = RedisOnlineStore.from_url(self.url, password=self.password)
        offered = written = 0
        now = store.now_ms()
        for batch in batches:
            result = store.write(self.items(batch, now))
            offered += result.offered
            written += result.written
        yield pa.RecordBatch.from_pydict(
            {"offered": [offered], "written": [written]},
            schema=pa.schema([("offered", pa.int64()), ("written", pa.int64())]),
        )


def write_online_from_driver(latest: DataFrame, writer: OnlineWriter) -> tuple[int, int]:
    """The same writer on the driver, over the rows as Arrow batches."""
    table = latest.toArrow()
    (counts,) = writer(iter(table.to_batches(max_chunksize=10_000)))
    return int(counts.column("offered")[0].as_py()), int(counts.column("written")[0].as_py())


def write_online(latest: DataFrame, writer: OnlineWriter) -> tuple[int, int]:
    # One writing task per core: each task pays a Python worker's imports and a Redis
    # connection once, and pipelines many batches over it.
    cores = max(1, latest.sparkSession.sparkContext.defaultParallelism)
    counts = (
        latest.coalesce(cores)
        .mapInArrow(writer, "offered long, written long")
        .agg(F.sum("offered").alias("offered"), F.sum("written").alias("written"))
    )
    row = counts.collect()[0]
    return int(row["offered"] or 0), int(row["written"] or 0)


# --- the job ---------------------------------------------------------------------------


@contextmanager
def computed_once(frame: DataFrame) -> Iterator[DataFrame]:
    """`frame`, computed once for the jobs that read it, and released when they are done.

    With a local master the rows are a local checkpoint: Spark's rows as objects (no
    columnar encoding), in the block manager, spilled to disk when memory runs short:
    building and reading back Spark's compressed columnar cache costs a large share of a
    small run (docs/performance.md). A local master's executors
    live in the driver's process, so no checkpointed block can be lost on its own; on a
    cluster an executor can be, and a checkpoint keeps no lineage to recompute it from,
    so other masters cache."""
    if local_master(frame.sparkSession):
        held = frame.localCheckpoint(eager=True, storageLevel=StorageLevel.MEMORY_AND_DISK_DESER)
        release: Callable[[], object] = partial(_release_checkpoint, held)
    else:
        held = frame.cache()
        release = held.unpersist
    try:
        yield held
    finally:
        release()


def _release_checkpoint(frame: DataFrame) -> None:
    """Drop the blocks of a local checkpoint now, not when the driver next collects its
    garbage (a long-lived scheduler would hold every run's rows until then)."""
    plan = frame._jdf.queryExecution().logical()
    if plan.getClass().getSimpleName() == "LogicalRDD":  # what localCheckpoint() builds
        plan.rdd().unpersist(False)


def materialize_view(
    spark: SparkSession,
    view: FeatureView,
    repo_path: Path,
    interval: Interval,
    *,
    writer: OnlineWriter | None,
    delta_path: str | None,
    driver_write_max_keys: int = DRIVER_WRITE_MAX_KEYS,
    statistics: StatisticsRequest | None = None,
) -> ViewMaterialization:
    """Run the job for one view: Delta first (when `delta_path`), then Redis (when
    `writer`). The source is read once, deduplicated and flagged in one shuffle
    (`deduplicate`), and held (`computed_once`) for the counts, the Delta write, the
    feature statistics of a run that commits a version (when `statistics`) and the
    online rows. A source file Spark cannot read is an UnreadableSourceError naming it."""
    if view.aggregations:  # its rows would land where its event lists belong
        raise ValueError(
            f"feature view {view.name!r} has aggregations: materialize it with "
            "batch/window_materialize.materialize_window_view"
        )
    with naming_unreadable_files([view], repo_path):
        return _materialize_view(
            spark,
            view,
            repo_path,
            interval,
            writer=writer,
            delta_path=delta_path,
            driver_write_max_keys=driver_write_max_keys,
            statistics=statistics,
        )


def _materialize_view(
    spark: SparkSession,
    view: FeatureView,
    repo_path: Path,
    interval: Interval,
    *,
    writer: OnlineWriter | None,
    delta_path: str | None,
    driver_write_max_keys: int,
    statistics: StatisticsRequest | None,
) -> ViewMaterialization:
    started = time.perf_counter()
    started_us = utc_micros(datetime.now(UTC))
    rows = interval_rows(spark, view, repo_path, interval)
    with computed_once(deduplicate(rows, view)) as deduplicated:
        stats = deduplicated.agg(
            F.sum(_ROWS).alias("n"),
            F.max(_ARRIVED_US).alias("arrival"),
            F.count_if(F.col(_LATEST)).alias("entities"),
            F.sum(F.when(F.col(_REJECTED), F.col(_ROWS))).alias("rejected"),
            F.min(F.when(~F.col(_REJECTED), F.unix_micros(F.col(TS)))).alias("first_us"),
            F.max(F.when(~F.col(_REJECTED), F.unix_micros(F.col(TS)))).alias("last_us"),
        ).collect()[0]
        valid = deduplicated.where(~F.col(_REJECTED))
        per_event = valid.drop(_ROWS, _ARRIVED_US, _LATEST, _REJECTED)
        table = TableWrite(-1)
        if delta_path is not None and stats["first_us"] is None:  # no row to write
            table = TableWrite(current_version(spark, delta_path))
        elif delta_path is not None:
            times = (stats["first_us"], stats["last_us"])
            table = merge_into_table(
                spark,
                per_event,
                view,
                delta_path,
                rows=int(stats["n"] or 0),
                times=times,
                summarize=None
                if statistics is None
                else partial(summarize_view_rows, view=view, request=statistics),
            )
        offered = written = 0
        online_started = time.perf_counter()
        if writer is not None and int(stats["entities"] or 0):
            latest = deduplicated.where(F.col(_LATEST)).select(per_event.columns)
            if int(stats["entities"] or 0) <= driver_write_max_keys:
                offered, written = write_online_from_driver(latest, writer)
            else:
                offered, written = write_online(latest, writer)
        online_seconds = time.perf_counter() - online_started
    return view_materialization(
        view,
        rows,
        interval,
        stats,
        table=table,
        online=(offered, written, online_seconds),
        delta_path=delta_path,
        started=(started, started_us),
        statistics=table.statistics,
    )


def summarize_view_rows(
    rows: DataFrame, view: FeatureView, request: StatisticsRequest
) -> dict[str, Summary]:
    """The statistics of the view's stored fields over `rows` (one per key and event
    time, held in memory by the run: the rows a commit inserted or updated)."""
    return summarize_frame(
        rows,
        [(f.name, f.dtype) for f in view.stored],
        request.edges,
        bins=request.bins,
        top_k=request.top_k,
    )


def view_materialization(
    view: FeatureView,
    rows: DataFrame,
    interval: Interval,
    stats: Row,
    *,
    table: TableWrite,
    online: tuple[int, int, float],
    delta_path: str | None,
    started: tuple[float, int],
    statistics: Mapping[str, Summary] | None = None,
) -> ViewMaterialization:
    """A finished run's result: `stats` (a Row of n, rejected and arrival: the newest
    source file time read), the Delta write, `online` (keys offered, keys written, its
    seconds), `started` (perf_counter, UTC microseconds), the feature statistics."""
    offered, written, online_seconds = online
    arrival = None if stats["arrival"] is None else int(stats["arrival"])
    if interval.arrived_after_us is not None and arrival is not None:
        arrival = max(arrival, interval.arrived_after_us)  # never behind the base's
    # An incremental run tells the next one which of its new files to skip (a second,
    # small job over those files); a full run records none, and the run after it reads
    # the files of its overlap again.
    seen = _seen_files(rows, interval, arrival, started[1]) if interval.records_seen else ()
    return ViewMaterialization(
        view=view.name,
        rows_read=int(stats["n"] or 0),
        rows_rejected=int(stats["rejected"] or 0),
        rows_written_offline=table.written,
        rows_inserted_offline=table.inserted,
        rows_updated_offline=table.updated,
        keys_offered=offered,
        keys_written=written,
        delta_path=delta_path or "",
        delta_version=table.version,
        arrival_watermark_us=arrival,
        seconds=time.perf_counter() - started[0],
        online_seconds=online_seconds,
        seen_files=seen,
        statistics=statistics,
    )
