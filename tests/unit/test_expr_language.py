"""The expression language without an engine: canonical data (skewless.expr.nodes), text
(functions.render), type checking (check.infer, check.check_feature) and the builder's
Python face (skewless.expr)."""

from __future__ import annotations

import json
import math
import re
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings

from skewless.errors import ExpressionTypeError
from skewless.expr import (
    Expr,
    clip,
    coalesce,
    col,
    concat,
    hour,
    is_weekend,
    length,
    lit,
    log1p,
    round,
    sqrt,
    when,
)
from skewless.expr.check import Duration, check_feature, infer
from skewless.expr.functions import render
from skewless.expr.nodes import Call, Col, Lit, Node, columns, from_data, to_data
from skewless.types import (
    Array,
    Bool,
    Bytes,
    Float32,
    Float64,
    Int32,
    Int64,
    String,
    UnixTimestamp,
)
from tests.expr_strategies import INPUT_TYPES, examples, expressions

# --- canonical data ------------------------------------------------------------------------


@settings(max_examples=examples(150))
@given(node=expressions(INPUT_TYPES, exact=False))
def test_data_round_trip(node: Node) -> None:
    data = to_data(node)
    assert from_data(data) == node
    # It is JSON, with no NaN or infinity that strict JSON would refuse.
    text = json.dumps(data, allow_nan=False, sort_keys=True)
    assert from_data(json.loads(text)) == node
    assert to_data(from_data(json.loads(text))) == data


def test_data_example_from_the_docs() -> None:
    assert to_data((col("km") / 60).node) == {
        "fn": "div",
        "args": [{"col": "km"}, {"lit": 60, "type": "int64"}],
    }
    assert to_data(round(col("x"), 2).node) == {
        "fn": "round",
        "args": [{"col": "x"}],
        "opt": 2,
    }


def test_float_literals_are_exact_hex() -> None:
    assert lit(0.1).node == Lit((0.1).hex(), "float64")
    assert lit(math.nan).node.value == "nan"  # type: ignore[union-attr]
    assert lit(-0.0).node.value == "-0x0.0p+0"  # type: ignore[union-attr]
    assert lit(-math.inf).node.value == "-inf"  # type: ignore[union-attr]
    for value in (0.1, -0.0, math.inf, 5e-324):
        node = lit(value).node
        assert isinstance(node, Lit)
        assert math.copysign(1, node.python) == math.copysign(1, value)  # type: ignore[arg-type]
        assert node.python == value
    # Written differently, the same expression: same data.
    assert to_data((col("a") * 0.5).node) == to_data((col("a") * (1 / 2)).node)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ([], "expression: expected an expression node, got []"),
        ("col", "expected an expression node"),
        ({"col": 1}, "not an expression node"),
        ({"col": "a", "extra": 1}, "not an expression node"),
        ({"lit": 1, "type": "decimal"}, "not an expression node"),
        ({"lit": True, "type": "int64"}, "True is not a int64 literal"),
        ({"lit": 2**63, "type": "int64"}, "is not a int64 literal"),
        ({"lit": 1.5, "type": "int64"}, "is not a int64 literal"),
        ({"lit": 1.5, "type": "float64"}, "is not a float64 literal"),
        ({"lit": "1.5", "type": "float64"}, "is not a float64 literal"),
        ({"lit": "0x1.8p+0", "type": "float64"}, "is not a float64 literal"),  # not canonical
        ({"lit": "zz", "type": "bytes"}, "is not a bytes literal"),
        ({"lit": "AB", "type": "bytes"}, "is not a bytes literal"),  # not canonical
        ({"lit": 1, "type": "bool"}, "is not a bool literal"),
        ({"lit": 1, "type": "null"}, "is not a null literal"),
        ({"lit": 1, "type": "string"}, "is not a string literal"),
        ({"fn": "add", "args": "ab"}, "malformed call"),
        ({"fn": "round", "args": [{"col": "a"}], "opt": 1.5}, "malformed call"),
        ({"fn": "round", "args": [{"col": "a"}], "opt": True}, "malformed option True"),
        ({"fn": 1, "args": []}, "not an expression node"),
        (
            {
                "fn": "add",
                "args": [{"col": "a"}, {"fn": "neg", "args": [{"lit": "x", "type": "int64"}]}],
            },
            "expression.add[1].neg[0]: 'x' is not a int64 literal",
        ),
    ],
)
def test_from_data_refuses_malformed(data: Any, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        from_data(data)


def test_from_data_names_the_place() -> None:
    with pytest.raises(ValueError, match=r"^features\.py: trips\.speed\.div\[0\]: "):
        from_data({"fn": "div", "args": [[], {"col": "a"}]}, "features.py: trips.speed")


def test_nodes_compare_by_structure() -> None:
    a = (col("km") / (col("minutes") / 60)).node
    b = from_data(json.loads(json.dumps(to_data(a))))
    assert a == b
    assert hash(a) == hash(b)
    assert (col("a") + 1).node != (col("a") + 1.0).node
    assert lit(1).node != lit(True).node


def test_columns_in_first_use_order() -> None:
    node = (col("b") + col("a") * col("b") + coalesce(col("c"), col("a"))).node
    assert columns(node) == ("b", "a", "c")


# --- text ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expr", "text"),
    [
        (col("km") / 60, "col('km') / 60"),
        (col("km") / (col("minutes") / 60), "col('km') / (col('minutes') / 60)"),
        ((col("a") + col("b")) * col("c"), "(col('a') + col('b')) * col('c')"),
        (col("a") + col("b") * col("c"), "col('a') + col('b') * col('c')"),
        (col("a") - (col("b") - col("c")), "col('a') - (col('b') - col('c'))"),
        (col("a") - col("b") - col("c"), "col('a') - col('b') - col('c')"),
        ((col("a") < 1) & (col("b") >= 2), "(col('a') < 1) & (col('b') >= 2)"),
        ((col("a") < 1) | (col("b") == "x"), "(col('a') < 1) | (col('b') == 'x')"),
        (~(col("a") < 1), "~(col('a') < 1)"),
        (-(col("a") + 1), "-(col('a') + 1)"),
        (col("a") ** 2, "pow(col('a'), 2)"),
        (col("a").cast(Int32), "col('a').cast(Int32)"),
        ((col("a") * 2).cast(Float64), "(col('a') * 2).cast(Float64)"),
        (round(col("x"), 2), "round(col('x'), digits=2)"),
        (round(col("x")), "round(col('x'), digits=0)"),
        (hour(col("t")), "hour(col('t'))"),
        (is_weekend(col("t"), tz="Europe/Paris"), "is_weekend(col('t'), tz='Europe/Paris')"),
        (
            when(col("km") < 5, 1).when(col("km") < 20, 2).otherwise(3),
            "when(col('km') < 5, 1).when(col('km') < 20, 2).otherwise(3)",
        ),
        (when(col("b"), "x").end(), "when(col('b'), 'x').otherwise(None)"),
        (coalesce(col("fare"), 0.0), "coalesce(col('fare'), 0.0)"),
        (clip(col("x"), 0, None), "clip(col('x'), 0, None)"),
        (log1p(coalesce(col("fare"), 0.0)), "log1p(coalesce(col('fare'), 0.0))"),
        (concat(col("a"), "-", col("b")), "concat(col('a'), '-', col('b'))"),
        (lit(timedelta(seconds=1)), "timedelta(microseconds=1000000)"),
        (lit(b"\x01"), "b'\\x01'"),
    ],
)
def test_render(expr: Expr, text: str) -> None:
    assert render(expr.node) == text
    assert repr(expr) == text


# --- type checking --------------------------------------------------------------------------


def test_infer_types() -> None:
    types = {"i": Int32, "j": Int64, "f": Float32, "s": String, "t": UnixTimestamp}
    assert infer((col("i") + col("i")).node, types) == Int64
    assert infer((col("i") + col("f")).node, types) == Float64
    assert infer((col("i") / col("i")).node, types) == Float64
    assert infer((col("i") // 2).node, types) == Int64
    assert infer((col("t") - col("t")).node, types) == Duration
    assert infer((col("t") + timedelta(1)).node, types) == UnixTimestamp
    assert infer((col("t") - col("t")).total_seconds().node, types) == Float64
    assert infer(coalesce(col("i"), None).node, types) == Int64
    assert infer(coalesce(col("i"), col("f")).node, types) == Float64
    assert infer(length(col("s")).node, types) == Int64
    assert infer(col("i").cast(Int32).node, types) == Int32
    assert infer(lit(None, Int64).node, types) == Int64


def test_type_error_names_the_sub_expression() -> None:
    with pytest.raises(ExpressionTypeError) as caught:
        infer(((col("km") + "x") * 2).node, {"km": Float64})
    assert caught.value.expression == "col('km') + 'x'"
    assert caught.value.detail == "+ does not join strings (float64, string); use concat()"
    assert (
        str(caught.value)
        == "col('km') + 'x': + does not join strings (float64, string); use concat()"
    )


@pytest.mark.parametrize(
    ("expr", "expression", "detail"),
    [
        (col("s") // 2, "col('s') // 2", "// takes integers, got string, int64"),
        (col("f") % 2, "col('f') % 2", "% takes integers, got float64, int64"),
        (col("s") < 1, "col('s') < 1", "cannot compare string with int64"),
        (col("y") < col("y"), "col('y') < col('y')", "cannot compare bytes with bytes"),
        (sqrt(col("s")), "sqrt(col('s'))", "sqrt() takes numbers, got string"),
        (col("f").cast(String), "col('f').cast(String)", "cannot cast float64 to string"),
        (
            round(col("i"), -1),
            "round(col('i'), digits=-1)",
            "round() of an integer takes digits >= 0",
        ),
        (
            round(col("f"), 16),
            "round(col('f'), digits=16)",
            "digits must be an integer from -15 to 15",
        ),
        (
            hour(col("t"), tz="Mars/Olympus"),
            "hour(col('t'), tz='Mars/Olympus')",
            "unknown time zone",
        ),
        (hour(col("f")), "hour(col('f'))", "hour() takes a timestamp, got float64"),
        (clip(col("f"), 2, 1), "clip(col('f'), 2, 1)", "lower bound 2 is above the upper bound 1"),
        (clip(col("f"), col("f"), 1), "clip(col('f'), col('f'), 1)", "bounds must be constants"),
        (coalesce(col("s"), 1), "coalesce(col('s'), 1)", "coalesce() values have different types"),
        (coalesce(None, None), "coalesce(None, None)", "are all None"),
        (
            when(col("f"), 1).otherwise(2),
            "when(col('f'), 1).otherwise(2)",
            "condition col('f') is float64",
        ),
        (col("b") & 1, "col('b') & 1", "and takes booleans, got bool, int64"),
        (col("t") + col("t"), "col('t') + col('t')", "+ takes numbers, timestamps and durations"),
        (col("z") + 1, "col('z')", "no input column 'z' (columns: b, f, i, s, t, y)"),
    ],
)
def test_type_errors(expr: Expr, expression: str, detail: str) -> None:
    types = {"i": Int64, "f": Float64, "s": String, "b": Bool, "t": UnixTimestamp, "y": Bytes}
    with pytest.raises(ExpressionTypeError) as caught:
        infer(expr.node, types)
    assert caught.value.expression == expression
    assert detail in caught.value.detail


def test_unknown_column_suggests_a_close_name() -> None:
    with pytest.raises(
        ExpressionTypeError,
        match=r"no input column 'kms' \(columns: km, minutes\); did you mean 'km'\?",
    ):
        infer((col("kms") / 60).node, {"km": Float64, "minutes": Int64})


def test_unknown_function_and_arity() -> None:
    with pytest.raises(ExpressionTypeError, match="unknown function 'frobnicate'"):
        infer(Call("frobnicate", (Col("a"),)), {"a": Int64})
    with pytest.raises(ExpressionTypeError, match=r"sqrt\(\) takes 1 arguments, got 2"):
        infer(Call("sqrt", (Col("a"), Col("a"))), {"a": Int64})
    with pytest.raises(ExpressionTypeError, match="condition/value pairs"):
        infer(Call("case", (Col("b"), Col("a"), Col("b"), Col("a"))), {"a": Int64, "b": Bool})


def test_arrays_pass_through_col_only() -> None:
    types = {"v": Array(Float32)}
    assert infer(col("v").node, types) == Array(Float32)
    with pytest.raises(
        ExpressionTypeError, match=r"length\(\) takes no arrays, and col\('v'\) is array<float32>"
    ):
        infer(length(col("v")).node, types)


def test_check_feature() -> None:
    types = {"i": Int32, "f": Float64, "t": UnixTimestamp}
    assert check_feature(col("i").node, Int64, types) == Int32  # int32 widens into int64
    assert check_feature((col("i") * 2).cast(Int32).node, Int32, types) == Int32
    with pytest.raises(
        ExpressionTypeError,
        match=r"gives float64 but the feature is declared int64; add \.cast\(Int64\)",
    ):
        check_feature((col("f") * 2).node, Int64, types)
    with pytest.raises(ExpressionTypeError, match="gives int64 but the feature is declared int32"):
        check_feature((col("i") * 2).node, Int32, types)
    with pytest.raises(ExpressionTypeError, match="gives a duration, which no feature can hold"):
        check_feature((col("t") - col("t")).node, Float64, types)
    with pytest.raises(ExpressionTypeError, match="is always None"):
        check_feature(lit(None).node, Float64, types)


# --- the builder -----------------------------------------------------------------------------


def test_expr_refuses_truth_value() -> None:
    with pytest.raises(TypeError, match=r"has no truth value: combine conditions with & \| ~"):
        bool(col("a") < 1)
    with pytest.raises(TypeError, match=r"\(a < b\) & \(b < c\)"):
        _ = 1 < col("a") < 3  # a chained comparison asks for bool() of the first
    with pytest.raises(TypeError, match="no truth value"):
        _ = (col("a") > 1) and (col("b") > 1)
    with pytest.raises(TypeError, match=r"needs \.otherwise\(value\)"):
        bool(when(col("a") > 1, 1))


def test_expr_is_not_hashable() -> None:
    with pytest.raises(TypeError):
        hash(col("a"))


def test_lit_datetime_naive_is_utc() -> None:
    assert lit(datetime(2024, 1, 1)).node == Lit(1_704_067_200_000_000, "unix_timestamp")
    assert lit(datetime(1970, 1, 1, 0, 0, 0, 1)).node == Lit(1, "unix_timestamp")
    assert lit(datetime(1969, 12, 31, 23, 59, 59, 999999)).node == Lit(-1, "unix_timestamp")


def test_lit_datetime_aware_is_converted() -> None:
    paris = datetime(2024, 1, 1, tzinfo=ZoneInfo("Europe/Paris"))  # 2023-12-31T23:00Z
    assert lit(paris).node == Lit(1_704_063_600_000_000, "unix_timestamp")
    plus_530 = datetime(2024, 1, 1, 5, 30, tzinfo=timezone(timedelta(hours=5, minutes=30)))
    assert lit(plus_530).node == lit(datetime(2024, 1, 1, tzinfo=UTC)).node


def test_lit_timedelta_is_micros() -> None:
    assert lit(timedelta(days=1, microseconds=1)).node == Lit(86_400_000_001, "duration")
    assert lit(timedelta(microseconds=-1)).node == Lit(-1, "duration")
    assert infer(lit(timedelta(hours=1)).node, {}) == Duration


def test_lit_values_and_refusals() -> None:
    assert lit(True).node == Lit(True, "bool")
    assert lit(b"\x00\xff").node == Lit("00ff", "bytes")
    assert lit(None).node == Lit(None, "null")
    assert lit(5, Int32).node == Call("cast", (Lit(5, "int64"),), "int32")
    assert lit(None, Float64).node == Lit(None, "float64")
    assert lit(None, UnixTimestamp).node == Lit(None, "unix_timestamp")
    assert lit(5, Int64).node == Lit(5, "int64")
    assert lit(b"x", Bytes).node == Lit("78", "bytes")
    with pytest.raises(TypeError, match="is string, not bytes"):
        lit("x", Bytes)
    with pytest.raises(TypeError, match="outside the int64 range"):
        lit(2**63)
    with pytest.raises(TypeError, match=r"cannot use \[1\] \(list\) in an expression"):
        lit([1])
    with pytest.raises(TypeError, match="cast"):
        col("a").cast("int64")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="col"):
        col("")


def test_clip_bounds_may_not_be_nan() -> None:
    for bounds in ((math.nan, None), (None, math.nan)):
        with pytest.raises(ExpressionTypeError, match="bounds may not be NaN"):
            infer(clip(col("x"), *bounds).node, {"x": Float64})


@pytest.mark.parametrize("zone", ["Factory", "localtime", "posix/Europe/Paris", "Mars/Olympus"])
def test_time_zones_are_world_zones_both_engines_read(zone: str) -> None:
    with pytest.raises(ExpressionTypeError, match="unknown time zone"):
        infer(hour(col("t"), tz=zone).node, {"t": UnixTimestamp})
