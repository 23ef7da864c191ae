"""Expressions on Spark: an expression (skewless.expr) compiled to a Column.

`to_column(node, inputs, input_types)` gives a Column of the Spark type of the
expression's inferred type (skewless.types.to_spark_ddl; a duration is a bigint of
microseconds). It computes exactly what docs/expressions.md's table says, the table the
online evaluator (serving/expressions.py) follows too, and so it does not lean on
Spark's own behaviour where that differs from the table or depends on settings:

- The result does not depend on `spark.sql.ansi.enabled`, and no input makes a query
  fail: integer arithmetic uses the try_ functions (null on overflow), and every
  operation that could raise under ANSI (integer division, abs, casts) only ever sees
  operands that cannot make it raise. Guarding it with `when()` alone would not be
  enough: Spark may evaluate a branch that is not taken (subexpression elimination,
  constant folding), so an unsafe operand is replaced by a harmless one before the
  operation and the result is discarded afterwards.
- Spark's `round` (HALF_UP on the decimal text), `floor`/`ceil` of a double (a bigint)
  and string casts (which trim spaces and read "NaN" and "Infinity") differ from the
  table, so those are built from smaller parts.
- Comparisons are Spark's own: its double ordering is the table's (NaN equals NaN and
  is greater than every number, -0.0 equals 0.0), which tests/integration pins.

Nothing is built as SQL text: every user value reaches Spark as a literal Column.
"""

from __future__ import annotations

import functools
import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from pyspark import SparkContext
from pyspark.sql import Column
from pyspark.sql import functions as F  # noqa: N812

from skewless.errors import ExpressionTypeError
from skewless.expr.check import (
    FLOATS,
    INTEGERS,
    Duration,
    EType,
    Null,
    infer,
    lit_type,
    numeric_result,
)
from skewless.expr.functions import FLOAT_TEXT, INT_TEXT, TIME_PARTS, render
from skewless.expr.nodes import Call, Col, Lit, Node
from skewless.timeutil import MAX_MICROS, MIN_MICROS
from skewless.types import (
    ArrayType,
    Bool,
    Float64,
    Int64,
    ScalarType,
    String,
    parse_dtype,
    to_spark_ddl,
)
from skewless.types import UnixTimestamp as Timestamp

# Doubles of this magnitude or more are integers already, and below it a double's
# integer part fits a bigint exactly.
_TWO_52 = 2.0**52

_ASCII_UPPER = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
_ASCII_LOWER = _ASCII_UPPER.lower()

# Java regex: \A and \z anchor at the very ends (a `$` would also match before a final
# newline), and [0-9] is ASCII only.
_INT_TEXT = rf"\A{INT_TEXT}\z"
_FLOAT_TEXT = rf"\A{FLOAT_TEXT}\z"


def to_column(node: Node, inputs: Mapping[str, Column], input_types: Mapping[str, EType]) -> Column:
    """`node` as a Column over `inputs` (input columns of the types `input_types`): of
    the Spark type of the node's inferred type, with docs/expressions.md's semantics
    whatever `spark.sql.ansi.enabled` is. Raises ExpressionTypeError for an ill-typed
    expression, or for a time zone the JVM does not know."""
    result = _Compiler(inputs, input_types).compile(node)
    ddl = _spark_type(result.type)
    # Every family already gives this type; the cast (a no-op then) makes it the contract.
    return result.column if ddl is None else result.column.cast(ddl)


@dataclass(frozen=True, slots=True)
class _Typed:
    """A compiled sub-expression: its Column and its skewless type."""

    column: Column
    type: EType


def _spark_type(t: EType) -> str | None:
    """The Spark DDL a value of type `t` has; None for an untyped null."""
    if t == Duration:
        return "BIGINT"
    if isinstance(t, ScalarType | ArrayType):
        return to_spark_ddl(t)
    return None


def _as(value: _Typed, target: EType) -> Column:
    """The value's column as `target`: an int32 or float32 widened, an integer made a
    double, an untyped null typed. Only conversions that are exact (or IEEE nearest,
    int64 to double) and never raise are asked for."""
    ddl = _spark_type(target)
    if ddl is None or value.type == target:
        return value.column
    return value.column.cast(ddl)


def _lit(value: object, ddl: str) -> Column:
    return F.lit(value).cast(ddl)


def _null(ddl: str) -> Column:
    return F.lit(None).cast(ddl)


def _bigint(value: int) -> Column:
    return F.lit(value).cast("BIGINT")


class _Compiler:
    def __init__(self, inputs: Mapping[str, Column], input_types: Mapping[str, EType]) -> None:
        self.inputs = inputs
        self.input_types = input_types

    def compile(self, node: Node) -> _Typed:
        result_type = infer(node, self.input_types)
        match node:
            case Col(name):
                return _Typed(self.inputs[name], result_type)
            case Lit():
                return _Typed(_literal(node), result_type)
            case Call(fn, args, _):
                compiled = [self.compile(a) for a in args]
                family = _FAMILIES[fn] if fn not in TIME_PARTS else _time_part
                return _Typed(family(node, compiled, result_type), result_type)


# --- literals ------------------------------------------------------------------------


def _literal(node: Lit) -> Column:  # noqa: PLR0911 - one case per literal type
    value = node.python
    if value is None:
        ddl = _spark_type(lit_type(node))
        return F.lit(None) if ddl is None else _null(ddl)
    match node.dtype:
        case "int64" | "duration":
            return _lit(value, "BIGINT")
        case "float64":
            # py4j carries a Python float to a Java double exactly (NaN, infinities,
            # -0.0 and subnormals included), which tests/integration pins.
            return _lit(value, "DOUBLE")
        case "string":
            return _lit(value, "STRING")
        case "bool":
            return _lit(value, "BOOLEAN")
        case "bytes":
            return _lit(bytearray(bytes.fromhex(str(node.value))), "BINARY")
        case "unix_timestamp":
            return F.timestamp_micros(_lit(value, "BIGINT"))
    raise AssertionError(f"unknown literal type {node.dtype}")  # pragma: no cover


# --- arithmetic ----------------------------------------------------------------------


# Integer arithmetic that gives None on overflow, in both ANSI modes; double arithmetic,
# which is IEEE's in both (an infinity on overflow, never an error).
_TRY_INTEGER: dict[str, Callable[[Column, Column], Column]] = {
    "add": F.try_add,
    "sub": F.try_subtract,
    "mul": F.try_multiply,
}
_IEEE: dict[str, Callable[[Column, Column], Column]] = {
    "add": operator.add,
    "sub": operator.sub,
    "mul": operator.mul,
}


def _arithmetic(node: Call, args: list[_Typed], result: EType) -> Column:
    a, b = args
    if result == Int64:
        return _TRY_INTEGER[node.fn](_as(a, Int64), _as(b, Int64))
    if result == Float64:
        return _IEEE[node.fn](_as(a, Float64), _as(b, Float64))
    if result == Timestamp:
        return _shift_timestamp(node.fn, a, b)
    # A duration: the difference of two timestamps, or the sum or difference of two
    # durations; both in microseconds.
    left, right = (_micros(a), _micros(b)) if a.type == b.type == Timestamp else (a, b)
    combine = F.try_add if node.fn == "add" else F.try_subtract
    return combine(_as(left, Duration), _as(right, Duration))


def _micros(value: _Typed) -> _Typed:
    return _Typed(F.unix_micros(_as(value, Timestamp)), Duration)


def _shift_timestamp(fn: str, a: _Typed, b: _Typed) -> Column:
    """timestamp + duration, duration + timestamp or timestamp - duration; None when
    the instant leaves the years 1 to 9999."""
    stamp, shift = (a, b) if a.type == Timestamp else (b, a)
    micros = F.unix_micros(_as(stamp, Timestamp))
    delta = _as(shift, Duration)
    moved = F.try_add(micros, delta) if fn == "add" else F.try_subtract(micros, delta)
    return F.timestamp_micros(F.when(moved.between(MIN_MICROS, MAX_MICROS), moved))


def _divide(node: Call, args: list[_Typed], result: EType) -> Column:
    x, y = (_as(a, Float64) for a in args)
    # try_divide of doubles: null for a divisor of 0.0 or -0.0 in both ANSI modes, and
    # IEEE division otherwise (a NaN divisor gives NaN).
    return F.try_divide(x, y)


def _floor_div_mod(node: Call, args: list[_Typed], result: EType) -> Column:
    """Python's floor division and modulo, from Java's truncating ones."""
    x, y = (_as(a, Int64) for a in args)
    # Only a divisor of 0, and INT64_MIN div -1, make Spark's div and % raise (under
    # ANSI): a divisor of 1 stands in for 0 and -1. x // -1 is -x (None for INT64_MIN),
    # x % -1 is 0 like x % 1, and a zero divisor's result is replaced by None.
    safe = F.when((y == 0) | (y == -1), _bigint(1)).otherwise(y)
    quotient = F.when(y == -1, F.try_subtract(_bigint(0), x)).otherwise(
        F.call_function("div", x, safe)
    )
    remainder = x % safe
    # Truncation rounds toward zero: when the remainder is non-zero and its sign differs
    # from the divisor's, the floor quotient is one less and the floor modulo one divisor
    # more (neither overflows; try_ keeps even a branch not taken from raising).
    adjust = (remainder != 0) & ((remainder < 0) != (y < 0))
    if node.fn == "floordiv":
        floored = F.when(adjust, F.try_subtract(quotient, _bigint(1)))
    else:
        floored = F.when(adjust, F.try_add(remainder, y))
    return F.when(y != 0, floored.otherwise(quotient if node.fn == "floordiv" else remainder))


def _negate(node: Call, args: list[_Typed], result: EType) -> Column:
    (a,) = args
    if result == Float64:
        # Unary minus flips the sign bit: -(0.0) is -0.0, as in IEEE.
        return -_as(a, Float64)
    return F.try_subtract(_bigint(0), _as(a, result))


def _abs(node: Call, args: list[_Typed], result: EType) -> Column:
    (a,) = args
    x = _as(a, result)
    if result == Float64:
        return F.abs(x)
    # Spark's abs raises on INT64_MIN under ANSI and wraps without it.
    return F.when(x < 0, F.try_subtract(_bigint(0), x)).otherwise(x)


# --- comparisons and logic -----------------------------------------------------------


_COMPARE: dict[str, Callable[[Column, Column], Column]] = {
    "eq": operator.eq,
    "ne": operator.ne,
    "lt": operator.lt,
    "le": operator.le,
    "gt": operator.gt,
    "ge": operator.ge,
}


def _compare(node: Call, args: list[_Typed], result: EType) -> Column:
    a, b = args
    common = numeric_result([a.type, b.type]) or (a.type if a.type != Null else b.type)
    return _COMPARE[node.fn](_as(a, common), _as(b, common))


def _logic(node: Call, args: list[_Typed], result: EType) -> Column:
    # Spark's AND, OR and NOT are SQL's three-valued logic, as the table says.
    values = [_as(a, Bool) for a in args]
    if node.fn == "not":
        return ~values[0]
    return values[0] & values[1] if node.fn == "and" else values[0] | values[1]


def _is_null(node: Call, args: list[_Typed], result: EType) -> Column:
    return args[0].column.isNull()


def _is_nan(node: Call, args: list[_Typed], result: EType) -> Column:
    (a,) = args
    if a.type == Null:
        return F.lit(False)
    # Spark's isnan is false (never null) for a null.
    return F.isnan(_as(a, Float64))


def _coalesce(node: Call, args: list[_Typed], result: EType) -> Column:
    return F.coalesce(*(_as(a, result) for a in args))


def _case(node: Call, args: list[_Typed], result: EType) -> Column:
    # A null condition counts as false in Spark's CASE WHEN, as in the table.
    *pairs, otherwise = args
    chain: Column | None = None
    for i in range(0, len(pairs), 2):
        condition, value = _as(pairs[i], Bool), _as(pairs[i + 1], result)
        chain = F.when(condition, value) if chain is None else chain.when(condition, value)
    assert chain is not None  # check_shape: at least one condition
    return chain.otherwise(_as(otherwise, result))


def _clip(node: Call, args: list[_Typed], result: EType) -> Column:
    value, low, high = args
    x = _as(value, result)
    bounds = node.args[1:]
    chain = F.when(F.isnan(x), x) if result == Float64 else None
    for bound, typed, below in ((bounds[0], low, True), (bounds[1], high, False)):
        if isinstance(bound, Lit) and bound.value is None:
            continue  # None: no bound on that side
        limit = _as(typed, result)
        outside = x < limit if below else x > limit
        chain = F.when(outside, limit) if chain is None else chain.when(outside, limit)
    return x if chain is None else chain.otherwise(x)


# --- rounding ------------------------------------------------------------------------


def _round(node: Call, args: list[_Typed], result: EType) -> Column:
    """Half away from zero on the exact binary value scaled by 10^digits (so 2.675,
    stored as 2.67499999..., rounds to 2.67 at 2 digits, though 2.675 * 100 is 267.5 in
    double arithmetic)."""
    (a,) = args
    x = _as(a, result)
    if result == Int64:
        return x  # digits >= 0 (check refuses others): an integer is unchanged
    digits = node.option
    assert isinstance(digits, int)
    # Scale by 10^digits with one exact power of ten: multiply by it for digits >= 0,
    # divide by it for digits < 0 (10^-d is not exact in binary), and undo the same way.
    power = 10.0 ** abs(digits)
    scaled = x * F.lit(power) if digits >= 0 else x / F.lit(power)
    excess = _scaling_excess(x, scaled, power, digits)
    # Values of 2**52 or more after scaling are whole already and stay as they are (so
    # do NaN, greater than every number in Spark, and infinities); the scaling may have
    # rounded a value just below 2**52 up to it, which is then rounded like the others.
    magnitude = F.abs(scaled)
    below = F.when(scaled > 0, excess < 0).otherwise(excess > 0)
    small = (magnitude < F.lit(_TWO_52)) | ((magnitude == F.lit(_TWO_52)) & below)
    whole = F.when(small, scaled).otherwise(F.lit(0.0)).cast("BIGINT")
    # The fraction of the rounded scaled value is exact below 2**52. It decides as the
    # exact value's would, except at a half exactly: a scaled value that was rounded up
    # (or down) to k + 0.5 is really below (or above) it.
    fraction = scaled - whole.cast("DOUBLE")
    up = (fraction > 0.5) | ((fraction == 0.5) & (excess >= 0))
    down = (fraction < -0.5) | ((fraction == -0.5) & (excess <= 0))
    step = F.when(up, 1).when(down, -1).otherwise(0)
    rounded = (whole + step).cast("DOUBLE")  # from a bigint: a zero is +0.0
    # IEEE division and multiplication are correctly rounded: the nearest double to the
    # exact decimal result.
    unscaled = rounded / F.lit(power) if digits >= 0 else rounded * F.lit(power)
    return F.when(small, unscaled).otherwise(x)


def _scaling_excess(x: Column, scaled: Column, power: float, digits: int) -> Column:
    """A double of the sign of (x scaled exactly) - (x scaled in double arithmetic).
    Exact where it matters, at scaled values of magnitude 0.5 to 2**52, far from
    overflow and underflow."""
    if digits == 0:
        return F.lit(0.0)
    if digits > 0:
        # x * p - fl(x * p), exactly.
        return _product_error(x, power, scaled)
    # x / p - fl(x / p) has the sign of x - fl(x / p) * p; x - fl(fl(x / p) * p) is exact
    # (Sterbenz: the two are within a factor of 2), and an IEEE difference has the sign
    # of the exact one.
    back = scaled * F.lit(power)
    return (x - back) - _product_error(scaled, power, back)


_SPLITTER = 2.0**27 + 1  # Veltkamp's: splits a double into two 26-bit halves


def _split(value: float) -> tuple[float, float]:
    c = value * _SPLITTER
    high = c - (c - value)
    return high, value - high


def _product_error(a: Column, b: float, product: Column) -> Column:
    """a * b - fl(a * b), exactly, as a double (Dekker's product with Veltkamp's
    splitting; needs no fused multiply-add, which Spark lacks)."""
    c = a * F.lit(_SPLITTER)
    a_high = c - (c - a)
    a_low = a - a_high
    b_high, b_low = (F.lit(v) for v in _split(b))
    return a_low * b_low - (((product - a_high * b_high) - a_low * b_high) - a_high * b_low)


def _floor_ceil(node: Call, args: list[_Typed], result: EType) -> Column:
    (a,) = args
    x = _as(a, result)
    if result == Int64:
        return x
    # Spark's floor and ceil of a double give a bigint (and raise for NaN under ANSI):
    # apply them where the value fits; keep NaN (greater than every number in Spark's
    # ordering, so not small), infinities and values of 2**52 or more, whole already.
    small = F.abs(x) < F.lit(_TWO_52)
    safe = F.when(small, x).otherwise(F.lit(0.0))
    integral = (F.floor(safe) if node.fn == "floor" else F.ceil(safe)).cast("DOUBLE")
    return F.when(small, integral).otherwise(x)


# --- math ----------------------------------------------------------------------------


def _math(node: Call, args: list[_Typed], result: EType) -> Column:
    x = _as(args[0], Float64)
    match node.fn:
        case "sqrt":
            # Math.sqrt: sqrt(-0.0) is -0.0 and -0.0 < 0 is false, so only x < 0 is None.
            return F.when(~(x < 0), F.sqrt(x))
        case "log":
            return F.when(~(x <= 0), F.ln(x))
        case "log1p":
            return F.when(~(x <= -1), F.log1p(x))
        case "exp":
            return F.exp(x)
    # pow: Spark's is Java's pow, with its special cases (pow(NaN, 0) is 1.0,
    # pow(1, NaN) is NaN).
    return F.pow(x, _as(args[1], Float64))


# --- casts ---------------------------------------------------------------------------


def _cast(node: Call, args: list[_Typed], result: EType) -> Column:  # noqa: PLR0911 - one case per pair
    (a,) = args
    source, target = a.type, parse_dtype(str(node.option))
    assert isinstance(target, ScalarType)  # check.py casts to scalars only
    ddl = to_spark_ddl(target)
    if source == Null:
        return _null(ddl)
    if source == target:
        return a.column
    if source == String:
        return _cast_string(a.column, target, ddl)
    if target == Bool:
        # A number is True unless zero; NaN != 0 is true in Spark as in IEEE.
        return _as(a, Float64 if source in FLOATS else Int64) != 0
    if target == String or source == Bool:
        # Decimal digits of an integer, "true"/"false" of a bool; 1 and 0 of a bool.
        return a.column.cast(ddl)
    if target in INTEGERS and source in INTEGERS:
        return _as(a, Int64).try_cast(ddl)  # None out of range, in both ANSI modes
    if target in INTEGERS:
        return _float_to_int(_as(a, Float64), target, ddl)
    # int to float (IEEE nearest), float64 to float32 (IEEE nearest, an infinity past
    # the range) and float32 to float64 (exact); none of them raises under ANSI.
    return a.column.cast(ddl)


def _float_to_int(x: Column, target: ScalarType, ddl: str) -> Column:
    """Truncated toward zero; None for NaN, infinities and values out of range. try_cast
    truncates, but its range check lets 2**63 through as INT64_MAX (it compares with
    INT64_MAX made a double, 2**63), so the range is checked here, on the double: the
    values whose truncation fits. NaN is above every number, so it fails the check."""
    if target == Int64:
        inside = (x >= F.lit(-(2.0**63))) & (x < F.lit(2.0**63))
    else:
        inside = (x > F.lit(-(2.0**31) - 1)) & (x < F.lit(2.0**31))
    return F.when(inside, x.try_cast(ddl))


def _cast_string(text: Column, target: ScalarType, ddl: str) -> Column:
    """A string parsed as the table says: Spark's own parsing trims spaces and reads
    "NaN", "Infinity" and (without ANSI) decimals as integers, so only text of the
    table's forms is parsed, with try_cast (None when out of range, never an error)."""
    if target == Bool:
        return F.when(text == "true", F.lit(True)).when(text == "false", F.lit(False))
    if target in INTEGERS:
        return F.when(text.rlike(_INT_TEXT), text.try_cast(ddl))
    # To float64 first (Java's parseDouble is correctly rounded), then to float32 if
    # asked: the table rounds twice, where parsing as a float directly rounds once.
    as_double = F.when(text.rlike(_FLOAT_TEXT), text.try_cast("DOUBLE"))
    return as_double if target == Float64 else as_double.cast(ddl)


# --- strings -------------------------------------------------------------------------


def _strings(node: Call, args: list[_Typed], result: EType) -> Column:  # noqa: PLR0911 - one case per function
    values = [_as(a, String) for a in args]
    match node.fn:
        case "lower":
            return F.translate(values[0], _ASCII_UPPER, _ASCII_LOWER)
        case "upper":
            return F.translate(values[0], _ASCII_LOWER, _ASCII_UPPER)
        case "length":
            # Spark counts characters as code points (the UTF-8 lead bytes).
            return F.length(values[0]).cast("BIGINT")
        case "concat":
            return F.concat(*values)
        case "contains":
            return values[0].contains(values[1])
        case "starts_with":
            return values[0].startswith(values[1])
    return values[0].endswith(values[1])


# --- time ----------------------------------------------------------------------------


def _time_part(node: Call, args: list[_Typed], result: EType) -> Column:
    """A part of the instant's wall-clock time in a zone: from_utc_timestamp moves the
    instant to that wall-clock time read in the session's zone (UTC, always), where
    Spark's extractors read it. It is exact across DST changes, since it takes the
    zone's offset at the instant itself."""
    zone = _zone(node)
    stamp = _as(args[0], Timestamp)
    # The table's instants are those of the years 1 to 9999 (timestamp arithmetic gives
    # None outside them). Outside them an input has no parts (None): near the ends of
    # Spark's range, adding the zone's offset overflows a long and raises, ANSI or not.
    inside = F.unix_micros(stamp).between(MIN_MICROS, MAX_MICROS)
    local = F.from_utc_timestamp(F.when(inside, stamp), zone)
    match node.fn:
        case "year":
            part = F.year(local)
        case "month":
            part = F.month(local)
        case "day":
            part = F.dayofmonth(local)
        case "hour":
            part = F.hour(local)
        case "minute":
            part = F.minute(local)
        case "second":
            part = F.second(local)
        case "day_of_year":
            part = F.dayofyear(local)
        case "day_of_week":
            part = F.weekday(local) + 1  # weekday: Monday 0 to Sunday 6
        case _:  # is_weekend
            return F.weekday(local) >= 5
    return part.cast("BIGINT")


def _zone(node: Call) -> str:
    zone = str(node.option)
    jvm = SparkContext._jvm
    # Without a JVM at hand (Spark Connect), an unknown zone fails when the query runs.
    if jvm is not None and not _jvm_knows_zone(jvm, zone):
        raise ExpressionTypeError(
            f"Spark's Java runtime does not know the time zone {zone!r} (its time zone "
            "database may be older than Python's); use an IANA name it knows",
            render(node),
        )
    return zone


@functools.lru_cache(maxsize=256)
def _jvm_knows_zone(jvm: Any, zone: str) -> bool:
    try:
        jvm.org.apache.spark.sql.catalyst.util.DateTimeUtils.getZoneId(zone)
    except Exception:  # py4j wraps Spark's error in its own type
        return False
    return True


def _total_seconds(node: Call, args: list[_Typed], result: EType) -> Column:
    # The microseconds made a double (IEEE nearest), then divided: micros / 1e6.
    return _as(args[0], Duration).cast("DOUBLE") / F.lit(1e6)


_Family = Callable[[Call, list[_Typed], EType], Column]

_FAMILIES: dict[str, _Family] = {
    "add": _arithmetic,
    "sub": _arithmetic,
    "mul": _arithmetic,
    "div": _divide,
    "floordiv": _floor_div_mod,
    "mod": _floor_div_mod,
    "neg": _negate,
    "abs": _abs,
    **dict.fromkeys(_COMPARE, _compare),
    "and": _logic,
    "or": _logic,
    "not": _logic,
    "is_null": _is_null,
    "is_nan": _is_nan,
    "coalesce": _coalesce,
    "case": _case,
    "clip": _clip,
    "round": _round,
    "floor": _floor_ceil,
    "ceil": _floor_ceil,
    **dict.fromkeys(("sqrt", "log", "log1p", "exp", "pow"), _math),
    "cast": _cast,
    **dict.fromkeys(
        ("lower", "upper", "length", "concat", "contains", "starts_with", "ends_with"), _strings
    ),
    "total_seconds": _total_seconds,
}
