"""The online evaluator of expressions (serving/expressions.py): every rule of
docs/expressions.md pinned by hand, then random expressions and rows checked against the
independent per-row reference (tests/expr_reference.py)."""

from __future__ import annotations

import math
import struct
import warnings
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings

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
from skewless.expr.functions import FUNCTIONS, render
from skewless.expr.nodes import Call, Node, walk
from skewless.serving.expressions import Evaluator, evaluate
from skewless.types import Array, Bool, Float32, Float64, Int32, Int64, String, UnixTimestamp
from tests.expr_reference import evaluate_row
from tests.expr_strategies import (
    INPUT_TYPES,
    TRANSCENDENTAL,
    examples,
    expressions,
    rooted,
    rows,
    to_arrow_inputs,
    transcendentals,
    type_names,
)

NAN, INF = math.nan, math.inf
I64_MIN, I64_MAX = -(2**63), 2**63 - 1
I32_MIN, I32_MAX = -(2**31), 2**31 - 1
TS = pa.timestamp("us", tz="UTC")
NAMES = type_names(INPUT_TYPES)


def us(t: datetime) -> int:
    """Microseconds since the epoch; naive means UTC."""
    t = t if t.tzinfo else t.replace(tzinfo=UTC)
    return (t - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)


def python(array: pa.Array) -> list[Any]:
    """Python values of a result; timestamps and durations as int microseconds."""
    if pa.types.is_timestamp(array.type) or pa.types.is_duration(array.type):
        array = array.cast(pa.int64())
    return array.to_pylist()


def run(expr: Expr, **columns: pa.Array) -> list[Any]:
    return python(evaluate(expr.node, columns))


def one(expr: Expr) -> Any:
    """The value of an expression of constants."""
    (value,) = run(expr)
    return value


def ts_column(*times: datetime | None) -> pa.Array:
    return pa.array([None if t is None else us(t) for t in times], type=TS)


def same(a: Any, b: Any) -> bool:
    """Equal, with floats compared bit for bit (but every NaN equal to every NaN)."""
    if a is None or b is None:
        return a is None and b is None
    if isinstance(a, float) or isinstance(b, float):
        if not (isinstance(a, float) and isinstance(b, float)):
            return False
        if math.isnan(a) and math.isnan(b):
            return True
        return struct.pack("<d", a) == struct.pack("<d", b)
    return type(a) is type(b) and a == b


def same_list(got: list[Any], want: list[Any]) -> bool:
    return len(got) == len(want) and all(same(g, w) for g, w in zip(got, want, strict=True))


# --- None and three-valued logic -----------------------------------------------------


def test_null_input_gives_none() -> None:
    a = pa.array([1, None], pa.int64())
    s = pa.array(["x", None])
    assert run(col("a") + 1, a=a) == [2, None]
    assert run(upper(col("s")), s=s) == ["X", None]
    assert run(hour(col("t")), t=ts_column(datetime(2024, 1, 1, 5), None)) == [5, None]
    assert one(lit(1) + None) is None
    assert one(lit(1) == None) is None  # noqa: E711 - builds an expression


def test_logic_three_valued() -> None:
    values = [True, False, None]
    a = pa.array([x for x in values for _ in values], pa.bool_())
    b = pa.array([y for _ in values for y in values], pa.bool_())
    assert run(col("a") & col("b"), a=a, b=b) == [
        True,
        False,
        None,
        False,
        False,
        False,
        None,
        False,
        None,
    ]
    assert run(col("a") | col("b"), a=a, b=b) == [
        True,
        True,
        True,
        True,
        False,
        None,
        True,
        None,
        None,
    ]
    assert run(~col("a"), a=a) == [False, False, False, True, True, True, None, None, None]
    assert one(lit(False) & None) is False
    assert one(lit(True) | None) is True
    assert one(lit(True) & None) is None


def test_when_none_condition_counts_as_false() -> None:
    c = pa.array([None, True, False], pa.bool_())
    assert run(when(col("c"), 1).otherwise(2), c=c) == [2, 1, 2]


def test_when_without_otherwise_gives_none() -> None:
    c = pa.array([None, True, False], pa.bool_())
    assert run(when(col("c"), "yes").end(), c=c) == [None, "yes", None]


def test_when_first_true_condition_wins() -> None:
    x = pa.array([1.0, 10.0, 30.0, None])
    band = when(col("x") < 5, 1).when(col("x") < 20, 2).otherwise(3)
    assert run(band, x=x) == [1, 2, 3, 3]


def test_coalesce_first_not_none() -> None:
    a = pa.array([None, 1, None], pa.int32())
    b = pa.array([2.5, 3.5, None])
    assert run(coalesce(col("a"), col("b"), 0), a=a, b=b) == [2.5, 1.0, 0.0]
    assert one(coalesce(None, lit(None, Int64))) is None


def test_is_null_true_for_none_only() -> None:
    x = pa.array([None, NAN, 0.0])
    assert run(is_null(col("x")), x=x) == [True, False, False]
    assert one(is_null(None)) is True


def test_is_nan_false_for_none() -> None:
    x = pa.array([None, NAN, INF, 1.0])
    assert run(is_nan(col("x")), x=x) == [False, True, False, False]


# --- arithmetic --------------------------------------------------------------------------


def test_division_by_zero_gives_none() -> None:
    assert one(lit(1) / 0) is None
    assert one(lit(1.0) / 0.0) is None
    assert one(lit(0.0) / 0.0) is None
    assert one(lit(1.0) / -0.0) is None
    assert one(lit(7) // 0) is None
    assert one(lit(7) % 0) is None
    b = pa.array([0, 2, None], pa.int32())
    assert run(lit(7) // col("b"), b=b) == [None, 3, None]


def test_division_by_nan_gives_nan() -> None:
    assert math.isnan(one(lit(1.0) / NAN))
    assert math.isnan(one(lit(0) / NAN))


def test_division_always_float64() -> None:
    result = evaluate((lit(7) / 2).node, {})
    assert result.type == pa.float64()
    assert result.to_pylist() == [3.5]
    # Both operands become float64 first: 2**53 + 1 is 2**53 as a float.
    assert one(lit(2**53 + 1) / 1) == 2.0**53


def test_floordiv_mod_floor_like_python() -> None:
    assert one(lit(-7) // 2) == -4
    assert one(lit(-7) % 2) == 1
    assert one(lit(7) // -2) == -4
    assert one(lit(7) % -2) == -1
    assert one(lit(I64_MIN) % -1) == 0


def test_int_overflow_gives_none() -> None:
    assert one(lit(I64_MAX) + 1) is None
    assert one(lit(I64_MIN) - 1) is None
    assert one(lit(I64_MAX) * 2) is None
    assert one(lit(I64_MIN) * -1) is None
    assert one(lit(-1) * I64_MIN) is None
    assert one(lit(3037000500) * 3037000500) is None
    assert one(lit(I64_MIN) // -1) is None
    assert one(abs(lit(I64_MIN))) is None
    assert one(-lit(I64_MIN)) is None
    # ... and only on overflow.
    assert one(lit(I64_MAX) + 0) == I64_MAX
    assert one(lit(I64_MIN) * 1) == I64_MIN
    assert one(lit(I64_MAX) * -1) == -I64_MAX
    assert one(lit(3037000499) * 3037000499) == 3037000499**2
    assert one(lit(I64_MIN) + I64_MAX) == -1
    assert one(lit(I64_MIN) // 1) == I64_MIN


def test_int32_arithmetic_is_int64() -> None:
    a = pa.array([I32_MAX], pa.int32())
    result = evaluate((col("a") + 1).node, {"a": a})
    assert result.type == pa.int64()
    assert result.to_pylist() == [I32_MAX + 1]


def test_infinities_follow_ieee() -> None:
    assert one(lit(1e308) * 10) == INF
    assert math.isnan(one(lit(INF) - INF))
    assert one(lit(-1.0) / 1e-320) == -INF


def test_arithmetic_keeps_signed_zeros() -> None:
    assert same(one(lit(-0.0) + -0.0), -0.0)
    assert same(one(lit(0.0) * -1), -0.0)
    assert same(one(-lit(0.0)), -0.0)
    assert same(one(abs(lit(-0.0))), 0.0)


# --- comparisons -------------------------------------------------------------------------


def test_nan_equals_nan_and_is_greatest() -> None:
    assert one(lit(NAN) == NAN) is True
    assert one(lit(NAN) != NAN) is False
    assert one(lit(NAN) > INF) is True
    assert one(lit(INF) < NAN) is True
    assert one(lit(NAN) < 1) is False
    assert one(lit(1) < NAN) is True
    assert one(lit(NAN) <= NAN) is True
    assert one(lit(NAN) >= NAN) is True
    assert one(lit(NAN) > NAN) is False
    assert one(lit(NAN) == 1.0) is False


def test_negative_zero_equals_zero() -> None:
    assert one(lit(-0.0) == 0.0) is True
    assert one(lit(-0.0) < 0.0) is False
    assert one(lit(0.0) > -0.0) is False
    assert one(lit(-0.0) == 0) is True


def test_integer_meets_float_as_float64() -> None:
    assert one(lit(2**53 + 1) == float(2**53)) is True
    assert one(lit(2**53 + 1) > float(2**53)) is False
    assert one(lit(2**53 + 1) > 2**53) is True  # two integers compare exactly


def test_comparisons_of_other_types() -> None:
    assert one(lit("Z") < "a") is True
    assert one(lit(False) < True) is True
    assert one(lit(b"ab") == b"ab") is True
    assert one(lit(b"ab") != b"ac") is True
    t = ts_column(datetime(2024, 1, 1), datetime(2024, 1, 2))
    assert run(col("t") < datetime(2024, 1, 1, 12), t=t) == [True, False]
    assert one(lit(timedelta(hours=1)) > timedelta(minutes=59)) is True


def test_string_order_by_code_point() -> None:
    # Not by UTF-16 code units: U+FFFF is below U+10000, whose surrogates start at D800.
    assert one(lit("\uffff") < "\U00010000") is True
    assert one(lit("é") > "z") is True
    assert one(lit("ab") < "abc") is True


# --- rounding ----------------------------------------------------------------------------


def test_round_half_away_from_zero() -> None:
    assert one(round(lit(2.5))) == 3.0
    assert one(round(lit(-2.5))) == -3.0
    assert one(round(lit(0.5))) == 1.0
    assert one(round(lit(-0.5))) == -1.0
    assert one(round(lit(1.5))) == 2.0
    assert one(round(lit(0.49999999999999994))) == 0.0


def test_round_binary_value() -> None:
    # 2.675 is 2.67499999999999982236431605997495353221893310546875.
    assert one(round(lit(2.675), 2)) == 2.67
    assert one(round(lit(-2.675), 2)) == -2.67
    assert one(round(lit(1.005), 2)) == 1.0
    assert one(round(lit(0.125), 2)) == 0.13  # exactly a half: away from zero
    # 2.5e-8 is 2.49999999999999988687...e-8, although fl(2.5e-8 * 1e8) is 2.5.
    assert one(round(lit(2.5e-8), 8)) == 2e-8
    assert one(round(lit(4.35), 1)) == 4.3


def test_round_negative_digits() -> None:
    assert one(round(lit(1250.0), -2)) == 1300.0
    assert one(round(lit(-1250.0), -2)) == -1300.0
    assert one(round(lit(1234.5678), -1)) == 1230.0
    assert one(round(lit(5e15), -15)) == 5e15
    assert one(round(lit(4.4e15), -15)) == 4e15


def test_round_large_and_nonfinite_unchanged() -> None:
    assert one(round(lit(2.0**52 + 1))) == 2.0**52 + 1
    assert one(round(lit(1e300), 15)) == 1e300
    assert one(round(lit(INF), 3)) == INF
    assert math.isnan(one(round(lit(NAN))))
    # Just below 2**52 after scaling: rounded (to a whole number).
    assert one(round(lit(2.0**52 - 0.5))) == 2.0**52


def test_round_zero_result_is_positive_zero() -> None:
    assert same(one(round(lit(-0.3))), 0.0)
    assert same(one(round(lit(-0.0), 2)), 0.0)
    assert same(one(round(lit(-4.0), -1)), 0.0)


def test_round_integer_unchanged() -> None:
    a = pa.array([I64_MIN, 7, None], pa.int64())
    result = evaluate(round(col("a"), 3).node, {"a": a})
    assert result.type == pa.int64()
    assert result.to_pylist() == [I64_MIN, 7, None]


def test_floor_ceil_of_float() -> None:
    assert one(floor(lit(-0.5))) == -1.0
    assert same(one(ceil(lit(-0.5))), 0.0)
    assert same(one(floor(lit(-0.0))), 0.0)
    assert one(ceil(lit(2.1))) == 3.0
    assert one(floor(lit(-INF))) == -INF
    assert math.isnan(one(ceil(lit(NAN))))
    assert evaluate(floor(lit(2.5)).node, {}).type == pa.float64()


def test_floor_ceil_of_integer() -> None:
    a = pa.array([I64_MAX, -3], pa.int64())
    result = evaluate(ceil(col("a")).node, {"a": a})
    assert result.type == pa.int64()
    assert result.to_pylist() == [I64_MAX, -3]


# --- math functions ----------------------------------------------------------------------


def test_sqrt_none_below_zero() -> None:
    assert one(sqrt(lit(-1.0))) is None
    assert one(sqrt(lit(-INF))) is None
    assert same(one(sqrt(lit(-0.0))), -0.0)
    assert one(sqrt(lit(4))) == 2.0
    assert one(sqrt(lit(INF))) == INF
    assert math.isnan(one(sqrt(lit(NAN))))


def test_log_none_at_or_below_zero() -> None:
    assert one(log(lit(0.0))) is None
    assert one(log(lit(-0.0))) is None
    assert one(log(lit(-1))) is None
    assert one(log(lit(1))) == 0.0
    assert one(log(lit(INF))) == INF
    assert math.isnan(one(log(lit(NAN))))


def test_log1p_none_at_or_below_minus_one() -> None:
    assert one(log1p(lit(-1.0))) is None
    assert one(log1p(lit(-2))) is None
    assert same(one(log1p(lit(-0.0))), -0.0)
    assert one(log1p(lit(0))) == 0.0


def test_exp_follows_ieee() -> None:
    assert one(exp(lit(1000.0))) == INF
    assert one(exp(lit(-INF))) == 0.0
    assert one(exp(lit(0))) == 1.0


def test_pow_java_special_cases() -> None:
    assert one(pow(lit(NAN), 0)) == 1.0
    assert one(pow(lit(NAN), -0.0)) == 1.0
    assert math.isnan(one(pow(lit(1.0), NAN)))
    assert math.isnan(one(pow(lit(1.0), INF)))
    assert math.isnan(one(pow(lit(-1.0), -INF)))
    assert one(pow(lit(2), 10)) == 1024.0
    assert one(lit(2) ** 0.5) == math.sqrt(2)
    assert math.isnan(one(pow(lit(-8.0), 1 / 3)))
    assert one(pow(lit(0.0), -1)) == INF
    assert one(pow(lit(-0.0), -1)) == -INF
    assert one(pow(lit(-2.0), 3)) == -8.0
    assert one(pow(lit(0.5), INF)) == 0.0
    assert one(pow(lit(10.0), 400)) == INF


# --- clip ----------------------------------------------------------------------------------


def test_clip_constant_bounds() -> None:
    x = pa.array([-5, 0, 5, None], pa.int64())
    assert run(clip(col("x"), 0, 3), x=x) == [0, 0, 3, None]
    assert run(clip(col("x"), None, 3), x=x) == [-5, 0, 3, None]
    assert run(clip(col("x"), 0, None), x=x) == [0, 0, 5, None]
    result = evaluate(clip(col("x"), 0, 1.5).node, {"x": x})
    assert result.type == pa.float64()
    assert result.to_pylist() == [0.0, 0.0, 1.5, None]


def test_clip_nan_stays_nan_and_signed_zero_kept() -> None:
    assert math.isnan(one(clip(lit(NAN), 0.0, 1)))
    assert math.isnan(one(clip(lit(NAN), None, 1)))
    assert same(one(clip(lit(-0.0), 0.0, 1)), -0.0)
    assert one(clip(lit(INF), -1, 1)) == 1.0


# --- casts -------------------------------------------------------------------------------


def test_cast_float_to_int_truncates() -> None:
    assert one(lit(2.9).cast(Int64)) == 2
    assert one(lit(-2.9).cast(Int64)) == -2
    assert one(lit(-(2.0**63)).cast(Int64)) == I64_MIN
    assert one(lit(2.0**63).cast(Int64)) is None
    assert one(lit(NAN).cast(Int64)) is None
    assert one(lit(INF).cast(Int64)) is None
    assert one(lit(-INF).cast(Int32)) is None
    assert one(lit(2147483647.9).cast(Int32)) == I32_MAX
    assert one(lit(2147483648.0).cast(Int32)) is None
    assert one(lit(-2147483648.9).cast(Int32)) == I32_MIN
    assert one(lit(-2147483649.0).cast(Int32)) is None


def test_cast_int64_to_int32_in_range_only() -> None:
    a = pa.array([I32_MAX, I32_MAX + 1, I32_MIN, I32_MIN - 1, None], pa.int64())
    result = evaluate(col("a").cast(Int32).node, {"a": a})
    assert result.type == pa.int32()
    assert result.to_pylist() == [I32_MAX, None, I32_MIN, None, None]


def test_cast_float64_to_float32_nearest() -> None:
    result = evaluate(lit(0.1).cast(Float32).node, {})
    assert result.type == pa.float32()
    assert result.to_pylist() == [float(np.float32(0.1))]
    assert one(lit(1e39).cast(Float32)) == INF
    assert one(lit(-1e39).cast(Float32)) == -INF
    assert same(one(lit(-0.0).cast(Float32)), -0.0)


def test_cast_int_to_float_nearest() -> None:
    assert one(lit(2**53 + 1).cast(Float64)) == 2.0**53
    # Straight to float32: one rounding (through float64 it would go down to 2**60).
    assert one(lit(2**60 + 2**36 + 1).cast(Float32)) == float(2**60 + 2**37)
    assert one(lit(True).cast(Float64)) == 1.0


def test_cast_string_to_int() -> None:
    cases = {
        "+12": 12,
        "-12": -12,
        "007": 7,
        "9223372036854775807": I64_MAX,
        "-9223372036854775808": I64_MIN,
        "0" * 5000 + "1": 1,
        "9223372036854775808": None,
        " 12": None,
        "12 ": None,
        "12\n": None,
        "1.5": None,
        "١٢": None,
        "1_000": None,
        "": None,
        "+": None,
        "0x10": None,
    }
    s = pa.array(list(cases))
    assert run(col("s").cast(Int64), s=s) == list(cases.values())
    assert run(col("s").cast(Int32), s=pa.array(["2147483647", "2147483648"])) == [I32_MAX, None]


def test_cast_string_to_float() -> None:
    cases = {
        "-1.5e3": -1500.0,
        ".5": 0.5,
        "1.": 1.0,
        "+.5E-3": 0.0005,
        "0.1": 0.1,
        "1e400": INF,
        "1e-400": 0.0,
        "nan": None,
        "inf": None,
        "1_000": None,
        "0x10": None,
        " 1": None,
        "1 ": None,
        "1e": None,
        ".": None,
        "": None,
        "\u0661": None,  # an Arabic-Indic digit
    }
    s = pa.array(list(cases))
    assert run(col("s").cast(Float64), s=s) == list(cases.values())
    # A float32 rounds the nearest float64.
    assert run(col("s").cast(Float32), s=pa.array(["0.1", "1e39"])) == [float(np.float32(0.1)), INF]


def test_cast_string_to_bool_exact_words() -> None:
    s = pa.array(["true", "false", "True", " true", "1", "", None])
    assert run(col("s").cast(Bool), s=s) == [True, False, None, None, None, None, None]


def test_cast_number_to_bool_nonzero() -> None:
    x = pa.array([0.0, -0.0, NAN, 0.5, -INF])
    assert run(col("x").cast(Bool), x=x) == [False, False, True, True, True]
    assert run(col("a").cast(Bool), a=pa.array([0, -3], pa.int32())) == [False, True]


def test_cast_int_and_bool_to_string() -> None:
    a = pa.array([-12, 0, I64_MIN, None], pa.int64())
    assert run(col("a").cast(String), a=a) == ["-12", "0", str(I64_MIN), None]
    assert run(col("b").cast(String), b=pa.array([True, False])) == ["true", "false"]


def test_cast_float_to_string_refused() -> None:
    with pytest.raises(ExpressionTypeError, match="round and cast to int64 first"):
        Evaluator(col("x").cast(String).node, {"x": Float64})


def test_output_arrow_types() -> None:
    a = pa.array([1, None], pa.int32())
    f = pa.array([1.5, None], pa.float32())
    assert evaluate(col("a").node, {"a": a}).type == pa.int32()
    assert evaluate(col("f").node, {"f": f}).type == pa.float32()
    assert evaluate(col("a").cast(Int64).node, {"a": a}).type == pa.int64()
    assert evaluate((col("a") * 2).cast(Int32).node, {"a": a}).type == pa.int32()
    assert evaluate(coalesce(col("a"), 0).node, {"a": a}).type == pa.int64()
    assert evaluate(coalesce(col("f"), 0.0).node, {"f": f}).type == pa.float64()
    t = ts_column(datetime(2024, 1, 1))
    assert evaluate((col("t") + timedelta(1)).node, {"t": t}).type == TS
    assert evaluate((col("t") - col("t")).node, {"t": t}).type == pa.duration("us")
    assert evaluate(lit(None).node, {}).type == pa.null()


# --- strings -----------------------------------------------------------------------------


def test_lower_upper_ascii_only() -> None:
    s = pa.array(["straße", "ÀbC", "ǆ", "İx", "Ω", "", None])
    assert run(upper(col("s")), s=s) == ["STRAßE", "ÀBC", "ǆ", "İX", "Ω", "", None]
    assert run(lower(col("s")), s=s) == ["straße", "Àbc", "ǆ", "İx", "Ω", "", None]


def test_length_counts_code_points() -> None:
    s = pa.array(["straße", "\U0001d518", "e\u0301", "", None])
    result = evaluate(length(col("s")).node, {"s": s})
    assert result.type == pa.int64()
    assert result.to_pylist() == [6, 1, 2, 0, None]


def test_concat_none_if_any_none() -> None:
    a = pa.array(["a", None, "c"])
    b = pa.array(["x", "y", None])
    assert run(concat(col("a"), "-", col("b")), a=a, b=b) == ["a-x", None, None]
    assert one(concat(lit("a"), None)) is None


def test_contains_starts_ends() -> None:
    s = pa.array(["hello", "", None])
    assert run(contains(col("s"), "ll"), s=s) == [True, False, None]
    assert run(contains(col("s"), ""), s=s) == [True, True, None]
    assert run(starts_with(col("s"), "he"), s=s) == [True, False, None]
    assert run(ends_with(col("s"), "lo"), s=s) == [True, False, None]
    assert run(ends_with(col("s"), col("s")), s=s) == [True, True, None]


# --- time ----------------------------------------------------------------------------------


def test_time_parts_default_utc() -> None:
    t = ts_column(datetime(2024, 2, 29, 23, 59, 58, 999999))
    parts = [year, month, day, hour, minute, second]
    assert [run(p(col("t")), t=t)[0] for p in parts] == [2024, 2, 29, 23, 59, 58]


def test_hour_paris_across_march_change() -> None:
    t = ts_column(datetime(2024, 3, 31, 0, 59, 59), datetime(2024, 3, 31, 1))
    assert run(hour(col("t"), tz="Europe/Paris"), t=t) == [1, 3]


def test_hour_paris_across_october_change() -> None:
    t = ts_column(datetime(2024, 10, 27, 0, 59, 59), datetime(2024, 10, 27, 1))
    assert run(hour(col("t"), tz="Europe/Paris"), t=t) == [2, 2]
    assert run(minute(col("t"), tz="Europe/Paris"), t=t) == [59, 0]


def test_hour_new_york_across_changes() -> None:
    t = ts_column(
        datetime(2024, 3, 10, 6, 59, 59),
        datetime(2024, 3, 10, 7),
        datetime(2024, 11, 3, 5, 59, 59),
        datetime(2024, 11, 3, 6),
    )
    assert run(hour(col("t"), tz="America/New_York"), t=t) == [1, 3, 1, 1]


def test_time_parts_after_2037() -> None:
    t = ts_column(datetime(2050, 7, 1, 12), datetime(2050, 1, 1, 12), datetime(9999, 7, 1, 12))
    assert run(hour(col("t"), tz="Europe/Paris"), t=t) == [14, 13, 14]


def test_time_parts_at_year_1_and_9999() -> None:
    # New York's local mean time at year 1 is -4:56:02, so the first instant is in year 0;
    # Tokyo's is +9:18:59, and the last hours of 9999 there are in year 10000.
    t = ts_column(datetime(1, 1, 1), datetime(9999, 12, 31, 23))
    ny, tokyo = "America/New_York", "Asia/Tokyo"
    assert run(year(col("t"), tz=ny), t=t) == [0, 9999]
    assert run(month(col("t"), tz=ny), t=t) == [12, 12]
    assert run(day(col("t"), tz=ny), t=t) == [31, 31]
    assert run(hour(col("t"), tz=ny), t=t) == [19, 18]
    assert run(minute(col("t"), tz=ny), t=t) == [3, 0]
    assert run(second(col("t"), tz=ny), t=t) == [58, 0]
    assert run(day_of_year(col("t"), tz=ny), t=t) == [366, 365]  # year 0 is a leap year
    assert run(year(col("t"), tz=tokyo), t=t) == [1, 10000]
    assert run(hour(col("t"), tz=tokyo), t=t) == [9, 8]
    assert run(day_of_year(col("t"), tz=tokyo), t=t) == [1, 1]
    assert run(year(col("t"), tz="Pacific/Kiritimati"), t=t) == [0, 10000]  # -10:29:20, +14
    assert run(year(col("t")), t=t) == [1, 9999]
    assert run(day_of_week(col("t")), t=t) == [1, 5]  # 0001-01-01 was a Monday


def test_day_of_week_iso_and_weekend() -> None:
    t = ts_column(
        datetime(2024, 1, 1, 12),  # Monday
        datetime(2024, 1, 6, 12),  # Saturday
        datetime(2024, 1, 7, 12),  # Sunday
        datetime(2024, 1, 6, 23, 30),  # Saturday in UTC, Sunday 00:30 in Paris
        datetime(2024, 1, 7, 23, 30),  # Sunday in UTC, Monday 00:30 in Paris
    )
    assert run(day_of_week(col("t")), t=t) == [1, 6, 7, 6, 7]
    assert run(day_of_week(col("t"), tz="Europe/Paris"), t=t) == [1, 6, 7, 7, 1]
    assert run(is_weekend(col("t")), t=t) == [False, True, True, True, True]
    assert run(is_weekend(col("t"), tz="Europe/Paris"), t=t) == [False, True, True, True, False]


def test_day_of_year() -> None:
    t = ts_column(
        datetime(2024, 12, 31), datetime(2023, 12, 31), datetime(2024, 3, 1), datetime(2000, 1, 1)
    )
    assert run(day_of_year(col("t")), t=t) == [366, 365, 61, 1]


def test_timestamp_plus_duration_leaves_years_gives_none() -> None:
    t = ts_column(datetime(9999, 12, 31), datetime(1, 1, 1), datetime(2024, 1, 1))
    assert run(col("t") + timedelta(days=1), t=t) == [
        None,
        us(datetime(1, 1, 2)),
        us(datetime(2024, 1, 2)),
    ]
    assert run(col("t") - timedelta(microseconds=1), t=t) == [
        us(datetime(9999, 12, 30, 23, 59, 59, 999999)),
        None,
        us(datetime(2023, 12, 31, 23, 59, 59, 999999)),
    ]
    assert run(timedelta(days=-1) + col("t"), t=t)[1] is None
    huge = Expr(Call("add", (col("t").node, lit(timedelta(microseconds=I64_MAX)).node)))
    assert run(huge, t=t) == [None, None, None]


def test_timestamp_minus_timestamp_is_duration() -> None:
    a = ts_column(datetime(2024, 1, 2), None)
    b = ts_column(datetime(2024, 1, 1), datetime(2024, 1, 1))
    result = evaluate((col("a") - col("b")).node, {"a": a, "b": b})
    assert result.type == pa.duration("us")
    assert python(result) == [86_400_000_000, None]
    assert run(total_seconds(col("a") - col("b")), a=a, b=b) == [86400.0, None]


def test_total_seconds_is_micros_over_1e6() -> None:
    assert one(total_seconds(lit(timedelta(microseconds=1)))) == 1e-6
    assert one(total_seconds(lit(timedelta(microseconds=-1500)))) == -0.0015
    big = 2**53 + 1  # becomes a float64 first, then is divided
    assert one(total_seconds(lit(timedelta(microseconds=big)))) == float(big) / 1e6
    assert one(-lit(timedelta(seconds=2)) + timedelta(seconds=1)) == -1_000_000


def test_timestamp_inputs_of_any_unit_and_zone() -> None:
    moment = datetime(2024, 3, 31, 1, 30, tzinfo=UTC)
    expected = [us(moment), None]
    for unit in ("s", "ms", "us", "ns"):
        for tz in (None, "UTC", "Europe/Paris"):
            t = pa.array([moment, None], pa.timestamp(unit, tz=tz))
            assert run(col("t") + timedelta(0), t=t) == expected, (unit, tz)
            assert run(hour(col("t"), tz="Europe/Paris"), t=t) == [3, None]
    # A nanosecond instant before 1970 goes to the microsecond at or before it.
    t = pa.array([-1], pa.timestamp("ns", tz="UTC"))
    assert run(col("t") + timedelta(0), t=t) == [-1]


def test_time_parts_in_every_tested_zone_agree_with_zoneinfo() -> None:
    start = us(datetime(2024, 1, 1))
    times = [start + k * 3_600_000_000 * 7 + 123 for k in range(2000)]  # every 7 hours
    t = pa.array(times, TS)
    for zone in ("Europe/Paris", "America/New_York", "Australia/Lord_Howe", "Asia/Kolkata"):
        got = run(hour(col("t"), tz=zone) * 60 + minute(col("t"), tz=zone), t=t)
        want = []
        for u in times:
            local = (datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=u)).astimezone(
                ZoneInfo(zone)
            )
            want.append(local.hour * 60 + local.minute)
        assert got == want, zone


# --- the evaluator's interface -----------------------------------------------------------


def test_evaluator_compiled_once_called_often() -> None:
    evaluator = Evaluator((col("a") * 2 + col("b")).node, {"a": Int32, "b": Float64})
    assert evaluator.output_type == Float64
    assert evaluator.columns == ("a", "b")
    first = evaluator({"a": pa.array([1], pa.int32()), "b": pa.array([0.5])}, 1)
    second = evaluator(
        {
            "a": pa.array([1, 2, None], pa.int32()),
            "b": pa.array([0.5, 1.0, 2.0]),
            "c": pa.array([1, 2, 3]),
        },
        3,
    )
    assert first.to_pylist() == [2.5]
    assert second.to_pylist() == [2.5, 5.0, None]


def test_evaluator_type_error_propagates() -> None:
    with pytest.raises(ExpressionTypeError, match=r"\+ does not join strings"):
        Evaluator((col("a") + "x").node, {"a": Float64})
    with pytest.raises(ExpressionTypeError, match="no input column 'b'"):
        Evaluator(col("b").node, {"a": Float64})


def test_evaluator_checks_its_inputs() -> None:
    evaluator = Evaluator((col("a") + 1).node, {"a": Int64})
    with pytest.raises(KeyError, match="no input column 'a'"):
        evaluator({}, 1)
    with pytest.raises(ValueError, match="has 2 rows, expected 3"):
        evaluator({"a": pa.array([1, 2])}, 3)
    with pytest.raises(TypeError, match="is Arrow string, not int64"):
        evaluator({"a": pa.array(["x"])}, 1)
    with pytest.raises(ValueError, match="different lengths"):
        evaluate((col("a") + col("b")).node, {"a": pa.array([1]), "b": pa.array([1, 2])})


def test_evaluator_empty_batch() -> None:
    node = coalesce(
        hour(col("t"), tz="Europe/Paris"), length(upper(col("s"))), round(col("x"), 2).cast(Int64)
    ).node
    result = Evaluator(node, {"t": UnixTimestamp, "s": String, "x": Float64})(
        {"t": pa.array([], TS), "s": pa.array([], pa.string()), "x": pa.array([], pa.float64())}, 0
    )
    assert result.type == pa.int64()
    assert len(result) == 0


def test_evaluator_chunked_input_and_large_string() -> None:
    s = pa.chunked_array(
        [pa.array(["a"], pa.large_string()), pa.array(["b", None], pa.large_string())]
    )
    assert run(upper(col("s")), s=s) == ["A", "B", None]


def test_evaluator_reads_sliced_inputs() -> None:
    # Arrow slices share their parent's buffers from an offset.
    cases = {
        "i": pa.array([9, 1, None, 3, 9], pa.int32()),
        "j": pa.array([9, 1, None, 3, 9], pa.int8()),
        "f": pa.array([9.0, 1.5, None, NAN, 9.0], pa.float32()),
        "b": pa.array([True, True, None, False, True]),
        "s": pa.array(["z", "a", None, "B", "z"]),
        "y": pa.array([b"z", b"a", None, b"", b"z"]),
        "t": pa.array([0, 1, None, 3_600_000_000, 0], pa.timestamp("ms")),
    }
    sliced = {name: array.slice(1, 3) for name, array in cases.items()}
    adding = Evaluator((col("i") + col("j")).node, {"i": Int32, "j": Int64})  # int8 read as int64
    assert adding(sliced, 3).to_pylist() == [2, None, 6]
    assert same_list(run(col("f") * 2, **sliced), [3.0, None, NAN])
    assert run(~col("b"), **sliced) == [False, None, True]
    assert run(upper(col("s")), **sliced) == ["A", None, "B"]
    assert run(col("y") == b"", **sliced) == [False, None, True]
    assert run(col("t") + timedelta(0), **sliced) == [1000, None, 3_600_000_000_000]


def test_constant_expression_has_one_row() -> None:
    assert run(lit(1) + 2) == [3]


def test_array_column_passes_through() -> None:
    a = pa.array([[1, 2], None, []], pa.list_(pa.int64()))
    evaluator = Evaluator(col("a").node, {"a": Array(Int64)})
    assert evaluator({"a": a}, 3).to_pylist() == [[1, 2], None, []]
    with pytest.raises(ExpressionTypeError, match="takes no arrays"):
        Evaluator(coalesce(col("a"), None).node, {"a": Array(Int64)})


def test_all_none_inputs() -> None:
    inputs = to_arrow_inputs([dict.fromkeys(INPUT_TYPES)] * 3)
    node = (col("i32") * col("i64") + col("f32") / col("f64")).node
    assert Evaluator(node, INPUT_TYPES)(inputs, 3).to_pylist() == [None, None, None]
    assert run(is_null(col("s")), s=pa.nulls(2, pa.string())) == [True, True]
    assert run(coalesce(col("n"), 1), n=pa.nulls(2)) == [1, 1]


# --- no floating-point warnings ----------------------------------------------------------

_NASTY = {
    "i32": [I32_MIN, I32_MAX, 0, None, -1],
    "i64": [I64_MIN, I64_MAX, 0, None, -1],
    "j64": [-1, -1, 0, 0, I64_MIN],
    "f32": [NAN, INF, -0.0, None, -INF],
    "f64": [NAN, 1e308, 0.0, -1e308, 5e-324],
    "g64": [0.0, -0.0, NAN, INF, -INF],
    "s": ["1e400", "", "x", None, "-0"],
    "t": ["9" * 30, "nan", "-", None, "١٢"],
    "b": [True, None, False, True, None],
    "c": [None, None, True, False, False],
    "ts": [-62135596800000000, 253402300799999999, 0, None, -1],
    "ts2": [253402300799999999, -62135596800000000, None, 0, 1],
    "y": [b"", None, b"\x00", b"a", b"b"],
}


def _nasty_expressions() -> list[Node]:
    c = col
    return [
        e.node
        for e in (
            c("i64") * c("j64") + c("i32") // c("j64") - c("i64") % c("j64"),
            -c("i64") + abs(c("i64")),
            c("f64") / c("g64") + c("f32") * c("f64") - c("g64"),
            c("f64") / c("j64"),
            sqrt(c("f64"))
            + log(c("g64"))
            + log1p(c("f32"))
            + exp(c("f64"))
            + pow(c("g64"), c("f64")),
            round(c("f64") * 1e300, 15) + round(c("g64"), -15) + floor(c("f32")) + ceil(c("g64")),
            c("f64").cast(Int32).cast(Float32) + c("g64").cast(Int64) + c("f64").cast(Float32),
            c("s").cast(Float32) + c("t").cast(Float64) + c("s").cast(Int32) + c("t").cast(Int64),
            (c("f64") < c("g64")) & (c("f32") >= c("f64")) | (c("i64") == c("f64")),
            clip(c("f64"), -1.0, 1.0) + clip(c("i64"), 0, 5),
            hour(c("ts") + (c("ts2") - c("ts")), tz="Pacific/Kiritimati")
            + year(c("ts") - (c("ts2") - c("ts")), tz="Etc/GMT+12"),
            total_seconds(c("ts") - c("ts2")),
        )
    ]


@pytest.mark.filterwarnings("error")
def test_no_floating_point_warnings() -> None:
    inputs = {
        name: pa.array(values, type=pa.array([], type=_arrow(name)).type)
        for name, values in _NASTY.items()
    }
    with warnings.catch_warnings(), np.errstate(all="raise"):
        warnings.simplefilter("error")
        for node in _nasty_expressions():
            Evaluator(node, INPUT_TYPES)(inputs, 5)


def _arrow(name: str) -> pa.DataType:
    return to_arrow_inputs([dict.fromkeys(INPUT_TYPES)])[name].type


# --- properties: the evaluator equals the reference --------------------------------------


def _check_against_reference(node: Node, rows_: list[dict[str, object]]) -> None:
    evaluator = Evaluator(node, INPUT_TYPES)
    got = python(evaluator(to_arrow_inputs(rows_), len(rows_)))
    assert len(got) == len(rows_)
    for value, row in zip(got, rows_, strict=True):
        want = evaluate_row(node, row, NAMES)
        assert same(value, want), (
            f"{render(node)}\n  row {row}\n  engine {value!r}, reference {want!r}"
        )


@pytest.mark.filterwarnings("error")
@settings(max_examples=examples(200))
@given(node=expressions(INPUT_TYPES, exact=True), rows_=rows(1, 8))
def test_property_evaluator_equals_reference(node: Node, rows_: list[dict[str, object]]) -> None:
    _check_against_reference(node, rows_)


EXACT_FUNCTIONS = sorted(fn for fn in FUNCTIONS if fn not in TRANSCENDENTAL)


@pytest.mark.filterwarnings("error")
@pytest.mark.parametrize("fn", EXACT_FUNCTIONS)
def test_property_each_function_equals_reference(fn: str) -> None:
    @settings(max_examples=examples(10))
    @given(node=rooted(fn), rows_=rows(1, 6))
    def check(node: Node, rows_: list[dict[str, object]]) -> None:
        _check_against_reference(node, rows_)

    check()


def _ulps_apart(a: float, b: float) -> int:
    def ordered(x: float) -> int:
        bits = struct.unpack("<q", struct.pack("<d", x))[0]
        return bits if bits >= 0 else -(bits & 0x7FFFFFFFFFFFFFFF)

    return abs(ordered(a) - ordered(b))


@pytest.mark.filterwarnings("error")
@settings(max_examples=examples(120))
@given(node=transcendentals(INPUT_TYPES), rows_=rows(1, 8))
def test_property_transcendentals_within_two_ulps(
    node: Node, rows_: list[dict[str, object]]
) -> None:
    # log, log1p, exp and pow come from numpy's math library here and from Python's (the C
    # library's) in the reference: each is within an ulp of the exact result, so the two
    # differ by at most two; the special cases (None, NaN, infinities, zeros) are exact.
    got = python(Evaluator(node, INPUT_TYPES)(to_arrow_inputs(rows_), len(rows_)))
    for value, row in zip(got, rows_, strict=True):
        want = evaluate_row(node, row, NAMES)
        if value is None or want is None or not (math.isfinite(value) and math.isfinite(want)):
            assert same(value, want), f"{render(node)} on {row}: {value!r} != {want!r}"
        else:
            assert _ulps_apart(value, want) <= 2, f"{render(node)} on {row}: {value!r} != {want!r}"


# --- the strategies themselves ------------------------------------------------------------


@pytest.mark.parametrize("fn", sorted(FUNCTIONS))
def test_strategies_reach_every_function(fn: str) -> None:
    # expressions() draws from the same productions, so each function is reachable.
    strategy = rooted(fn, exact=fn not in TRANSCENDENTAL)

    @settings(max_examples=examples(3))
    @given(node=strategy)
    def check(node: Node) -> None:
        assert isinstance(node, Call)
        assert node.fn == fn
        Evaluator(node, INPUT_TYPES)  # type-checks

    check()


@settings(max_examples=examples(50))
@given(node=expressions(INPUT_TYPES, exact=True))
def test_exact_expressions_have_no_transcendentals_and_stay_shallow(node: Node) -> None:
    assert not any(isinstance(n, Call) and n.fn in TRANSCENDENTAL for n in walk(node))
    assert _depth(node) <= 4


def _depth(node: Node) -> int:
    return 1 + max((_depth(a) for a in node.args), default=0) if isinstance(node, Call) else 1


@settings(max_examples=examples(25))
@given(rows_=rows(0, 5))
def test_rows_become_arrow_columns(rows_: list[dict[str, object]]) -> None:
    inputs = to_arrow_inputs(rows_)
    assert set(inputs) == set(INPUT_TYPES)
    for name, array in inputs.items():
        assert len(array) == len(rows_)
        values = python(array)
        for got, row in zip(values, rows_, strict=True):
            assert same(got, row[name])


@settings(max_examples=examples(20))
@given(node=transcendentals(INPUT_TYPES))
def test_transcendental_strategy_roots(node: Node) -> None:
    assert isinstance(node, Call)
    assert node.fn in TRANSCENDENTAL
    assert not any(
        isinstance(n, Call) and n.fn in TRANSCENDENTAL for n in walk(node) if n is not node
    )
