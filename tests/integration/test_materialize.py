"""Materialization with real Spark, Delta and redis-server: versioned Delta tables,
idempotent reruns, ordered online writes, late arrivals, concurrency, kill -9 + rerun."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import redis
from delta.tables import DeltaTable
from pyspark.sql import SparkSession

from skewless import FeatureStore
from skewless.batch import feature_table
from skewless.batch.feature_table import changes
from skewless.batch.materialize import computed_once
from skewless.serving.response import FeatureStatus
from skewless.timeutil import utc_micros

T0 = datetime(2024, 5, 1, tzinfo=UTC)
SCHEMA = pa.schema(
    [
        ("driver_id", pa.int64()),
        ("ts", pa.timestamp("us", tz="UTC")),
        ("created", pa.timestamp("us", tz="UTC")),
        ("trips", pa.int64()),
        ("rating", pa.float64()),
    ]
)

DEFS = """
from datetime import timedelta
from skewless import *

driver = Entity("driver", join_keys=["driver_id"])
stats = FeatureView(
    "stats",
    entities=[driver],
    schema=[Field("driver_id", Int64), Field("trips", Int64), Field("rating", Float64)],
    source=FileSource("data/stats", timestamp_field="ts", created_timestamp_column="created"),
    ttl=timedelta(days=3650),
)
"""


def at(hours: float) -> datetime:
    return T0 + timedelta(hours=hours)


def row(driver: int, hours: float, trips: int, created: float | None = None) -> dict[str, Any]:
    return {
        "driver_id": driver,
        "ts": at(hours),
        "created": at(hours if created is None else created),
        "trips": trips,
        "rating": trips / 10,
    }


BASE_ROWS = [
    row(1, 0, 10),
    row(1, 1, 11),
    row(1, 1, 12, created=1.5),  # a correction of hour 1: it must win
    row(2, 0, 20),
    row(2, 2, 22),
    row(3, 5, 35),  # after the first interval
]


def make_repo(root: Path, redis_url: str, project: str, online_extra: str = "") -> FeatureStore:
    (root / "data" / "stats").mkdir(parents=True)
    (root / "feature_store.yaml").write_text(
        f"project: {project}\nonline_store:\n  type: redis\n  url: {redis_url}\n{online_extra}"
    )
    (root / "defs.py").write_text(textwrap.dedent(DEFS))
    add_file(root, BASE_ROWS, "part-0")
    store = FeatureStore(root)
    store.apply()
    return store


def add_file(root: Path, rows: list[dict[str, Any]], name: str) -> None:
    pq.write_table(
        pa.Table.from_pylist(rows, schema=SCHEMA), root / "data" / "stats" / f"{name}.parquet"
    )


def table_rows(spark: SparkSession, path: str, version: int | None = None) -> list[tuple[Any, ...]]:
    reader = spark.read.format("delta")
    if version is not None:
        reader = reader.option("versionAsOf", version)
    df = reader.load(path)
    return sorted(
        tuple(r) for r in df.select("driver_id", "ts", "created", "trips", "rating").collect()
    )


def online(store: FeatureStore, drivers: list[int]) -> list[Any]:
    resp = store.get_online_features(
        ["stats:trips", "stats:rating"], [{"driver_id": d} for d in drivers], request_time=at(100)
    )
    return list(
        zip(
            resp.values["trips"],
            resp.statuses["trips"],
            resp.event_timestamps["trips"],
            strict=True,
        )
    )


def redis_dump(url: str, project: str) -> dict[bytes, bytes]:
    client = redis.Redis.from_url(url)
    keys = sorted(client.scan_iter(match=f"sk1|{project}|*".encode()))
    return dict(zip(keys, client.mget(keys), strict=True))


def by_entity(dump: dict[bytes, bytes]) -> dict[bytes, bytes]:
    """A dump keyed without the project, to compare two projects' contents."""
    return {k.split(b"|", 2)[2]: v for k, v in dump.items()}


@pytest.fixture
def repo(tmp_path: Path, redis_url: str, spark: SparkSession) -> FeatureStore:
    return make_repo(tmp_path / "repo", redis_url, f"m_{uuid.uuid4().hex[:8]}")


def test_materialize_writes_delta_and_redis_and_records_the_run(
    repo: FeatureStore, spark: SparkSession
) -> None:
    (run,) = repo.materialize(at(0), at(3))
    assert (run.rows_read, run.rows_written_offline) == (5, 4)  # hour-1 rows collapse to one
    assert (run.keys_offered_online, run.keys_written_online) == (2, 2)
    assert run.delta_version == 0
    rows = table_rows(spark, run.delta_path)
    assert [(r[0], r[3]) for r in rows] == [(1, 10), (1, 12), (2, 20), (2, 22)]
    assert online(repo, [1, 2, 3]) == [
        (12, FeatureStatus.PRESENT, at(1)),
        (22, FeatureStatus.PRESENT, at(2)),
        (None, FeatureStatus.NOT_FOUND, None),
    ]
    assert repo.registry.materializations("stats") == [run]


def test_materialize_rerun_changes_nothing_and_time_travel_works(
    repo: FeatureStore, spark: SparkSession, redis_url: str
) -> None:
    (first,) = repo.materialize(at(0), at(3))
    before_online = redis_dump(redis_url, repo.project)
    (again,) = repo.materialize(at(0), at(3))
    assert again.delta_version == first.delta_version  # nothing changed, nothing committed
    assert again.rows_written_offline == 0
    assert again.keys_written_online == 0
    assert table_rows(spark, again.delta_path) == table_rows(
        spark, first.delta_path, first.delta_version
    )
    assert redis_dump(redis_url, repo.project) == before_online
    (later,) = repo.materialize(at(3), at(6))
    assert [r[0] for r in table_rows(spark, later.delta_path)] == [1, 1, 2, 2, 3]
    assert [r[0] for r in table_rows(spark, later.delta_path, first.delta_version)] == [1, 1, 2, 2]


def test_materialize_replaying_an_older_interval_changes_nothing_online(
    repo: FeatureStore, redis_url: str
) -> None:
    repo.materialize(at(0), at(6))
    newest = redis_dump(redis_url, repo.project)
    (replay,) = repo.materialize(at(0), at(0.5))
    assert replay.keys_offered_online == 2 and replay.keys_written_online == 0
    assert redis_dump(redis_url, repo.project) == newest


@pytest.mark.parametrize("semi_join_max_rows", [0, 1_000_000], ids=["wide", "narrow"])
def test_materialize_correction_arriving_later_wins_offline_and_online(
    repo: FeatureStore,
    spark: SparkSession,
    monkeypatch: pytest.MonkeyPatch,
    semi_join_max_rows: int,
) -> None:
    monkeypatch.setattr(feature_table, "SEMI_JOIN_MAX_ROWS", semi_join_max_rows)
    (run,) = repo.materialize(at(0), at(3))
    add_file(repo.repo_path, [row(2, 2, 99, created=4)], "part-1")
    (fix,) = repo.materialize(at(0), at(3))
    assert fix.rows_written_offline == 1
    assert online(repo, [2]) == [(99, FeatureStatus.PRESENT, at(2))]
    assert [r[3] for r in table_rows(spark, run.delta_path) if r[0] == 2] == [20, 99]


def test_changes_narrowed_by_broadcast_keys_equal_the_plain_join(
    repo: FeatureStore, spark: SparkSession
) -> None:
    """Both ways of finding the incoming rows that change the table give the same rows:
    a new key, a new event time of a stored key and a higher-ranked row for a stored
    (key, event time) are in; a lower-ranked or identical one is out. The narrow way
    broadcasts the incoming keys into a semi join instead of shuffling the table."""
    (view,) = repo.list_feature_views()
    columns = ["driver_id", "ts", "created", "trips", "rating"]
    stored = [row(1, 0, 10), row(1, 1, 12, created=1.5), row(2, 0, 20)]
    incoming = [
        row(1, 0, 10),  # identical: out
        row(1, 1, 11),  # same key and time, created earlier: out
        row(2, 0, 21),  # same created time, higher values: in
        row(1, 2, 13),  # a new event time of a stored key: in
        row(5, 0, 50),  # a new key: in
    ]

    def frame(rows: list[dict[str, Any]]) -> Any:
        return spark.createDataFrame(pa.Table.from_pylist(rows, schema=SCHEMA).to_pandas())

    table, source = frame(stored), frame(incoming)
    wide = changes(source, table, view)
    narrow = changes(source, table, view, broadcast_keys=True)
    want = sorted(tuple(r) for r in frame([incoming[i] for i in (2, 3, 4)]).collect())
    assert sorted(tuple(r) for r in wide.select(columns).collect()) == want
    assert sorted(tuple(r) for r in narrow.select(columns).collect()) == want
    plan = narrow._jdf.queryExecution().executedPlan().toString()
    assert "LeftSemi" in plan and "BroadcastExchange" in plan
    assert "LeftSemi" not in wide._jdf.queryExecution().executedPlan().toString()


def test_materialize_correction_after_an_idempotent_rerun_is_not_served_from_cache(
    repo: FeatureStore, spark: SparkSession
) -> None:
    # A rerun that changes nothing must not leave a cached plan behind that a later run
    # over the same (now larger) source folder would be answered from.
    repo.materialize(at(0), at(3))
    (again,) = repo.materialize(at(0), at(3))
    assert again.rows_written_offline == 0
    add_file(repo.repo_path, [row(2, 2, 99, created=4)], "part-1")
    (fix,) = repo.materialize(at(0), at(3))
    assert fix.rows_written_offline == 1
    assert online(repo, [2]) == [(99, FeatureStatus.PRESENT, at(2))]
    assert [r[3] for r in table_rows(spark, fix.delta_path) if r[0] == 2] == [20, 99]


def test_materialize_incremental_picks_up_late_rows(
    repo: FeatureStore, spark: SparkSession
) -> None:
    (first,) = repo.materialize_incremental(at(3))
    assert first.kind == "incremental" and first.rows_read == 5
    # A late file: an old event time for a new driver, and an old correction for driver 1.
    time.sleep(0.01)
    add_file(repo.repo_path, [row(4, 0.5, 40), row(1, 1, 13, created=2)], "part-late")
    (second,) = repo.materialize_incremental(at(3))
    assert second.rows_read >= 2
    assert online(repo, [4, 1]) == [
        (40, FeatureStatus.PRESENT, at(0.5)),
        (13, FeatureStatus.PRESENT, at(1)),
    ]
    rows = table_rows(spark, second.delta_path)
    assert (4, 40) in [(r[0], r[3]) for r in rows]
    # Driver 3's row (hour 5) was past the first run's end: a later run still takes it.
    (third,) = repo.materialize_incremental(at(6))
    assert online(repo, [3]) == [(35, FeatureStatus.PRESENT, at(5))]
    assert third.rows_read >= 1


def test_materialize_concurrent_overlapping_runs_equal_sequential(
    tmp_path: Path, redis_url: str, spark: SparkSession
) -> None:
    seq = make_repo(tmp_path / "seq", redis_url, "conc_seq")
    seq.materialize(at(0), at(3))
    seq.materialize(at(1), at(6))
    par = make_repo(tmp_path / "par", redis_url, "conc_par")
    errors: list[BaseException] = []

    def run(start: float, end: float) -> None:
        try:
            par.materialize(at(start), at(end))
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=a) for a in ((0, 3), (1, 6))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [], [str(e)[:2000] for e in errors]
    seq_path = seq.registry.materializations()[-1].delta_path
    par_path = par.registry.materializations()[-1].delta_path
    assert table_rows(spark, par_path) == table_rows(spark, seq_path)
    assert by_entity(redis_dump(redis_url, "conc_par")) == by_entity(
        redis_dump(redis_url, "conc_seq")
    )


KILLED_CHILD = """
import sys
from datetime import datetime, timezone
from skewless import FeatureStore
store = FeatureStore(sys.argv[1])
print("STARTED", flush=True)
day = datetime(2024, 5, 1, tzinfo=timezone.utc)
store.materialize(day, day.replace(day=2))
print("DONE", flush=True)
"""


def test_materialize_killed_half_way_then_rerun_equals_a_clean_run(
    tmp_path: Path, redis_url: str, spark: SparkSession
) -> None:
    many = [row(d, h, d * 100 + h) for d in range(200) for h in range(0, 24, 3)]
    clean = make_repo(tmp_path / "clean", redis_url, "kill_clean")
    add_file(clean.repo_path, many, "part-many")
    clean.materialize(at(0), at(24))

    killed = make_repo(tmp_path / "killed", redis_url, "kill_rerun")
    add_file(killed.repo_path, many, "part-many")
    proc = subprocess.Popen(
        [sys.executable, "-c", KILLED_CHILD, str(killed.repo_path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "STARTED"
    # Kill it the moment the Delta commit lands: offline written, online not (or partly).
    deadline = time.monotonic() + 180
    commits: list[Path] = []
    while not commits and time.monotonic() < deadline and proc.poll() is None:
        commits = list((killed.repo_path / "data").glob("offline/**/_delta_log/*.json"))
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(30)
    assert commits, "the child never committed to Delta"
    assert killed.registry.materializations() == []  # the run was not recorded
    killed.materialize(at(0), at(24))

    clean_path = clean.registry.materializations()[-1].delta_path
    killed_path = killed.registry.materializations()[-1].delta_path
    assert table_rows(spark, killed_path) == table_rows(spark, clean_path)
    assert by_entity(redis_dump(redis_url, "kill_rerun")) == by_entity(
        redis_dump(redis_url, "kill_clean")
    )


def test_materialize_rerun_commits_nothing(repo: FeatureStore, spark: SparkSession) -> None:
    from delta.tables import DeltaTable  # noqa: PLC0415 - needs the JVM

    (first,) = repo.materialize(at(0), at(3))
    (again,) = repo.materialize(at(0), at(3))
    last = DeltaTable.forPath(spark, again.delta_path).history(1).collect()[0]
    assert (last["version"], last["operation"]) == (first.delta_version, "WRITE")
    assert again.delta_version == first.delta_version


def _scans(frame: Any) -> list[dict[str, int]]:
    """The metrics of each file scan of `frame`'s last execution, in plan order."""
    out: list[dict[str, int]] = []

    def walk(node: Any) -> None:
        if node.nodeName().startswith("Scan "):
            metrics = node.metrics()
            names = metrics.keysIterator()
            values = {}
            while names.hasNext():
                name = names.next()
                values[name] = int(metrics.apply(name).value())
            out.append(values)
        children = node.children().iterator()
        while children.hasNext():
            walk(children.next())

    plan = frame._jdf.queryExecution().executedPlan()
    if plan.nodeName() == "AdaptiveSparkPlan":
        plan = plan.executedPlan()
    walk(plan)
    return out


def _age(root: Path, name: str, seconds_ago: float) -> None:
    """Give a source file a modification time in the past (as a file that arrived then)."""
    path = root / "data" / "stats" / f"{name}.parquet"
    then = time.time() - seconds_ago
    os.utime(path, (then, then))


def test_materialize_incremental_after_a_run_with_an_earlier_end_loses_no_row(
    repo: FeatureStore,
) -> None:
    """A file read by a run that ended before some of its rows: those rows are taken by
    the next incremental run, even though that file is not listed again."""
    _age(repo.repo_path, "part-0", 3600)
    repo.materialize_incremental(at(10))
    add_file(repo.repo_path, [row(7, 1, 70), row(8, 8, 80)], "part-late")
    _age(repo.repo_path, "part-late", 1800)
    (short,) = repo.materialize_incremental(at(5))  # ends before the new file's last row
    assert short.rows_read == 1 and online(repo, [7, 8])[1][0] is None
    assert "part-late.parquet" in {path.rsplit("/", 1)[-1] for path, _, _ in short.seen_files}
    (next_run,) = repo.materialize_incremental(at(20))
    assert next_run.rows_read == 1  # driver 8's row at 8 h, not the file's row at 1 h again
    assert [v for v, _, _ in online(repo, [7, 8])] == [70, 80]


def test_materialize_incremental_rereads_a_file_rewritten_with_its_old_time(
    repo: FeatureStore,
) -> None:
    """A corrected file written back with the modification time it had (cp -p, rsync -a,
    a coarse clock) is still read again: a file is known by its time and its size."""
    _age(repo.repo_path, "part-0", 3600)
    (first,) = repo.materialize_incremental(at(6))
    assert first.seen_files
    path = repo.repo_path / "data" / "stats" / "part-0.parquet"
    stat = path.stat()
    add_file(repo.repo_path, [*BASE_ROWS, row(1, 1, 14, created=3)], "part-0")
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert path.stat().st_mtime_ns == stat.st_mtime_ns and path.stat().st_size != stat.st_size
    (second,) = repo.materialize_incremental(at(6))
    assert second.rows_read == 7
    assert online(repo, [1])[0][0] == 14  # the correction of hour 1 (created later) wins


def test_materialize_incremental_with_nothing_new_reads_no_old_rows_and_commits_nothing(
    repo: FeatureStore, spark: SparkSession
) -> None:
    """Files the last run read are not listed again (not even within the overlap kept for
    files written while a run lists them), and their rows past the last run's end are
    found by the files' statistics, without reading rows."""
    from skewless.batch.materialize import Interval, interval_rows  # noqa: PLC0415

    old = time.time() - 86_400
    for part in (repo.repo_path / "data" / "stats").iterdir():
        os.utime(part, (old, old))
    (first,) = repo.materialize_incremental(at(6))
    assert first.rows_read == 6
    assert [path.rsplit("/", 1)[-1] for path, _, _ in first.seen_files] == ["part-0.parquet"]
    (again,) = repo.materialize_incremental(at(8))
    assert (again.rows_read, again.rows_written_offline, again.keys_offered_online) == (0, 0, 0)
    assert again.delta_version == first.delta_version  # no commit
    assert again.arrival_watermark_us == first.arrival_watermark_us
    (view,) = repo.list_feature_views()
    interval = Interval(
        end_us=utc_micros(at(8)),
        arrived_after_us=first.arrival_watermark_us,
        previous_end_us=utc_micros(at(6)),
        seen_files=first.seen_files,
    )
    rows = interval_rows(spark, view, repo.repo_path, interval)
    assert rows.collect() == []
    new, left = _scans(rows)
    assert new["numFiles"] == 0  # no file arrived since the last run: none listed
    assert left["numOutputRows"] == 0  # the old files' rows skipped by their statistics
    # A file arriving now is the only one the next run lists.
    add_file(repo.repo_path, [row(5, 7, 50)], "part-new")
    (third,) = repo.materialize_incremental(at(8))
    assert (third.rows_read, third.keys_written_online) == (1, 1)
    assert third.delta_version == first.delta_version + 1


def test_materialize_collects_file_statistics_on_keys_and_event_time(
    repo: FeatureStore, spark: SparkSession
) -> None:
    """Every file of the table, the first run's and a later MERGE's, has statistics on
    the join keys and the event time (what runs skip files by), and on nothing else."""
    (first,) = repo.materialize(at(0), at(3))
    (later,) = repo.materialize(at(3), at(6))
    assert later.delta_version == first.delta_version + 1
    log = Path(later.delta_path.removeprefix("file:")) / "_delta_log"
    actions = [
        json.loads(line)
        for commit in sorted(log.glob("*.json"))
        for line in commit.read_text().splitlines()
    ]
    (meta,) = [a["metaData"] for a in actions if "metaData" in a]
    assert meta["configuration"] == {"delta.dataSkippingStatsColumns": "`driver_id`,`ts`"}
    added = [json.loads(a["add"]["stats"]) for a in actions if "add" in a]
    assert len(added) >= 2  # files of both runs
    for stats in added:
        assert set(stats["minValues"]) == set(stats["nullCount"]) == {"driver_id", "ts"}


def test_materialize_new_rows_go_into_one_file(repo: FeatureStore, spark: SparkSession) -> None:
    """The rows a later run inserts land in one new file, not one per shuffle partition
    (a scheduled job would otherwise add a handful of small files every run)."""
    repo.materialize(at(0), at(30))
    add_file(repo.repo_path, [row(100 + i, 20 + i / 10, i) for i in range(20)], "part-1")
    # 8 partitions that adaptive execution leaves as they are: the suite's 2, coalesced,
    # would hide a file per partition.
    wide = {
        "spark.sql.shuffle.partitions": "8",
        "spark.sql.adaptive.coalescePartitions.enabled": "false",
    }
    previous = {key: spark.conf.get(key) for key in wide}
    for key, value in wide.items():
        spark.conf.set(key, value)
    try:
        (second,) = repo.materialize(at(0), at(30))
    finally:
        for key, value in previous.items():
            spark.conf.set(key, value)
    assert second.rows_written_offline == 20
    last = DeltaTable.forPath(spark, second.delta_path).history(1).collect()[0]
    metrics = last["operationMetrics"]
    assert (metrics["numTargetFilesRemoved"], metrics["numTargetFilesAdded"]) == ("0", "1")


def test_materialize_deduplicate_flags_the_row_latest_per_entity_picks(
    repo: FeatureStore, spark: SparkSession
) -> None:
    from skewless.batch.materialize import (  # noqa: PLC0415
        ARRIVAL,
        Interval,
        deduplicate,
        interval_rows,
        latest_per_entity,
    )

    add_file(repo.repo_path, [row(2, 2, 21, created=2), row(4, 1, 40), row(4, 1, 39)], "part-1")
    (view,) = repo.list_feature_views()
    rows = interval_rows(spark, view, repo.repo_path, Interval(end_us=utc_micros(at(6))))
    flagged = deduplicate(rows, view)
    per_entity = latest_per_entity(rows.drop(ARRIVAL), view)
    latest = flagged.where("__latest").select(per_entity.columns)
    assert sorted(latest.collect()) == sorted(per_entity.collect())
    assert flagged.agg({"__rows": "sum"}).collect()[0][0] == rows.count()


def test_materialize_driver_and_executor_writes_store_the_same_bytes(
    tmp_path: Path, redis_url: str
) -> None:
    # Small runs write Redis from the driver, large ones from the executors: both paths
    # must store identical values and report identical counts, first run and correction.
    driver = make_repo(tmp_path / "drv", redis_url, "path_driver")
    executors = make_repo(
        tmp_path / "exe", redis_url, "path_executors", "  driver_write_max_keys: 0\n"
    )
    assert executors.config.online_store.driver_write_max_keys == 0
    runs: dict[str, list[tuple[int, int]]] = {}
    for store in (driver, executors):
        (first,) = store.materialize(at(0), at(6))
        add_file(store.repo_path, [row(2, 2, 99, created=4), row(5, 1, 50)], "part-1")
        (fix,) = store.materialize(at(0), at(6))
        runs[store.project] = [(r.keys_offered_online, r.keys_written_online) for r in (first, fix)]
    assert runs["path_driver"] == runs["path_executors"] == [(3, 3), (4, 2)]
    stored = by_entity(redis_dump(redis_url, "path_driver"))
    assert len(stored) == 4
    assert stored == by_entity(redis_dump(redis_url, "path_executors"))


def test_materialize_counts_rows_with_a_null_key_or_event_time_and_writes_none(
    repo: FeatureStore, spark: SparkSession, redis_url: str
) -> None:
    no_key = {**row(1, 2, 77), "driver_id": None}  # would win for driver 1 if it had a key
    no_time = {**row(2, 2, 88, created=9), "ts": None}
    add_file(repo.repo_path, [no_key, no_time], "part-nulls")
    (run,) = repo.materialize(at(0), at(3))
    assert (run.rows_read, run.rows_rejected) == (7, 2)
    assert (run.rows_written_offline, run.keys_offered_online, run.keys_written_online) == (4, 2, 2)
    rows = table_rows(spark, run.delta_path)
    assert [(r[0], r[3]) for r in rows] == [(1, 10), (1, 12), (2, 20), (2, 22)]
    assert online(repo, [1, 2]) == [
        (12, FeatureStatus.PRESENT, at(1)),
        (22, FeatureStatus.PRESENT, at(2)),
    ]
    assert repo.registry.materializations("stats")[-1].rows_rejected == 2
    assert len(redis_dump(redis_url, repo.project)) == 2


def _held_rdds(spark: SparkSession) -> set[int]:
    """Ids of the RDDs with blocks in the block manager (cached or checkpointed)."""
    infos = spark.sparkContext._jsc.sc().getRDDStorageInfo()
    return {int(info.id()) for info in infos if info.numCachedPartitions() > 0}


def test_computed_once_holds_the_rows_while_in_use_and_releases_them(
    spark: SparkSession,
) -> None:
    before = _held_rdds(spark)
    frame = spark.range(1000).selectExpr("id", "id % 7 AS k")
    with computed_once(frame) as held:
        during = _held_rdds(spark) - before
        assert len(during) == 1  # computed once, on entry (a local master checkpoints)
        (level,) = [
            i.storageLevel()
            for i in spark.sparkContext._jsc.sc().getRDDStorageInfo()
            if int(i.id()) in during
        ]
        assert (level.useMemory(), level.useDisk(), level.deserialized()) == (True, True, True)
        assert sorted(held.collect()) == sorted(frame.collect())
        assert _held_rdds(spark) - before == during  # read back, not computed again
    assert _held_rdds(spark) - before == set()


def test_materialize_leaves_no_rows_held_after_the_run(
    repo: FeatureStore, spark: SparkSession
) -> None:
    before = _held_rdds(spark)
    (run,) = repo.materialize(at(0), at(3))
    assert (run.rows_read, run.keys_written_online) == (5, 2)
    assert _held_rdds(spark) - before == set()


def test_materialize_first_write_beaten_by_another_run_merges_instead(
    repo: FeatureStore, spark: SparkSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another run creates the table between this run's check and its first write (the
    window two concurrent first runs can meet): the write fails with DELTA_PATH_EXISTS,
    and the run MERGEs into the table instead, as if it had come second."""
    (first,) = repo.materialize(at(0), at(3))
    real = DeltaTable.isDeltaTable
    checks: list[bool] = []

    def stale_check(session: SparkSession, path: str) -> bool:
        checks.append(real(session, path))
        return len(checks) > 1 and checks[-1]  # the first check predates the other write

    monkeypatch.setattr(DeltaTable, "isDeltaTable", staticmethod(stale_check))
    (again,) = repo.materialize(at(0), at(6))
    assert checks[:2] == [True, True]  # refused once, then merged
    assert again.delta_version == first.delta_version + 1
    assert [r[0] for r in table_rows(spark, again.delta_path)] == [1, 1, 2, 2, 3]


def test_delta_source_is_read_at_one_version_by_every_job_of_a_frame(
    tmp_path: Path, spark: SparkSession
) -> None:
    """A run's jobs (its counts, its writes, the files it records as read) see the same
    snapshot of a Delta source, even when a commit lands between them."""
    from skewless.batch.sources import read_raw  # noqa: PLC0415
    from skewless.definitions import DeltaSource, Entity, FeatureView, Field  # noqa: PLC0415
    from skewless.types import Int64  # noqa: PLC0415

    path = str(tmp_path / "source")
    spark.createDataFrame(pa.Table.from_pylist([row(1, 0, 10)], schema=SCHEMA)).write.format(
        "delta"
    ).save(path)
    view = FeatureView(
        "stats",
        entities=[Entity("driver", join_keys=["driver_id"])],
        schema=[Field("trips", Int64)],
        source=DeltaSource(path, timestamp_field="ts"),
    )
    frame = read_raw(spark, view, tmp_path)
    assert frame.count() == 1
    spark.createDataFrame(pa.Table.from_pylist([row(2, 0, 20)], schema=SCHEMA)).write.format(
        "delta"
    ).mode("append").save(path)
    assert frame.count() == 1
    assert read_raw(spark, view, tmp_path).count() == 2
