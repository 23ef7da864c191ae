"""Time as skewless stores it: integer microseconds since the epoch, UTC. Pure, no I/O,
no engine imports (the serving path uses it without loading Spark)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_US = timedelta(microseconds=1)


def micros(span: timedelta) -> int:
    """A duration in whole microseconds, exactly (no float rounding)."""
    return span // _ONE_US


def utc_micros(t: datetime) -> int:
    """Microseconds since the epoch; a naive datetime means UTC."""
    if t.tzinfo is None:
        t = t.replace(tzinfo=UTC)
    return micros(t - EPOCH)


def from_micros(us: int) -> datetime:
    return EPOCH + timedelta(microseconds=us)
