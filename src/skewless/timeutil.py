"""Time as skewless stores it: integer microseconds since the epoch, UTC. Pure, no I/O,
no engine imports (the serving path uses it without loading Spark)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from skewless.errors import SkewlessError

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_US = timedelta(microseconds=1)

# The longest duration a definition may hold (a ttl): 10,000 years of 365.25 days.
# Spark's timestamps span the years 1 to 9999, so a longer ttl would expire nothing a
# shorter one keeps. Within it every engine's arithmetic stays in range: an event time
# plus or minus it, in microseconds, is far inside an int64 (the point-in-time join's
# bigint arithmetic, Delta, the serving plan), and now + 2 x ttl in milliseconds is a
# valid Redis expiry (online/redis.py). Python's timedelta goes to 2.7 million years,
# whose microseconds no int64 holds.
MAX_DURATION = timedelta(days=3_652_500)

# The instants Spark's timestamps hold, in microseconds: 0001-01-01T00:00:00 and
# 9999-12-31T23:59:59.999999 UTC. An expression's timestamp outside them is None.
MIN_MICROS = -62_135_596_800_000_000
MAX_MICROS = 253_402_300_799_999_999
MAX_DURATION_TEXT = "10,000 years (3,652,500 days)"


def micros(span: timedelta) -> int:
    """A duration in whole microseconds, exactly (no float rounding)."""
    return span // _ONE_US


def as_utc(t: datetime) -> datetime:
    """`t` as an aware UTC datetime; a naive one means UTC."""
    return t.replace(tzinfo=UTC) if t.tzinfo is None else t.astimezone(UTC)


def utc_micros(t: datetime) -> int:
    """Microseconds since the epoch; a naive datetime means UTC."""
    if t.tzinfo is None:
        t = t.replace(tzinfo=UTC)
    return micros(t - EPOCH)


def iso_utc(t: datetime) -> str:
    """`t` in ISO-8601 at UTC; a naive datetime means UTC."""
    return (t.replace(tzinfo=UTC) if t.tzinfo is None else t.astimezone(UTC)).isoformat()


def from_micros(us: int) -> datetime:
    return EPOCH + timedelta(microseconds=us)


def from_micros_shared(
    values: Sequence[int | None], shared: dict[int, datetime]
) -> list[datetime | None]:
    """Microseconds since the epoch as UTC datetimes (None stays None), one object per
    distinct time across the calls that pass the same `shared` (a response's columns)."""
    out: list[datetime | None] = []
    for t in values:
        if t is None:
            out.append(None)
            continue
        when = shared.get(t)
        if when is None:
            when = shared[t] = from_micros(t)
        out.append(when)
    return out


def parse_time(text: str) -> datetime:
    """An ISO-8601 date or time; naive means UTC. `now` is accepted."""
    if text == "now":
        return datetime.now(UTC)
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise SkewlessError(
            f"'{text}' is not an ISO-8601 date or time (e.g. 2026-01-31T12:00)"
        ) from None
    return value if value.tzinfo else value.replace(tzinfo=UTC)
