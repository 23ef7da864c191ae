"""Materialization of a view with aggregations: its events into Delta, each entity's
recent events into Redis.

Delta. The view's table holds its events, each once by the identity rule of
rules/windows.py (on Spark: batch/aggregation.window_events), in the columns of a plain
view's table (keys, event time, created time, the inputs):

- with a created-timestamp column, (keys, event time) is an event and its versions rank
  as a plain view's rows do, so the plain MERGE (batch/materialize.merge_into_table)
  applies as it is: a re-run finds nothing that ranks higher and commits nothing;
- without one, distinct rows at one (keys, event time) are different events, which a
  MERGE on (keys, event time) would collapse into one: `insert_new_events` matches on
  keys, event time and every input (null-safe, NaN equal to NaN and -0.0 to 0.0, as
  Spark's distinct compares them) and only inserts, so a re-run matches every event and
  commits nothing, and a run with new events commits once.

Redis. A run to end E writes, per entity, the list of online/event_lists.py: the
entity's events with E - horizon < event time <= E, read from the source whatever the
run's interval (an incremental run takes only new rows for Delta, but the list it
writes replaces the whole stored list, so it must hold every event of the horizon,
late rows included). The ordered write ranks a list by (E, the run's start, a hash of
its content): a list built to a later end replaces one built to an earlier end, and of
two runs to one end the later started, which read at least as much of the source, wins.
A key expires a horizon (and a margin) after its newest event, or after its write if
that is later: by then no request time at or after E sees any of its events. Entities
without an event in the horizon are not written: what an older list holds for them is
out of every window at request times >= E.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F  # noqa: N812

from skewless.batch.aggregation import window_events
from skewless.batch.feature_table import (
    MAX_COMMIT_ATTEMPTS,
    ROWS_PER_FILE,
    STATS_COLUMNS,
    TableWrite,
    current_version,
    last_commit,
    merge_into_table,
    retryable_conflict,
    stats_columns,
    timestamp_literal,
    to_table_columns,
)
from skewless.batch.materialize import (
    ARRIVAL,
    Interval,
    OnlineWriter,
    ViewMaterialization,
    computed_once,
    event_micros,
    interval_rows,
    view_materialization,
    write_online,
    write_online_from_driver,
)
from skewless.batch.ranking import TIE, tie_hash_sql
from skewless.batch.sources import CTS, TS, naming_unreadable_files
from skewless.config import DRIVER_WRITE_MAX_KEYS
from skewless.definitions import FeatureView
from skewless.online.codec import arrow_entity_keys, encode_values
from skewless.online.event_lists import horizon_us, list_columns, list_fields
from skewless.online.redis import expire_at_ms_many
from skewless.timeutil import utc_micros

_EVENTS = "__events"  # an entity's events as an array of structs (time, inputs...)
_NEWEST = "__newest"  # an entity's newest event time: its list's expiry counts from it


# --- offline: the events in Delta ------------------------------------------------------


def insert_new_events(
    spark: SparkSession,
    events: DataFrame,
    view: FeatureView,
    path: str,
    *,
    times: tuple[int, int],
) -> TableWrite:
    """Insert the `events` (distinct; keys, __ts, __cts and the inputs) the table at
    `path` lacks; an event matches a stored one equal in keys, event time and every
    input. `times`, the first and last event time of `events` (UTC microseconds), bounds
    the stored rows read, as in merge_into_table. A run whose events are all stored
    commits nothing; concurrent writers retry."""
    from delta.tables import DeltaTable  # noqa: PLC0415 - needs the JVM

    source = to_table_columns(events, view)
    ts = view.source.timestamp_field
    same = [f"t.`{c}` = s.`{c}`" for c in [*view.join_keys, ts]]
    same += [f"t.`{c}` <=> s.`{c}`" for c in view.stored_names]
    within = f"`{ts}` BETWEEN {timestamp_literal(times[0])} AND {timestamp_literal(times[1])}"
    on = " AND ".join([*same, f"t.{within}"])
    for attempt in range(MAX_COMMIT_ATTEMPTS):
        try:
            if not DeltaTable.isDeltaTable(spark, path):
                (
                    source.write.format("delta")
                    .option(STATS_COLUMNS, stats_columns(view))
                    .mode("errorifexists")
                    .save(path)
                )
                return last_commit(spark, path)
            stored = spark.read.format("delta").load(path).where(within)
            new = source.alias("s").join(stored.alias("t"), F.expr(on), "left_anti").cache()
            try:
                count = new.count()
                if not count:
                    return TableWrite(current_version(spark, path))
                (
                    DeltaTable.forPath(spark, path)
                    .alias("t")
                    .merge(new.coalesce(-(-count // ROWS_PER_FILE)).alias("s"), on)
                    .whenNotMatchedInsertAll()
                    .execute()
                )
                return last_commit(spark, path)
            finally:
                new.unpersist()  # as in merge_into_table: never leave a cached plan behind
        except Exception as exc:
            if attempt == MAX_COMMIT_ATTEMPTS - 1 or not retryable_conflict(exc):
                raise
            time.sleep(0.2 * (attempt + 1))
    raise AssertionError("unreachable: the last attempt returns or raises")  # pragma: no cover


def _write_events(
    spark: SparkSession,
    events: DataFrame,
    view: FeatureView,
    path: str,
    *,
    rows: int,
    times: tuple[int, int],
) -> TableWrite:
    """The events into the table by the identity rule's form of MERGE (module doc)."""
    if view.source.created_timestamp_column:
        return merge_into_table(spark, events, view, path, rows=rows, times=times)
    return insert_new_events(spark, events, view, path, times=times)


# --- online: the event lists ------------------------------------------------------------


def event_lists(events: DataFrame, view: FeatureView, end_us: int, created_us: int) -> DataFrame:
    """One row per entity of `events` (keys, __ts and the inputs): its keys, __ts = the
    run's end, __cts = the run's start, the fields of list_fields(view) (events sorted by
    time, then values), TIE (their tie hash: the hash of the content) and _NEWEST."""
    keys = [F.col(f"`{k}`") for k in view.join_keys]
    event = F.struct(F.col(TS).alias(TS), *[F.col(f"`{c}`") for c in list_columns(view)])
    per_entity = events.groupBy(*keys).agg(
        F.array_sort(F.collect_list(event)).alias(_EVENTS), F.max(F.col(TS)).alias(_NEWEST)
    )
    fields = list_fields(view)
    arrays = [F.col(_EVENTS).getField(TS).alias(fields[0][0])]
    arrays += [F.col(_EVENTS).getField(name).alias(name) for name, _ in fields[1:]]
    lists = per_entity.select(
        *keys,
        F.expr(timestamp_literal(end_us)).alias(TS),
        F.expr(timestamp_literal(created_us)).alias(CTS),
        *arrays,
        _NEWEST,
    )
    return lists.withColumn(TIE, F.expr(tie_hash_sql(fields)))


@dataclass(frozen=True)
class EventListWriter(OnlineWriter):
    """OnlineWriter's ordered writes of event lists: the features are list_fields(view),
    a key expires from its newest event with the horizon as its ttl."""

    @classmethod
    def for_view(
        cls, project: str, view: FeatureView, url: str, password: str | None = None
    ) -> EventListWriter:
        return cls(
            project=project,
            view=view.name,
            keys=view.join_keys,
            features=list_fields(view),
            ttl=timedelta(microseconds=horizon_us(view)),
            url=url,
            password=password,
        )

    def items(self, batch: pa.RecordBatch, now_ms: int) -> list[tuple[bytes, bytes, int]]:
        keys = arrow_entity_keys(self.project, self.view, [batch.column(k) for k in self.keys])
        values = encode_values(
            batch.column(TS),
            batch.column(CTS),
            batch.column(TIE),
            [batch.column(name) for name, _ in self.features],
            [dtype for _, dtype in self.features],
        )
        expire = expire_at_ms_many(event_micros(batch.column(_NEWEST)), self.ttl, now_ms)
        return list(zip(keys, values, expire, strict=True))


def _write_lists(
    spark: SparkSession,
    view: FeatureView,
    repo_path: Path,
    *,
    end_us: int,
    started_us: int,
    writer: EventListWriter,
    driver_write_max_keys: int,
) -> tuple[int, int]:
    """Build and write the lists of a run to `end_us`: (keys offered, keys written).
    The driver writes them itself when they hold at most `driver_write_max_keys` events
    in all: a list costs the driver as much as its events would as plain rows."""
    recent = Interval(end_us=end_us, start_us=end_us - horizon_us(view) + 1)
    events = window_events(interval_rows(spark, view, repo_path, recent), view)
    with computed_once(event_lists(events, view, end_us, started_us)) as lists:
        size = F.size(F.col(list_fields(view)[0][0]))
        counts = lists.agg(F.count(F.lit(1)).alias("n"), F.sum(size).alias("events")).collect()
        if not counts[0]["n"]:
            return 0, 0
        if int(counts[0]["events"]) <= driver_write_max_keys:
            return write_online_from_driver(lists, writer)
        return write_online(lists, writer)


# --- the job ----------------------------------------------------------------------------


def materialize_window_view(
    spark: SparkSession,
    view: FeatureView,
    repo_path: Path,
    interval: Interval,
    *,
    writer: OnlineWriter | None,
    delta_path: str | None,
    driver_write_max_keys: int = DRIVER_WRITE_MAX_KEYS,
) -> ViewMaterialization:
    """batch/materialize.materialize_view for a view with aggregations: Delta first (when
    `delta_path`: the events of `interval`), then Redis (when `writer`, which tells where:
    the lists of the horizon up to the interval's end)."""
    with naming_unreadable_files([view], repo_path):
        return _materialize(
            spark,
            view,
            repo_path,
            interval,
            writer=writer,
            delta_path=delta_path,
            driver_write_max_keys=driver_write_max_keys,
        )


def _materialize(
    spark: SparkSession,
    view: FeatureView,
    repo_path: Path,
    interval: Interval,
    *,
    writer: OnlineWriter | None,
    delta_path: str | None,
    driver_write_max_keys: int,
) -> ViewMaterialization:
    started = time.perf_counter()
    started_us = utc_micros(datetime.now(UTC))
    rows = interval_rows(spark, view, repo_path, interval)
    rejected = F.col(TS).isNull()
    for key in view.join_keys:
        rejected = rejected | F.col(f"`{key}`").isNull()
    event_us = F.when(~rejected, F.unix_micros(F.col(TS)))
    with computed_once(rows) as held:
        stats = held.agg(
            F.count(F.lit(1)).alias("n"),
            F.max(F.unix_micros(F.col(ARRIVAL))).alias("arrival"),
            F.count_if(rejected).alias("rejected"),
            F.min(event_us).alias("first_us"),
            F.max(event_us).alias("last_us"),
        ).collect()[0]
        table = TableWrite(-1)
        if delta_path is not None and stats["first_us"] is None:  # no event to write
            table = TableWrite(current_version(spark, delta_path))
        elif delta_path is not None:
            times = (int(stats["first_us"]), int(stats["last_us"]))
            events = window_events(held, view)
            table = _write_events(
                spark, events, view, delta_path, rows=int(stats["n"]), times=times
            )
    offered = written = 0
    online_started = time.perf_counter()
    if writer is not None:
        lists = EventListWriter.for_view(writer.project, view, writer.url, writer.password)
        offered, written = _write_lists(
            spark,
            view,
            repo_path,
            end_us=interval.end_us,
            started_us=started_us,
            writer=lists,
            driver_write_max_keys=driver_write_max_keys,
        )
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
    )
