"""Erasure and guarded VACUUM with real Spark, Delta and redis-server: a request's
entities leave the feature tables, the online store and the saved training sets that use
the view (each marked erased); a rerun removes nothing; a request stopped part-way is
completed by running it again; a vacuum that would break a saved set is refused unless
forced, and a vacuum after an erasure leaves the old versions unreadable."""

from __future__ import annotations

import sqlite3
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import redis
from delta.tables import DeltaTable
from pyspark.sql import SparkSession
from typer.testing import CliRunner

from skewless import FeatureStore
from skewless.batch.erasure import forget
from skewless.batch.vacuum import vacuum
from skewless.cli.main import app
from skewless.config import resolve_path
from skewless.errors import (
    ErasureIncompleteError,
    ErasureKeysError,
    VacuumRefusedError,
    VacuumTargetError,
)
from skewless.offline.erasure import ErasureReport, VacuumReport, erasable_view, read_keys
from skewless.offline.manifest import (
    CodeState,
    DefinitionPin,
    Environment,
    InputPin,
    Manifest,
    RowsDigest,
    SavedAs,
)
from skewless.online.codec import entity_key
from skewless.online.redis import RedisOnlineStore
from skewless.registry import SqliteRegistry, TrainingSetRecord
from tests.integration.test_materialize import at, make_repo, table_rows

SET_COLUMNS = "driver_id BIGINT, event_timestamp TIMESTAMP, trips BIGINT"


def manifest(
    project: str, name: str, location: str, views: list[str], inputs: tuple[InputPin, ...] = ()
) -> dict[str, Any]:
    """A hand-made manifest of a saved set over `views`, pinning `inputs`."""
    columns = (("driver_id", "bigint"), ("event_timestamp", "timestamp"))
    return Manifest(
        project=project,
        created_at=datetime.now(UTC),
        registry_version=1,
        features=tuple(f"{v}:trips" for v in views),
        timestamp_column="event_timestamp",
        definitions=tuple(
            DefinitionPin(
                kind="feature_view",
                name=v,
                version=1,
                data_version=1,
                data_hash="0" * 16,
                metadata_hash="0" * 16,
                registry_version=1,
            )
            for v in views
        ),
        inputs=inputs,
        entity=RowsDigest(columns=columns, rows=0, digest="-"),
        result=RowsDigest(columns=(*columns, ("trips", "bigint")), rows=0, digest="-"),
        code=CodeState(),
        environment=Environment(python="3.11", skewless="test"),
        saved_as=SavedAs(name=name, location=location, delta_version=0),
    ).model_dump(mode="json")


def save_set(
    store: FeatureStore,
    spark: SparkSession,
    name: str,
    drivers: list[int],
    views: list[str],
    *,
    inputs: tuple[InputPin, ...] = (),
    deletion_vectors: bool = False,
) -> str:
    """A saved training set built by hand: a Delta table of (driver_id, event_timestamp,
    trips) rows, one per driver given, and its record in the registry."""
    location = str(store.repo_path / "data" / "training_sets" / name)
    rows = [(d, at(i).replace(tzinfo=None), 10 * d + i) for i, d in enumerate(drivers)]
    writer = spark.createDataFrame(rows, SET_COLUMNS).coalesce(1).write.format("delta")
    if deletion_vectors:
        writer = writer.option("delta.enableDeletionVectors", "true")
    writer.save(location)
    store.registry.record_training_set(
        TrainingSetRecord(
            name=name,
            location=location,
            delta_version=0,
            manifest=manifest(store.project, name, location, views, inputs),
            created_at=datetime.now(UTC),
        )
    )
    return location


def drivers_in(spark: SparkSession, location: str, version: int | None = None) -> list[int]:
    reader = spark.read.format("delta")
    if version is not None:
        reader = reader.option("versionAsOf", version)
    return sorted(r["driver_id"] for r in reader.load(location).select("driver_id").collect())


def version_of(spark: SparkSession, location: str) -> int:
    return int(DeltaTable.forPath(spark, location).history(1).collect()[0]["version"])


def offline_root(store: FeatureStore) -> str:
    return resolve_path(store.repo_path, store.config.offline_store.path)


def run_forget(
    store: FeatureStore, spark: SparkSession, keys: Any, redis_url: str, **kw: Any
) -> ErasureReport:
    return forget(
        keys,
        view=erasable_view(store.registry, "stats"),
        registry=kw.get("registry", store.registry),
        spark=spark,
        project=store.project,
        offline_root=offline_root(store),
        online=RedisOnlineStore.from_url(redis_url),
    )


def run_vacuum(
    store: FeatureStore, spark: SparkSession, target: str, hours: float, force: bool = False
) -> VacuumReport:
    return vacuum(
        target,
        registry=store.registry,
        spark=spark,
        project=store.project,
        offline_root=offline_root(store),
        retain_hours=hours,
        force=force,
    )


def cli(repo: Path, *args: str, stdin: str | None = None) -> Any:
    return CliRunner().invoke(
        app, [*args, "--repo", str(repo)], input=stdin, env={"COLUMNS": "200"}
    )


@pytest.fixture
def store(tmp_path: Path, redis_url: str, spark: SparkSession) -> FeatureStore:
    return make_repo(tmp_path / "repo", redis_url, f"e_{uuid.uuid4().hex[:8]}")


def test_forget_erases_tables_online_and_saved_sets_then_a_rerun_removes_nothing(
    store: FeatureStore, spark: SparkSession, redis_url: str, tmp_path: Path
) -> None:
    (run,) = store.materialize(at(0), at(6))  # drivers 1 (2 rows), 2 (2 rows), 3 (1 row)
    with_stats = save_set(
        store, spark, "with_stats", [1, 2, 3, 1, 4], ["stats"], deletion_vectors=True
    )
    other = save_set(store, spark, "other_view", [1, 2], ["other"])
    keys = tmp_path / "keys.csv"
    keys.write_text("driver_id\n1\n2\n1\n")  # a duplicate is allowed

    report = run_forget(store, spark, keys, redis_url)

    assert (report.keys_given, report.keys) == (3, 2)
    (table,) = report.feature_tables
    assert (table.location, table.rows_removed) == (run.delta_path, 4)
    assert table.delta_version == run.delta_version + 1 == version_of(spark, run.delta_path)
    assert [r[0] for r in table_rows(spark, run.delta_path)] == [3]
    assert len(table_rows(spark, run.delta_path, run.delta_version)) == 5  # until vacuumed

    client = redis.Redis.from_url(redis_url)
    online = [client.get(entity_key(store.project, "stats", (d,))) for d in (1, 2, 3)]
    assert online[:2] == [None, None] and online[2] is not None
    assert (report.online.keys, report.online.removed, report.online.skipped) == (2, 2, None)

    (saved,) = report.training_sets  # "other_view" does not use the view
    assert (saved.name, saved.rows_removed) == ("with_stats", 3)
    assert drivers_in(spark, with_stats) == [3, 4]
    assert drivers_in(spark, other) == [1, 2]
    # deletion vectors purged: the current version's files no longer hold the rows
    files = spark.read.format("delta").load(with_stats).inputFiles()
    assert sorted(
        d for f in files for d in pq.read_table(f.removeprefix("file:"))["driver_id"].to_pylist()
    ) == [3, 4]
    record = store.registry.training_set("with_stats")
    assert record is not None
    (erasure,) = record.erasures
    assert (erasure.view, erasure.keys, erasure.rows_removed) == ("stats", 2, 3)
    assert erasure.delta_version == saved.delta_version == version_of(spark, with_stats)
    assert store.registry.training_set("other_view").erasures == ()  # type: ignore[union-attr]
    assert report.marked == ("with_stats",)
    notes = " ".join(report.notes())
    assert "(FileSource data/stats) was not changed" in notes
    assert "skewless vacuum stats --retain-hours 0" in notes
    assert "skewless vacuum with_stats --retain-hours 0" in notes

    again = run_forget(store, spark, pd.DataFrame({"driver_id": [1, 2]}), redis_url)
    assert again.rows_removed == 0 and again.online.removed == 0 and again.marked == ()
    assert [t.delta_version for t in again.feature_tables] == [table.delta_version]
    assert [t.delta_version for t in again.training_sets] == [saved.delta_version]
    assert len(store.registry.training_set("with_stats").erasures) == 1  # type: ignore[union-attr]

    # the erased set pins nothing: both vacuums may delete every old file
    gone = run_vacuum(store, spark, "stats", 0)
    assert gone.kind == "feature view" and gone.broken_sets == ()
    assert gone.tables[0].files_deleted
    with pytest.raises(Exception, match="FILE_NOT_EXIST|FileNotFound|does not exist"):
        table_rows(spark, run.delta_path, run.delta_version)
    assert [r[0] for r in table_rows(spark, run.delta_path)] == [3]
    run_vacuum(store, spark, "with_stats", 0)
    with pytest.raises(Exception, match="FILE_NOT_EXIST|FileNotFound|does not exist"):
        drivers_in(spark, with_stats, 0)
    assert spark.conf.get("spark.databricks.delta.retentionDurationCheck.enabled", None) in (
        None,
        "true",
    )


def test_forget_stopped_before_recording_an_erasure_is_completed_by_a_rerun(
    store: FeatureStore, spark: SparkSession, redis_url: str
) -> None:
    location = save_set(store, spark, "with_stats", [1, 2, 1], ["stats"])
    path = Path(resolve_path(store.repo_path, store.config.registry.path))
    impatient = SqliteRegistry(path, store.project, timeout_s=0.2)
    writer = sqlite3.connect(path, isolation_level=None)
    writer.execute("BEGIN IMMEDIATE")  # another writer holds the registry
    try:
        with pytest.raises(ErasureIncompleteError) as stopped:
            run_forget(
                store, spark, pd.DataFrame({"driver_id": [1]}), redis_url, registry=impatient
            )
    finally:
        writer.execute("ROLLBACK")
        writer.close()
    assert stopped.value.step == "training set 'with_stats'"
    assert stopped.value.completed[-1].startswith("online store: ")
    assert "Run the same request again" in str(stopped.value)
    assert drivers_in(spark, location) == [2]  # deleted, but not recorded
    assert store.registry.training_set("with_stats").erasures == ()  # type: ignore[union-attr]

    report = run_forget(store, spark, pd.DataFrame({"driver_id": [1]}), redis_url)

    assert report.marked == ("with_stats",) and report.rows_removed == 0
    assert any("earlier, interrupted run" in step for step in report.steps)
    (erasure,) = store.registry.training_set("with_stats").erasures  # type: ignore[union-attr]
    assert (erasure.rows_removed, erasure.delta_version, erasure.keys) == (2, 1, 1)


def test_read_keys_names_the_file_and_the_problem(store: FeatureStore, tmp_path: Path) -> None:
    view = erasable_view(store.registry, "stats")

    def refused(name: str, content: str | pa.Table) -> ErasureKeysError:
        path = tmp_path / name
        if isinstance(content, str):
            path.write_text(content)
        else:
            pq.write_table(content, path)
        with pytest.raises(ErasureKeysError) as info:
            read_keys(view, path)
        assert str(path) in str(info.value) and "nothing was deleted" in str(info.value)
        return info.value

    columns = refused("cols.csv", "driver,extra\n1,2\n")
    assert (columns.missing, columns.extra) == (("driver_id",), ("driver", "extra"))
    bad = refused("bad.csv", "driver_id\n1\nabc\n\n2.5\n")
    assert "join key 'driver_id' (int64): 3 bad value(s), the first at line 3: 'abc'" in str(bad)
    typed = refused("typed.parquet", pa.table({"driver_id": ["1"]}))
    assert "row 0: '1' is a str, not an integer" in str(typed)
    assert "holds no keys" in str(refused("empty.csv", "driver_id\n"))
    assert "neither a .csv nor a .parquet" in str(refused("keys.txt", "driver_id\n1\n"))
    with pytest.raises(ErasureKeysError, match="no such file"):
        read_keys(view, tmp_path / "nowhere.csv")
    with pytest.raises(ErasureKeysError, match="the first at row 1: is empty"):
        read_keys(view, pd.DataFrame({"driver_id": [1, None]}))
    with pytest.raises(ErasureKeysError, match="1.5 is a float, not an integer"):
        read_keys(view, pd.DataFrame({"driver_id": [1.5]}))

    pq.write_table(pa.table({"driver_id": pa.array([5, 5, 7], pa.int32())}), tmp_path / "k.pq")
    keys = read_keys(view, tmp_path / "k.pq")
    assert (keys.rows, keys.given, keys.columns) == (((5,), (7,)), 3, ("driver_id",))

    shown = cli(store.repo_path, "forget", "stats", "--keys", str(tmp_path / "bad.csv"), "--yes")
    assert shown.exit_code == 1 and "line 3" in shown.output
    aborted = cli(store.repo_path, "forget", "stats", "--keys", str(tmp_path / "k.pq"), stdin="n\n")
    assert aborted.exit_code == 1 and "Delete 2 entities of feature view 'stats'" in aborted.output


def test_vacuum_refuses_to_break_a_pinned_version_unless_forced(
    store: FeatureStore, spark: SparkSession
) -> None:
    source = str(store.repo_path / "data" / "delta_source")
    spark.createDataFrame([(1, 10)], "driver_id BIGINT, trips BIGINT").write.format("delta").save(
        source
    )
    pin = InputPin(view="stats", format="delta", path=source, location=source, delta_version=0)
    save_set(store, spark, "pinned", [1], ["stats"], inputs=(pin,))
    spark.createDataFrame([(2, 20)], "driver_id BIGINT, trips BIGINT").write.format("delta").mode(
        "overwrite"
    ).save(source)  # version 1 removes the files version 0 reads

    with pytest.raises(VacuumRefusedError) as refused:
        run_vacuum(store, spark, source, 0)
    assert refused.value.pins == {"pinned": 0}
    assert "'pinned' (version 0)" in str(refused.value)
    shown = cli(store.repo_path, "vacuum", source, "--retain-hours", "0")
    assert shown.exit_code == 1 and "'pinned' (version 0)" in shown.output
    assert drivers_in(spark, source, 0) == [1]

    # Delta's default retention keeps the files removed in the last 168 hours: allowed
    kept = run_vacuum(store, spark, source, 168)
    assert kept.broken_sets == () and kept.tables[0].files_deleted == 0
    assert drivers_in(spark, source, 0) == [1]

    forced = cli(store.repo_path, "vacuum", source, "--retain-hours", "0", "--force")
    assert forced.exit_code == 0, forced.output
    assert "pinned" in forced.output and "can no longer be reproduced" in forced.output
    with pytest.raises(Exception, match="FILE_NOT_EXIST|FileNotFound|does not exist"):
        drivers_in(spark, source, 0)
    assert drivers_in(spark, source) == [2]

    with pytest.raises(VacuumTargetError, match="Did you mean 'stats'"):
        run_vacuum(store, spark, "stat", 0)
