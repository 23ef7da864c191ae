"""Erasure: deleting entities from a view's Delta feature tables, the online store and
saved training sets (their vacuum is batch/vacuum.py).

`forget` checks everything before its first deletion: the keys (offline/erasure.py
read_keys), every table it will change (a Delta table holding the join keys, as
compatible types), every saved set's manifest, and that the online store answers. Then
it runs its steps in order (the feature tables, the online store, the saved training
sets), each idempotent: deleting rows or keys already gone changes nothing and commits
nothing, so a request stopped part-way is completed by running it again.

A saved set's deletion and its erasure record in the registry are two writes. Every
Delta commit of a request carries a tag (Delta's commit user metadata) naming the view
and the request, so a run after a crash between the two finds the commit in the table's
history and records it then: no changed set is left unmarked.

The commit tag, and Delta's retention check turned off for a short vacuum, are SQL
settings. They are set in a child session (SparkSession.newSession: the same Spark
context, its own settings) used for that one call, so the caller's session never
changes.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from typing import TYPE_CHECKING, Any, TypeVar

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F  # noqa: N812
from pyspark.sql.types import StructType

from skewless.batch.feature_table import current_version, retryable_conflict, table_path
from skewless.definitions import FeatureView
from skewless.errors import (
    ErasureError,
    ErasureIncompleteError,
    clip,
)
from skewless.offline.erasure import (
    Commit,
    EntityKeys,
    ErasureReport,
    KeysInput,
    OnlineErasure,
    TableErasure,
    normalize_location,
    read_keys,
)
from skewless.offline.manifest import saved_manifest
from skewless.online.codec import entity_key
from skewless.registry.base import ErasureRecord, Registry, RegistryReader, TrainingSetRecord
from skewless.timeutil import from_micros
from skewless.types import from_spark_simple_string, to_spark_ddl

if TYPE_CHECKING:
    from skewless.online.store import OnlineStore

_USER_METADATA = "spark.databricks.delta.commitInfo.userMetadata"
_TAG = "skewless forget"
_MAX_ATTEMPTS = 5
_INTEGERS = frozenset({"int32", "int64"})

T = TypeVar("T")


def child_session(spark: SparkSession, conf: dict[str, str]) -> SparkSession:
    """A child session with `conf` set, for one call: the caller's settings stay as
    they are."""
    child = spark.newSession()
    for key, value in conf.items():
        child.conf.set(key, value)
    return child


def _q(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


def delta_schema(spark: SparkSession, location: str) -> StructType | None:
    """The table's columns, or None when there is no Delta table at `location`."""
    from delta.tables import DeltaTable  # noqa: PLC0415 - needs the JVM

    if not DeltaTable.isDeltaTable(spark, location):
        return None
    return DeltaTable.forPath(spark, location).toDF().schema


def table_commits(spark: SparkSession, location: str, limit: int | None = None) -> list[Commit]:
    """The table's history, newest first (the last `limit` commits when given)."""
    from delta.tables import DeltaTable  # noqa: PLC0415 - needs the JVM

    history = DeltaTable.forPath(spark, location).history(limit)
    rows = history.select(
        "version",
        F.unix_micros("timestamp").alias("us"),
        "operation",
        "operationParameters",
        "operationMetrics",
        "userMetadata",
    ).collect()
    return [
        Commit(
            version=int(r["version"]),
            timestamp_us=int(r["us"]),
            operation=str(r["operation"]),
            parameters=dict(r["operationParameters"] or {}),
            metrics=dict(r["operationMetrics"] or {}),
            user_metadata=r["userMetadata"],
        )
        for r in rows
    ]


def feature_tables(
    spark: SparkSession,
    registry: RegistryReader,
    project: str,
    offline_root: str,
    view: FeatureView,
) -> list[tuple[str, str, StructType]]:
    """(data hash, location, columns) of every Delta feature table of the view: each
    table its recorded materializations wrote, and the table of every definition of it
    the registry holds (a run stopped before it was recorded may have written one)."""
    found: dict[str, tuple[str, str]] = {}
    for run in registry.materializations(view.name):
        found.setdefault(normalize_location(run.delta_path), (run.data_hash, run.delta_path))
    for record in registry.history("feature_view", view.name):
        path = table_path(offline_root, project, view, record.data_hash)
        found.setdefault(normalize_location(path), (record.data_hash, path))
    return [
        (data_hash, path, schema)
        for data_hash, path in found.values()
        if (schema := delta_schema(spark, path)) is not None
    ]


# --- forget ------------------------------------------------------------------------------


def _key_problems(schema: StructType, what: str, keys: EntityKeys) -> list[str]:
    """Why `keys` cannot select rows of a table of `schema`: a join key it lacks, or
    holds as another type (int32 and int64 compare as integers)."""
    fields = {f.name: f for f in schema.fields}
    problems = []
    for column, dtype in zip(keys.columns, keys.dtypes, strict=True):
        field = fields.get(column)
        if field is None:
            problems.append(f"{what} has no column '{column}'")
            continue
        found = from_spark_simple_string(field.dataType.simpleString())
        if dtype is None or found == dtype or {dtype.name, getattr(found, "name", "")} <= _INTEGERS:
            continue
        problems.append(
            f"{what} holds '{column}' as {field.dataType.simpleString()}, not {dtype.name}"
        )
    return problems


def _key_frame(session: SparkSession, keys: EntityKeys, schema: StructType) -> DataFrame:
    fields = {f.name: f for f in schema.fields}
    ddl = ", ".join(
        f"{_q(c)} {fields[c].dataType.simpleString() if d is None else to_spark_ddl(d)}"
        for c, d in zip(keys.columns, keys.dtypes, strict=True)
    )
    return session.createDataFrame(list(keys.rows), ddl)


def _tag(view: str, request: str, keys: int) -> str:
    return json.dumps({"by": _TAG, "view": view, "request": request, "keys": keys}, sort_keys=True)


def _read_tag(text: str | None) -> dict[str, Any] | None:
    """The tag of a request's commit, or None for any other commit."""
    try:
        tag = json.loads(text or "")
    except ValueError:
        return None
    if not isinstance(tag, dict) or tag.get("by") != _TAG:
        return None
    return tag


def _delete_rows(
    spark: SparkSession, location: str, keys: EntityKeys, schema: StructType, tag: str
) -> tuple[int, int]:
    """Delete the rows of `keys` from the table: (rows removed, the table's version
    after). Nothing to delete commits nothing. The files of a table with deletion vectors
    that mark deleted rows are then rewritten without them (REORG ... APPLY (PURGE)), so
    the current version's files no longer hold the rows."""
    from delta.tables import DeltaTable  # noqa: PLC0415 - needs the JVM

    session = child_session(spark, {_USER_METADATA: tag})
    source = F.broadcast(_key_frame(session, keys, schema)).alias("s")
    on = " AND ".join(f"t.{_q(c)} = s.{_q(c)}" for c in keys.columns)
    removed = 0
    for attempt in range(_MAX_ATTEMPTS):
        try:
            table = DeltaTable.forPath(session, location)
            result = table.alias("t").merge(source, on).whenMatchedDelete().execute()
            removed = int(result.collect()[0]["num_deleted_rows"])
            break
        except Exception as exc:
            if attempt == _MAX_ATTEMPTS - 1 or not retryable_conflict(exc):
                raise
            time.sleep(0.2 * (attempt + 1))
    properties = DeltaTable.forPath(session, location).detail().collect()[0]["properties"]
    if (properties or {}).get("delta.enableDeletionVectors") == "true":
        # also when nothing was removed now: a run stopped between its deletion and the
        # purge is completed (a purge with no deletion vector to purge commits nothing)
        session.sql(f"REORG TABLE delta.{_q(location)} APPLY (PURGE)")
    if not removed:
        return 0, current_version(spark, location)
    ours = [c.version for c in table_commits(spark, location) if c.user_metadata == tag]
    return removed, max(ours)


def unrecorded_erasures(
    commits: list[Commit], record: TrainingSetRecord, view: str
) -> list[ErasureRecord]:
    """The deletions of this view's requests from the saved set's table that its record
    lacks (a run stopped between the deletion and recording it), oldest first."""
    recorded = {e.delta_version for e in record.erasures}
    requests: dict[str, list[tuple[Commit, dict[str, Any]]]] = {}
    for commit in commits:
        tag = _read_tag(commit.user_metadata)
        if tag is None or tag.get("view") != view or commit.version <= record.delta_version:
            continue
        requests.setdefault(str(tag.get("request")), []).append((commit, tag))
    found = []
    for tagged in requests.values():
        if {c.version for c, _ in tagged} & recorded:
            continue
        rows = sum(int(c.metrics.get("numTargetRowsDeleted", "0")) for c, _ in tagged)
        last, tag = max(tagged, key=lambda item: item[0].version)
        if rows:
            found.append(
                ErasureRecord(
                    view=view,
                    keys=int(tag.get("keys", 0)),
                    rows_removed=rows,
                    delta_version=last.version,
                    erased_at=from_micros(last.timestamp_us),
                )
            )
    return sorted(found, key=lambda e: e.delta_version)


@dataclass
class _Steps:
    """The steps of one request that ran; a failing step ends the request with an
    ErasureIncompleteError naming them."""

    view: str
    done: list[str]

    def run(self, step: str, action: Callable[[], T]) -> T:
        try:
            return action()
        except Exception as exc:
            lines = str(exc).strip().splitlines()
            detail = clip(lines[0] if lines else type(exc).__name__)
            raise ErasureIncompleteError(self.view, self.done, step, detail) from exc


def forget(
    keys: KeysInput,
    *,
    view: FeatureView,
    registry: Registry,
    spark: SparkSession,
    project: str,
    offline_root: str,
    online: OnlineStore | None,
) -> ErasureReport:
    """Delete the entities `keys` names (a dataframe, or a CSV or Parquet file, of the
    view's join keys) from every Delta feature table of the view, from the online store
    (when given) and from every saved training set whose manifest has the view, and
    record an erasure on each saved set that lost rows. The view's source is not
    touched. See the module's docstring for the order and the guarantees."""
    wanted = read_keys(view, keys)
    tables = feature_tables(spark, registry, project, offline_root, view)
    sets = [
        (record, delta_schema(spark, record.location))
        for record in registry.training_sets()
        if view.name in saved_manifest(record).views
    ]
    problems = [
        p for _, path, s in tables for p in _key_problems(s, f"feature table {path}", wanted)
    ]
    for record, schema in sets:
        if schema is not None:
            what = f"training set '{record.name}' ({record.location})"
            problems += _key_problems(schema, what, wanted)
    if problems:
        raise ErasureError(view.name, "; ".join(problems))
    online_keys = [entity_key(project, view.name, values) for values in wanted.rows]
    if online is not None:
        online.read(online_keys[:1])  # the store answers, before anything is deleted

    tag = _tag(view.name, uuid.uuid4().hex, len(wanted.rows))
    steps = _Steps(view.name, [])

    offline: list[TableErasure] = []
    for data_hash, path, schema in tables:
        name = f"feature table {data_hash}"
        removed, version = steps.run(name, partial(_delete_rows, spark, path, wanted, schema, tag))
        offline.append(TableErasure("feature table", data_hash, path, removed, version))
        steps.done.append(f"{name}: {removed} row(s) removed (Delta version {version})")

    if online is None:
        why = "no online store was given"
        held = OnlineErasure(len(online_keys), 0, why if view.online else f"{why} (offline view)")
        steps.done.append(f"online store: skipped ({held.skipped})")
    else:
        store = online
        removed = steps.run("the online store", lambda: store.delete(online_keys))
        held = OnlineErasure(len(online_keys), removed)
        steps.done.append(f"online store: {removed} of {len(online_keys)} key(s) removed")

    saved: list[TableErasure] = []
    marked: list[str] = []
    for record, schema in sets:
        name = f"training set '{record.name}'"
        if schema is None:
            saved.append(TableErasure("training set", record.name, record.location, 0, -1))
            steps.done.append(f"{name}: no Delta table at {record.location}")
            continue
        late = steps.run(name, partial(_record_late, spark, registry, record, view.name))
        if late:
            marked.append(record.name)
            steps.done.append(f"{name}: recorded the erasure of an earlier, interrupted run")
        erase = partial(_erase_saved, spark, registry, record, keys=wanted, schema=schema, tag=tag)
        removed, version = steps.run(name, erase)
        saved.append(TableErasure("training set", record.name, record.location, removed, version))
        if removed and record.name not in marked:
            marked.append(record.name)
        recorded = ", erasure recorded" if removed else ""
        steps.done.append(f"{name}: {removed} row(s) removed (Delta version {version}){recorded}")

    return ErasureReport(
        view=view.name,
        source=f"{type(view.source).__name__} {view.source.path}",
        keys_given=wanted.given,
        keys=len(wanted.rows),
        feature_tables=tuple(offline),
        online=held,
        training_sets=tuple(saved),
        marked=tuple(marked),
        steps=tuple(steps.done),
    )


def _record_late(
    spark: SparkSession, registry: Registry, record: TrainingSetRecord, view: str
) -> int:
    """Record the deletions an earlier run of this view's requests made on the set and
    did not record; returns how many."""
    late = unrecorded_erasures(table_commits(spark, record.location), record, view)
    for erasure in late:
        registry.record_erasure(record.name, erasure)
    return len(late)


def _erase_saved(
    spark: SparkSession,
    registry: Registry,
    record: TrainingSetRecord,
    *,
    keys: EntityKeys,
    schema: StructType,
    tag: str,
) -> tuple[int, int]:
    removed, version = _delete_rows(spark, record.location, keys, schema, tag)
    if removed:
        erasure = ErasureRecord(
            view=keys.view,
            keys=len(keys.rows),
            rows_removed=removed,
            delta_version=version,
            erased_at=datetime.now(UTC),
        )
        registry.record_erasure(record.name, erasure)
    return removed, version
