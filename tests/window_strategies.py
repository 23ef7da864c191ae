"""Hypothesis strategies for windowed aggregations: random events full of edge values,
and request times that land on the windows' edges.

Used by the Spark tests (tests/integration/test_window_aggregations.py) and the online
tests, both against tests/window_reference.py:

- `KINDS`: the input kinds (skewless type names) and `COLUMNS`, a column name for each.
- `values(kind)`: one non-null value of a kind (floats with NaN, +/-0.0, +/-inf and
  subnormals; integers up to the int64 bounds, so sums can overflow; non-ASCII strings;
  timestamps as int microseconds within Spark's range, years 1 to 9999).
- `window_case(...)`: a `WindowCase`: join keys, inputs, aggregations covering every
  function valid for each input kind, source rows and request times.

A case's rows are many (hundreds), so a Spark job per example tests a lot: Hypothesis
draws the case's shape (kinds, windows, sizes, null and duplicate rates, whether the source
has a created-timestamp column) and a seed, and the rows come from a seeded generator
over pools of edge values. Times lie on a coarse grid (whole seconds from a base in 2024,
some 1 us off), so events share times and request times hit the windows' edges often.
"""

from __future__ import annotations

import math
import random
import struct
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from hypothesis import strategies as st
from hypothesis.strategies import SearchStrategy

from skewless.definitions.aggregation import FUNCTIONS
from tests.window_reference import RefAggregation, historical

KINDS = ("int32", "int64", "float32", "float64", "string", "bool", "unix_timestamp", "bytes")
COLUMNS = {
    "int32": "i32",
    "int64": "i64",
    "float32": "f32",
    "float64": "f64",
    "string": "s",
    "bool": "b",
    "unix_timestamp": "t",
    "bytes": "y",
}
KEYS = ("driver_id",)

SECOND = 1_000_000
BASE_US = 1_704_067_200 * SECOND  # 2024-01-01T00:00:00Z
TS_MIN = -62_135_596_800_000_000  # 0001-01-01T00:00:00Z
TS_MAX = 253_402_300_799_999_999  # 9999-12-31T23:59:59.999999Z
INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
# 1 us, whole seconds, and windows longer than any case's span (which is at most a minute)
WINDOWS = (1, SECOND, 2 * SECOND, 5 * SECOND, 10 * SECOND, 60 * SECOND, 3600 * SECOND)


def _f32(x: float) -> float:
    """The float32 nearest to x (an infinity above float32's range)."""
    try:
        return float(struct.unpack("<f", struct.pack("<f", x))[0])
    except OverflowError:
        return math.copysign(math.inf, x)


# Values mixing magnitudes (1e16 + 1.0 - 1e16 depends on the order of the additions), so a
# wrong fold order shows in the last bits.
FLOAT_SPECIAL = (
    0.0,
    -0.0,
    math.nan,
    math.inf,
    -math.inf,
    5e-324,  # the least subnormal
    -2.2250738585072014e-308,  # the least normal, negated
    1e308,
    -1e308,
    1e16,
    -1e16,
    0.1,
    0.2,
    0.3,
    1.0,
    -1.0,
    2.5,
    3.0,
    1e-3,
)
FLOAT32_SPECIAL = tuple(_f32(x) for x in FLOAT_SPECIAL)
INT32_SPECIAL = (0, 1, -1, 2, 7, INT32_MIN, INT32_MAX)
INT64_BIG = (INT64_MIN, INT64_MAX, INT64_MIN + 1, INT64_MAX - 1, 2**62, -(2**62), 2**53 + 1)
STRING_SPECIAL = ("", "a", "b", "B", "ab", "é", "e\u0301", "ß", "日本", "😀", "a\x00", " ")
BYTES_SPECIAL = (b"", b"\x00", b"\x7f", b"\x80", b"\xff", b"a", b"ab")
TS_SPECIAL = (TS_MIN, TS_MAX, 0, -1, BASE_US, BASE_US + 1)


def values(kind: str) -> SearchStrategy[Any]:
    """One non-null value of `kind`."""
    match kind:
        case "int32":
            return st.sampled_from(INT32_SPECIAL) | st.integers(INT32_MIN, INT32_MAX)
        case "int64":
            small = st.integers(-5, 5)
            return small | st.sampled_from(INT64_BIG) | st.integers(INT64_MIN, INT64_MAX)
        case "float64":
            return st.sampled_from(FLOAT_SPECIAL) | st.floats(allow_nan=True)
        case "float32":
            return st.sampled_from(FLOAT32_SPECIAL) | st.floats(width=32, allow_nan=True)
        case "string":
            return st.sampled_from(STRING_SPECIAL) | st.text(max_size=4)
        case "bool":
            return st.booleans()
        case "unix_timestamp":
            return st.sampled_from(TS_SPECIAL) | st.integers(TS_MIN, TS_MAX)
        case "bytes":
            return st.sampled_from(BYTES_SPECIAL) | st.binary(max_size=4)
    raise ValueError(f"unknown kind {kind!r}")


def _random_value(kind: str, rnd: random.Random, big: bool) -> Any:
    """A non-null value of `kind`: mostly small ones, so windows share values (distinct
    counts, ties of last) and sums stay exact; edge values often; `big` adds integers near
    the int64 bounds, so integer sums overflow."""
    roll = rnd.random()
    match kind:
        case "int32":
            if roll < 0.7:
                return rnd.randint(-5, 5)
            return rnd.choice(INT32_SPECIAL) if roll < 0.9 else rnd.randint(INT32_MIN, INT32_MAX)
        case "int64":
            if big and roll < 0.15:
                return rnd.choice(INT64_BIG)
            return rnd.randint(-5, 5) if roll < 0.85 else rnd.randint(-(2**40), 2**40)
        case "float64" | "float32":
            if roll < 0.45:
                x = rnd.choice(FLOAT_SPECIAL)
            elif roll < 0.75:
                x = rnd.randint(-8, 8) / 4
            elif roll < 0.9:
                x = rnd.uniform(-1e3, 1e3)
            else:  # any finite double, from its bits
                x = struct.unpack("<d", rnd.getrandbits(64).to_bytes(8, "little"))[0]
                x = 0.5 if math.isnan(x) or math.isinf(x) else x
            return _f32(x) if kind == "float32" else x
        case "string":
            if roll < 0.8:
                return rnd.choice(STRING_SPECIAL)
            return "".join(rnd.choice("aAé日😀\x00 ") for _ in range(rnd.randint(0, 3)))
        case "bool":
            return roll < 0.5
        case "unix_timestamp":
            if roll < 0.7:
                return BASE_US + rnd.randint(0, 20) * SECOND
            return rnd.choice(TS_SPECIAL) if roll < 0.85 else rnd.randint(TS_MIN, TS_MAX)
        case "bytes":
            if roll < 0.8:
                return rnd.choice(BYTES_SPECIAL)
            return bytes(rnd.getrandbits(8) for _ in range(rnd.randint(0, 3)))
    raise ValueError(f"unknown kind {kind!r}")


def _twin(kind: str, value: Any, rnd: random.Random) -> Any:
    """A value that event identity sees as `value`: -0.0 for 0.0 and back (a distinct row
    differing only so is the same event)."""
    if kind in ("float32", "float64") and value == 0.0 and rnd.random() < 0.5:
        return -value
    return value


@dataclass
class WindowCase:
    keys: tuple[str, ...]
    inputs: dict[str, str]  # column -> kind, in schema order
    aggregations: list[RefAggregation]
    rows: list[dict[str, Any]]  # "ts", "cts", keys, inputs (a few with a null key or ts)
    has_created: bool
    times: list[tuple[tuple[Any, ...], int]]  # (key, request time in us)
    windows: list[int] = field(default_factory=list)  # the distinct windows, in us

    def entity_rows(self) -> list[dict[str, Any]]:
        """The request times as tests/window_reference.py's entity rows (keys, "t")."""
        return [{**dict(zip(self.keys, key, strict=True)), "t": t} for key, t in self.times]

    def expected(self) -> list[dict[str, Any]]:
        """The reference's value of every aggregation at every request time, in order."""
        return historical(
            self.rows,
            self.keys,
            self.inputs,
            self.has_created,
            self.aggregations,
            self.entity_rows(),
        )


def aggregations_for(inputs: dict[str, str], windows: Sequence[int]) -> list[RefAggregation]:
    """Every function valid for each input's kind, each over one of `windows` in turn
    (the first aggregation of a column uses the first window, and so on)."""
    out = []
    i = 0
    for column, kind in inputs.items():
        for name, spec in FUNCTIONS.items():
            if kind in {t.name for t in spec.inputs}:
                window = windows[i % len(windows)]
                i += 1
                out.append(RefAggregation(f"{column}_{name}_{window}", column, name, window))
    return out


@st.composite
def window_case(
    draw: st.DrawFn,
    kinds: Sequence[str] = KINDS,
    min_rows: int = 50,
    max_rows: int = 300,
    max_times: int = 200,
    invalid: bool = True,
) -> WindowCase:
    """A random case over input columns of `kinds` (COLUMNS names them). `invalid` adds
    rows with a null join key or event time (never events). Request times: every event
    time and every event time + window (both edges of some window), 1 us either side of
    some, random ones, and times of an entity without events; at most `max_times`."""
    seed = draw(st.integers(0, 2**32 - 1))
    rnd = random.Random(seed)
    windows = draw(st.lists(st.sampled_from(WINDOWS), min_size=1, max_size=3, unique=True))
    has_created = draw(st.booleans())
    n_rows = draw(st.integers(min_rows, max_rows))
    n_entities = draw(st.integers(1, 4))
    span = draw(st.sampled_from((3, 10, 60)))  # seconds of event times
    null_rate = draw(st.sampled_from((0.0, 0.1, 0.5)))
    dup_rate = draw(st.sampled_from((0.0, 0.2, 0.5)))
    big = draw(st.booleans())
    inputs = {COLUMNS[k]: k for k in kinds}
    aggregations = aggregations_for(inputs, windows)

    def event_time() -> int:
        off = rnd.random()
        jitter = 0 if off < 0.75 else rnd.choice((-1, 1)) if off < 0.95 else rnd.randint(0, SECOND)
        return BASE_US + rnd.randint(0, span) * SECOND + jitter

    def created() -> int | None:
        if not has_created or rnd.random() < 0.1:
            return None
        return BASE_US + rnd.randint(0, 3) * SECOND

    def fresh_values() -> dict[str, Any]:
        return {
            c: None if rnd.random() < null_rate else _random_value(k, rnd, big)
            for c, k in inputs.items()
        }

    rows: list[dict[str, Any]] = []
    for _ in range(n_rows):
        if rows and rnd.random() < dup_rate:
            original = rnd.choice(rows)
            copy = dict(original)
            if has_created and rnd.random() < 0.6:  # a correction: another version
                copy.update(cts=created())
                if rnd.random() < 0.7:
                    copy.update(fresh_values())
            else:
                copy.update({c: _twin(k, copy[c], rnd) for c, k in inputs.items()})
            rows.append(copy)
            continue
        key: int | None = rnd.randint(1, n_entities)
        ts: int | None = event_time()
        if invalid and rnd.random() < 0.03:
            key, ts = (None, ts) if rnd.random() < 0.5 else (key, None)
        rows.append({"ts": ts, "cts": created(), KEYS[0]: key, **fresh_values()})
    rnd.shuffle(rows)

    edges: set[tuple[tuple[Any, ...], int]] = set()
    for r in rows:
        if r["ts"] is None or r[KEYS[0]] is None:
            continue
        key_t = (r[KEYS[0]],)
        for t in (r["ts"], *[r["ts"] + w for w in windows]):
            edges.add((key_t, t))
            if rnd.random() < 0.1:
                edges.add((key_t, t + rnd.choice((-1, 1))))
    chosen = sorted(edges)
    if len(chosen) > max_times:
        chosen = sorted(rnd.sample(chosen, max_times))
    first = BASE_US - 2 * SECOND
    last = BASE_US + (span + 2) * SECOND + max(windows)
    extra = [((rnd.randint(1, n_entities + 1),), rnd.randint(first, last)) for _ in range(10)]
    extra.append(((n_entities + 1,), BASE_US + SECOND))  # an entity without events
    times = chosen + extra
    rnd.shuffle(times)
    return WindowCase(
        keys=KEYS,
        inputs=inputs,
        aggregations=aggregations,
        rows=rows,
        has_created=has_created,
        times=times,
        windows=sorted(windows),
    )
