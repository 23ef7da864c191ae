"""The scheduler's runner in process, driven by a controllable clock, over real Spark,
Delta, Redis and a SQLite registry: catch-up after a day of downtime runs the missed
ticks in order within the bound and records what it skipped; a failing source is
retried with backoff, then recorded as failed, and advances no watermark; a late file
is picked up by the next tick; a backfill runs in chunks and resumes.
"""

from __future__ import annotations

import textwrap
import threading
import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest
from pyspark.sql import SparkSession

from skewless import FeatureStore
from skewless.batch.feature_table import table_path
from skewless.definitions import FeatureView
from skewless.errors import BackfillFailedError
from skewless.fingerprint import feature_view_fingerprint
from skewless.materialize import OnlineTarget
from skewless.registry import Lease, MaterializationRecord, RunRecord
from skewless.scheduler.repo import repo_backfill, repo_runner, repo_status, scheduled_views
from skewless.scheduler.runner import Runner
from skewless.timeutil import from_micros, utc_micros

T0 = datetime(2026, 1, 10, 12, 5, tzinfo=UTC)
HOUR = timedelta(hours=1)

DEFS = """
from datetime import timedelta
from skewless import Entity, FeatureView, Field, FileSource, Int64, Schedule

driver = Entity("driver", join_keys=["driver_id"])
hourly = Schedule("0 * * * *", delay=timedelta(minutes=10), catch_up=timedelta(hours=3))
stats = FeatureView(
    "stats",
    entities=[driver],
    schema=[Field("trips", Int64)],
    source=FileSource("data/stats", timestamp_field="ts"),
    materialization=hourly,
)
broken = FeatureView(
    "broken",
    entities=[driver],
    schema=[Field("trips", Int64)],
    source=FileSource("data/broken", timestamp_field="ts"),
    materialization=hourly,
)
"""


class FakeClock:
    """Time moves only when the test or a wait moves it."""

    def __init__(self, now: datetime) -> None:
        self.at = now

    def now(self) -> datetime:
        return self.at

    def wait(self, seconds: float, stop: threading.Event) -> bool:
        self.at += timedelta(seconds=seconds)
        return stop.is_set()


def write_stats(repo: Path, rows: list[tuple[int, datetime, int]]) -> None:
    """(driver_id, event time, trips) rows as pandas writes them."""
    frame = pd.DataFrame(
        {
            "driver_id": [r[0] for r in rows],
            "ts": pd.to_datetime([r[1] for r in rows], utc=True),
            "trips": [r[2] for r in rows],
        }
    )
    frame.to_parquet(repo / "data" / "stats" / f"{uuid.uuid4().hex}.parquet")


@pytest.fixture
def store(tmp_path: Path, redis_url: str, spark: SparkSession) -> FeatureStore:
    repo = tmp_path / "repo"
    (repo / "data" / "stats").mkdir(parents=True)
    (repo / "data" / "broken").mkdir(parents=True)
    (repo / "feature_store.yaml").write_text(
        textwrap.dedent(
            f"""
            project: s_{uuid.uuid4().hex[:8]}
            online_store: {{type: redis, url: '{redis_url}'}}
            scheduler: {{lease_seconds: 30, max_attempts: 3, backoff_seconds: 60,
                         max_backoff_seconds: 100, poll_seconds: 600}}
            """
        )
    )
    (repo / "defs.py").write_text(DEFS)
    # a day and a half of hourly rows for drivers 1 and 2, up to T0 + 1 day
    start = T0 - 36 * HOUR
    write_stats(repo, [(d, start + i * HOUR, 10 * d + i) for d in (1, 2) for i in range(36 + 25)])
    broken = repo / "data" / "broken" / "part-0.parquet"
    write_stats_to(broken.parent, [(1, T0 - HOUR, 5)])
    fs = FeatureStore(repo)
    fs.apply()
    for good in broken.parent.iterdir():  # the source breaks after apply checked it
        good.unlink()
    broken.write_bytes(b"not a parquet file")
    return fs


def view_runs(store: FeatureStore, view: str) -> list[RunRecord]:
    return store.registry.runs(view)


def online_trips(store: FeatureStore) -> list[object]:
    response = store.get_online_features(["stats:trips"], [{"driver_id": 1}, {"driver_id": 2}])
    return response.values["trips"]


def expected_trips(end: datetime) -> list[int]:
    """The newest hourly row at or before `end` of each driver (as write_stats wrote)."""
    start = T0 - 36 * HOUR
    i = int((end - start) / HOUR)
    return [10 * d + i for d in (1, 2)]


def test_scheduler_catches_up_after_a_day_of_downtime_within_the_bound(
    store: FeatureStore,
) -> None:
    clock = FakeClock(T0)
    runner = repo_runner(store, clock=clock, runner="r1")
    first = [r for r in runner.run_due() if r.view == "stats"]
    # a view never run on schedule runs its latest tick only
    assert [(r.status, from_micros(r.tick_us or 0)) for r in first] == [
        ("succeeded", T0.replace(minute=0))
    ]
    assert first[0].end_us == utc_micros(T0.replace(minute=0) - timedelta(minutes=10))
    assert online_trips(store) == expected_trips(T0.replace(minute=0) - timedelta(minutes=10))

    clock.at = T0 + timedelta(days=1)  # the runner was down for a day
    again = [r for r in runner.run_due() if r.view == "stats"]
    skipped, *ran = again
    assert skipped.status == "skipped"
    # ticks 13:00 .. 09:00 next day are older than catch_up (3 h) at 12:05
    assert "skipped 21 tick(s)" in skipped.note
    assert skipped.tick_us == utc_micros(T0.replace(minute=0) + 21 * HOUR)
    ticks = [from_micros(r.tick_us or 0) for r in ran]
    base = T0.replace(minute=0) + timedelta(days=1)
    assert ticks == [base - 2 * HOUR, base - HOUR, base]  # oldest first, within the bound
    assert [r.status for r in ran] == ["succeeded"] * 3
    starts = [r.started_at for r in ran]
    assert starts == sorted(starts)
    assert online_trips(store) == expected_trips(base - timedelta(minutes=10))
    # nothing is due until the next tick
    assert [r for r in runner.run_due() if r.view == "stats"] == []
    # the watermark: one materialization record per succeeded run, none for the skipped
    assert len(store.registry.materializations("stats")) == 4


def test_scheduler_retries_a_failing_source_then_records_it_failed(store: FeatureStore) -> None:
    clock = FakeClock(T0)
    runner = repo_runner(store, clock=clock, runner="r1")
    runner.run_due()
    (first,) = view_runs(store, "broken")
    assert (first.status, first.attempt) == ("failed", 1)
    assert "broken" in first.error and "retry in" in first.note
    clock.at += timedelta(seconds=30)  # before the backoff (60 s) ends: nothing
    runner.run_due()
    assert len(view_runs(store, "broken")) == 1
    clock.at += timedelta(seconds=30)
    runner.run_due()
    clock.at += timedelta(seconds=100)  # 2nd backoff: 120 s capped at 100 s
    runner.run_due()
    runs = view_runs(store, "broken")
    assert [(r.status, r.attempt) for r in runs] == [("failed", 1), ("failed", 2), ("failed", 3)]
    assert "gave up after 3 attempts" in runs[-1].note
    assert {r.tick_us for r in runs} == {utc_micros(T0.replace(minute=0))}
    clock.at += timedelta(seconds=600)  # the tick is handled: no 4th attempt
    runner.run_due()
    assert len(view_runs(store, "broken")) == 3
    assert store.registry.materializations("broken") == []  # no watermark advanced
    # the next tick gets its own attempts; once the source is fixed, it succeeds
    broken = store.repo_path / "data" / "broken" / "part-0.parquet"
    broken.unlink()
    write_stats_to(broken.parent, [(1, T0 - HOUR, 5)])
    clock.at = T0 + HOUR
    runner.run_due()
    last = view_runs(store, "broken")[-1]
    assert (last.status, last.attempt, last.tick_us) == (
        "succeeded",
        1,
        utc_micros(T0.replace(minute=0) + HOUR),
    )
    status = {s.view: s for s in repo_status(store, clock.at)}
    assert not status["broken"].stale


def write_stats_to(folder: Path, rows: list[tuple[int, datetime, int]]) -> None:
    frame = pd.DataFrame(
        {
            "driver_id": [r[0] for r in rows],
            "ts": pd.to_datetime([r[1] for r in rows], utc=True),
            "trips": [r[2] for r in rows],
        }
    )
    frame.to_parquet(folder / f"{uuid.uuid4().hex}.parquet")


def test_scheduler_picks_up_a_late_file_at_the_next_tick(store: FeatureStore) -> None:
    clock = FakeClock(T0)
    runner = repo_runner(store, clock=clock, runner="r1")
    runner.run_due()
    end = T0.replace(minute=0) - timedelta(minutes=10)
    assert online_trips(store) == expected_trips(end)
    # a file lands late, its rows timed before the last run's end: driver 3's only row
    write_stats(store.repo_path, [(3, end - timedelta(minutes=1), 999)])
    clock.at += HOUR
    ran = [r for r in runner.run_due() if r.view == "stats"]
    assert [r.status for r in ran] == ["succeeded"]
    response = store.get_online_features(["stats:trips"], [{"driver_id": 3}])
    assert response.values["trips"] == [999]
    offline = store.spark.read.format("delta").load(
        store.registry.materializations("stats")[-1].delta_path
    )
    assert offline.where("trips = 999").count() == 1


def test_status_flags_a_view_whose_last_success_is_older_than_expected(
    store: FeatureStore,
) -> None:
    clock = FakeClock(T0)
    before = {s.view: s for s in repo_status(store, T0)}
    assert before["stats"].stale and before["stats"].materialized_until is None
    repo_runner(store, clock=clock, runner="r1").run_due()
    fresh = {s.view: s for s in repo_status(store, T0)}
    assert not fresh["stats"].stale
    # at 12:05 the 11:00 tick's run (up to 10:50) must be done: 1 h 15 min allowed
    assert fresh["stats"].expected == timedelta(hours=1, minutes=15)
    assert fresh["broken"].stale  # it failed: never materialized
    late = {s.view: s for s in repo_status(store, T0 + 3 * HOUR)}
    assert late["stats"].stale  # materialized until 11:50, 3 h 15 min before


def test_backfill_runs_in_chunks_and_resumes(store: FeatureStore) -> None:
    clock = FakeClock(T0)
    start, end = T0 - 36 * HOUR, T0 - 12 * HOUR
    size = timedelta(hours=8)
    first = repo_backfill(store, "stats", start, end - 8 * HOUR, size, clock=clock, runner="b")
    assert (first.chunks, first.skipped) == (2, 0)  # 16 h: two chunks, the end inclusive
    assert [r.status for r in first.runs] == ["succeeded"] * 2
    spans = [(from_micros(r.start_us or 0), from_micros(r.end_us)) for r in first.runs]
    assert spans == [
        (start, start + size - timedelta(microseconds=1)),
        (start + size, end - size),
    ]
    # the same backfill to a later end: both chunks already reach as far as its grid
    # needs (the second ran to the earlier end, inclusive), so only the third one runs
    again = repo_backfill(store, "stats", start, end, size, clock=clock, runner="b")
    assert (again.chunks, again.skipped) == (3, 2)
    assert [(from_micros(r.start_us or 0), r.status) for r in again.runs] == [
        (start + 2 * size, "succeeded")
    ]
    assert from_micros(again.runs[-1].end_us) == end
    assert repo_backfill(store, "stats", start, end, size, clock=clock, runner="b").runs == ()
    # driver 1's value at the backfill's end, online: a backfill chunk writes Redis too
    response = store.get_online_features(["stats:trips"], [{"driver_id": 1}])
    assert response.values["trips"] == [expected_trips(end)[0]]
    with pytest.raises(BackfillFailedError, match="broken"):
        repo_backfill(store, "broken", start, end, size, clock=clock, runner="b")
    failed = view_runs(store, "broken")
    assert [r.status for r in failed] == ["failed"] * 3 and failed[0].trigger == "backfill"


def test_scheduler_watermark_waits_for_the_online_writes(store: FeatureStore) -> None:
    """A run whose Delta commit succeeded but whose online writes failed records no
    materialization: the next run starts from the same base and completes both."""
    clock = FakeClock(T0)
    dead = replace(store.materializer(), online=OnlineTarget("redis://127.0.0.1:1/0"))

    def materialize(view: FeatureView, end: datetime, lease: Lease) -> MaterializationRecord:
        (record,) = dead.run([view], None, end, incremental=True, lease=lease)
        return record

    good = repo_runner(store, clock=clock, runner="r1")
    broken = Runner(
        store.registry,
        lambda: [s for s in scheduled_views(store) if s.view.name == "stats"],
        materialize,
        settings=good.settings,
        clock=clock,
        runner="r1",
    )
    (failed,) = broken.run_due()
    assert failed.status == "failed"
    assert store.registry.materializations("stats") == []  # no watermark
    view = store.get_feature_view("stats")
    path = table_path(
        str(store.repo_path / "data" / "offline"),
        store.project,
        view,
        feature_view_fingerprint(view).data_hash,
    )
    committed = store.spark.read.format("delta").load(path).count()
    assert committed > 0  # Delta was written before the online writes failed
    clock.at += timedelta(seconds=60)  # the retry, with Redis reachable
    done = [r for r in good.run_due() if r.view == "stats"]
    assert [(r.status, r.attempt) for r in done] == [("succeeded", 2)]
    assert online_trips(store) == expected_trips(T0.replace(minute=0) - timedelta(minutes=10))
    (record,) = store.registry.materializations("stats")
    assert record.rows_written_offline == 0  # the first run's commit already held the rows
