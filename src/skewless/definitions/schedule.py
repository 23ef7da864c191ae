"""Schedule: when a feature view is materialized, read by `skewless schedule run`.

`FeatureView(..., materialization=Schedule("0 * * * *", delay=timedelta(minutes=10)))`
materializes the view at every tick of the cron expression. The cron expression is read
by croniter: five fields (minute hour day-of-month month day-of-week), or six, the sixth
being the second (croniter's convention: `"* * * * * */10"` ticks every 10 seconds,
`"0 * * * * 30"` at hh:00:30 every hour); croniter's `@hourly`, `@daily` and the like
are taken too. As in cron, a day-of-month and a day-of-week that are both restricted
mean either one.

The fields are read in `timezone`: `"0 2 * * *"` with `timezone="Europe/Berlin"` ticks
at 02:00 Berlin time, winter and summer. Across a daylight saving change:

- the times that do not exist (02:00 to 02:59 on the spring-forward day in Berlin) tick
  once, at the end of the gap (03:00 summer time): `"30 2 * * *"` ticks at 03:00 that
  day, `"*/15 * * * *"` ticks at 01:45 and then 03:00;
- a time that exists twice (02:00 to 02:59 on the autumn day) ticks twice, once in each
  offset, so a daily schedule at 02:30 runs twice that day.

A tick at T materializes the events up to T - `delay` (room for late files). After
downtime, missed ticks older than `catch_up` are skipped (and said to be); the latest
missed tick always runs.
"""

from __future__ import annotations

import functools
import zoneinfo
from datetime import UTC, datetime, timedelta
from typing import ClassVar, Final

from croniter import croniter
from croniter.croniter import CroniterBadDateError, CroniterError
from pydantic import field_validator

from skewless.definitions._base import Definition
from skewless.timeutil import MAX_DURATION, MAX_DURATION_TEXT

# Names the tz database holds that are no zone of the world, or that mean another zone on
# each machine: a schedule must tick at the same instants wherever its runner runs.
_NOT_ZONES: Final = frozenset({"Factory", "localtime", "posixrules"})

# croniter's 7th field is a year; a schedule that stops in some year is not one skewless
# takes, so the expressions are those of cron with an optional seconds field.
_FIELDS: Final = (5, 6)

# Where a new expression is first evaluated, to refuse one that never ticks ("0 0 31 2 *").
_PROBE: Final = datetime(2000, 1, 1, tzinfo=UTC)


def check_cron(expression: str) -> str:
    """`expression` with its whitespace normalized, or a ValueError naming it and saying
    what croniter found wrong."""
    text = " ".join(expression.split())
    fields = len(text.split())
    if not text.startswith("@") and fields not in _FIELDS:  # croniter's @hourly... have 5
        raise ValueError(
            f"cron expression {text!r} has {fields} fields: a schedule takes 5 (minute hour "
            "day month weekday) or 6 (the sixth is the second)"
        )
    try:
        parsed = croniter(text, _PROBE)
    except (CroniterError, ValueError, TypeError, KeyError, IndexError) as exc:
        raise ValueError(f"cron expression {text!r} is not valid: {exc}") from None
    try:
        parsed.get_next(datetime)
    except CroniterBadDateError:
        raise ValueError(f"cron expression {text!r} never ticks (no such date)") from None
    return text


def check_timezone(name: str) -> str:
    """`name` when it is an IANA zone (`Europe/Berlin`, `UTC`), else a ValueError naming it."""
    if name in _NOT_ZONES or name.startswith(("posix/", "right/")) or not _loads(name):
        raise ValueError(f"unknown time zone {name!r} (an IANA name such as 'Europe/Berlin')")
    return name


@functools.cache
def _loads(name: str) -> bool:
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
        return False
    return True


def check_span(value: timedelta, field: str) -> timedelta:
    """A schedule's delay or catch-up: zero or more, at most MAX_DURATION."""
    if value < timedelta(0):
        raise ValueError(f"{field} must be zero or positive, got -{-value}")
    if value > MAX_DURATION:
        raise ValueError(f"{field} must be at most {MAX_DURATION_TEXT}, got {value.days} days")
    return value


class Schedule(Definition):
    """A cron schedule for a view's materialization (see the module's docstring)."""

    _kind: ClassVar[str] = "schedule"
    _positional: ClassVar[str] = "cron"

    cron: str
    # a tick at T materializes the events up to T - delay
    delay: timedelta = timedelta(0)
    # after downtime, missed ticks older than this are skipped (the latest always runs)
    catch_up: timedelta = timedelta(days=1)
    # the IANA zone the cron fields are read in
    timezone: str = "UTC"

    @field_validator("cron")
    @classmethod
    def _cron(cls, v: str) -> str:
        return check_cron(v)

    @field_validator("delay")
    @classmethod
    def _delay(cls, v: timedelta) -> timedelta:
        return check_span(v, "delay")

    @field_validator("catch_up")
    @classmethod
    def _catch_up(cls, v: timedelta) -> timedelta:
        return check_span(v, "catch_up")

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, v: str) -> str:
        return check_timezone(v)

    @property
    def zone(self) -> zoneinfo.ZoneInfo:
        """The zone the cron fields are read in."""
        return zoneinfo.ZoneInfo(self.timezone)
