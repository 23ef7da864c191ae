"""Type inference and checking of expressions: no engine, no data.

`infer(node, inputs)` gives the type an expression evaluates to, given the types of its
input columns, or raises ExpressionTypeError naming the sub-expression at fault. The
rules (docs/expressions.md):

- Integer arithmetic is done in int64 and floating-point arithmetic in float64: an int32
  or float32 operand is widened first, so `+ - * // % abs neg` give int64 or float64;
  `/` always gives float64. `//` and `%` take integers only.
- Comparisons take two numbers (an integer meets a float as float64), or two values of
  one type among string, bool, unix_timestamp, duration and bytes (bytes: == and != only).
- `coalesce`, `when/otherwise` and `clip` unify their values: all numbers give int64 or
  float64 as above; otherwise all must have one type. An untyped None takes the others'.
- Timestamps: timestamp - timestamp is a duration, timestamp +/- duration a timestamp,
  duration +/- duration a duration. A duration is no feature type: `total_seconds()`
  turns it into float64.
- Arrays are passed through by `col()` only; no function takes one.
"""

from __future__ import annotations

import functools
import math
import zoneinfo
from collections.abc import Mapping
from dataclasses import dataclass
from difflib import get_close_matches
from typing import ClassVar

from skewless.errors import ExpressionTypeError
from skewless.expr.functions import TIME_PARTS, check_shape, render
from skewless.expr.nodes import Call, Col, Lit, Node
from skewless.types import (
    ArrayType,
    Bool,
    Bytes,
    DType,
    Float32,
    Float64,
    Int32,
    Int64,
    ScalarType,
    String,
    UnixTimestamp,
    accepts,
    parse_dtype,
)


@dataclass(frozen=True, slots=True)
class DurationType:
    """A span of time in microseconds: what timestamp - timestamp gives."""

    name: ClassVar[str] = "duration"


@dataclass(frozen=True, slots=True)
class NullType:
    """The type of an untyped None: it takes the type of the values beside it."""

    name: ClassVar[str] = "null"


Duration = DurationType()
Null = NullType()
EType = ScalarType | ArrayType | DurationType | NullType

INTEGERS = (Int32, Int64)
FLOATS = (Float32, Float64)
CAST_TARGETS = (Int32, Int64, Float32, Float64, String, Bool)
_ORDERED = (String, Bool, UnixTimestamp)

_LIT_TYPES: dict[str, EType] = {
    "int64": Int64,
    "float64": Float64,
    "string": String,
    "bool": Bool,
    "unix_timestamp": UnixTimestamp,
    "duration": Duration,
    "bytes": Bytes,
    "null": Null,
}


def lit_type(node: Lit) -> EType:
    return _LIT_TYPES[node.dtype]


def is_numeric(t: EType) -> bool:
    return t in INTEGERS or t in FLOATS


def cast_allowed(source: EType, target: ScalarType) -> bool:
    """Whether `cast(target)` is defined for a value of type `source`."""
    if source in (Null, target):
        return True
    if target in INTEGERS or target in FLOATS:
        return is_numeric(source) or source in (Bool, String)
    if target == Bool:
        return is_numeric(source) or source == String
    if target == String:
        return source in INTEGERS or source == Bool
    return False


def infer(node: Node, inputs: Mapping[str, EType]) -> EType:
    """The type `node` evaluates to over input columns of the given types."""
    match node:
        case Col(name):
            if name not in inputs:
                close = get_close_matches(name, list(inputs), n=1)
                hint = f"; did you mean '{close[0]}'?" if close else ""
                known = ", ".join(sorted(inputs)) or "none"
                raise ExpressionTypeError(
                    f"no input column '{name}' (columns: {known}){hint}", render(node)
                )
            return inputs[name]
        case Lit():
            return lit_type(node)
        case Call():
            problem = check_shape(node)
            if problem is not None:
                raise ExpressionTypeError(problem, render(node))
            types = [infer(a, inputs) for a in node.args]
            for arg, t in zip(node.args, types, strict=True):
                if isinstance(t, ArrayType):
                    raise ExpressionTypeError(
                        f"{node.fn}() takes no arrays, and {render(arg)} is {t.name}",
                        render(node),
                    )
            return _call_type(node, types)


def _fail(node: Call, detail: str) -> ExpressionTypeError:
    return ExpressionTypeError(detail, render(node))


def _types_text(types: list[EType]) -> str:
    return ", ".join(t.name for t in types)


def numeric_result(types: list[EType]) -> ScalarType | None:
    """int64 when every typed operand is an integer, float64 when one is a float, None
    when an operand is not a number (or every operand is an untyped None)."""
    typed = [t for t in types if t != Null]
    if not typed or not all(is_numeric(t) for t in typed):
        return None
    return Int64 if all(t in INTEGERS for t in typed) else Float64


def unify(types: list[EType]) -> EType | None:
    """The one type a set of values takes (coalesce, when/otherwise), or None."""
    typed = [t for t in types if t != Null]
    if not typed:
        return Null
    numeric = numeric_result(typed)
    if numeric is not None:
        return numeric if len(set(typed)) > 1 else _widened(typed[0])
    return typed[0] if len(set(typed)) == 1 else None


def _widened(t: EType) -> EType:
    if t in INTEGERS:
        return Int64
    if t in FLOATS:
        return Float64
    return t


def _call_type(node: Call, types: list[EType]) -> EType:  # noqa: PLR0911, PLR0912, PLR0915 - one case per function
    fn = node.fn
    match fn:
        case "add" | "sub":
            return _add_sub(node, types)
        case "mul":
            result = numeric_result(types)
            if result is None:
                raise _fail(node, f"* takes numbers, got {_types_text(types)}")
            return result
        case "div":
            if numeric_result(types) is None:
                raise _fail(node, f"/ takes numbers, got {_types_text(types)}")
            return Float64
        case "floordiv" | "mod":
            if numeric_result(types) != Int64:
                op = "//" if fn == "floordiv" else "%"
                raise _fail(
                    node,
                    f"{op} takes integers, got {_types_text(types)} (cast a float with "
                    ".cast(Int64), or use floor(a / b))",
                )
            return Int64
        case "neg" | "abs":
            (t,) = types
            if t == Duration and fn == "neg":
                return Duration
            result = numeric_result(types)
            if result is None:
                raise _fail(node, f"{fn}() takes a number, got {t.name}")
            return result
        case "eq" | "ne" | "lt" | "le" | "gt" | "ge":
            _comparable(node, types)
            return Bool
        case "and" | "or" | "not":
            if any(t not in (Bool, Null) for t in types):
                raise _fail(node, f"{fn} takes booleans, got {_types_text(types)}")
            return Bool
        case "is_null":
            return Bool
        case "is_nan":
            if types[0] not in (*FLOATS, Null):
                raise _fail(node, f"is_nan() takes a float, got {types[0].name}")
            return Bool
        case "coalesce":
            return _unified(node, types, "coalesce() values")
        case "case":
            conditions = types[0:-1:2]
            for i, t in enumerate(conditions):
                if t not in (Bool, Null):
                    raise _fail(
                        node, f"when() condition {render(node.args[2 * i])} is {t.name}, not bool"
                    )
            return _unified(node, [*types[1:-1:2], types[-1]], "when()/otherwise() values")
        case "clip":
            if numeric_result(types) is None or types[0] == Null:
                raise _fail(node, f"clip() takes numbers, got {_types_text(types)}")
            for bound in node.args[1:]:
                if not isinstance(bound, Lit):
                    raise _fail(node, f"clip() bounds must be constants, got {render(bound)}")
            low, high = (b.python for b in node.args[1:] if isinstance(b, Lit))
            if any(isinstance(v, float) and math.isnan(v) for v in (low, high)):
                raise _fail(node, "clip() bounds may not be NaN (None means no bound)")
            if (
                isinstance(low, int | float)
                and isinstance(high, int | float)
                and not isinstance(low, bool)
                and low > high
            ):
                raise _fail(node, f"clip() lower bound {low} is above the upper bound {high}")
            return numeric_result(types) or Float64
        case "round" | "floor" | "ceil":
            result = numeric_result(types)
            if result is None:
                raise _fail(node, f"{fn}() takes a number, got {types[0].name}")
            if (
                fn == "round"
                and result == Int64
                and isinstance(node.option, int)
                and node.option < 0
            ):
                raise _fail(node, "round() of an integer takes digits >= 0")
            return result
        case "sqrt" | "log" | "log1p" | "exp" | "pow":
            if numeric_result(types) is None or Null in types:
                raise _fail(node, f"{fn}() takes numbers, got {_types_text(types)}")
            return Float64
        case "cast":
            return _cast(node, types[0])
        case "lower" | "upper" | "length":
            if types[0] not in (String, Null):
                raise _fail(node, f"{fn}() takes a string, got {types[0].name}")
            return Int64 if fn == "length" else String
        case "concat" | "contains" | "starts_with" | "ends_with":
            if any(t not in (String, Null) for t in types):
                raise _fail(node, f"{fn}() takes strings, got {_types_text(types)}")
            return String if fn == "concat" else Bool
        case "total_seconds":
            if types[0] not in (Duration, Null):
                raise _fail(node, f"total_seconds() takes a duration, got {types[0].name}")
            return Float64
        case _ if fn in TIME_PARTS:
            if types[0] not in (UnixTimestamp, Null):
                raise _fail(node, f"{fn}() takes a timestamp, got {types[0].name}")
            check_zone(node)
            return Bool if fn == "is_weekend" else Int64
    raise _fail(node, f"unknown function '{fn}'")  # pragma: no cover - check_shape refuses


def _add_sub(node: Call, types: list[EType]) -> EType:
    a, b = types
    result = numeric_result(types)
    if result is not None:
        return result
    op = "+" if node.fn == "add" else "-"
    if a == UnixTimestamp and b in (Duration, Null):
        return UnixTimestamp
    if node.fn == "add" and a in (Duration, Null) and b == UnixTimestamp:
        return UnixTimestamp
    if node.fn == "sub" and a == UnixTimestamp and b == UnixTimestamp:
        return Duration
    if a in (Duration, Null) and b in (Duration, Null) and Duration in types:
        return Duration
    if String in types and node.fn == "add":
        raise _fail(node, f"+ does not join strings ({_types_text(types)}); use concat()")
    raise _fail(node, f"{op} takes numbers, timestamps and durations, got {_types_text(types)}")


def _comparable(node: Call, types: list[EType]) -> None:
    a, b = types
    if numeric_result(types) is not None:
        return
    typed = [t for t in types if t != Null]
    if not typed:
        return
    if len(set(typed)) == 1 and typed[0] in (*_ORDERED, Duration):
        return
    if len(set(typed)) == 1 and typed[0] == Bytes and node.fn in ("eq", "ne"):
        return
    raise _fail(node, f"cannot compare {a.name} with {b.name}")


def _unified(node: Call, types: list[EType], what: str) -> EType:
    result = unify(types)
    if result is None:
        raise _fail(node, f"{what} have different types: {_types_text(types)}")
    if result == Null:
        raise _fail(node, f"{what} are all None, so their type is unknown (use lit(None, Int64))")
    return result


def _cast(node: Call, source: EType) -> EType:
    try:
        target = parse_dtype(str(node.option))
    except ValueError as exc:
        raise _fail(node, str(exc)) from None
    if not isinstance(target, ScalarType) or target not in CAST_TARGETS:
        names = ", ".join(t.name for t in CAST_TARGETS)
        raise _fail(node, f"cast() targets {names}, not {target.name}")
    if not cast_allowed(source, target):
        hint = ""
        if target == String and source in FLOATS:
            hint = " (float text differs between engines: round and cast to int64 first)"
        raise _fail(node, f"cannot cast {source.name} to {target.name}{hint}")
    return target


# Names the tz database holds that are no zone of the world, or that mean another zone
# on each machine: the JVM and Python would read them differently.
_NOT_ZONES = frozenset({"Factory", "localtime", "posixrules"})


def check_zone(node: Call) -> None:
    zone = str(node.option)
    if zone in _NOT_ZONES or zone.startswith(("posix/", "right/")) or zone not in _zones():
        raise _fail(node, f"unknown time zone {zone!r} (an IANA name such as 'Europe/Paris')")


@functools.cache
def _zones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def check_feature(node: Node, declared: DType, inputs: Mapping[str, EType]) -> EType:
    """Infer `node` and check that a feature declared `declared` can hold its values."""
    result = infer(node, inputs)
    if result == Duration:
        raise ExpressionTypeError(
            "gives a duration, which no feature can hold; use total_seconds()", render(node)
        )
    if result == Null:
        raise ExpressionTypeError("is always None; its type is unknown", render(node))
    if isinstance(result, ScalarType | ArrayType) and accepts(declared, result):
        return result
    hint = ""
    if isinstance(declared, ScalarType) and declared in CAST_TARGETS:
        hint = f"; add .cast({declared!r}) to convert"
    raise ExpressionTypeError(
        f"gives {result.name} but the feature is declared {declared.name}{hint}", render(node)
    )
