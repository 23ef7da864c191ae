"""Cron math over a Schedule: pure functions, no clock, no I/O.

Times go in and come out as UTC-aware datetimes; a naive datetime means UTC. The cron
fields are read in the schedule's time zone (daylight saving: definitions/schedule.py).
Ticks fall on whole seconds, so a time's fraction of a second never makes a tick.

What runs after downtime (`plan_ticks`): of the ticks after the last handled one, those
no older than `catch_up` run, oldest first; the latest one always runs, whatever
`catch_up`; the older ones are skipped and reported as one range.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final

from croniter import croniter
from croniter.croniter import CroniterBadDateError

from skewless.config import RepoConfig
from skewless.definitions import FeatureView, Schedule
from skewless.timeutil import as_utc

_SECOND: Final = timedelta(seconds=1)
_EARLIEST: Final = datetime.min.replace(tzinfo=UTC)

# No tick: none in the 50 years croniter searches, or none before the calendar ends.
_NO_TICK: Final = (CroniterBadDateError, OverflowError)

# plan_ticks counts skipped ticks one by one (croniter steps, about 50 µs each), so the
# count stops here and is then a lower bound (Skipped.exact is False): a year of
# per-second ticks would otherwise take half an hour to count.
SKIPPED_COUNT_CAP: Final = 10_000

# The most ticks plan_ticks gives to run at once. A week of per-minute ticks fits; past it
# the older ticks are skipped like those older than catch_up.
MAX_RUNS: Final = 10_000


@dataclass(frozen=True)
class Skipped:
    """Ticks that will not run: `count` of them, from `first` to `last` (both ticks).
    With `exact` False there were more than `count`."""

    count: int
    first: datetime
    last: datetime
    exact: bool = True


@dataclass(frozen=True)
class TickPlan:
    run: tuple[datetime, ...]  # to run now, oldest first
    skipped: Skipped | None  # older than those, never to run


def _whole_second(t: datetime) -> datetime:
    """`t` in UTC, its fraction of a second dropped: a tick is after `t` exactly when it is
    after this (ticks fall on whole seconds), and croniter then never rounds a float."""
    return as_utc(t).replace(microsecond=0)


def _walk(schedule: Schedule, start: datetime) -> croniter[datetime]:
    """croniter positioned at `start` (a whole second), reading the fields in the zone."""
    return croniter(schedule.cron, start.astimezone(schedule.zone), ret_type=datetime)


def next_tick(schedule: Schedule, after: datetime) -> datetime:
    """The first tick strictly after `after`; ValueError when there is none (in the 50
    years after it, or before the year 9999 ends)."""
    try:
        return _walk(schedule, _whole_second(after)).get_next(datetime).astimezone(UTC)
    except _NO_TICK:
        raise ValueError(
            f"schedule {schedule.cron!r} has no tick after {as_utc(after).isoformat()}"
        ) from None


def latest_tick(schedule: Schedule, at: datetime) -> datetime | None:
    """The last tick at or before `at` (a tick exactly at `at` counts), or None when there
    is none in the 50 years before."""
    # croniter's get_prev gives the tick strictly before its start: from the next whole
    # second, that is the last tick <= at
    try:
        start = _whole_second(at) + _SECOND
        return _walk(schedule, start).get_prev(datetime).astimezone(UTC)
    except _NO_TICK:
        return None


def _tick_before(schedule: Schedule, tick: datetime) -> datetime | None:
    try:
        return _walk(schedule, tick).get_prev(datetime).astimezone(UTC)
    except _NO_TICK:
        return None


def ticks_between(
    schedule: Schedule, after: datetime, until: datetime, limit: int = 100_000
) -> list[datetime]:
    """The ticks t with `after < t <= until`, oldest first; ValueError past `limit` ticks."""
    end = as_utc(until)
    walk = _walk(schedule, _whole_second(after))
    out: list[datetime] = []
    while True:
        try:
            tick = walk.get_next(datetime).astimezone(UTC)
        except _NO_TICK:
            return out
        if tick > end:
            return out
        if len(out) == limit:
            raise ValueError(
                f"schedule {schedule.cron!r} ticks more than {limit} times between "
                f"{as_utc(after).isoformat()} and {end.isoformat()}"
            )
        out.append(tick)


def interval_end(schedule: Schedule, tick: datetime) -> datetime:
    """The event time a tick materializes up to: `tick - delay` (the earliest datetime
    when the delay reaches further back)."""
    tick = as_utc(tick)
    if schedule.delay > tick - _EARLIEST:
        return _EARLIEST
    return tick - schedule.delay


def plan_ticks(
    schedule: Schedule,
    last_handled: datetime | None,
    now: datetime,
    *,
    max_runs: int = MAX_RUNS,
) -> TickPlan:
    """The ticks to run at `now`, oldest first, and the older ones skipped.

    - Without `last_handled` (a view never run on its schedule): the latest tick <= now
      only (none if there is none); nothing is reported skipped.
    - Otherwise, of the ticks in (last_handled, now]: the latest always runs (even with
      catch_up 0); an older one runs when `tick >= now - catch_up` (a tick exactly at the
      bound runs), at most `max_runs` in all, the newest kept; the rest are Skipped.
      The skipped count stops at SKIPPED_COUNT_CAP (then `exact` is False).
    """
    now = as_utc(now)
    latest = latest_tick(schedule, now)
    if latest is None:
        return TickPlan((), None)
    if last_handled is None:
        return TickPlan((latest,), None)
    last_handled = as_utc(last_handled)
    if latest <= last_handled:
        return TickPlan((), None)
    # Without the bound every tick after last_handled is in; comparing durations (not
    # computing now - catch_up) keeps a catch_up of millennia from leaving the calendar.
    bound = None if now - last_handled <= schedule.catch_up else now - schedule.catch_up
    newest_first = [latest]
    skipped_last: datetime | None = None
    walk = _walk(schedule, latest)
    while True:  # back from the latest tick
        try:
            tick = walk.get_prev(datetime).astimezone(UTC)
        except _NO_TICK:
            break
        if tick <= last_handled:
            break
        if (bound is not None and tick < bound) or len(newest_first) >= max_runs:
            skipped_last = tick  # the newest of the skipped ticks
            break
        newest_first.append(tick)
    run = tuple(reversed(newest_first))
    if skipped_last is None:
        return TickPlan(run, None)
    return TickPlan(run, _skipped(schedule, last_handled, skipped_last))


def _skipped(schedule: Schedule, after: datetime, last: datetime) -> Skipped:
    """The ticks in (after, last], `last` being one, counted up to SKIPPED_COUNT_CAP."""
    walk = _walk(schedule, _whole_second(after))
    first = walk.get_next(datetime).astimezone(UTC)
    count = 1
    tick = first
    while tick < last:
        if count == SKIPPED_COUNT_CAP:
            return Skipped(count, first, last, exact=False)
        tick = walk.get_next(datetime).astimezone(UTC)
        count += 1
    return Skipped(count, first, last)


def expected_freshness(
    schedule: Schedule | None, declared: timedelta | None, now: datetime
) -> timedelta | None:
    """How old a view's materialized values may be at `now` before the view is stale:
    `declared` (the view's expected_freshness) when given; else, with a schedule, the
    time since the interval end of the tick before the latest one: the run of the latest
    tick may be under way, but the one before it must have succeeded. That holds for
    irregular schedules (weekdays only, a tick repeated in the autumn hour) as for
    regular ones. Before the schedule's second tick, a tick one gap before the first
    stands in; before its first, nothing is expected (None), as with neither."""
    if declared is not None:
        return declared
    if schedule is None:
        return None
    latest = latest_tick(schedule, now)
    if latest is None:
        return None
    before = _tick_before(schedule, latest)
    if before is None:
        gap = next_tick(schedule, latest) - latest
        floor = datetime.min.replace(tzinfo=UTC)
        before = latest - gap if latest - floor >= gap else floor
    return as_utc(now) - interval_end(schedule, before)


def schedule_of(view: FeatureView, config: RepoConfig) -> Schedule | None:
    """The view's schedule: its own, else the project's default (feature_store.yaml's
    `materialization`), else None (the view is not scheduled)."""
    if view.materialization is not None:
        return view.materialization
    if config.materialization is not None:
        return config.materialization.to_schedule()
    return None
