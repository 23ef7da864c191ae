"""The scheduler's runner: each scheduled view's incremental runs, on time, once.

A tick T of a view's schedule is served by one incremental run up to T - delay
(materialize/runs.py: what arrived since the view's last run, late rows included). The
runner decides what is due from the run history in the registry alone, so a runner that
restarts, or another runner that takes over, continues where the last one stopped:

- A tick is handled once a run for it succeeded, was skipped, or failed
  `max_attempts` times. The ticks after the latest handled one are due (`plan_ticks`:
  oldest first; those older than the schedule's `catch_up` bound are recorded as one
  skipped run, except the latest tick, which always runs).
- A failed attempt is retried after `backoff_seconds * 2 ** (attempt - 1)`, capped at
  `max_backoff_seconds`; later ticks of the view wait for it (their runs would cover its
  data anyway, but in order). After the last attempt the tick is failed and the next
  tick runs: an incremental run takes everything since the view's last success.
- One view is worked on by one runner at a time: the runner takes the view's lease
  (`view:<name>`) in the registry before it reads the history, renews it while a run
  lasts, and releases it after. Every record it writes is fenced by the lease's token,
  so a runner that lost its lease (paused longer than the lease, then woke up) cannot
  record a run or advance the view's watermark. A runner killed with -9 stops renewing;
  its lease expires after `lease_seconds`, and the next runner to take it marks the run
  abandoned and runs the tick again.
- The watermark (the materialization record that the next incremental run starts from)
  is written only after the Delta commit and the online writes succeeded. A run that
  dies between them leaves the Delta commit and part of the online writes; the next run
  of the interval merges the same rows again (a no-op) and writes the same values with
  ordered writes, so nothing is lost or duplicated.

The runner is given what it needs: the registry, the current views, and a function that
runs one incremental materialization. It reads time only from its Clock.
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from skewless.definitions import FeatureView, Schedule
from skewless.errors import LeaseLostError
from skewless.registry import (
    Lease,
    MaterializationRecord,
    Registry,
    RunRecord,
    RunTrigger,
    view_lease,
)
from skewless.scheduler.clock import Clock, SystemClock
from skewless.scheduler.cron import interval_end, latest_tick, next_tick, plan_ticks
from skewless.scheduler.leases import HeldLease, renewed
from skewless.timeutil import from_micros, utc_micros

log = logging.getLogger(__name__)

HANDLED_TRIGGERS: tuple[RunTrigger, ...] = ("schedule", "once")


@dataclass(frozen=True)
class RunnerSettings:
    lease_seconds: float = 60.0
    max_attempts: int = 3
    backoff_seconds: float = 30.0
    max_backoff_seconds: float = 600.0
    poll_seconds: float = 60.0

    def backoff(self, attempt: int) -> timedelta:
        """How long after failed attempt `attempt` (1, 2, ...) the next one starts."""
        seconds = self.backoff_seconds * 2.0 ** min(attempt - 1, 60)
        return timedelta(seconds=min(seconds, self.max_backoff_seconds))


# runs one incremental materialization of a view up to `end`, recording it fenced by `lease`
Materialize = Callable[[FeatureView, datetime, Lease], MaterializationRecord]


@dataclass(frozen=True)
class Scheduled:
    view: FeatureView
    schedule: Schedule


def runner_id() -> str:
    """host:pid:random, unique among the runners of one registry."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


@dataclass(frozen=True)
class TickState:
    """What the history says about one view's ticks."""

    last_handled: datetime | None
    tries: dict[datetime, int]  # ticks not handled: their runs that failed or were abandoned
    retry_tick: datetime | None  # the oldest tried tick with attempts left
    retry_at: datetime | None  # not before

    def attempt(self, tick: datetime) -> int:
        return self.tries.get(tick, 0) + 1


# Enough of a view's history to decide: the latest handled tick lies within the last
# max_attempts runs of each tick after it, and a view never has more ticks waiting than this.
HISTORY_RUNS = 2_000


def tick_state(runs: Sequence[RunRecord], settings: RunnerSettings) -> TickState:
    """The latest handled tick, the tries of the ticks after it and any pending retry,
    from the view's run history. A run that failed and one that was abandoned (its runner
    killed) are both attempts: each waits out the backoff, and `max_attempts` of them
    make the tick handled (failed), so a run that kills its runner every time is not
    retried forever."""
    scheduled = [r for r in runs if r.trigger in HANDLED_TRIGGERS and r.tick_us is not None]
    handled: int | None = None
    tried: dict[int, list[RunRecord]] = {}
    for r in scheduled:
        assert r.tick_us is not None
        if r.status in ("succeeded", "skipped"):
            handled = r.tick_us if handled is None else max(handled, r.tick_us)
        elif r.status in ("failed", "abandoned"):
            tried.setdefault(r.tick_us, []).append(r)
    for tick, attempts in tried.items():
        if len(attempts) >= settings.max_attempts:
            handled = tick if handled is None else max(handled, tick)
    pending = sorted(t for t in tried if handled is None or t > handled)
    after = {from_micros(t): len(tried[t]) for t in pending}
    if not pending:
        return TickState(_time(handled), after, None, None)
    tick = pending[0]
    last = max(tried[tick], key=lambda r: r.id)
    finished = last.finished_at or last.started_at
    retry_at = finished + settings.backoff(len(tried[tick]))
    return TickState(_time(handled), after, from_micros(tick), retry_at)


def _time(us: int | None) -> datetime | None:
    return None if us is None else from_micros(us)


class Runner:
    def __init__(
        self,
        registry: Registry,
        views: Callable[[], list[Scheduled]],
        materialize: Materialize,
        *,
        settings: RunnerSettings | None = None,
        clock: Clock | None = None,
        runner: str | None = None,
        on_lease_lost: Callable[[], None] | None = None,
    ) -> None:
        self.registry = registry
        self.on_lease_lost = on_lease_lost
        self.views = views
        self.materialize = materialize
        self.settings = settings or RunnerSettings()
        self.clock = clock or SystemClock()
        self.id = runner or runner_id()
        self.stop = threading.Event()

    # --- one pass ----------------------------------------------------------------------

    def run_due(
        self, trigger: RunTrigger = "schedule", at: datetime | None = None
    ) -> list[RunRecord]:
        """Run every view's ticks due at `at` (default now; an orchestrator passes its
        logical time), oldest first per view, views by name; the runs recorded, skipped
        ones included. Views another runner holds are left to it. Leases and the run
        records' times always use the clock."""
        done: list[RunRecord] = []
        for item in sorted(self.views(), key=lambda s: s.view.name):
            if self.stop.is_set():
                break
            done.extend(self._view(item, trigger, at))
        return done

    def _view(self, item: Scheduled, trigger: RunTrigger, at: datetime | None) -> list[RunRecord]:
        name = item.view.name
        ttl = self.settings.lease_seconds
        lease = self.registry.acquire_lease(view_lease(name), self.id, ttl, self.clock.now())
        if lease is None:
            return []  # another runner is on it
        try:
            with renewed(self.registry, lease, ttl, self.clock, self.on_lease_lost) as held:
                return self._due(item, trigger, held, at)
        except LeaseLostError as exc:
            log.warning("%s", exc)
            return []

    def _due(
        self, item: Scheduled, trigger: RunTrigger, held: HeldLease, at: datetime | None
    ) -> list[RunRecord]:
        view, schedule = item.view, item.schedule
        now = self.clock.now() if at is None else at
        state = tick_state(self.registry.runs(view.name, last=HISTORY_RUNS), self.settings)
        since = state.last_handled
        if since is None and state.tries:  # never handled, but tried: from the first try
            since = min(state.tries) - timedelta(microseconds=1)
        plan = plan_ticks(schedule, since, now)
        done: list[RunRecord] = []
        if plan.skipped is not None:
            s = plan.skipped
            count = str(s.count) if s.exact else f"at least {s.count}"
            note = (
                f"skipped {count} tick(s) from {s.first.isoformat()} to {s.last.isoformat()}: "
                f"older than catch_up ({schedule.catch_up}) at {now.isoformat()}"
            )
            log.warning("%s: %s", view.name, note)
            run = self.registry.start_run(
                view.name,
                trigger,
                tick_us=utc_micros(s.last),
                start_us=None,
                end_us=utc_micros(interval_end(schedule, s.last)),
                attempt=1,
                runner=self.id,
                lease=held.lease,
                now=self.clock.now(),
            )
            done.append(
                self.registry.finish_run(
                    run.id, "skipped", lease=held.lease, now=self.clock.now(), note=note
                )
            )
        for tick in plan.run:  # a failed tick is among them until it is handled or skipped
            if self.stop.is_set():
                break
            if tick == state.retry_tick:
                assert state.retry_at is not None
                if self.clock.now() < state.retry_at and at is None:
                    break  # later ticks wait for it
            record = self._attempt(
                view, schedule, tick=tick, attempt=state.attempt(tick), trigger=trigger, held=held
            )
            done.append(record)
            if record.status != "succeeded":
                break
        return done

    def _attempt(
        self,
        view: FeatureView,
        schedule: Schedule,
        *,
        tick: datetime,
        attempt: int,
        trigger: RunTrigger,
        held: HeldLease,
    ) -> RunRecord:
        end = interval_end(schedule, tick)
        run = self.registry.start_run(
            view.name,
            trigger,
            tick_us=utc_micros(tick),
            start_us=None,
            end_us=utc_micros(end),
            attempt=attempt,
            runner=self.id,
            lease=held.lease,
            now=self.clock.now(),
        )
        log.info(
            "%s: run %d, tick %s, up to %s (attempt %d)", view.name, run.id, tick, end, attempt
        )
        try:
            result = self.materialize(view, end, held.lease)
        except LeaseLostError:
            raise  # the new holder marks this run abandoned
        except Exception as exc:  # any failure of the job is recorded, then retried
            last = attempt >= self.settings.max_attempts
            wait = self.settings.backoff(attempt)
            note = f"gave up after {attempt} attempts" if last else f"retry in {wait}"
            log.warning("%s: run %d failed (%s): %s", view.name, run.id, note, exc)
            return self.registry.finish_run(
                run.id,
                "failed",
                lease=held.lease,
                now=self.clock.now(),
                error=f"{type(exc).__name__}: {exc}",
                note=note,
            )
        return self.registry.finish_run(
            run.id,
            "succeeded",
            lease=held.lease,
            now=self.clock.now(),
            rows_read=result.rows_read,
            rows_written_offline=result.rows_written_offline,
            keys_written_online=result.keys_written_online,
            delta_version=result.delta_version,
        )

    def retries(self) -> list[tuple[str, datetime, datetime]]:
        """(view, tick, not before) of every failed tick waiting for its next attempt."""
        out = []
        for item in self.views():
            state = tick_state(self.registry.runs(item.view.name, last=HISTORY_RUNS), self.settings)
            if state.retry_tick is not None and state.retry_at is not None:
                out.append((item.view.name, state.retry_tick, state.retry_at))
        return out

    def failed_ticks(self, at: datetime | None = None) -> list[tuple[str, datetime]]:
        """(view, tick) of every view whose latest tick at `at` (default now) ended in a
        failed run: what `schedule once` reports with a non-zero exit, so an orchestrator
        sees a tick that failed, even after the runner gave it up."""
        when = self.clock.now() if at is None else at
        out = []
        for item in self.views():
            tick = latest_tick(item.schedule, when)
            if tick is None:
                continue
            tick_us = utc_micros(tick)
            runs = self.registry.runs(item.view.name, last=HISTORY_RUNS)
            mine = [r for r in runs if r.tick_us == tick_us and r.trigger in HANDLED_TRIGGERS]
            if mine and mine[-1].status == "failed":
                out.append((item.view.name, tick))
        return out

    # --- the loop ----------------------------------------------------------------------

    def next_wake(self) -> float:
        """Seconds until the next tick or retry of any view (at most poll_seconds)."""
        now = self.clock.now()
        wait = self.settings.poll_seconds
        for item in self.views():
            wake = next_tick(item.schedule, now)
            runs = self.registry.runs(item.view.name, last=HISTORY_RUNS)
            retry_at = tick_state(runs, self.settings).retry_at
            if retry_at is not None:  # one overdue (another runner has the view): soon, not now
                wake = min(wake, max(retry_at, now + timedelta(seconds=1)))
            wait = min(wait, max((wake - now).total_seconds(), 0.0))
        return wait

    def run_forever(self) -> None:
        """Run what is due, then sleep until the next tick; until `stop` is set (the
        current run finishes first)."""
        log.info("runner %s started", self.id)
        while not self.stop.is_set():
            try:
                self.run_due("schedule")
            except Exception:  # the registry or the definitions: log, wait, try again
                log.exception("runner %s: a pass failed", self.id)
            if self.clock.wait(self.next_wake(), self.stop):
                break
        log.info("runner %s stopped", self.id)
