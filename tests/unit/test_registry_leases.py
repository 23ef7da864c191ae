"""Leases in the SQLite registry: who may hold a name when, and the fencing tokens.

Every decision is driven by the `now` passed in (a controllable clock), except in the
multi-process test, which races real processes on real time."""

from __future__ import annotations

import contextlib
import itertools
import json
import math
import multiprocessing
import time
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from skewless.errors import LeaseLostError, SkewlessError
from skewless.registry import Lease, SqliteRegistry
from skewless.timeutil import EPOCH

T0 = datetime(2026, 3, 1, 12, tzinfo=UTC)
NAME = "view:v"


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


@pytest.fixture
def reg(tmp_path: Path) -> SqliteRegistry:
    return SqliteRegistry(tmp_path / "r.db", "p")


def _start(reg: SqliteRegistry, view: str, lease: Lease | None, now: datetime) -> int:
    run = reg.start_run(
        view,
        "schedule",
        tick_us=None,
        start_us=None,
        end_us=1_000,
        attempt=1,
        runner="r1" if lease is None else lease.holder,
        lease=lease,
        now=now,
    )
    return run.id


def test_lease_first_holder_gets_token_1_and_another_holder_waits(reg: SqliteRegistry) -> None:
    assert reg.lease(NAME) is None
    lease = reg.acquire_lease(NAME, "r1", 10, at(0))
    assert lease == Lease(NAME, "r1", 1, at(10))
    assert reg.acquire_lease(NAME, "r2", 10, at(5)) is None
    assert reg.acquire_lease(NAME, "r2", 10, at(9.999999)) is None
    assert reg.lease(NAME) == lease


def test_lease_holder_acquiring_again_extends_it_with_the_same_token(reg: SqliteRegistry) -> None:
    reg.acquire_lease(NAME, "r1", 10, at(0))
    assert reg.acquire_lease(NAME, "r1", 10, at(5)) == Lease(NAME, "r1", 1, at(15))
    # expired but taken by nobody meanwhile: still the same tenure
    assert reg.acquire_lease(NAME, "r1", 10, at(60)) == Lease(NAME, "r1", 1, at(70))


def test_lease_expires_at_exactly_its_ttl_and_the_taker_gets_token_plus_one(
    reg: SqliteRegistry,
) -> None:
    reg.acquire_lease(NAME, "r1", 10, at(0))
    assert reg.acquire_lease(NAME, "r2", 10, at(10)) == Lease(NAME, "r2", 2, at(20))
    assert reg.acquire_lease(NAME, "r1", 10, at(15)) is None
    # a holder taking it back after another held it is a new tenure too
    assert reg.acquire_lease(NAME, "r1", 5, at(20)) == Lease(NAME, "r1", 3, at(25))
    assert reg.lease(NAME) == Lease(NAME, "r1", 3, at(25))


def test_lease_release_then_reacquire_gets_token_plus_one(reg: SqliteRegistry) -> None:
    first = reg.acquire_lease(NAME, "r1", 10, at(0))
    assert first is not None
    reg.release_lease(first)
    assert reg.lease(NAME) == Lease(NAME, "r1", 1, EPOCH)  # the row (and token) is kept
    # free at once, long before the ttl would have run out
    second = reg.acquire_lease(NAME, "r2", 10, at(1))
    assert second == Lease(NAME, "r2", 2, at(11))
    reg.release_lease(second)
    # the same holder after its own release starts a new tenure as well
    assert reg.acquire_lease(NAME, "r2", 10, at(2)) == Lease(NAME, "r2", 3, at(12))


def test_lease_release_of_a_lost_lease_changes_nothing(reg: SqliteRegistry) -> None:
    old = reg.acquire_lease(NAME, "r1", 10, at(0))
    assert old is not None
    taken = reg.acquire_lease(NAME, "r2", 10, at(10))
    reg.release_lease(old)  # no error
    assert reg.lease(NAME) == taken


def test_lease_renew_extends_it_with_the_same_token(reg: SqliteRegistry) -> None:
    lease = reg.acquire_lease(NAME, "r1", 10, at(0))
    assert lease is not None
    assert reg.renew_lease(lease, 30, at(8)) == Lease(NAME, "r1", 1, at(38))
    assert reg.acquire_lease(NAME, "r2", 10, at(20)) is None  # the renewal holds
    # expired but not taken: nobody else can have run, so renewing is safe
    assert reg.renew_lease(lease, 10, at(100)) == Lease(NAME, "r1", 1, at(110))


def test_lease_renew_after_a_takeover_raises_lease_lost_error(reg: SqliteRegistry) -> None:
    lease = reg.acquire_lease(NAME, "r1", 10, at(0))
    assert lease is not None
    reg.acquire_lease(NAME, "r2", 10, at(10))
    with pytest.raises(LeaseLostError) as info:
        reg.renew_lease(lease, 10, at(11))
    error = info.value
    assert (error.name, error.holder, error.token) == (NAME, "r1", 1)
    assert (error.current_holder, error.current_token) == ("r2", 2)
    assert not error.retryable and isinstance(error, SkewlessError)
    assert str(error) == (
        "runner r2 took the lease on view:v (token 2); this runner's (r1, token 1) work is "
        "not recorded"
    )
    assert reg.lease(NAME) == Lease(NAME, "r2", 2, at(20))  # untouched


def test_lease_renew_of_a_stale_token_of_the_same_holder_raises(reg: SqliteRegistry) -> None:
    old = reg.acquire_lease(NAME, "r1", 10, at(0))
    assert old is not None
    reg.release_lease(old)
    reg.acquire_lease(NAME, "r1", 10, at(1))  # token 2
    with pytest.raises(LeaseLostError, match=r"runner r1 took the lease on view:v \(token 2\)"):
        reg.renew_lease(old, 10, at(2))


def test_lease_lost_when_the_project_was_removed(reg: SqliteRegistry) -> None:
    lease = reg.acquire_lease(NAME, "r1", 10, at(0))
    assert lease is not None
    reg.remove_project()
    with pytest.raises(LeaseLostError) as info:
        reg.renew_lease(lease, 10, at(1))
    assert (info.value.current_holder, info.value.current_token) == (None, None)
    assert str(info.value) == (
        "no runner holds the lease on view:v any more; this runner's (r1, token 1) work is "
        "not recorded"
    )


def test_lease_names_are_separate_per_project(tmp_path: Path) -> None:
    a = SqliteRegistry(tmp_path / "r.db", "a")
    b = SqliteRegistry(tmp_path / "r.db", "b")
    assert a.acquire_lease(NAME, "r1", 10, at(0)) == Lease(NAME, "r1", 1, at(10))
    assert b.acquire_lease(NAME, "r2", 10, at(0)) == Lease(NAME, "r2", 1, at(10))
    assert a.acquire_lease("view:w", "r2", 10, at(0)) == Lease("view:w", "r2", 1, at(10))


def test_lease_naive_now_means_utc(reg: SqliteRegistry) -> None:
    lease = reg.acquire_lease(NAME, "r1", 10, datetime(2026, 3, 1, 12))
    assert lease == Lease(NAME, "r1", 1, at(10))
    # an aware time in another zone is the same instant: 14:00:10+02:00 is at(10)
    later = datetime(2026, 3, 1, 14, 0, 10, tzinfo=timezone(timedelta(hours=2)))
    taken = reg.acquire_lease(NAME, "r2", 10, later)
    assert taken == Lease(NAME, "r2", 2, at(20))
    assert taken.expires_at.utcoffset() == timedelta(0)


@pytest.mark.parametrize("ttl", [0, -1, math.nan, math.inf])
def test_lease_ttl_must_be_a_positive_number_of_seconds(reg: SqliteRegistry, ttl: float) -> None:
    with pytest.raises(ValueError, match=r"lease 'view:v': ttl_s must be a positive number"):
        reg.acquire_lease(NAME, "r1", ttl, at(0))
    assert reg.lease(NAME) is None


# --- abandoning the runs of a lost lease ---------------------------------------------


def test_lease_takeover_abandons_the_views_runs_left_running(reg: SqliteRegistry) -> None:
    v = reg.acquire_lease(NAME, "r1", 10, at(0))
    w = reg.acquire_lease("view:w", "r1", 10, at(0))
    assert v is not None and w is not None
    done = _start(reg, "v", v, at(1))
    reg.finish_run(done, "succeeded", lease=v, now=at(2))
    left = _start(reg, "v", v, at(3))
    other_view = _start(reg, "w", w, at(3))
    manual = _start(reg, "v", None, at(3))  # not under a lease: not the runner's to end

    taken = reg.acquire_lease(NAME, "r2", 10, at(12))
    assert taken is not None and taken.token == 2
    by_id = {run.id: run for run in reg.runs()}
    assert by_id[left].status == "abandoned"
    assert by_id[left].finished_at == at(12)
    assert by_id[left].note == "runner r1's lease expired; runner r2 took over"
    assert by_id[done].status == "succeeded" and by_id[done].note == ""
    assert by_id[other_view].status == "running"
    assert by_id[manual].status == "running"
    # the old holder can no longer finish it
    with pytest.raises(LeaseLostError):
        reg.finish_run(left, "succeeded", lease=v, now=at(13))
    assert reg.runs("v")[1] == by_id[left]


def test_lease_released_with_a_run_unfinished_abandons_it_at_the_next_take(
    reg: SqliteRegistry,
) -> None:
    lease = reg.acquire_lease(NAME, "r1", 10, at(0))
    assert lease is not None
    left = _start(reg, "v", lease, at(1))
    reg.release_lease(lease)
    assert reg.runs("v")[0].status == "running"  # a release alone marks nothing
    reg.acquire_lease(NAME, "r1", 10, at(2))
    (run,) = reg.runs("v")
    assert (run.id, run.status, run.finished_at) == (left, "abandoned", at(2))
    assert run.note == "runner r1 released the lease on view:v before the run finished"


def test_lease_extended_by_its_holder_abandons_nothing(reg: SqliteRegistry) -> None:
    lease = reg.acquire_lease(NAME, "r1", 10, at(0))
    assert lease is not None
    _start(reg, "v", lease, at(1))
    reg.acquire_lease(NAME, "r1", 10, at(30))  # expired, not taken: the same tenure
    assert [r.status for r in reg.runs("v")] == ["running"]


def test_lease_not_named_after_a_view_abandons_no_run(reg: SqliteRegistry) -> None:
    lease = reg.acquire_lease(NAME, "r1", 10, at(0))
    assert lease is not None
    _start(reg, "v", lease, at(1))
    reg.acquire_lease("v", "r1", 10, at(0))
    reg.acquire_lease("v", "r2", 10, at(20))  # token 2 of another name
    assert [r.status for r in reg.runs("v")] == ["running"]


# --- real processes on real time -----------------------------------------------------

PROCESSES = 4
LOOPS = 200
TTL_S = 0.05


def _now() -> datetime:
    return datetime.now(UTC)


def _contend(path: str, holder: str, out: str) -> None:
    """Loop trying to take NAME; while holding it, record (holder, token, start, end) in
    microseconds, where start is taken after the acquiring transaction committed and end
    is the earlier of the release time and the last expiry this holder was granted."""
    reg = SqliteRegistry(path, "p")
    held: list[tuple[str, int, int, int]] = []
    for _ in range(LOOPS):
        lease = reg.acquire_lease(NAME, holder, TTL_S, _now())
        if lease is None:
            time.sleep(0.001)
            continue
        start = _now()
        live_until = lease.expires_at
        time.sleep(0.003)
        # paused past the ttl and taken over: held only up to the expiry it had
        with contextlib.suppress(LeaseLostError):
            live_until = reg.renew_lease(lease, TTL_S, _now()).expires_at
        time.sleep(0.002)
        end = min(_now(), live_until)
        reg.release_lease(lease)
        held.append((holder, lease.token, _us(start), _us(end)))
    Path(out).write_text(json.dumps(held))


def _us(t: datetime) -> int:
    return (t - EPOCH) // timedelta(microseconds=1)


def test_lease_processes_racing_on_real_time_never_hold_it_at_once(tmp_path: Path) -> None:
    path = str(tmp_path / "r.db")
    SqliteRegistry(path, "p")
    ctx = multiprocessing.get_context("spawn")
    outs = [tmp_path / f"r{i}.json" for i in range(PROCESSES)]
    procs = [
        ctx.Process(target=_contend, args=(path, f"r{i}", str(out))) for i, out in enumerate(outs)
    ]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    held = [tuple(h) for out in outs for h in json.loads(out.read_text())]
    assert len({holder for holder, *_ in held}) > 1  # they did contend
    # A holder paused past its expiry before it read the time held nothing live: such
    # an interval is empty, and left out.
    intervals = sorted((start, end, token, holder) for holder, token, start, end in held)
    intervals = [i for i in intervals if i[0] < i[1]]
    assert len(intervals) > PROCESSES
    tokens = [token for _, _, token, _ in intervals]
    # each tenure has its own token, and tokens grow with time
    assert tokens == sorted(set(tokens))
    for (_, end, token, holder), (start, _, next_token, next_holder) in itertools.pairwise(
        intervals
    ):
        assert end <= start, (holder, token, next_holder, next_token)
    last = SqliteRegistry(path, "p").lease(NAME)
    assert last is not None and last.token >= tokens[-1]
