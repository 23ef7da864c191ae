"""The runner's decisions over a real SQLite registry and a controllable clock, with the
materialization replaced by a function that records its calls (its Spark job is tested
in tests/integration/test_scheduler*.py): which ticks run and in what order, retries
and their backoff, leases held by another runner, a lease lost mid-run, stopping."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from skewless.definitions import Entity, FeatureView, Field, FileSource, Schedule
from skewless.registry import Lease, MaterializationRecord, SqliteRegistry, view_lease
from skewless.scheduler.runner import Runner, RunnerSettings, Scheduled, tick_state
from skewless.timeutil import from_micros, utc_micros
from skewless.types import Int64

T0 = datetime(2026, 3, 1, 12, 5, tzinfo=UTC)
HOUR = timedelta(hours=1)
DRIVER = Entity("driver", join_keys=["driver_id"])


def view(name: str) -> FeatureView:
    return FeatureView(
        name,
        entities=[DRIVER],
        schema=[Field("trips", Int64)],
        source=FileSource(f"data/{name}.parquet", timestamp_field="ts"),
    )


HOURLY = Schedule("0 * * * *", delay=timedelta(minutes=10), catch_up=timedelta(hours=2))


class Clock:
    def __init__(self) -> None:
        self.at = T0

    def now(self) -> datetime:
        return self.at

    def wait(self, seconds: float, stop: threading.Event) -> bool:
        self.at += timedelta(seconds=seconds)
        return stop.is_set()


class Jobs:
    """The materializations asked for: (view, end); fails while `failing` holds the view."""

    def __init__(self, registry: SqliteRegistry) -> None:
        self.registry = registry
        self.calls: list[tuple[str, datetime]] = []
        self.failing: set[str] = set()
        self.during: Callable[[], None] | None = None

    def __call__(self, v: FeatureView, end: datetime, lease: Lease) -> MaterializationRecord:
        self.calls.append((v.name, end))
        if self.during is not None:
            self.during()
        if v.name in self.failing:
            raise OSError(f"source of {v.name} unreadable")
        record = MaterializationRecord(
            view=v.name,
            data_hash="d",
            kind="incremental",
            start_us=None,
            end_us=utc_micros(end),
            arrival_watermark_us=None,
            delta_path="/lake",
            delta_version=len(self.calls),
            rows_read=10,
            rows_written_offline=5,
            keys_offered_online=2,
            keys_written_online=2,
            seconds=0.1,
            finished_at=end,
        )
        self.registry.record_materialization(record, lease)
        return record


@pytest.fixture
def registry(tmp_path: Path) -> SqliteRegistry:
    return SqliteRegistry(tmp_path / "registry.db", "p")


def make_runner(
    registry: SqliteRegistry, views: list[str], clock: Clock, name: str = "r1"
) -> tuple[Runner, Jobs]:
    jobs = Jobs(registry)
    runner = Runner(
        registry,
        lambda: [Scheduled(view(v), HOURLY) for v in views],
        jobs,
        settings=RunnerSettings(
            lease_seconds=30, max_attempts=3, backoff_seconds=60, max_backoff_seconds=90
        ),
        clock=clock,
        runner=name,
    )
    return runner, jobs


def test_runner_runs_each_views_latest_tick_first_then_the_missed_ones_in_order(
    registry: SqliteRegistry,
) -> None:
    clock = Clock()
    runner, jobs = make_runner(registry, ["b", "a"], clock)
    runner.run_due()
    tick = T0.replace(minute=0)
    assert jobs.calls == [("a", tick - timedelta(minutes=10)), ("b", tick - timedelta(minutes=10))]
    clock.at += 5 * HOUR  # ticks 13:00 .. 17:00 missed; catch_up 2 h at 17:05
    jobs.calls.clear()
    done = runner.run_due()
    assert [(r.view, r.status) for r in done] == [
        ("a", "skipped"),
        ("a", "succeeded"),
        ("a", "succeeded"),
        ("b", "skipped"),
        ("b", "succeeded"),
        ("b", "succeeded"),
    ]
    # 13:00, 14:00 and 15:00 are older than 15:05
    assert done[0].note.startswith("skipped 3 tick(s) from 2026-03-01T13:00:00+00:00 to")
    assert [end for v, end in jobs.calls if v == "a"] == [
        tick + h * HOUR - timedelta(minutes=10) for h in (4, 5)
    ]
    assert runner.run_due() == []  # nothing until 18:00


def test_runner_retries_with_capped_backoff_and_later_ticks_wait(registry: SqliteRegistry) -> None:
    clock = Clock()
    runner, jobs = make_runner(registry, ["a"], clock)
    jobs.failing.add("a")
    runner.run_due()
    clock.at = T0 + timedelta(seconds=59)
    assert runner.run_due() == []  # backoff 60 s
    assert runner.retries() == [("a", T0.replace(minute=0), T0 + timedelta(seconds=60))]
    clock.at = T0 + timedelta(seconds=60)
    (second,) = runner.run_due()
    assert (second.status, second.attempt, second.note) == ("failed", 2, "retry in 0:01:30")
    jobs.failing.clear()
    clock.at += timedelta(seconds=90) + HOUR  # 120 s capped at 90 s; tick 13:00 now due
    done = runner.run_due()
    assert [(r.status, r.attempt, from_micros(r.tick_us or 0).hour) for r in done] == [
        ("succeeded", 3, 12),
        ("succeeded", 1, 13),
    ]


def test_runner_gives_up_a_tick_after_max_attempts_and_runs_the_next(
    registry: SqliteRegistry,
) -> None:
    clock = Clock()
    runner, jobs = make_runner(registry, ["a"], clock)
    jobs.failing.add("a")
    for _ in range(3):
        runner.run_due()
        clock.at += timedelta(seconds=90)
    runs = registry.runs("a")
    assert [(r.status, r.attempt) for r in runs] == [("failed", 1), ("failed", 2), ("failed", 3)]
    assert runs[-1].note == "gave up after 3 attempts"
    assert tick_state(runs, runner.settings).last_handled == T0.replace(minute=0)
    assert runner.run_due() == []
    clock.at = T0 + HOUR
    (nxt,) = runner.run_due()
    assert (nxt.attempt, from_micros(nxt.tick_us or 0)) == (1, T0.replace(minute=0) + HOUR)


def test_runner_leaves_a_view_another_runner_holds(registry: SqliteRegistry) -> None:
    clock = Clock()
    runner, _ = make_runner(registry, ["a", "b"], clock)
    held = registry.acquire_lease(view_lease("a"), "r2", 30, clock.now())
    assert held is not None
    assert [r.view for r in runner.run_due()] == ["b"]
    clock.at += timedelta(seconds=31)  # r2's lease expired without a renewal
    assert [r.view for r in runner.run_due()] == ["a"]
    assert registry.lease(view_lease("a")).token == held.token + 1  # type: ignore[union-attr]


def test_runner_that_loses_its_lease_mid_run_records_nothing(registry: SqliteRegistry) -> None:
    clock = Clock()
    runner, jobs = make_runner(registry, ["a"], clock)

    def taken() -> None:  # the run outlives its lease; another runner takes the view
        clock.at += timedelta(seconds=31)
        assert registry.acquire_lease(view_lease("a"), "r2", 30, clock.now()) is not None

    jobs.during = taken
    assert runner.run_due() == []
    (run,) = registry.runs("a")
    assert run.status == "abandoned" and "r1" in run.note
    assert registry.materializations("a") == []  # the watermark did not move


def test_runner_stops_between_ticks_when_asked(registry: SqliteRegistry) -> None:
    clock = Clock()
    runner, jobs = make_runner(registry, ["a"], clock)
    runner.run_due()
    clock.at += 2 * HOUR
    jobs.during = runner.stop.set  # SIGTERM during the first of two due ticks
    done = runner.run_due()
    assert [r.status for r in done] == ["succeeded"]  # it finished, then stopped
    assert [r.status for r in registry.runs("a")] == ["succeeded", "succeeded"]


def test_runner_at_an_orchestrators_time_runs_the_ticks_due_then(
    registry: SqliteRegistry,
) -> None:
    clock = Clock()
    runner, jobs = make_runner(registry, ["a"], clock)
    runner.run_due("once", at=T0 - 3 * HOUR)
    assert jobs.calls == [("a", T0.replace(minute=0) - 3 * HOUR - timedelta(minutes=10))]
    (run,) = registry.runs("a")
    assert run.trigger == "once" and run.started_at == T0  # records keep the clock's time


def test_runner_sleeps_until_the_next_tick_or_retry(registry: SqliteRegistry) -> None:
    clock = Clock()
    runner, jobs = make_runner(registry, ["a"], clock)
    runner.settings = RunnerSettings(poll_seconds=10_000, backoff_seconds=60)
    assert runner.next_wake() == 55 * 60  # 12:05 -> 13:00
    jobs.failing.add("a")
    runner.run_due()
    assert runner.next_wake() == 60  # the retry comes first


def test_runner_counts_an_abandoned_run_as_an_attempt(registry: SqliteRegistry) -> None:
    """A run whose runner was killed is retried after the backoff, and max_attempts such
    runs give the tick up: a run that kills its runner every time is not retried forever."""
    clock = Clock()
    tick_us = utc_micros(T0.replace(minute=0))
    for n in range(3):
        lease = registry.acquire_lease(view_lease("a"), f"dead{n}", 30, clock.now())
        assert lease is not None
        registry.start_run(
            "a",
            "schedule",
            tick_us=tick_us,
            start_us=None,
            end_us=tick_us,
            attempt=n + 1,
            runner=f"dead{n}",
            lease=lease,
            now=clock.now(),
        )
        clock.at += timedelta(seconds=31)  # killed: its lease expires
        if n < 2:
            state = tick_state(registry.runs("a"), RunnerSettings(max_attempts=3))
            assert state.last_handled is None  # not yet abandoned: the next taker marks it
    runner, jobs = make_runner(registry, ["a"], clock)
    assert runner.run_due() == []  # taking the lease marks the third run abandoned
    runs = registry.runs("a")
    assert [r.status for r in runs] == ["abandoned"] * 3
    assert tick_state(runs, runner.settings).last_handled == T0.replace(minute=0)
    assert jobs.calls == []
