"""Hypothesis strategies for the expression language: random well-typed expressions over
input columns of every type, and random rows full of edge values.

Used by tests/unit/test_expr_evaluator.py (online evaluator vs tests/expr_reference.py)
and by the Spark engine's tests (Spark vs the online evaluator):

- `INPUT_TYPES`: the input columns and their types.
- `expressions(types, exact)`: expressions over columns of `types` that type-check and
  reach every function of skewless.expr.functions.FUNCTIONS; `exact=True` leaves out the
  transcendental functions (log, log1p, exp, pow), whose last bit depends on the math
  library, so results can be compared bit for bit.
- `transcendentals(types)`: log, log1p, exp or pow at the root of an exact expression.
- `rows(n_min, n_max)`: lists of rows, each a dict of every INPUT_TYPES column to a Python
  value or None (timestamps as int microseconds since the epoch, UTC; float32 values are
  exactly float32).
- `to_arrow_inputs(rows)`: those rows as Arrow arrays of the columns' Arrow types.
- `type_names(types)`: the types by name, as tests/expr_reference.py takes them.
- `rooted(fn)`: expressions with the function `fn` at the root, for even coverage.
- `examples(n)`: a test's example count, scaled by the Hypothesis profile.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from functools import cache
from typing import Any

import pyarrow as pa
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.strategies import SearchStrategy

from skewless.expr.check import EType
from skewless.expr.nodes import INT64_MAX, INT64_MIN, Call, Col, Lit, Node, float_lit, int_lit
from skewless.types import (
    Bool,
    Bytes,
    Float32,
    Float64,
    Int32,
    Int64,
    String,
    UnixTimestamp,
    to_arrow,
)

INPUT_TYPES: dict[str, EType] = {
    "i32": Int32,
    "i64": Int64,
    "j64": Int64,
    "f32": Float32,
    "f64": Float64,
    "g64": Float64,
    "s": String,
    "t": String,
    "b": Bool,
    "c": Bool,
    "ts": UnixTimestamp,
    "ts2": UnixTimestamp,
    "y": Bytes,
}

ZONES = (
    "UTC",
    "Europe/Paris",
    "America/New_York",
    "Asia/Kolkata",  # +05:30
    "Australia/Lord_Howe",  # half-hour daylight saving time
    "Pacific/Kiritimati",  # +14: year 9999 ends in year 10000 there
    "Etc/GMT+12",  # -12: year 1 begins in year 0 there
)
TRANSCENDENTAL = ("log", "log1p", "exp", "pow")
TIME_PARTS = ("year", "month", "day", "hour", "minute", "second", "day_of_week", "day_of_year")

INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1
_EPOCH = datetime(1970, 1, 1)
_US = timedelta(microseconds=1)
TS_MIN = (datetime(1, 1, 1) - _EPOCH) // _US
TS_MAX = (datetime(9999, 12, 31, 23, 59, 59, 999999) - _EPOCH) // _US
DAY_US = 86_400_000_000
HOUR_US = 3_600_000_000


def examples(n: int) -> int:
    """`n` examples under the default Hypothesis profile, proportionally more under
    another (HYPOTHESIS_PROFILE=thorough runs 1000 where the default runs 100)."""
    return max(1, n * settings.default.max_examples // 100)


def type_names(types: Mapping[str, EType]) -> dict[str, str]:
    return {name: t.name for name, t in types.items()}


# --- values ------------------------------------------------------------------------------


def _f32(x: float) -> float:
    """The float32 nearest to x (an infinity above float32's range)."""
    try:
        return float(struct.unpack("<f", struct.pack("<f", x))[0])
    except OverflowError:
        return math.copysign(math.inf, x)


INT32_SPECIAL = [0, 1, -1, 2, -2, 7, -7, 60, INT32_MIN, INT32_MAX, INT32_MIN + 1, INT32_MAX - 1]
INT64_SPECIAL = [
    *INT32_SPECIAL,
    INT32_MIN - 1,
    INT32_MAX + 1,
    INT64_MIN,
    INT64_MAX,
    INT64_MIN + 1,
    INT64_MAX - 1,
    2**53 + 1,
    -(2**53) - 1,
    2**62,
    3037000499,  # the largest square root in int64
    3037000500,
    2**60 + 2**36 + 1,  # rounds differently to float32 directly and through float64
]
FLOAT_SPECIAL = [
    0.0,
    -0.0,
    math.nan,
    math.inf,
    -math.inf,
    0.5,
    -0.5,
    1.5,
    2.5,
    -2.5,
    2.675,
    -2.675,
    1.005,
    0.1,
    1.0,
    -1.0,
    10.0,
    1e308,
    -1e308,
    5e-324,
    1e-300,
    0.49999999999999994,
    2.0**52,
    2.0**52 - 0.5,
    2.0**53,
    2.0**63,
    -(2.0**63),
    2.0**31,
    -(2.0**31) - 1.0,
    2147483647.9,
    3.4028235677973366e38,  # float32's largest
    3.5e38,  # above it
]
FLOAT32_SPECIAL = [*sorted({_f32(x) for x in FLOAT_SPECIAL if not math.isnan(x)}), math.nan]
STRING_SPECIAL = [
    "",
    "a",
    "A",
    "abc",
    "ABC",
    "Hello, World",
    "true",
    "false",
    "True",
    "12",
    "+12",
    "-12",
    "007",
    " 12",
    "12 ",
    "12\n",
    "1.5",
    "-1.5e3",
    ".5",
    "1.",
    ".",
    "1e",
    "+.5E-3",
    "nan",
    "inf",
    "1_000",
    "0x10",
    "١٢",  # Arabic-Indic digits
    "2147483647",
    "2147483648",
    "-2147483649",
    "9223372036854775807",
    "9223372036854775808",
    "-9223372036854775808",
    "1e400",
    "straße",
    "ß",
    "ǅ",  # a title-case letter
    "İ",  # lower-cases to two code points in Unicode
    "é",
    "Ω",
    "\U0001d518",  # outside the Basic Multilingual Plane
]
_TEXT = st.text(st.characters(exclude_categories=("Cs",)), max_size=8)
_ASCIIISH = st.text(st.sampled_from("aAbBzZ 1.+-eE"), max_size=6)


def _last_sunday(year: int, month: int) -> datetime:
    first_next = datetime(year + (month == 12), month % 12 + 1, 1)
    last = first_next - timedelta(days=1)
    return last - timedelta(days=(last.weekday() + 1) % 7)


def _nth_sunday(year: int, month: int, n: int) -> datetime:
    first = datetime(year, month, 1)
    return first + timedelta(days=(6 - first.weekday()) % 7 + 7 * (n - 1))


def _dst_change(rule: int, year: int) -> int:
    """A daylight saving time change, as microseconds UTC: Europe/Paris (EU rules since
    1996) and America/New_York (US rules since 2007), spring and autumn."""
    if rule == 0:
        moment = _last_sunday(year, 3) + timedelta(hours=1)
    elif rule == 1:
        moment = _last_sunday(year, 10) + timedelta(hours=1)
    elif rule == 2:
        moment = _nth_sunday(year, 3, 2) + timedelta(hours=7)
    else:
        moment = _nth_sunday(year, 11, 1) + timedelta(hours=6)
    return (moment - _EPOCH) // _US


def _clamped(us: int) -> int:
    return min(max(us, TS_MIN), TS_MAX)


_NEAR = st.one_of(
    st.sampled_from([0, 1, -1, 1_000_000, -1_000_000, HOUR_US, -HOUR_US]),
    st.integers(-2 * HOUR_US, 2 * HOUR_US),
)


def timestamps() -> SearchStrategy[int]:
    """Microseconds UTC within the years 1 to 9999, often at an edge."""
    return st.one_of(
        st.integers(TS_MIN, TS_MAX),
        st.builds(
            lambda rule, year, near: _clamped(_dst_change(rule, year) + near),
            st.integers(0, 3),
            st.one_of(st.sampled_from([2024, 2025, 2037, 2038, 2100]), st.integers(2007, 9999)),
            _NEAR,
        ),
        st.builds(  # around midnight UTC
            lambda day, near: _clamped(day * DAY_US + near),
            st.integers(TS_MIN // DAY_US, TS_MAX // DAY_US),
            _NEAR,
        ),
        st.builds(lambda d: TS_MIN + d, st.integers(0, 3 * DAY_US)),
        st.builds(lambda d: TS_MAX - d, st.integers(0, 3 * DAY_US)),
        st.sampled_from([TS_MIN, TS_MAX, 0, -1]),
    )


DURATION_SPECIAL = [
    0,
    1,
    -1,
    1_000_000,
    HOUR_US,
    -HOUR_US,
    DAY_US,
    -DAY_US,
    365 * DAY_US,
    3_652_500 * DAY_US,  # 10,000 years: timeutil.MAX_DURATION
    -3_652_500 * DAY_US,
    INT64_MIN,
    INT64_MAX,
]


def durations() -> SearchStrategy[int]:
    return st.one_of(
        st.sampled_from(DURATION_SPECIAL),
        st.integers(-400 * DAY_US, 400 * DAY_US),
        st.integers(INT64_MIN, INT64_MAX),
    )


def _value(t: EType) -> SearchStrategy[Any]:
    return st.one_of(st.none(), _present(t))


def _present(t: EType) -> SearchStrategy[Any]:
    strategies: dict[EType, SearchStrategy[Any]] = {
        Int32: st.one_of(
            st.sampled_from(INT32_SPECIAL),
            st.integers(-100, 100),
            st.integers(INT32_MIN, INT32_MAX),
        ),
        Int64: st.one_of(
            st.sampled_from(INT64_SPECIAL),
            st.integers(-100, 100),
            st.integers(INT64_MIN, INT64_MAX),
        ),
        Float32: st.one_of(st.sampled_from(FLOAT32_SPECIAL), st.floats(width=32)),
        Float64: st.one_of(
            st.sampled_from(FLOAT_SPECIAL), st.floats(), st.floats(-1000, 1000).map(float)
        ),
        String: st.one_of(st.sampled_from(STRING_SPECIAL), _TEXT, _ASCIIISH),
        Bool: st.booleans(),
        UnixTimestamp: timestamps(),
        Bytes: st.one_of(st.sampled_from([b"", b"\x00", b"ab"]), st.binary(max_size=8)),
    }
    return strategies[t]


def row(types: Mapping[str, EType] = INPUT_TYPES) -> SearchStrategy[dict[str, object]]:
    return st.fixed_dictionaries({name: _value(t) for name, t in types.items()})


def rows(n_min: int = 1, n_max: int = 10) -> SearchStrategy[list[dict[str, object]]]:
    """Rows of every INPUT_TYPES column."""
    return st.lists(row(), min_size=n_min, max_size=n_max)


def to_arrow_inputs(
    rows: Sequence[Mapping[str, object]], types: Mapping[str, EType] = INPUT_TYPES
) -> dict[str, pa.Array]:
    return {name: pa.array([r[name] for r in rows], type=to_arrow(t)) for name, t in types.items()}


# --- expressions -------------------------------------------------------------------------

# Kinds of values the grammar builds: "int" (int32, int64), "float" (float32, float64),
# "bool", "string", "ts", "dur", "bytes".
_COLUMN_KINDS = {
    "int32": "int",
    "int64": "int",
    "float32": "float",
    "float64": "float",
    "bool": "bool",
    "string": "string",
    "unix_timestamp": "ts",
    "bytes": "bytes",
}
_NULL_DTYPES = {
    "int": "int64",
    "float": "float64",
    "bool": "bool",
    "string": "string",
    "ts": "unix_timestamp",
    "dur": "duration",
    "bytes": "bytes",
}
ROOT_KINDS = ("int", "float", "bool", "string", "ts", "bytes")
UNTYPED_NULL = Lit(None, "null")


Production = tuple[str, SearchStrategy[Node]]  # the function at its root, the nodes


def _call(fn: str, *args: SearchStrategy[Node], option: Any = None) -> Production:
    options: SearchStrategy[Any] = option if isinstance(option, SearchStrategy) else st.just(option)
    return fn, st.builds(lambda a, o: Call(fn, tuple(a), o), st.tuples(*args), options)


def _lits(values: SearchStrategy[Any], make: Callable[[Any], Lit]) -> SearchStrategy[Node]:
    return values.map(make)


class _Grammar:
    """Typed productions, one or more per function of the language, whose children are
    one level shallower."""

    def __init__(self, types: Mapping[str, EType], exact: bool) -> None:
        self.exact = exact
        self.columns: dict[str, list[str]] = {}
        for name, t in types.items():
            kind = _COLUMN_KINDS.get(t.name)
            if kind is not None:
                self.columns.setdefault(kind, []).append(name)

    @cache  # noqa: B019 - one grammar per (types, exact), kept for the test session
    def node(self, kind: str, depth: int) -> SearchStrategy[Node]:
        if depth <= 0:
            return self.leaf(kind)
        return st.one_of(self.leaf(kind), *(s for _, s in self.productions(kind, depth - 1)))

    def rooted(self, fn: str, depth: int) -> SearchStrategy[Node]:
        """Expressions with `fn` at the root, of any kind it gives."""
        found = [
            s
            for kind in (*ROOT_KINDS, "dur")
            for name, s in self.productions(kind, depth - 1)
            if name == fn
        ]
        if not found:
            raise ValueError(f"no production of {fn}() (a transcendental with exact=True?)")
        return st.one_of(*found)

    def number(self, depth: int) -> SearchStrategy[Node]:
        return st.one_of(self.node("int", depth), self.node("float", depth))

    def or_null(self, kind: str, depth: int) -> SearchStrategy[Node]:
        """A value of `kind`, or an untyped None where the language takes one."""
        return st.one_of(self.node(kind, depth), st.just(UNTYPED_NULL))

    def leaf(self, kind: str) -> SearchStrategy[Node]:
        options: list[SearchStrategy[Node]] = [self.literal(kind)]
        names = self.columns.get(kind, [])
        if names:
            options.append(st.sampled_from([Col(n) for n in names]))
        options.append(st.just(Lit(None, _NULL_DTYPES[kind])))  # type: ignore[arg-type]
        return st.one_of(*options)

    def literal(self, kind: str) -> SearchStrategy[Node]:
        match kind:
            case "int":
                return _lits(_present(Int64), int_lit)
            case "float":
                return _lits(_present(Float64), float_lit)
            case "bool":
                return _lits(st.booleans(), lambda v: Lit(v, "bool"))
            case "string":
                return _lits(
                    st.one_of(st.sampled_from(STRING_SPECIAL), _TEXT), lambda v: Lit(v, "string")
                )
            case "ts":
                return _lits(timestamps(), lambda v: Lit(v, "unix_timestamp"))
            case "dur":
                return _lits(durations(), lambda v: Lit(v, "duration"))
        return _lits(st.binary(max_size=4), lambda v: Lit(v.hex(), "bytes"))

    def productions(self, kind: str, c: int) -> list[Production]:
        return {
            "int": self.ints,
            "float": self.floats,
            "bool": self.bools,
            "string": self.strings,
            "ts": self.timestamps,
            "dur": self.durations,
            "bytes": self.choices,
        }[kind](kind, c)

    def choices(self, kind: str, c: int) -> list[Production]:
        """coalesce() and when/otherwise over values of `kind`."""
        maybe = self.or_null(kind, c)
        cond = self.or_null("bool", c)
        typed_null = Lit(None, _NULL_DTYPES[kind])  # type: ignore[arg-type]

        def coalesce(values: list[Node]) -> Node:
            # Not all untyped: the language could not tell their type.
            if all(v == UNTYPED_NULL for v in values):
                values = [*values, typed_null]
            return Call("coalesce", tuple(values))

        def case(pairs: list[tuple[Node, Node]], otherwise: Node) -> Node:
            if all(v == UNTYPED_NULL for _, v in pairs) and otherwise == UNTYPED_NULL:
                otherwise = typed_null
            return Call("case", (*(n for pair in pairs for n in pair), otherwise))

        return [
            ("coalesce", st.lists(maybe, min_size=1, max_size=3).map(coalesce)),
            (
                "case",
                st.builds(case, st.lists(st.tuples(cond, maybe), min_size=1, max_size=2), maybe),
            ),
        ]

    def ints(self, kind: str, c: int) -> list[Production]:
        i, i_or_null = self.node("int", c), self.or_null("int", c)
        bounds = st.lists(
            st.one_of(st.none(), st.sampled_from(INT64_SPECIAL), st.integers(-50, 50)),
            min_size=2,
            max_size=2,
        ).map(_bounds)
        return [
            *(_call(fn, i, i_or_null) for fn in ("add", "sub", "mul", "floordiv", "mod")),
            _call("add", i_or_null, i),
            _call("neg", i),
            _call("abs", i),
            _call("round", i, option=st.integers(0, 15)),
            _call("floor", i),
            _call("ceil", i),
            ("clip", st.builds(lambda x, b: Call("clip", (x, *b)), i, bounds)),
            _call(
                "cast",
                st.one_of(self.number(c), self.node("string", c), self.node("bool", c)),
                option=st.sampled_from(["int64", "int32"]),
            ),
            _call("length", self.node("string", c)),
            *(_call(fn, self.node("ts", c), option=st.sampled_from(ZONES)) for fn in TIME_PARTS),
            *self.choices("int", c),
        ]

    def floats(self, kind: str, c: int) -> list[Production]:
        f, n = self.node("float", c), self.number(c)
        bounds = st.lists(
            st.one_of(
                st.none(),
                st.sampled_from([x for x in FLOAT_SPECIAL if not math.isnan(x)]),
                st.integers(-50, 50),
                st.floats(-100, 100),
            ),
            min_size=2,
            max_size=2,
        ).map(_bounds)
        found = [
            *(_call(fn, f, n) for fn in ("add", "sub", "mul")),
            *(_call(fn, n, f) for fn in ("add", "sub", "mul")),
            _call("add", f, self.or_null("int", c)),
            _call("div", n, n),
            _call("div", n, self.or_null("float", c)),
            _call("neg", f),
            _call("abs", f),
            _call("round", f, option=st.integers(-15, 15)),
            _call("floor", f),
            _call("ceil", f),
            _call("sqrt", n),
            ("clip", st.builds(lambda x, b: Call("clip", (x, *b)), f, bounds)),
            _call(
                "cast",
                st.one_of(n, self.node("string", c), self.node("bool", c)),
                option=st.sampled_from(["float64", "float32"]),
            ),
            _call("total_seconds", self.node("dur", c)),
            *self.choices("float", c),
        ]
        if not self.exact:
            found += [_call(fn, n) for fn in ("log", "log1p", "exp")]
            found.append(_call("pow", n, n))
        return found

    def bools(self, kind: str, c: int) -> list[Production]:
        b = self.node("bool", c)
        compared = st.one_of(
            st.tuples(self.number(c), st.one_of(self.number(c), st.just(UNTYPED_NULL))),
            *(
                st.tuples(self.node(k, c), self.or_null(k, c))
                for k in ("string", "bool", "ts", "dur")
            ),
        )
        pair_of_bytes = st.tuples(self.node("bytes", c), self.node("bytes", c))
        any_kind = st.sampled_from(["int", "float", "bool", "string", "ts", "dur", "bytes"])
        return [
            *(
                (fn, compared.map(lambda ab, fn=fn: Call(fn, ab)))
                for fn in ("eq", "ne", "lt", "le", "gt", "ge")
            ),
            *((fn, pair_of_bytes.map(lambda ab, fn=fn: Call(fn, ab))) for fn in ("eq", "ne")),
            _call("and", b, self.or_null("bool", c)),
            _call("or", self.or_null("bool", c), b),
            _call("not", b),
            ("is_null", any_kind.flatmap(lambda k: _call("is_null", self.or_null(k, c))[1])),
            _call("is_nan", self.node("float", c)),
            *(
                _call(fn, self.node("string", c), self.node("string", c))
                for fn in ("contains", "starts_with", "ends_with")
            ),
            _call("is_weekend", self.node("ts", c), option=st.sampled_from(ZONES)),
            _call(
                "cast",
                st.one_of(self.number(c), self.node("string", c)),
                option=st.just("bool"),
            ),
            *self.choices("bool", c),
        ]

    def strings(self, kind: str, c: int) -> list[Production]:
        s = self.node("string", c)
        return [
            _call("lower", s),
            _call("upper", s),
            _call("concat", s, self.or_null("string", c)),
            _call("concat", s, s, s),
            _call(
                "cast",
                st.one_of(self.node("int", c), self.node("bool", c)),
                option=st.just("string"),
            ),
            *self.choices("string", c),
        ]

    def timestamps(self, kind: str, c: int) -> list[Production]:
        t, d = self.node("ts", c), self.node("dur", c)
        return [
            _call("add", t, d),
            _call("add", d, t),
            _call("sub", t, d),
            *self.choices("ts", c),
        ]

    def durations(self, kind: str, c: int) -> list[Production]:
        t, d = self.node("ts", c), self.node("dur", c)
        return [
            _call("sub", t, t),
            _call("add", d, d),
            _call("sub", d, d),
            _call("neg", d),
            *self.choices("dur", c),
        ]


def _bounds(values: list[Any]) -> tuple[Lit, Lit]:
    low, high = values
    if low is not None and high is not None and low > high:
        low, high = high, low
    return _bound(low), _bound(high)


def _bound(value: Any) -> Lit:
    if value is None:
        return UNTYPED_NULL
    return float_lit(value) if isinstance(value, float) else int_lit(value)


@cache
def _grammar(types: tuple[tuple[str, EType], ...], exact: bool) -> _Grammar:
    return _Grammar(dict(types), exact)


def _grammar_of(types: Mapping[str, EType], exact: bool) -> _Grammar:
    return _grammar(tuple(sorted(types.items(), key=lambda item: item[0])), exact)


def expressions(types: dict[str, EType], exact: bool, max_depth: int = 3) -> SearchStrategy[Node]:
    """Well-typed expressions over columns of `types` (any of its columns may go unused),
    of a feature type at the root, at most `max_depth` calls deep (so at most
    `max_depth + 1` levels with the leaves)."""
    grammar = _grammar_of(types, exact)
    return st.sampled_from(ROOT_KINDS).flatmap(lambda kind: grammar.node(kind, max_depth))


def rooted(
    fn: str, types: dict[str, EType] = INPUT_TYPES, exact: bool = True, max_depth: int = 3
) -> SearchStrategy[Node]:
    """Expressions with the function `fn` at the root (and anything below)."""
    return _grammar_of(types, exact).rooted(fn, max_depth)


def transcendentals(
    types: dict[str, EType] = INPUT_TYPES, max_depth: int = 2
) -> SearchStrategy[Node]:
    """log, log1p, exp or pow of exact expressions: the one step whose last bit depends
    on the math library."""
    number = _grammar_of(types, exact=True).number(max_depth - 1)
    return st.one_of(
        _call("log", number)[1],
        _call("log1p", number)[1],
        _call("exp", number)[1],
        _call("pow", number, number)[1],
    )
