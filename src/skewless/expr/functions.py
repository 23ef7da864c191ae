"""The functions of the expression language: names, arities, options, and how each is
written back as text (for error messages and `describe`).

docs/expressions.md states what each one computes; both engines implement exactly that
(batch/expressions.py on Spark, serving/expressions.py on Arrow/numpy).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import timedelta
from typing import Literal

from skewless.expr.nodes import Call, Col, Lit, Node
from skewless.timeutil import EPOCH
from skewless.types import parse_dtype

OptionKind = Literal["none", "digits", "dtype", "tz"]


@dataclass(frozen=True, slots=True)
class Function:
    name: str
    min_args: int
    max_args: int | None  # None: any number from min_args on
    option: OptionKind = "none"
    infix: str | None = None  # the Python operator that writes it, if any


_FUNCTIONS = [
    Function("add", 2, 2, infix="+"),
    Function("sub", 2, 2, infix="-"),
    Function("mul", 2, 2, infix="*"),
    Function("div", 2, 2, infix="/"),
    Function("floordiv", 2, 2, infix="//"),
    Function("mod", 2, 2, infix="%"),
    Function("neg", 1, 1),
    Function("eq", 2, 2, infix="=="),
    Function("ne", 2, 2, infix="!="),
    Function("lt", 2, 2, infix="<"),
    Function("le", 2, 2, infix="<="),
    Function("gt", 2, 2, infix=">"),
    Function("ge", 2, 2, infix=">="),
    Function("and", 2, 2, infix="&"),
    Function("or", 2, 2, infix="|"),
    Function("not", 1, 1),
    Function("is_null", 1, 1),
    Function("is_nan", 1, 1),
    Function("coalesce", 1, None),
    Function("case", 3, None),  # cond, value, [cond, value, ...], otherwise
    Function("clip", 3, 3),
    Function("abs", 1, 1),
    Function("round", 1, 1, option="digits"),
    Function("floor", 1, 1),
    Function("ceil", 1, 1),
    Function("sqrt", 1, 1),
    Function("log", 1, 1),
    Function("log1p", 1, 1),
    Function("exp", 1, 1),
    Function("pow", 2, 2),
    Function("cast", 1, 1, option="dtype"),
    Function("lower", 1, 1),
    Function("upper", 1, 1),
    Function("length", 1, 1),
    Function("concat", 2, None),
    Function("contains", 2, 2),
    Function("starts_with", 2, 2),
    Function("ends_with", 2, 2),
    Function("year", 1, 1, option="tz"),
    Function("month", 1, 1, option="tz"),
    Function("day", 1, 1, option="tz"),
    Function("hour", 1, 1, option="tz"),
    Function("minute", 1, 1, option="tz"),
    Function("second", 1, 1, option="tz"),
    Function("day_of_week", 1, 1, option="tz"),
    Function("day_of_year", 1, 1, option="tz"),
    Function("is_weekend", 1, 1, option="tz"),
    Function("total_seconds", 1, 1),
]

FUNCTIONS: dict[str, Function] = {f.name: f for f in _FUNCTIONS}

# The text a cast to a number reads (docs/expressions.md), for both engines: ASCII digits
# only, nothing around them. Written so no text can make a backtracking engine
# backtrack more than linearly (each digit can belong to one group only).
INT_TEXT = r"[+-]?[0-9]+"
FLOAT_TEXT = r"[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?"

TIME_PARTS = (
    "year",
    "month",
    "day",
    "hour",
    "minute",
    "second",
    "day_of_week",
    "day_of_year",
    "is_weekend",
)
ROUND_DIGITS = range(-15, 16)


def check_shape(call: Call) -> str | None:  # noqa: PLR0911 - one answer per rule
    """What is wrong with a call's name, arity or option, or None."""
    fn = FUNCTIONS.get(call.fn)
    if fn is None:
        return f"unknown function '{call.fn}'"
    n = len(call.args)
    if n < fn.min_args or (fn.max_args is not None and n > fn.max_args):
        want = (
            f"{fn.min_args}"
            if fn.max_args == fn.min_args
            else f"at least {fn.min_args}"
            if fn.max_args is None
            else f"{fn.min_args} to {fn.max_args}"
        )
        return f"{call.fn}() takes {want} arguments, got {n}"
    if call.fn == "case" and n % 2 == 0:
        return "case takes condition/value pairs and an otherwise value"
    match fn.option:
        case "none":
            if call.option is not None:
                return f"{call.fn}() takes no option, got {call.option!r}"
        case "digits":
            if not isinstance(call.option, int) or call.option not in ROUND_DIGITS:
                return f"round() digits must be an integer from -15 to 15, got {call.option!r}"
        case "dtype" | "tz":
            if not isinstance(call.option, str):
                return f"{call.fn}() needs a {fn.option} option, got {call.option!r}"
    return None


# --- text ----------------------------------------------------------------------------

_PRECEDENCE = {"|": 1, "&": 2, "==": 4, "!=": 4, "<": 4, "<=": 4, ">": 4, ">=": 4}
_PRECEDENCE |= {"+": 5, "-": 5, "*": 6, "/": 6, "//": 6, "%": 6}


def render(node: Node) -> str:
    """The expression as Python text that builds it (`col("km") / 60`)."""
    return _render(node, 0)


def _render(node: Node, outer: int) -> str:  # noqa: PLR0911 - one form per node kind
    match node:
        case Col(name):
            return f"col({name!r})"
        case Lit():
            return _render_lit(node)
        case Call(fn, args, option):
            spec = FUNCTIONS.get(fn)
            if spec is not None and spec.infix is not None and len(args) == 2:
                prec = _PRECEDENCE[spec.infix]
                text = f"{_render(args[0], prec)} {spec.infix} {_render(args[1], prec + 1)}"
                return f"({text})" if prec < outer or (outer and prec <= 4) else text
            if fn == "neg":
                return f"-{_render(args[0], 7)}"
            if fn == "not":
                return f"~{_render(args[0], 7)}"
            if fn == "case":
                parts = [
                    f"when({render(args[i])}, {render(args[i + 1])})"
                    for i in range(0, len(args) - 1, 2)
                ]
                text = ".".join(parts)
                return f"{text}.otherwise({render(args[-1])})"
            inner = ", ".join(render(a) for a in args)
            if fn == "cast":
                if isinstance(args[0], Lit):
                    return f"lit({_render_lit(args[0])}, {_dtype_repr(option)})"
                return f"{_render(args[0], 8)}.cast({_dtype_repr(option)})"
            if option is not None and not (fn in TIME_PARTS and option == "UTC"):
                key = "digits" if fn == "round" else "tz"
                inner += f", {key}={option!r}"
            return f"{fn}({inner})"


def _dtype_repr(name: object) -> str:
    try:
        return repr(parse_dtype(str(name)))
    except ValueError:
        return repr(name)


def _render_lit(node: Lit) -> str:
    """A constant as the Python text lit() takes."""
    value = node.python
    if value is None:
        return "None" if node.dtype == "null" else f"lit(None, {_dtype_repr(node.dtype)})"
    match node.dtype:
        case "unix_timestamp":
            at = EPOCH + timedelta(microseconds=int(value))
            return f"datetime.fromisoformat({at.isoformat()!r})"
        case "duration":
            return f"timedelta(microseconds={value!r})"
        case "float64" if isinstance(value, float) and not math.isfinite(value):
            return f"float({str(value)!r})"
        case _:
            return repr(value)
