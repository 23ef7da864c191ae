"""A view's Delta feature table: where it lives, its columns, and the MERGE that writes
a run's rows into it (only the rows that change it, a stored row replaced only by a
higher-ranking one), with the commit's version and counts, and retries on conflicts."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F  # noqa: N812

from skewless.batch.ranking import table_rank_sql
from skewless.batch.sources import CTS, TS, latest_delta_version
from skewless.definitions import FeatureView
from skewless.stats.summary import Summary

_LOG = logging.getLogger(__name__)

MAX_COMMIT_ATTEMPTS = 5
# A first write that another run's first write beat to the table: MERGE into it instead.
_CREATED_MEANWHILE = frozenset({"DELTA_PATH_EXISTS", "PATH_ALREADY_EXISTS"})
# Up to this many incoming rows, changes() narrows the table to the rows with their keys
# through a broadcast of the keys (about 30 bytes a row on the driver) before joining.
SEMI_JOIN_MAX_ROWS = 1_000_000
# The rows a MERGE inserts are written in the partitions of its source: one file per this
# many changed rows rather than one per shuffle partition (16 files for 100k rows).
ROWS_PER_FILE = 1_000_000


@dataclass(frozen=True)
class TableWrite:
    """What one run did to a view's Delta table: the version it left and the rows its
    commit inserted and updated (none when it committed nothing)."""

    version: int
    inserted: int = 0
    updated: int = 0
    # feature statistics of the rows the commit inserted or updated, when asked for
    statistics: Mapping[str, Summary] | None = None

    @property
    def written(self) -> int:
        return self.inserted + self.updated


def table_path(offline_root: str, project: str, view: FeatureView, data_hash: str) -> str:
    """One table per view definition (data hash): a changed schema or source starts a new
    table instead of mixing rows of two definitions."""
    return f"{offline_root.rstrip('/')}/{project}/{view.name}/{data_hash}"


def to_table_columns(frame: DataFrame, view: FeatureView) -> DataFrame:
    created = view.source.created_timestamp_column or "created_timestamp"
    return frame.select(
        *view.join_keys,
        F.col(TS).alias(view.source.timestamp_field),
        F.col(CTS).alias(created),
        *view.stored_names,
    )


# The table property naming the columns Delta collects file statistics (min, max, null
# count) on: the join keys and the event time, which every MERGE and every time-bounded
# read of skewless skips files by; statistics on every column make large writes markedly
# slower (docs/performance.md). ALTER TABLE ... SET TBLPROPERTIES widens them for files
# written afterwards.
STATS_COLUMNS = "delta.dataSkippingStatsColumns"


def stats_columns(view: FeatureView) -> str:
    return ",".join(f"`{c}`" for c in [*view.join_keys, view.source.timestamp_field])


def merge_into_table(
    spark: SparkSession,
    frame: DataFrame,
    view: FeatureView,
    path: str,
    *,
    rows: int | None = None,
    times: tuple[int, int] | None = None,
    summarize: Callable[[DataFrame], Mapping[str, Summary]] | None = None,
) -> TableWrite:
    """MERGE `frame` (one row per key and event time) into the table at `path`; returns
    the Delta version written and the rows inserted and updated, and `summarize` of
    those rows (table columns) when given: they are held in memory for the MERGE, so
    statistics cost no further read. Concurrent writers retry.

    Only the rows that change the table (a new key, or a higher rank than the stored
    row: `changes()`) go into the MERGE, so that Delta rewrites only the files holding
    them instead of every file a key of `frame` matches; the MERGE still checks the rank
    against the table as it is at commit time. A run that changes nothing commits
    nothing: it returns the table's current version.
    `rows`, an upper bound of `frame`'s rows when known, lets changes() take its narrow
    path for a small frame. `times`, the first and last event time of `frame` (UTC
    microseconds) when known, bounds the table's rows that both the search for changes
    and the MERGE read: a row of `frame` can only ever meet a stored row of its own event
    time, and Delta skips the files whose event times all lie outside (the files an
    earlier run wrote, when new rows arrive for new times)."""
    from delta.tables import DeltaTable  # noqa: PLC0415 - needs the JVM

    source = to_table_columns(frame, view)
    ts = view.source.timestamp_field
    on = " AND ".join(f"t.`{k}` = s.`{k}`" for k in [*view.join_keys, ts])
    within = None
    if times is not None:
        within = f"`{ts}` BETWEEN {timestamp_literal(times[0])} AND {timestamp_literal(times[1])}"
        on += f" AND t.{within}"
    newer = f"{table_rank_sql(view, 's')} > {table_rank_sql(view, 't')}"
    narrow = rows is not None and rows <= SEMI_JOIN_MAX_ROWS
    for attempt in range(MAX_COMMIT_ATTEMPTS):
        try:
            if not DeltaTable.isDeltaTable(spark, path):
                (
                    source.write.format("delta")
                    .option(STATS_COLUMNS, stats_columns(view))
                    .mode("errorifexists")
                    .save(path)
                )
                written = last_commit(spark, path)
                return replace(written, statistics=_summarized(summarize, source, view))
            table = spark.read.format("delta").load(path)
            if within is not None:
                table = table.where(within)
            cached = changes(source, table, view, broadcast_keys=narrow).cache()
            try:
                changed = cached.count()
                if not changed:
                    return TableWrite(current_version(spark, path))
                # before the MERGE: its commit makes Spark recompute every cached plan that
                # reads the table, and the changes then are none
                summary = _summarized(summarize, cached, view)
                (
                    DeltaTable.forPath(spark, path)
                    .alias("t")
                    .merge(cached.coalesce(-(-changed // ROWS_PER_FILE)).alias("s"), on)
                    .whenMatchedUpdateAll(condition=newer)
                    .whenNotMatchedInsertAll()
                    .execute()
                )
                return replace(last_commit(spark, path), statistics=summary)
            finally:
                # Always the cached frame: a cached plan left behind would be served to
                # the next run's identical plan over a source folder with new files.
                cached.unpersist()
        except Exception as exc:
            if attempt == MAX_COMMIT_ATTEMPTS - 1 or not retryable_conflict(exc):
                raise
            time.sleep(0.2 * (attempt + 1))
    raise AssertionError("unreachable: the last attempt returns or raises")  # pragma: no cover


def _summarized(
    summarize: Callable[[DataFrame], Mapping[str, Summary]] | None,
    rows: DataFrame,
    view: FeatureView,
) -> Mapping[str, Summary] | None:
    """`summarize(rows)`; a failure is logged and leaves the version without statistics
    (`skewless drift` then says so): the values still reach Delta and Redis."""
    if summarize is None:
        return None
    try:
        return summarize(rows)
    except Exception as exc:  # statistics never block the values
        _LOG.warning("statistics of feature view %r not recorded: %s", view.name, exc)
        return None


def timestamp_literal(us: int) -> str:
    """A timestamp literal of UTC microseconds that Spark folds before Delta chooses the
    files to read."""
    return f"timestamp_micros({int(us)}L)"


def changes(
    source: DataFrame, table: DataFrame, view: FeatureView, *, broadcast_keys: bool = False
) -> DataFrame:
    """The rows of `source` (table columns) the MERGE would insert or update: keys the
    table lacks, and rows that rank higher than the table's row for their key. The rows
    left out can never change the table: a stored row is only ever replaced by a higher
    ranking one.

    With `broadcast_keys` (a small source: an incremental run), the table's rows are
    first narrowed to those whose (keys, event time) the source has, by a semi join
    against a broadcast of the source's keys, so the join shuffles those few rows
    instead of the whole table (about half the time of an hourly incremental run against
    a large table, docs/performance.md)."""
    ts = view.source.timestamp_field
    keys = [*view.join_keys, ts]
    stored = table.select(*[F.col(f"`{c}`") for c in source.columns])
    if broadcast_keys:
        wanted = F.broadcast(source.select(*[F.col(f"`{k}`") for k in keys]))
        stored = stored.join(wanted, on=keys, how="left_semi")
    stored = stored.alias("t")
    matched = source.alias("s").join(
        stored, on=[F.col(f"s.`{k}`") == F.col(f"t.`{k}`") for k in keys], how="left"
    )
    newer = F.col(f"t.`{ts}`").isNull() | F.expr(
        f"{table_rank_sql(view, 's')} > {table_rank_sql(view, 't')}"
    )
    return matched.where(newer).select("s.*")


def current_version(spark: SparkSession, path: str) -> int:
    """The table's latest version, or -1 when there is no table at `path` yet."""
    from delta.tables import DeltaTable  # noqa: PLC0415 - needs the JVM

    if not DeltaTable.isDeltaTable(spark, path):
        return -1
    return latest_delta_version(spark, path)


def last_commit(spark: SparkSession, path: str) -> TableWrite:
    """The version of the table's last commit and the rows it inserted and updated (a
    first write inserts every row it writes)."""
    from delta.tables import DeltaTable  # noqa: PLC0415 - needs the JVM

    last = DeltaTable.forPath(spark, path).history(1).collect()[0]
    metrics = last["operationMetrics"] or {}
    if last["operation"] == "WRITE":
        return TableWrite(int(last["version"]), int(metrics.get("numOutputRows", 0)))
    return TableWrite(
        int(last["version"]),
        inserted=int(metrics.get("numTargetRowsInserted", 0)),
        updated=int(metrics.get("numTargetRowsUpdated", 0)),
    )


def retryable_conflict(exc: Exception) -> bool:
    """Another writer committed first: Delta's concurrency exceptions, or a first write
    racing another first write (the table now exists: MERGE into it instead)."""
    from delta import exceptions as delta_errors  # noqa: PLC0415
    from pyspark.errors import AnalysisException  # noqa: PLC0415

    # delta-spark's Python exceptions share no base class: name every concurrency one.
    concurrent = (
        delta_errors.ConcurrentAppendException,
        delta_errors.ConcurrentDeleteDeleteException,
        delta_errors.ConcurrentDeleteReadException,
        delta_errors.ConcurrentTransactionException,
        delta_errors.ConcurrentWriteException,
        delta_errors.DeltaConcurrentModificationException,
        delta_errors.MetadataChangedException,
        delta_errors.ProtocolChangedException,
    )
    if isinstance(exc, concurrent):
        return True
    # Delta names a table created since our check DELTA_PATH_EXISTS; plain Spark, a path.
    return isinstance(exc, AnalysisException) and exc.getCondition() in _CREATED_MEANWHILE
