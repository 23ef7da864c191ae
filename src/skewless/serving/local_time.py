"""Local time of instants in an IANA zone, and their calendar parts, vectorized with
numpy: what the online evaluator's time parts (hour(), day_of_week(), ...) compute
(serving/expressions.py; docs/expressions.md). Instants are int64 microseconds since the
epoch, UTC; any proleptic Gregorian year is handled, 0 and 10000 included.
"""

from __future__ import annotations

import zoneinfo
from collections.abc import Callable
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any

import numpy as np
import numpy.typing as npt

Array = npt.NDArray[Any]

_EPOCH = datetime(1970, 1, 1)
_US = 1_000_000

# A zone's offset is looked up in a table of its changes, built from zoneinfo and cached by
# stretches of 2**25 seconds (about 388 days). zoneinfo has no public list of changes, so
# each stretch is sampled every 2**15 seconds (9.1 hours) and each change found between two
# samples is pinned to its second by bisection. Changes are whole seconds, and days apart
# in every zone (the closest pair in the tz database is four days apart), so no change
# hides between two samples.
_STRETCH_BITS = 25
_SAMPLE_BITS = 15
_FEW_STRETCHES = 4
# Python's datetimes end at years 1 and 9999 in local time too: the two days at each end
# take the offset of a time just inside (no zone changes its offset there).
_SAFE_MIN_S = (datetime(1, 1, 3) - _EPOCH) // timedelta(seconds=1)
_SAFE_MAX_S = (datetime(9999, 12, 30) - _EPOCH) // timedelta(seconds=1)


def _offset_at(zone: zoneinfo.ZoneInfo, second: int) -> int:
    second = min(max(second, _SAFE_MIN_S), _SAFE_MAX_S)
    utc = _EPOCH + timedelta(seconds=second)
    local = zone.fromutc(utc.replace(tzinfo=zone))
    return (local.replace(tzinfo=None) - utc) // timedelta(seconds=1)


@lru_cache(maxsize=16384)
def _stretch_offsets(zone_name: str, stretch: int) -> tuple[Array, Array]:
    """(start second, offset in seconds) of each offset in force during a stretch, the
    first at the stretch's start."""
    zone = zoneinfo.ZoneInfo(zone_name)
    start = stretch << _STRETCH_BITS
    first = _offset_at(zone, start)
    starts, offsets = [start], [first]

    def changes(lo: int, a: int, hi: int, b: int) -> None:
        # offset(lo) == a != b == offset(hi): find every change in (lo, hi].
        if hi - lo == 1:
            starts.append(hi)
            offsets.append(b)
            return
        mid = (lo + hi) // 2
        m = _offset_at(zone, mid)
        if m != a:
            changes(lo, a, mid, m)
        if m != b:
            changes(mid, m, hi, b)

    previous, before = start, first
    for k in range(1, (1 << (_STRETCH_BITS - _SAMPLE_BITS)) + 1):
        s = start + (k << _SAMPLE_BITS)
        now = _offset_at(zone, s)
        if now != before:
            changes(previous, before, s, now)
        previous, before = s, now
    return np.array(starts, dtype=np.int64), np.array(offsets, dtype=np.int64)


def local_micros(utc: Array, zone_name: str) -> Array:
    """Local wall-clock microseconds (as if UTC) of instants in a zone."""
    if zone_name == "UTC" or utc.size == 0:
        return utc
    seconds = utc // _US
    stretches = np.unique(seconds >> _STRETCH_BITS)
    if len(stretches) > _FEW_STRETCHES:
        # Instants spread over many years (a stretch table costs ~5 ms to build): each
        # distinct second asked of zoneinfo instead, a few microseconds each.
        zone = zoneinfo.ZoneInfo(zone_name)
        unique, inverse = np.unique(seconds, return_inverse=True)
        found = np.fromiter(
            (_offset_at(zone, int(s)) for s in unique), dtype=np.int64, count=len(unique)
        )
        spread: Array = utc + found[inverse.reshape(-1)] * _US
        return spread
    tables = [_stretch_offsets(zone_name, int(s)) for s in stretches]
    starts = np.concatenate([t[0] for t in tables])
    offsets = np.concatenate([t[1] for t in tables])
    index = np.searchsorted(starts, seconds, side="right") - 1
    local: Array = utc + offsets[index] * _US
    return local


def _civil(days: Array) -> tuple[Array, Array, Array]:
    """Proleptic Gregorian (year, month, day) of days since 1970-01-01 (H. Hinnant's
    days-to-civil, in eras of 400 years); any year, including 0 and 10000."""
    z = days + 719468
    era = z // 146097
    doe = z - era * 146097
    yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    day = doy - (153 * mp + 2) // 5 + 1
    month = np.where(mp < 10, mp + 3, mp - 9)
    year = yoe + era * 400 + (month <= 2)
    return year, month, day


def _days_before_year(year: Array) -> Array:
    """Days from 1970-01-01 to January 1st of `year`."""
    y = year - 1
    era = y // 400
    yoe = y - era * 400
    doe = yoe * 365 + yoe // 4 - yoe // 100 + 306  # 306: March 1st to January 1st
    days: Array = era * 146097 + doe - 719468
    return days


def time_part(part: str, zone_name: str) -> Callable[[Array], Array]:
    def values(utc: Array) -> Array:
        seconds = local_micros(utc, zone_name) // _US
        days: Array = seconds // 86400
        if part in ("day_of_week", "is_weekend"):
            iso: Array = (days + 3) % 7 + 1  # 1970-01-01 was a Thursday (4)
            return iso >= 6 if part == "is_weekend" else iso
        if part in ("hour", "minute", "second"):
            of_day: Array = seconds - days * 86400
            clock = {"hour": of_day // 3600, "minute": of_day // 60 % 60, "second": of_day % 60}
            return clock[part]
        year, month, day = _civil(days)
        if part == "day_of_year":
            return days - _days_before_year(year) + 1
        return {"year": year, "month": month, "day": day}[part]

    return values
