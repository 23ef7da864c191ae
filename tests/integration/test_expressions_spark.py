"""Expressions on Spark (skewless.batch.expressions) against docs/expressions.md and
against the online evaluator (skewless.serving.expressions).

- Pinned cases: every row of "One behaviour in both engines", exact values and Spark
  types, in four Spark modes: ANSI on and off (the table does not depend on it, and no
  input may make a query fail), each interpreted (a projection over local rows is
  evaluated by the optimizer, ConvertToLocalRelation) and compiled (that rule excluded,
  so whole-stage code generation runs it, as over a real table). The cases of a mode
  share a few DataFrames, one Spark job each.
- A sweep of every function over columns of edge values (overflow, NaN, infinities,
  years 1 and 9999, instants outside them), ANSI on: nothing raises, interpreted equals
  compiled, and Spark equals the evaluator.
- Properties (hypothesis, tests/expr_strategies.py): random exact expressions over random
  rows give the evaluator's values exactly (floats bit for bit); log, log1p, exp and pow
  at the root stay within 1 ulp of it; any well-typed expression compiles to its type.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F  # noqa: N812

from skewless.batch.expressions import MAX_MICROS, MIN_MICROS, to_column
from skewless.errors import ExpressionTypeError
from skewless.expr import (
    ceil,
    clip,
    coalesce,
    col,
    concat,
    contains,
    day,
    day_of_week,
    day_of_year,
    ends_with,
    exp,
    floor,
    hour,
    is_nan,
    is_null,
    is_weekend,
    length,
    lit,
    log,
    log1p,
    lower,
    minute,
    month,
    pow,
    round,
    second,
    sqrt,
    starts_with,
    total_seconds,
    upper,
    when,
    year,
)
from skewless.expr.builder import Expr
from skewless.expr.check import Duration, EType, infer
from skewless.expr.functions import FUNCTIONS, render
from skewless.expr.nodes import Call, Col, Lit, Node, columns, float_lit, int_lit, null_lit
from skewless.serving.expressions import Evaluator
from skewless.types import (
    ArrayType,
    Bool,
    Bytes,
    Float32,
    Float64,
    Int32,
    Int64,
    ScalarType,
    String,
    UnixTimestamp,
    to_arrow,
    to_spark_ddl,
)
from tests.expr_strategies import (
    FLOAT32_SPECIAL,
    FLOAT_SPECIAL,
    INPUT_TYPES,
    INT32_SPECIAL,
    INT64_SPECIAL,
    STRING_SPECIAL,
    expressions,
    rows,
    to_arrow_inputs,
    transcendentals,
)

MIN = -(2**63)
MAX = 2**63 - 1
MIN32 = -(2**31)
MAX32 = 2**31 - 1
NAN = math.nan
INF = math.inf
FLT_MAX = 3.4028234663852886e38
_CONVERT_TO_LOCAL = "org.apache.spark.sql.catalyst.optimizer.ConvertToLocalRelation"


def f32(value: float) -> float:
    """The float32 nearest to a double, as a Python float."""
    with np.errstate(over="ignore"):
        return float(np.float32(value))


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0, sec: int = 0) -> int:
    """Microseconds of a UTC wall-clock time."""
    moment = datetime(year, month, day, hour, minute, sec, tzinfo=UTC)
    return (moment - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)


def same(got: object, want: object) -> bool:
    """Equal values of equal types; floats bit for bit (-0.0 is not 0.0) except that NaN
    equals NaN (its sign and payload are not part of the contract)."""
    if got is None or want is None:
        return got is want
    if type(got) is not type(want):
        return False
    if isinstance(got, float) and isinstance(want, float):
        if math.isnan(got) or math.isnan(want):
            return math.isnan(got) and math.isnan(want)
        return struct.pack("<d", got) == struct.pack("<d", want)
    return got == want


# --- Spark modes -------------------------------------------------------------------------


@contextmanager
def spark_conf(spark: SparkSession, settings: Mapping[str, str | None]) -> Iterator[None]:
    """Session settings for a block; the previous values (or their absence) restored."""
    previous = {key: spark.conf.get(key, None) for key in settings}
    try:
        for key, value in settings.items():
            if value is None:
                spark.conf.unset(key)
            else:
                spark.conf.set(key, value)
        yield
    finally:
        for key, value in previous.items():
            if value is None:
                spark.conf.unset(key)
            else:
                spark.conf.set(key, value)


MODES: dict[str, dict[str, str | None]] = {
    "ansi": {"spark.sql.ansi.enabled": "true", "spark.sql.optimizer.excludedRules": None},
    "no-ansi": {"spark.sql.ansi.enabled": "false", "spark.sql.optimizer.excludedRules": None},
    "ansi-codegen": {
        "spark.sql.ansi.enabled": "true",
        "spark.sql.optimizer.excludedRules": _CONVERT_TO_LOCAL,
    },
    "no-ansi-codegen": {
        "spark.sql.ansi.enabled": "false",
        "spark.sql.optimizer.excludedRules": _CONVERT_TO_LOCAL,
    },
}


# --- running expressions on Spark --------------------------------------------------------


def arrow_column(etype: EType, values: list[object]) -> pa.Array:
    if etype == UnixTimestamp:
        return pa.array(values, pa.timestamp("us", tz="UTC"))
    assert isinstance(etype, ScalarType | ArrayType)
    return pa.array(values, to_arrow(etype))


def input_frame(
    spark: SparkSession, columns: Mapping[str, tuple[EType, list[object]]]
) -> DataFrame:
    """A DataFrame of the given columns (padded with None to one length), or of one row
    when there are none."""
    n = max((len(values) for _, values in columns.values()), default=1)
    arrays = {
        name: arrow_column(t, [*values, *[None] * (n - len(values))])
        for name, (t, values) in columns.items()
    }
    table = pa.table(arrays) if arrays else pa.table({"_": pa.nulls(1, pa.bool_())})
    return spark.createDataFrame(table)


def collect(frame: DataFrame) -> dict[str, list[object]]:
    """The frame's columns as Python lists (a projection keeps the rows' order): floats
    keep their bits (Arrow), timestamps are microseconds."""
    table = frame.toArrow()
    out: dict[str, list[object]] = {}
    for name in table.column_names:
        column = table[name]
        if pa.types.is_timestamp(column.type):
            column = column.cast(pa.int64())
        out[name] = column.to_pylist()
    return out


# --- the pinned cases --------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    name: str
    node: Node
    expected: list[object]
    inputs: dict[str, tuple[EType, list[object]]] = field(default_factory=dict)


CASES: list[Case] = []


def case(name: str, expr: Expr | Node, expected: list[object], **inputs: Any) -> None:
    node = expr.node if isinstance(expr, Expr) else expr
    CASES.append(Case(name, node, expected, dict(inputs)))


x, y, z = col("x"), col("y"), col("z")


def dur(micros: int) -> Expr:
    """A duration literal of any int64 microseconds (timedelta cannot hold them all)."""
    return Expr(Lit(micros, "duration"))


B = [True, True, True, False, False, False, None, None, None]
C = [True, False, None] * 3

# None in, None out
case("null_add", x + 1, [None], x=(Int64, [None]))
case("null_div", x / 2, [None], x=(Float64, [None]))
case("null_eq", x == 1, [None], x=(Int64, [None]))
case("null_lower", lower(x), [None], x=(String, [None]))
case("null_year", year(x), [None], x=(UnixTimestamp, [None]))
case("null_cast", x.cast(String), [None], x=(Int64, [None]))
case("null_untyped_operand", x + lit(None), [None, None], x=(Int64, [1, None]))
case("null_round", round(x, 2), [None], x=(Float64, [None]))
case("null_concat", concat(x, "a"), [None], x=(String, [None]))
case("null_shift", x + timedelta(days=1), [None], x=(UnixTimestamp, [None]))
case("null_sqrt", sqrt(x), [None], x=(Float64, [None]))
case("null_neg", -x, [None], x=(Int64, [None]))

# & | ~: three-valued logic
case(
    "and",
    x & y,
    [True, False, None, False, False, False, None, False, None],
    x=(Bool, B),
    y=(Bool, C),
)
case("or", x | y, [True, True, True, True, False, None, True, None, None], x=(Bool, B), y=(Bool, C))
case("not", ~x, [False, True, None], x=(Bool, [True, False, None]))
case("and_untyped_none", lit(None) & x, [False, None, None], x=(Bool, [False, True, None]))
case("or_untyped_none", x | lit(None), [None, True, None], x=(Bool, [False, True, None]))

# when: a None condition counts as false; no branch and no otherwise gives None
case(
    "when",
    when(x > 0, "pos").otherwise("other"),
    ["pos", "other", "other"],
    x=(Int64, [1, -1, None]),
)
case("when_end", when(x > 0, 1).end(), [1, None, None], x=(Int64, [1, -1, None]))
case(
    "when_unified",
    when(x > 0, 1).when(x < 0, 2.5).otherwise(None),
    [1.0, 2.5, None],
    x=(Int64, [1, -1, 0]),
)
case("when_first_wins", when(x > 0, 1).when(x > 1, 2).otherwise(3), [1, 3], x=(Int64, [5, 0]))
case("when_none_condition", when(lit(None), 1).otherwise(2), [2])
case(
    "when_bool_column",
    when(x, y).otherwise(z),
    [1, 3, 3],
    x=(Bool, [True, False, None]),
    y=(Int32, [1, 2, 3]),
    z=(Int64, [3, 3, 3]),
)

# is_null, is_nan
case("is_null", is_null(x), [True, False, False], x=(Float64, [None, NAN, 1.0]))
case("is_null_untyped", is_null(lit(None)), [True])
case("is_null_string", is_null(x), [False, True], x=(String, ["", None]))
case("is_nan", is_nan(x), [False, True, False, False], x=(Float64, [None, NAN, 1.0, INF]))
case("is_nan_float32", is_nan(x), [True, False, False], x=(Float32, [NAN, None, 2.0]))
case("is_nan_untyped", is_nan(lit(None)), [False])

# division by zero; / is always float64
case(
    "div_int",
    x / y,
    [3.5, None, None, None, 9.223372036854775808e18, -4.0],
    x=(Int64, [7, 1, 0, -7, MIN, 8]),
    y=(Int64, [2, 0, 0, 0, -1, -2]),
)
case(
    "div_float",
    x / y,
    [None, None, None, NAN, None, NAN, -0.0, 1 / 3, INF, NAN],
    x=(Float64, [1.0, 0.0, -1.0, 1.0, NAN, INF, 1.0, 1.0, 1.0, NAN]),
    y=(Float64, [0.0, 0.0, -0.0, NAN, 0.0, INF, -INF, 3.0, 1e-320, NAN]),
)
case("div_int_by_float", x / y, [2.0, None], x=(Int32, [1, 1]), y=(Float32, [0.5, -0.0]))
case("div_literal_zero", x / 0, [None, None], x=(Float64, [1.0, NAN]))

# // and %: floor division and modulo, None for a zero divisor and for overflow
FD_X = [-7, 7, -7, 7, MIN, MIN, MAX, 5, 0, None, 3, MIN, MIN, -1]
FD_Y = [2, -2, -2, 2, -1, 1, -1, 0, 3, 1, None, 3, 2, MAX]
case(
    "floordiv",
    x // y,
    [-4, -4, 3, 3, None, MIN, -MAX, None, 0, None, None, MIN // 3, MIN // 2, -1],
    x=(Int64, FD_X),
    y=(Int64, FD_Y),
)
case(
    "mod",
    x % y,
    [1, -1, -1, 1, 0, 0, 0, None, 0, None, None, MIN % 3, 0, MAX - 1],
    x=(Int64, FD_X),
    y=(Int64, FD_Y),
)
case("floordiv_int32", x // y, [2**31, -1], x=(Int32, [MIN32, -1]), y=(Int32, [-1, 7]))
case("mod_int32", x % y, [0, 6], x=(Int32, [MIN32, -1]), y=(Int32, [-1, 7]))
case("floordiv_by_zero_literal", x // 0, [None], x=(Int64, [5]))
case("mod_by_zero_literal", x % 0, [None], x=(Int64, [5]))

# integer overflow in + - * // abs -x: None
case(
    "add_overflow",
    x + y,
    [None, None, -1, 3],
    x=(Int64, [MAX, MIN, MAX, 1]),
    y=(Int64, [1, -1, MIN, 2]),
)
case(
    "sub_overflow",
    x - y,
    [None, None, None, -1],
    x=(Int64, [MIN, MAX, 0, -1]),
    y=(Int64, [1, -1, MIN, 0]),
)
case(
    "mul_overflow",
    x * y,
    [None, None, None, None, 12, MIN],
    x=(Int64, [MAX, MIN, 2**32, -1, 3, 2**62]),
    y=(Int64, [2, -1, 2**31, MIN, 4, -2]),
)
case("neg_overflow", -x, [None, -MAX, 0], x=(Int64, [MIN, MAX, 0]))
case("abs_overflow", abs(x), [None, MAX, 1, None, 0], x=(Int64, [MIN, -MAX, -1, None, 0]))
case("int32_widened", x + y, [2**31], x=(Int32, [MAX32]), y=(Int32, [1]))
case("int32_mul_widened", x * y, [2**62], x=(Int32, [MIN32]), y=(Int32, [MIN32]))
case("int32_neg_widened", -x, [2**31], x=(Int32, [MIN32]))
case("int32_abs_widened", abs(x), [2**31], x=(Int32, [MIN32]))
case("literal_overflow", x + MAX, [None, MAX], x=(Int64, [1, 0]))

# NaN in comparisons: equal to NaN, greater than every number; -0.0 == 0.0
CX = [NAN, NAN, NAN, 1.0, INF, -0.0, 0.0, None, -INF]
CY = [NAN, INF, 1.0, NAN, NAN, 0.0, -0.0, 1.0, NAN]
for fn, want in {
    "eq": [True, False, False, False, False, True, True, None, False],
    "ne": [False, True, True, True, True, False, False, None, True],
    "lt": [False, False, False, True, True, False, False, None, True],
    "le": [True, False, False, True, True, True, True, None, True],
    "gt": [False, True, True, False, False, False, False, None, False],
    "ge": [True, True, True, False, False, True, True, None, False],
}.items():
    case(
        f"compare_float_{fn}",
        Call(fn, (x.node, y.node)),
        list(want),
        x=(Float64, CX),
        y=(Float64, CY),
    )
case(
    "compare_int_float_lt",
    x < y,
    [True, False, False, False],
    x=(Int64, [1, MAX, 2**53 + 1, 5]),
    y=(Float64, [NAN, 9.223372036854775807e18, 2.0**53, -INF]),
)
case(
    "compare_int_float_eq",
    x == y,
    [False, True, True],
    x=(Int64, [1, MAX, 2**53 + 1]),
    y=(Float64, [NAN, 9.223372036854775807e18, 2.0**53]),
)
case(
    "compare_float32_float64",
    x == y,
    [False, True],
    x=(Float32, [f32(0.1), 0.5]),
    y=(Float64, [0.1, 0.5]),
)
case("compare_int32_int64", x < y, [True, False], x=(Int32, [MIN32, 5]), y=(Int64, [MIN32 + 1, 5]))
case("compare_nan_literal", x == NAN, [True, False], x=(Float64, [NAN, 1.0]))
case("compare_untyped_none", x == lit(None), [None], x=(Int64, [1]))
case(
    "compare_bool",
    x < y,
    [True, False, False],
    x=(Bool, [False, True, False]),
    y=(Bool, [True, False, False]),
)

# -0.0: equal to 0.0; arithmetic keeps IEEE signed zeros; round/floor/ceil give 0.0
case("signed_zero_add", x + y, [0.0, -0.0], x=(Float64, [-0.0, -0.0]), y=(Float64, [0.0, -0.0]))
case("signed_zero_mul", x * y, [-0.0, 0.0], x=(Float64, [-0.0, -0.0]), y=(Float64, [1.0, -1.0]))
case("signed_zero_neg", -x, [-0.0, 0.0], x=(Float64, [0.0, -0.0]))
case("signed_zero_sub", x - y, [0.0, -0.0], x=(Float64, [0.0, -0.0]), y=(Float64, [0.0, 0.0]))
case("signed_zero_abs", abs(x), [0.0], x=(Float64, [-0.0]))
case("signed_zero_round", round(x), [0.0, 0.0, -1.0, 0.0], x=(Float64, [-0.3, -0.0, -0.5, -0.49]))
case("signed_zero_round_digits", round(x, 2), [0.0], x=(Float64, [-0.001]))
case("signed_zero_floor", floor(x), [0.0, 0.0], x=(Float64, [-0.0, 0.5]))
case("signed_zero_ceil", ceil(x), [0.0, 0.0, 0.0], x=(Float64, [-0.5, -0.0, -1e-300]))
case("signed_zero_literal", x + lit(-0.0), [-0.0, 0.0], x=(Float64, [-0.0, 0.0]))

# infinities: IEEE
case("inf_mul", x * 10, [INF, -INF], x=(Float64, [1e308, -1e308]))
case("inf_sub", x - y, [NAN, INF], x=(Float64, [INF, INF]), y=(Float64, [INF, -INF]))
case("inf_mul_zero", x * y, [NAN], x=(Float64, [INF]), y=(Float64, [0.0]))
case("inf_literal", lit(INF) > x, [True, False], x=(Float64, [1e308, NAN]))

# round: half away from zero on the exact binary value scaled by 10^digits
R0 = [
    2.5,
    -2.5,
    0.5,
    1.5,
    0.49999999999999994,
    -0.49999999999999994,
    4503599627370495.5,
    4503599627370497.0,
    NAN,
    INF,
    -INF,
    1e300,
    5e-324,
    None,
    -1.5,
]
case(
    "round",
    round(x),
    [
        3.0,
        -3.0,
        1.0,
        2.0,
        0.0,
        0.0,
        4503599627370496.0,
        4503599627370497.0,
        NAN,
        INF,
        -INF,
        1e300,
        0.0,
        None,
        -2.0,
    ],
    x=(Float64, R0),
)
case(
    "round_2",
    round(x, 2),
    [2.67, -2.67, 1.0, -1.0, 0.13, 0.28, 1e300, 1.7976931348623157e308, 0.0],
    x=(Float64, [2.675, -2.675, 1.005, -1.005, 0.125, 0.285, 1e300, 1.7976931348623157e308, 2e-15]),
)
case(
    "round_15",
    round(x, 15),
    [2e-15, -2e-15, 0.1, 1.0],
    x=(Float64, [2.5e-15, -2.5e-15, 0.1, 1.0000000000000002]),
)
case(
    "round_minus_1",
    round(x, -1),
    [1230.0, 20.0, -30.0, 10.0, 11258999068426250.0, -11258999068426250.0, 11258999068426260.0],
    x=(
        Float64,
        [1234.5, 15.0, -25.0, 5.0, 11258999068426254.0, -11258999068426254.0, 11258999068426256.0],
    ),
)
case("round_minus_15", round(x, -15), [2e15, 0.0, 1e300], x=(Float64, [1.5e15, 4e14, 1e300]))
case("round_int", round(x, 3), [7, None, MIN], x=(Int64, [7, None, MIN]))
case("round_int32", round(x), [7], x=(Int32, [7]))
case("round_float32", round(x), [3.0, 0.0], x=(Float32, [2.5, f32(0.1)]))

# floor, ceil
case(
    "floor",
    floor(x),
    [-3.0, 2.0, NAN, INF, -INF, 2.0**60, -4503599627370496.0, None, -1.0],
    x=(Float64, [-2.5, 2.5, NAN, INF, -INF, 2.0**60, -4503599627370495.5, None, -5e-324]),
)
case(
    "ceil",
    ceil(x),
    [-2.0, 3.0, 0.0, 1.0, NAN, 4503599627370497.0],
    x=(Float64, [-2.5, 2.5, -0.5, 1e-300, NAN, 4503599627370497.0]),
)
case("floor_int", floor(x), [MIN, 5], x=(Int64, [MIN, 5]))
case("ceil_int32", ceil(x), [3], x=(Int32, [3]))

# sqrt, log, log1p, exp, pow
case(
    "sqrt",
    sqrt(x),
    [2.0, None, -0.0, 0.0, NAN, INF, None, math.sqrt(2.0), None],
    x=(Float64, [4.0, -1.0, -0.0, 0.0, NAN, INF, -INF, 2.0, None]),
)
case("sqrt_int", sqrt(x), [3.0, None], x=(Int64, [9, -4]))
case(
    "log",
    log(x),
    [0.0, None, None, None, NAN, INF, None],
    x=(Float64, [1.0, 0.0, -0.0, -1.0, NAN, INF, -INF]),
)
case(
    "log1p",
    log1p(x),
    [0.0, -0.0, None, None, NAN, INF, None],
    x=(Float64, [0.0, -0.0, -1.0, -2.0, NAN, INF, -INF]),
)
case(
    "exp", exp(x), [1.0, 0.0, INF, NAN, INF, 1.0], x=(Float64, [0.0, -INF, INF, NAN, 1000.0, -0.0])
)
case(
    "pow",
    pow(x, y),
    [1.0, NAN, 1024.0, NAN, INF, -INF, 5e-324, None, 1.0, NAN, 0.0],
    x=(Float64, [NAN, 1.0, 2.0, -8.0, 0.0, -0.0, 2.0, None, 1.0, 1.0, 0.5]),
    y=(Float64, [0.0, NAN, 10.0, 1 / 3, -1.0, -1.0, -1074.0, 1.0, -0.0, INF, INF]),
)
case("pow_operator", x**y, [8.0, 0.5], x=(Int64, [2, 2]), y=(Int32, [3, -1]))

# clip
case(
    "clip",
    clip(x, 0.0, 1),
    [NAN, -0.0, 0.0, 0.5, 1.0, 1.0, 0.0, None],
    x=(Float64, [NAN, -0.0, -1.0, 0.5, 2.0, INF, -INF, None]),
)
case("clip_int_upper", clip(x, None, 3), [3, 1, None], x=(Int64, [5, 1, None]))
case("clip_int_lower", clip(x, -1, None), [-1, 4], x=(Int64, [-5, 4]))
case("clip_int_float_bound", clip(x, 0.5, None), [0.5, 1.0], x=(Int64, [0, 1]))
case("clip_no_bounds", clip(x, None, None), [5, None], x=(Int32, [5, None]))
case("clip_int32", clip(x, 0, 10), [0, 10, 3], x=(Int32, [MIN32, MAX32, 3]))
case("clip_zero_bound", clip(x, -0.0, None), [0.0, -0.0], x=(Float64, [0.0, -0.0]))

# casts: float -> int truncates; NaN, infinities, out of range: None
case(
    "cast_float_int64",
    x.cast(Int64),
    [2, -2, None, None, None, None, MIN, None, 0, None],
    x=(Float64, [2.9, -2.9, NAN, INF, -INF, 1e19, -(2.0**63), 2.0**63, -0.0, None]),
)
case(
    "cast_float_int32",
    x.cast(Int32),
    [MAX32, MIN32, None, None, 1],
    x=(Float64, [2147483647.9, -2147483648.9, 2147483648.0, -2147483649.0, 1.5]),
)
case(
    "cast_float32_int64", x.cast(Int64), [10_000_000_000, None, -2], x=(Float32, [1e10, NAN, -2.5])
)
case(
    "cast_int64_int32",
    x.cast(Int32),
    [None, MIN32, None, MAX32, None, 0],
    x=(Int64, [2**31, MIN32, MIN32 - 1, MAX32, MAX, 0]),
)
case("cast_int32_int64", x.cast(Int64), [MIN32], x=(Int32, [MIN32]))
case(
    "cast_float64_float32",
    x.cast(Float32),
    [INF, f32(0.1), INF, FLT_MAX, -INF, NAN, -0.0, 0.0, None],
    x=(
        Float64,
        [1e300, 0.1, 3.4028235677973366e38, 3.4028235677973362e38, -1e300, NAN, -0.0, 1e-50, None],
    ),
)
case("cast_float32_float64", x.cast(Float64), [0.10000000149011612], x=(Float32, [f32(0.1)]))
case(
    "cast_int_float64",
    x.cast(Float64),
    [2.0**53, 2.0**63, -(2.0**63)],
    x=(Int64, [2**53 + 1, MAX, MIN]),
)
case(
    "cast_int_float32",
    x.cast(Float32),
    [16777216.0, 2.0**63, 16777220.0],
    x=(Int64, [16777217, MAX, 16777219]),
)
case("cast_int32_float32", x.cast(Float32), [16777216.0], x=(Int32, [16777217]))
case("cast_bool_int32", x.cast(Int32), [1, 0, None], x=(Bool, [True, False, None]))
case("cast_bool_int64", x.cast(Int64), [1, 0], x=(Bool, [True, False]))
case("cast_bool_float64", x.cast(Float64), [1.0, 0.0], x=(Bool, [True, False]))
case("cast_bool_float32", x.cast(Float32), [1.0], x=(Bool, [True]))
# string -> int: ASCII digits with an optional sign only; out of range is None
S_INT = [
    "+12",
    " 12",
    "12 ",
    "1.5",
    "١٢",
    "12\n",
    "99999999999999999999",
    "-9223372036854775808",
    "9223372036854775808",
    "",
    "-",
    "007",
    "-0",
    "1e3",
    "0x10",
    None,
    "1_000",
    "\t1",
]
case(
    "cast_string_int64",
    x.cast(Int64),
    [
        12,
        None,
        None,
        None,
        None,
        None,
        None,
        MIN,
        None,
        None,
        None,
        7,
        0,
        None,
        None,
        None,
        None,
        None,
    ],
    x=(String, S_INT),
)
case(
    "cast_string_int32",
    x.cast(Int32),
    [MAX32, None, MIN32, 0, None],
    x=(String, ["2147483647", "2147483648", "-2147483648", "+0", "-2147483649"]),
)
# string -> float: digits, sign, fraction, exponent; nearest float64
S_FLOAT = [
    "-1.5e3",
    ".5",
    "1.",
    " 1",
    "1 ",
    "nan",
    "NaN",
    "inf",
    "Infinity",
    "1_000",
    "0x1p3",
    "1e999",
    "-1e999",
    "1d",
    "1f",
    "-0",
    ".",
    "e5",
    "1e",
    "1e+5",
    "+.5E-2",
    "",
    "1.5\n",
    None,
    "1e-400",
    "0.1",
    "2.4703282292062328e-324",
    "9007199254740993",
]
case(
    "cast_string_float64",
    x.cast(Float64),
    [
        -1500.0,
        0.5,
        1.0,
        None,
        None,
        None,
        None,
        None,
        None,
        None,
        None,
        INF,
        -INF,
        None,
        None,
        -0.0,
        None,
        None,
        None,
        100000.0,
        0.005,
        None,
        None,
        None,
        0.0,
        0.1,
        5e-324,
        9007199254740992.0,
    ],
    x=(String, S_FLOAT),
)
# a float32 rounds the float64: 1 + 2**-24 + tiny is 1 + 2**-24 as a float64, a tie
case(
    "cast_string_float32",
    x.cast(Float32),
    [1.0, f32(0.1), INF, None],
    x=(String, ["1.0000000596046447753906250000000001", "0.1", "3.4028235677973366e38", "NaN"]),
)
case(
    "cast_string_bool",
    x.cast(Bool),
    [True, False, None, None, None, None, None],
    x=(String, ["true", "false", "True", " true", "1", "", None]),
)
case(
    "cast_float_bool",
    x.cast(Bool),
    [False, False, True, True, True, True, None],
    x=(Float64, [0.0, -0.0, NAN, 2.0, 0.5, INF, None]),
)
case("cast_int_bool", x.cast(Bool), [False, True, None, True], x=(Int64, [0, -1, None, MIN]))
case("cast_float32_bool", x.cast(Bool), [False, True], x=(Float32, [0.0, NAN]))
case(
    "cast_int_string",
    x.cast(String),
    ["-12", "-9223372036854775808", "0", None],
    x=(Int64, [-12, MIN, 0, None]),
)
case("cast_int32_string", x.cast(String), ["7", "-2147483648"], x=(Int32, [7, MIN32]))
case("cast_bool_string", x.cast(String), ["true", "false"], x=(Bool, [True, False]))
case("cast_same_type", x.cast(Float64), [-0.0, NAN], x=(Float64, [-0.0, NAN]))
case("cast_typed_null", lit(None, Int64), [None])
case("cast_typed_null_in_coalesce", coalesce(lit(None, Int32), x), [3], x=(Int64, [3]))

# lower, upper: ASCII letters only; length in code points; order by code point
case(
    "lower",
    lower(x),
    ["äbcé ẞ", "İstanbul", "ǅ", "abc xyz", "ﬁ"],
    x=(String, ["äbCé ẞ", "İSTANBUL", "ǅ", "ABC xyz", "ﬁ"]),
)
case("lower_non_ascii", lower(x), ["Äé"], x=(String, ["Äé"]))
case(
    "upper",
    upper(x),
    ["STRAßE", "\u0131I", "µ", "ABC", "ÿ"],
    x=(String, ["straße", "\u0131i", "µ", "abc", "ÿ"]),
)
case("length", length(x), [3, 0, 2, None, 1], x=(String, ["a😀é", "", "e\u0301", None, "\x00"]))
case(
    "string_order",
    x < y,
    [True, True, True, True, True, False, False],
    x=(String, ["é", "\uffff", "Z", "a", "", "ab", "b"]),
    y=(String, ["😀", "😀", "a", "b", "a", "a", "abc"]),
)
case(
    "string_eq_no_normalization",
    x == y,
    [True, False],
    x=(String, ["\u00e9", "\u00e9"]),
    y=(String, ["\u00e9", "e\u0301"]),
)

# concat, contains, starts_with, ends_with
case(
    "concat",
    concat(x, y, "!"),
    ["ab!", None, "!", None],
    x=(String, ["a", None, "", "é"]),
    y=(String, ["b", "c", "", None]),
)
case(
    "contains",
    contains(x, y),
    [True, True, True, None, None, False],
    x=(String, ["abc", "abc", "", None, "abc", "é"]),
    y=(String, ["b", "", "", "a", None, "e"]),
)
case(
    "starts_with",
    starts_with(x, y),
    [True, False, True, None],
    x=(String, ["abc", "abc", "abc", "a"]),
    y=(String, ["ab", "bc", "", None]),
)
case(
    "ends_with",
    ends_with(x, y),
    [True, False, True],
    x=(String, ["abc", "abc", "😀"]),
    y=(String, ["bc", "ab", "😀"]),
)

# bytes: == and !=
case(
    "bytes_eq",
    x == b"\x00\xff",
    [True, False, None, False],
    x=(Bytes, [b"\x00\xff", b"\x00", None, b""]),
)
case("bytes_ne", x != y, [False, True], x=(Bytes, [b"ab", b""]), y=(Bytes, [b"ab", b"\x00"]))

# time parts in a zone: DST gap and overlap, ISO weekdays, years 1 and 9999
GAP_BEFORE, GAP_AFTER = utc(2024, 3, 31, 0, 59, 59), utc(2024, 3, 31, 1)  # Paris 01:59:59, 03:00
OVERLAP_1, OVERLAP_2 = utc(2024, 10, 27, 0, 30), utc(2024, 10, 27, 1, 30)  # Paris 02:30 twice
DST = [GAP_BEFORE, GAP_AFTER, OVERLAP_1, OVERLAP_2]
case("hour_paris", hour(x, tz="Europe/Paris"), [1, 3, 2, 2], x=(UnixTimestamp, DST))
case("minute_paris", minute(x, tz="Europe/Paris"), [59, 0, 30, 30], x=(UnixTimestamp, DST))
case("second_paris", second(x, tz="Europe/Paris"), [59, 0, 0, 0], x=(UnixTimestamp, DST))
case("day_paris", day(x, tz="Europe/Paris"), [31, 31, 27, 27], x=(UnixTimestamp, DST))
case("hour_utc", hour(x), [0, 1, 0, 1], x=(UnixTimestamp, DST))
ENDS = [MIN_MICROS, MAX_MICROS, -1, 0, utc(2023, 11, 14, 22, 13, 20) + 123456]
TIME_PART_ENDS: list[tuple[str, Callable[[Expr], Expr], list[object]]] = [
    ("year", year, [1, 9999, 1969, 1970, 2023]),
    ("month", month, [1, 12, 12, 1, 11]),
    ("day", day, [1, 31, 31, 1, 14]),
    ("hour", hour, [0, 23, 23, 0, 22]),
    ("minute", minute, [0, 59, 59, 0, 13]),
    ("second", second, [0, 59, 59, 0, 20]),
    ("day_of_year", day_of_year, [1, 365, 365, 1, 318]),
    ("day_of_week", day_of_week, [1, 5, 3, 4, 2]),
    ("is_weekend", is_weekend, [False, False, False, False, False]),
]
for fn, part, parts in TIME_PART_ENDS:
    case(f"{fn}_ends", part(x), parts, x=(UnixTimestamp, ENDS))
WEEK = [utc(2024, 1, 1), utc(2024, 1, 6), utc(2024, 1, 7, 23, 59), utc(2024, 1, 5, 10), None]
case("day_of_week", day_of_week(x), [1, 6, 7, 5, None], x=(UnixTimestamp, WEEK))
case("is_weekend", is_weekend(x), [False, True, True, False, None], x=(UnixTimestamp, WEEK))
case(
    "day_of_week_kiritimati",
    day_of_week(x, tz="Pacific/Kiritimati"),
    [1, 6, 1, 6, None],
    x=(UnixTimestamp, WEEK),
)
case(
    "is_weekend_kiritimati",
    is_weekend(x, tz="Pacific/Kiritimati"),
    [False, True, False, True, None],
    x=(UnixTimestamp, WEEK),
)
case("new_york_epoch", Call("year", (x.node,), "America/New_York"), [1969], x=(UnixTimestamp, [0]))
case(
    "new_york_epoch_day_of_year",
    day_of_year(x, tz="America/New_York"),
    [365],
    x=(UnixTimestamp, [0]),
)
case(
    "new_york_epoch_day_of_week", day_of_week(x, tz="America/New_York"), [3], x=(UnixTimestamp, [0])
)
# Local mean time before a zone's first rule: Paris was 00:09:21 ahead of UTC.
case("paris_local_mean_time", second(x, tz="Europe/Paris"), [21], x=(UnixTimestamp, [MIN_MICROS]))
# An instant whose local time leaves the years 1 to 9999 still has parts (year 0 or 10000).
case(
    "year_10000_tokyo",
    year(x, tz="Asia/Tokyo"),
    [10000, 1],
    x=(UnixTimestamp, [MAX_MICROS, MIN_MICROS]),
)
case("year_0_new_york", year(x, tz="America/New_York"), [0], x=(UnixTimestamp, [MIN_MICROS]))
case(
    "day_of_year_0_new_york",
    day_of_year(x, tz="America/New_York"),
    [366],
    x=(UnixTimestamp, [MIN_MICROS]),
)
# An input instant outside the years 1 to 9999 has no parts.
case(
    "year_outside",
    year(x),
    [None, None, None, 9999],
    x=(UnixTimestamp, [MAX_MICROS + 1, MIN_MICROS - 1, MAX, MAX_MICROS]),
)
case("hour_outside_tokyo", hour(x, tz="Asia/Tokyo"), [None, None], x=(UnixTimestamp, [MAX, MIN]))

# timestamps and durations
US = timedelta(microseconds=1)
case(
    "shift_add",
    x + US,
    [None, MAX_MICROS, None, 1],
    x=(UnixTimestamp, [MAX_MICROS, MAX_MICROS - 1, None, 0]),
)
case("shift_sub", x - US, [None, MIN_MICROS], x=(UnixTimestamp, [MIN_MICROS, MIN_MICROS + 1]))
case("shift_duration_first", lit(timedelta(days=1)) + x, [86_400_000_000], x=(UnixTimestamp, [0]))
case(
    "shift_far",
    x + (y - z),
    [None, None, MAX_MICROS],
    x=(UnixTimestamp, [0, MAX_MICROS, MIN_MICROS]),
    y=(UnixTimestamp, [MAX_MICROS] * 3),
    z=(UnixTimestamp, [MIN_MICROS] * 3),
)
case("shift_overflow", x + dur(MAX), [None, None], x=(UnixTimestamp, [1, MIN_MICROS]))
case("shift_outside_input", x - dur(1), [None], x=(UnixTimestamp, [MAX]))
case(
    "timestamp_difference",
    x - y,
    [MAX_MICROS - MIN_MICROS, -1, None],
    x=(UnixTimestamp, [MAX_MICROS, 0, None]),
    y=(UnixTimestamp, [MIN_MICROS, 1, 0]),
)
case(
    "timestamp_difference_overflow",
    x - y,
    [None],
    x=(UnixTimestamp, [MAX]),
    y=(UnixTimestamp, [-1]),
)
case(
    "total_seconds",
    total_seconds(x - y),
    [1.5, -1e-06, None],
    x=(UnixTimestamp, [1_500_000, 0, None]),
    y=(UnixTimestamp, [0, 1, 0]),
)
case("total_seconds_rounded", total_seconds(dur(2**53 + 1)), [9007199254.740992])
case("duration_add_overflow", dur(MAX) + dur(1), [None])
case("duration_neg", -(x - y), [-5, None], x=(UnixTimestamp, [5, MAX]), y=(UnixTimestamp, [0, MIN]))
case(
    "duration_compare",
    (x - y) > timedelta(0),
    [True, False],
    x=(UnixTimestamp, [5, 0]),
    y=(UnixTimestamp, [0, 0]),
)
case(
    "duration_sum",
    total_seconds((x - y) + timedelta(seconds=1)),
    [2.0],
    x=(UnixTimestamp, [1_000_000]),
    y=(UnixTimestamp, [0]),
)
case(
    "timestamp_compare",
    x < y,
    [True, False, None],
    x=(UnixTimestamp, [MIN_MICROS, 5, None]),
    y=(UnixTimestamp, [MAX_MICROS, 5, 0]),
)
case(
    "timestamp_literal",
    x == datetime(2024, 1, 1, tzinfo=UTC),
    [True, False],
    x=(UnixTimestamp, [utc(2024, 1, 1), 0]),
)
case(
    "timestamp_literal_naive_is_utc",
    x == datetime(2024, 1, 1),
    [True],
    x=(UnixTimestamp, [utc(2024, 1, 1)]),
)
case("timestamp_null_shift", x + lit(None), [None], x=(UnixTimestamp, [0]))

# literals and the types they take
case("literal_nan", lit(NAN) == x, [True, False], x=(Float64, [NAN, 1.0]))
case("literal_subnormal", x * 5e-324, [5e-324, -0.0], x=(Float64, [1.0, -0.5]))
case("literal_negative_zero", lit(-0.0) + x, [-0.0], x=(Float64, [-0.0]))
case("literal_bytes", coalesce(x, b"\x01\x02"), [b"\x01\x02", b""], x=(Bytes, [None, b""]))
case("literal_string", concat(x, "é😀"), ["aé😀"], x=(String, ["a"]))
case("literal_int_min", x - MIN, [MAX, None], x=(Int64, [-1, 0]))
case("literal_only", lit(7) // 2 + 1, [4])
case("coalesce_untyped", coalesce(lit(None), x), [None, 3], x=(Int64, [None, 3]))
case("coalesce_widens", coalesce(x, 0.5), [0.5, 3.0], x=(Int64, [None, 3]))
case(
    "coalesce_three",
    coalesce(x, y, z),
    [1, 2, 3, None],
    x=(Int32, [1, None, None, None]),
    y=(Int64, [9, 2, None, None]),
    z=(Int32, [9, 9, 3, None]),
)
case("coalesce_nan_is_a_value", coalesce(x, 1.0), [NAN], x=(Float64, [NAN]))
case(
    "coalesce_float32",
    coalesce(x, y),
    [f32(0.1), 0.5],
    x=(Float32, [f32(0.1), None]),
    y=(Float32, [0.25, 0.5]),
)
case("passthrough_int32", x, [MIN32, None], x=(Int32, [MIN32, None]))
case("passthrough_float32", x, [f32(0.1)], x=(Float32, [f32(0.1)]))
case("passthrough_bytes", x, [b"\x00"], x=(Bytes, [b"\x00"]))
case("passthrough_timestamp", x, [MAX_MICROS], x=(UnixTimestamp, [MAX_MICROS]))


def _chunks(cases: list[Case], max_fields: int = 100) -> list[list[Case]]:
    """Cases in groups whose DataFrames (inputs and results) have at most
    spark.sql.codegen.maxFields (100) columns, above which Spark skips whole-stage code
    generation."""
    chunks: list[list[Case]] = [[]]
    fields = 0
    for c in cases:
        size = len(c.inputs) + 1
        if fields + size > max_fields:
            chunks.append([])
            fields = 0
        chunks[-1].append(c)
        fields += size
    return chunks


def run_cases(spark: SparkSession, cases: list[Case]) -> dict[str, tuple[str, list[object]]]:
    """Each case's Spark type and values, one DataFrame (one job) per chunk of cases."""
    results: dict[str, tuple[str, list[object]]] = {}
    for chunk in _chunks(cases):
        columns = {
            f"c{i}_{name}": spec for i, c in enumerate(chunk) for name, spec in c.inputs.items()
        }
        frame = input_frame(spark, columns)
        selected = []
        for i, c in enumerate(chunk):
            inputs = {name: F.col(f"c{i}_{name}") for name in c.inputs}
            types = {name: t for name, (t, _) in c.inputs.items()}
            selected.append(to_column(c.node, inputs, types).alias(f"r{i}"))
        result = frame.select(*selected)
        values = collect(result)
        fields = {f.name: f.dataType.simpleString() for f in result.schema.fields}
        for i, c in enumerate(chunk):
            results[c.name] = (fields[f"r{i}"], values[f"r{i}"][: len(c.expected)])
    return results


def spark_type_of_types(node: Node, types: Mapping[str, EType]) -> str:
    """The Spark type a compiled expression must have: its inferred type's."""
    t = infer(node, types)
    if t == Duration:
        return "bigint"
    assert isinstance(t, ScalarType | ArrayType)
    return to_spark_ddl(t).lower()


def spark_type_of(node: Node, inputs: Mapping[str, tuple[EType, list[object]]]) -> str:
    return spark_type_of_types(node, {name: etype for name, (etype, _) in inputs.items()})


@pytest.fixture(scope="module", params=list(MODES))
def pinned(
    request: pytest.FixtureRequest, spark: SparkSession
) -> dict[str, tuple[str, list[object]]]:
    with spark_conf(spark, MODES[request.param]):
        return run_cases(spark, CASES)


def test_case_names_are_unique() -> None:
    assert len({c.name for c in CASES}) == len(CASES)


@pytest.mark.parametrize("pinned_case", CASES, ids=[c.name for c in CASES])
def test_pinned(pinned: dict[str, tuple[str, list[object]]], pinned_case: Case) -> None:
    spark_type, values = pinned[pinned_case.name]
    assert spark_type == spark_type_of(pinned_case.node, pinned_case.inputs)
    mismatches = [
        (row, got, want)
        for row, (got, want) in enumerate(zip(values, pinned_case.expected, strict=True))
        if not same(got, want)
    ]
    assert mismatches == [], f"(row, Spark, expected): {mismatches}"


# --- errors at compile time ----------------------------------------------------------------


def test_zone_no_jvm_knows_is_refused_at_compile_time(spark: SparkSession) -> None:
    # "Factory" is in every tzdata and in no JVM: the language refuses it before Spark
    node = Call("hour", (col("x").node,), "Factory")
    with pytest.raises(ExpressionTypeError, match="unknown time zone 'Factory'"):
        to_column(node, {"x": F.col("x")}, {"x": UnixTimestamp})


def test_ill_typed_expression_is_refused_at_compile_time(spark: SparkSession) -> None:
    with pytest.raises(ExpressionTypeError, match="does not join strings"):
        to_column((col("x") + "a").node, {"x": F.col("x")}, {"x": Float64})


# --- Spark against the online evaluator ----------------------------------------------------

TRANSCENDENTAL = ("log", "log1p", "exp", "pow")


def arrow_values(array: pa.Array | pa.ChunkedArray) -> list[object]:
    """Python values of an Arrow column; timestamps and durations as microseconds."""
    if pa.types.is_timestamp(array.type) or pa.types.is_duration(array.type):
        array = array.cast(pa.int64())
    values: list[object] = array.to_pylist()
    return values


def _ordered(value: float) -> int:
    """The double's position in the order of all doubles (adjacent doubles differ by 1)."""
    (bits,) = struct.unpack("<q", struct.pack("<d", value))
    return int(bits) if bits >= 0 else -(int(bits) & 0x7FFF_FFFF_FFFF_FFFF)


def within_one_ulp(got: object, want: object) -> bool:
    """The bound docs/expressions.md gives a transcendental function: each engine is
    within 1 ulp of the exact result and rounds faithfully (to one of the two doubles
    around it), so the two are at most 1 ulp apart. NaN, infinities, None and signed
    zeros must agree exactly."""
    if not (isinstance(got, float) and isinstance(want, float)):
        return same(got, want)
    if not (math.isfinite(got) and math.isfinite(want)) or got == 0.0 or want == 0.0:
        return same(got, want)
    return abs(_ordered(got) - _ordered(want)) <= 1


def compare_with_evaluator(
    nodes: list[Node],
    spark_values: list[list[object]],
    inputs: Mapping[str, pa.Array],
    types: Mapping[str, EType],
    length: int,
) -> list[str]:
    """Every row where Spark and the evaluator disagree, described; transcendental
    roots compared within 1 ulp, everything else exactly."""
    problems = []
    for node, got_values in zip(nodes, spark_values, strict=True):
        want_values = arrow_values(Evaluator(node, types)(inputs, length))
        agree = within_one_ulp if isinstance(node, Call) and node.fn in TRANSCENDENTAL else same
        for row, (got, want) in enumerate(zip(got_values, want_values, strict=True)):
            if not agree(got, want):
                used = {name: inputs[name][row].as_py() for name in columns(node)}
                problems.append(
                    f"{render(node)} at row {row} {used}: Spark {got!r}, evaluator {want!r}"
                )
    return problems


def run_on_spark(
    spark: SparkSession,
    nodes: list[Node],
    inputs: Mapping[str, pa.Array],
    types: Mapping[str, EType],
) -> tuple[list[str], list[list[object]]]:
    """The nodes' Spark types and values over the input columns, in one select."""
    frame = spark.createDataFrame(pa.table(dict(inputs)))
    spark_columns = {name: F.col(name) for name in inputs}
    selected = [to_column(n, spark_columns, types).alias(f"r{i}") for i, n in enumerate(nodes)]
    result = frame.select(*selected)
    values = collect(result)
    spark_types = [f.dataType.simpleString() for f in result.schema.fields]
    return spark_types, [values[f"r{i}"] for i in range(len(nodes))]


# --- extreme inputs: every function, ANSI on, interpreted and compiled -----------------------

SWEEP_ROWS = 1024
SWEEP_ZONES = ("UTC", "Europe/Paris", "America/New_York", "Pacific/Kiritimati", "Etc/GMT+12")
SWEEP_TIMESTAMPS = [
    MIN_MICROS,
    MAX_MICROS,
    MIN_MICROS + 86_399_999_999,
    MAX_MICROS - 86_399_999_999,
    0,
    -1,
    GAP_BEFORE,
    GAP_AFTER,
    OVERLAP_1,
    OVERLAP_2,
    utc(2024, 3, 10, 7),  # New York's spring change
    utc(2024, 1, 6, 11, 59, 59),
    MAX_MICROS + 1,  # outside the years 1 to 9999: only an input can hold one
    MIN,
    MAX,
    None,
]


def _cycled(values: Sequence[object], index: Callable[[int], int]) -> list[object]:
    return [values[index(r) % len(values)] for r in range(SWEEP_ROWS)]


def sweep_inputs() -> dict[str, pa.Array]:
    """Columns of edge values; the pairs (i64, j64) and (f64, g64) meet in every
    combination, other columns in many."""
    ints = [*INT64_SPECIAL, None]
    floats = [*FLOAT_SPECIAL, None]
    texts = [*STRING_SPECIAL, None]
    columns: dict[str, tuple[EType, list[object]]] = {
        "i32": (Int32, _cycled([*INT32_SPECIAL, None], lambda r: r * 7)),
        "i64": (Int64, _cycled(ints, lambda r: r)),
        "j64": (Int64, _cycled(ints, lambda r: r // len(ints))),
        "f32": (Float32, _cycled([*FLOAT32_SPECIAL, None], lambda r: r * 5)),
        "f64": (Float64, _cycled(floats, lambda r: r)),
        "g64": (Float64, _cycled(floats, lambda r: r // len(floats))),
        "s": (String, _cycled(texts, lambda r: r)),
        "t": (String, _cycled(texts, lambda r: r // len(texts) + r)),
        "b": (Bool, _cycled([True, False, None], lambda r: r)),
        "c": (Bool, _cycled([True, False, None], lambda r: r // 3)),
        "ts": (UnixTimestamp, _cycled(SWEEP_TIMESTAMPS, lambda r: r)),
        "ts2": (UnixTimestamp, _cycled(SWEEP_TIMESTAMPS, lambda r: r // len(SWEEP_TIMESTAMPS))),
        "y": (Bytes, _cycled([b"", b"\x00", b"ab", None], lambda r: r)),
    }
    return {name: arrow_column(t, values) for name, (t, values) in columns.items()}


SWEEP_TYPES: dict[str, EType] = {
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


def sweep_nodes() -> list[Node]:
    """Every function of the language over the edge columns (and a few constants)."""

    def c(name: str) -> Node:
        return Col(name)

    def call(fn: str, *args: Node, option: str | int | None = None) -> Node:
        return Call(fn, args, option)

    nodes: list[Node] = []
    numeric_pairs = [("i64", "j64"), ("i32", "i64"), ("i64", "f64"), ("f64", "g64"),
                     ("f32", "f64"), ("g64", "i32"), ("f32", "f32")]  # fmt: skip
    for a, b in numeric_pairs:
        for fn in ("add", "sub", "mul", "div", "pow", "eq", "ne", "lt", "le", "gt", "ge"):
            nodes.append(call(fn, c(a), c(b)))
    for a, b in [("i64", "j64"), ("i32", "i64"), ("j64", "i32"), ("i32", "i32")]:
        nodes += [call("floordiv", c(a), c(b)), call("mod", c(a), c(b))]
    zero, nothing = int_lit(0), null_lit()
    nodes += [call("div", c("f64"), zero), call("floordiv", c("i64"), zero),
              call("mod", c("i64"), zero), call("add", c("i64"), nothing)]  # fmt: skip
    for a in ("i32", "i64", "f32", "f64"):
        floating = a.startswith("f")
        for fn in ("neg", "abs", "floor", "ceil", "sqrt", "log", "log1p", "exp"):
            nodes.append(call(fn, c(a)))
        for digits in (-15, -1, 0, 1, 2, 15) if floating else (0, 3):
            nodes.append(call("round", c(a), option=digits))
        for target in ("int32", "int64", "float32", "float64", "string", "bool"):
            if not (floating and target == "string"):
                nodes.append(call("cast", c(a), option=target))
        bounds: list[tuple[float | None, float | None]] = [(0, 10), (None, -1), (MIN, None)]
        if floating:
            bounds += [(-0.0, None), (None, 2.5)]
            nodes.append(call("is_nan", c(a)))
        for low, high in bounds:
            lits = [
                null_lit() if v is None else float_lit(v) if isinstance(v, float) else int_lit(v)
                for v in (low, high)
            ]
            nodes.append(call("clip", c(a), *lits))
    for target in ("int32", "int64", "float32", "float64", "bool"):
        nodes += [call("cast", c("s"), option=target), call("cast", c("b"), option=target)]
    nodes.append(call("cast", c("b"), option="string"))
    nodes += [call(fn, c("s")) for fn in ("lower", "upper", "length")]
    nodes += [call("concat", c("s"), c("t")), call("concat", c("s"), c("t"), c("s"))]
    nodes += [call(fn, c("s"), c("t")) for fn in ("contains", "starts_with", "ends_with")]
    for fn in ("eq", "ne", "lt", "le", "gt", "ge"):
        nodes += [call(fn, c("s"), c("t")), call(fn, c("b"), c("c")), call(fn, c("ts"), c("ts2"))]
    nodes += [call("eq", c("y"), Lit("0001", "bytes")), call("ne", c("y"), Lit("", "bytes"))]
    nodes += [call("and", c("b"), c("c")), call("or", c("b"), c("c")), call("not", c("b"))]
    nodes += [call("is_null", c(name)) for name in ("f64", "s", "ts", "y")]
    for part in ("year", "month", "day", "hour", "minute", "second", "day_of_week",
                 "day_of_year", "is_weekend"):  # fmt: skip
        nodes += [call(part, c("ts"), option=zone) for zone in SWEEP_ZONES]
    span = call("sub", c("ts"), c("ts2"))
    nodes += [span, call("total_seconds", span), call("add", c("ts"), span),
              call("sub", c("ts2"), span), call("add", span, c("ts2")), call("neg", span),
              call("gt", span, Lit(0, "duration")), call("add", span, span)]  # fmt: skip
    nodes += [call("coalesce", c("i32"), c("f64")), call("coalesce", c("s"), null_lit()),
              call("case", c("b"), c("i64"), c("c"), c("f32"), c("g64")),
              call("case", c("b"), c("s"), null_lit())]  # fmt: skip
    return nodes


SWEEP_MODES = ("ansi", "ansi-codegen")


@pytest.fixture(scope="module")
def sweep(spark: SparkSession) -> dict[str, tuple[list[str], list[list[object]]]]:
    """The sweep's Spark types and values in each ANSI-on mode: no query may raise."""
    nodes, inputs = sweep_nodes(), sweep_inputs()
    results: dict[str, tuple[list[str], list[list[object]]]] = {}
    for mode in SWEEP_MODES:
        spark_types: list[str] = []
        values: list[list[object]] = []
        with spark_conf(spark, MODES[mode]):
            for start in range(0, len(nodes), 80):
                chunk = nodes[start : start + 80]
                chunk_types, chunk_values = run_on_spark(spark, chunk, inputs, SWEEP_TYPES)
                spark_types += chunk_types
                values += chunk_values
        results[mode] = (spark_types, values)
    return results


def test_sweep_reaches_every_function() -> None:
    reached = {n.fn for node in sweep_nodes() for n in _calls(node)}
    assert reached == set(FUNCTIONS)


def _calls(node: Node) -> Iterator[Call]:
    if isinstance(node, Call):
        yield node
        for arg in node.args:
            yield from _calls(arg)


def test_sweep_never_raises_and_gives_the_inferred_types(
    sweep: dict[str, tuple[list[str], list[list[object]]]],
) -> None:
    nodes = sweep_nodes()
    expected_types = [spark_type_of_types(n, SWEEP_TYPES) for n in nodes]
    for mode in SWEEP_MODES:
        spark_types, _ = sweep[mode]
        assert spark_types == expected_types, mode


def test_sweep_is_the_same_interpreted_and_compiled(
    sweep: dict[str, tuple[list[str], list[list[object]]]],
) -> None:
    (_, interpreted), (_, compiled) = (sweep[mode] for mode in SWEEP_MODES)
    different = [
        f"{render(node)} at row {row}: {a!r} interpreted, {b!r} compiled"
        for node, xs, ys in zip(sweep_nodes(), interpreted, compiled, strict=True)
        for row, (a, b) in enumerate(zip(xs, ys, strict=True))
        if not same(a, b)
    ]
    assert different == []


def test_sweep_matches_the_evaluator(
    sweep: dict[str, tuple[list[str], list[list[object]]]],
) -> None:
    _, values = sweep["ansi-codegen"]
    problems = compare_with_evaluator(
        sweep_nodes(), values, sweep_inputs(), SWEEP_TYPES, SWEEP_ROWS
    )
    assert problems == [], "\n".join(problems[:40]) + f"\n({len(problems)} in all)"


# --- properties: random expressions, random rows -------------------------------------------


def _with_codegen(spark: SparkSession, codegen: bool) -> Any:
    rule = _CONVERT_TO_LOCAL if codegen else None
    return spark_conf(spark, {"spark.sql.optimizer.excludedRules": rule})


@pytest.fixture(scope="module")
def empty_inputs(spark: SparkSession) -> DataFrame:
    return spark.createDataFrame(pa.table(to_arrow_inputs([])))


@settings(max_examples=30)
@given(nodes=st.lists(expressions(INPUT_TYPES, exact=False, max_depth=4), min_size=1, max_size=8))
def test_every_well_typed_expression_compiles_to_its_type(
    empty_inputs: DataFrame, nodes: list[Node]
) -> None:
    """Compiling and analysing (no job runs): never an error, always the inferred type."""
    spark_columns = {name: F.col(name) for name in INPUT_TYPES}
    selected = [
        to_column(n, spark_columns, INPUT_TYPES).alias(f"r{i}") for i, n in enumerate(nodes)
    ]
    fields = empty_inputs.select(*selected).schema.fields
    assert [f.dataType.simpleString() for f in fields] == [
        spark_type_of_types(n, INPUT_TYPES) for n in nodes
    ]


@settings(max_examples=50)
@given(
    nodes=st.lists(expressions(INPUT_TYPES, exact=True), min_size=1, max_size=6),
    data=rows(10, 50),
    codegen=st.booleans(),
)
def test_spark_equals_the_evaluator(
    spark: SparkSession, nodes: list[Node], data: list[dict[str, object]], codegen: bool
) -> None:
    """Exact expressions: integers, strings, booleans and timestamps equal, floats bit
    for bit (NaN equal to NaN), with ANSI on, interpreted or compiled."""
    inputs = to_arrow_inputs(data)
    with _with_codegen(spark, codegen):
        spark_types, values = run_on_spark(spark, nodes, inputs, INPUT_TYPES)
    assert spark_types == [spark_type_of_types(n, INPUT_TYPES) for n in nodes]
    problems = compare_with_evaluator(nodes, values, inputs, INPUT_TYPES, len(data))
    assert problems == [], "\n".join(problems[:20])


@settings(max_examples=40)
@given(
    roots=st.lists(transcendentals(INPUT_TYPES), min_size=1, max_size=6),
    nested=st.lists(expressions(INPUT_TYPES, exact=False), max_size=3),
    data=rows(10, 50),
    codegen=st.booleans(),
)
def test_spark_is_within_the_documented_bound_of_the_evaluator(
    spark: SparkSession,
    roots: list[Node],
    nested: list[Node],
    data: list[dict[str, object]],
    codegen: bool,
) -> None:
    """log, log1p, exp and pow: at the root of an exact expression, whose argument is then
    the same in both engines, the two results are at most 1 ulp apart. Deeper in an
    expression the difference propagates without a sound bound (a comparison or a floor
    may turn one ulp into anything), so there only the compilation, the types and the
    absence of errors are checked."""
    inputs = to_arrow_inputs(data)
    nodes = [*roots, *nested]
    with _with_codegen(spark, codegen):
        spark_types, values = run_on_spark(spark, nodes, inputs, INPUT_TYPES)
    assert spark_types == [spark_type_of_types(n, INPUT_TYPES) for n in nodes]
    problems = compare_with_evaluator(roots, values[: len(roots)], inputs, INPUT_TYPES, len(data))
    assert problems == [], "\n".join(problems[:20])


def test_evaluator_keeps_trailing_nul_in_literals(spark: SparkSession) -> None:
    nodes: list[Node] = [
        Call("eq", (Col("y"), Lit("6100", "bytes"))),
        Call("concat", (Col("s"), Lit("a\x00", "string"))),
    ]
    inputs = {"y": pa.array([b"a\x00"], pa.binary()), "s": pa.array(["x"])}
    types: dict[str, EType] = {"y": Bytes, "s": String}
    _, values = run_on_spark(spark, nodes, inputs, types)
    assert values == [[True], ["xa\x00"]]  # Spark keeps them
    assert compare_with_evaluator(nodes, values, inputs, types, 1) == []
