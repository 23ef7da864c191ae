"""The online engine of the expression language: a vectorized evaluator over Arrow/numpy.

`Evaluator(node, input_types)` type-checks an expression once (skewless.expr.check) and
compiles it into a tree of closures; calling it with Arrow columns computes the whole
batch with numpy and returns one Arrow array. docs/expressions.md ("One behaviour in both
engines") is the contract: Spark (batch/expressions.py) computes the same values.

Inside, a value is a pair of numpy arrays of the batch's length: the values and a bool
mask of the rows that are not None. Integers, timestamps and durations (microseconds)
are int64, floats float64 (an int32 or float32 input is widened on load; a float32 cast
keeps float32-representable values in float64), booleans bool, strings and bytes object
arrays. A None row holds an arbitrary value, so every operation is written to neither
fail nor warn on any value (numpy's floating-point warnings are silenced for the call,
and divisors, casts and lookups are made safe with masks first).
"""

from __future__ import annotations

import operator
import string
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import pyarrow as pa

from skewless.expr.check import EType, Null, infer
from skewless.expr.nodes import INT64_MAX, INT64_MIN, Call, Col, Lit, Node, columns
from skewless.serving.arrow_values import (
    BOOL,
    BYTES,
    DUR,
    FLOAT,
    INT,
    KINDS,
    NULL,
    STR,
    TS,
    arrow_input_type,
    input_column,
    load,
    to_output,
)
from skewless.serving.kernels import (
    TS_MAX,
    TS_MIN,
    Array,
    Mask,
    Op,
    Vec,
    add_int,
    always,
    div_float,
    float_to_int,
    floordiv_int,
    java_pow,
    mod_int,
    mul_int,
    parse_float,
    parse_int,
    parsed,
    round_float,
    sub_int,
    ts_add,
    ts_sub,
)
from skewless.serving.local_time import time_part
from skewless.types import (
    ArrayType,
    Bool,
    Float32,
    Float64,
    Int32,
    Int64,
    parse_dtype,
    to_arrow,
)

Env = Mapping[str, Vec]
Fn = Callable[[Env, int], Vec]

_INT32_MIN, _INT32_MAX = -(2**31), 2**31 - 1


# --- the public face -------------------------------------------------------------------


class Evaluator:
    """One expression, type-checked and compiled once; call it on batches of columns.

    `Evaluator(node, input_types)` raises ExpressionTypeError when the expression does not
    type-check. `evaluator(inputs, length)` takes Arrow arrays of the input columns (any
    extra columns are ignored) and returns `length` rows typed
    `skewless.types.to_arrow(evaluator.output_type)` (a duration gives duration("us"), an
    expression that is always an untyped None gives Arrow's null type).
    """

    __slots__ = ("_input_types", "_passthrough", "_run", "columns", "node", "output_type")

    def __init__(self, node: Node, input_types: Mapping[str, EType]) -> None:
        self.node = node
        self.output_type: EType = infer(node, input_types)
        self.columns: tuple[str, ...] = columns(node)
        self._input_types = {name: input_types[name] for name in self.columns}
        # Arrays pass through col() and nothing else (check.infer refuses them in a call).
        self._passthrough = isinstance(node, Col) and isinstance(self.output_type, ArrayType)
        self._run: Fn = (
            _nulls(NULL) if self._passthrough else _Compiler(input_types).compile(node)[1]
        )

    def __repr__(self) -> str:
        return f"Evaluator({self.node!r})"

    def __call__(self, inputs: Mapping[str, pa.Array | pa.ChunkedArray], length: int) -> pa.Array:
        if self._passthrough:
            (name,) = self.columns
            array = input_column(inputs, name, length)
            target = to_arrow(self.output_type)  # type: ignore[arg-type]
            return array if array.type == target else array.cast(target)
        with np.errstate(all="ignore"):
            env = {
                name: load(name, input_column(inputs, name, length), t)
                for name, t in self._input_types.items()
                if t != Null
            }
            values, valid = self._run(env, length)
            return to_output(values, valid, self.output_type)


def evaluate(node: Node, inputs: Mapping[str, pa.Array | pa.ChunkedArray]) -> pa.Array:
    """Evaluate `node` once over `inputs`, their types taken from their Arrow types. The
    columns must have one length; with no columns the result has one row."""
    types: dict[str, EType] = {}
    for name, array in inputs.items():
        t = arrow_input_type(array.type)
        if t is not None:
            types[name] = t
    for name in columns(node):
        if name in inputs and name not in types:
            raise TypeError(f"input column '{name}' has Arrow type {inputs[name].type}")
    lengths = {len(a) for a in inputs.values()}
    if len(lengths) > 1:
        raise ValueError(f"input columns have different lengths: {sorted(lengths)}")
    length = lengths.pop() if lengths else 1
    return Evaluator(node, types)(inputs, length)


# --- compiling ---------------------------------------------------------------------------


def _ones(n: int) -> Mask:
    return np.ones(n, dtype=np.bool_)


def _blank(kind: str, n: int) -> Array:
    if kind in (INT, TS, DUR):
        return np.zeros(n, dtype=np.int64)
    if kind == BOOL:
        return np.zeros(n, dtype=np.bool_)
    if kind == STR:
        return np.full(n, "", dtype=object)
    if kind == BYTES:
        return np.full(n, b"", dtype=object)
    return np.zeros(n, dtype=np.float64)


def _nulls(kind: str) -> Fn:
    def run(env: Env, n: int) -> Vec:
        return _blank(kind, n), np.zeros(n, dtype=np.bool_)

    return run


def _constant(kind: str, value: object) -> Fn:
    dtype: Any = {INT: np.int64, TS: np.int64, DUR: np.int64, FLOAT: np.float64, BOOL: np.bool_}
    numpy_type = dtype.get(kind, object)

    def run(env: Env, n: int) -> Vec:
        if numpy_type is object:
            # np.full would pass a str or bytes through numpy's fixed-width string
            # types, which drop trailing NUL characters
            values = np.empty(n, dtype=object)
            values.fill(value)
            return values, _ones(n)
        return np.full(n, value, dtype=numpy_type), _ones(n)

    return run


def _as_float(kind: str, fn: Fn) -> Fn:
    """An integer operand meets a float as float64 (IEEE nearest)."""
    if kind == FLOAT:
        return fn
    if kind == NULL:
        return _nulls(FLOAT)

    def run(env: Env, n: int) -> Vec:
        values, valid = fn(env, n)
        return values.astype(np.float64), valid

    return run


def _coerce(kind: str, target: str, fn: Fn) -> Fn:
    if kind == target:
        return fn
    if kind == NULL:
        return _nulls(target)
    if target == FLOAT:
        return _as_float(kind, fn)
    raise AssertionError(f"cannot use a {kind} value as {target}")  # pragma: no cover


def _strict(op: Op, *fns: Fn) -> Fn:
    """A function that is None where any argument is None; `op` takes the argument
    values and gives (values, rows that are valid as far as the operation goes)."""
    if len(fns) == 1:
        (fa,) = fns

        def run1(env: Env, n: int) -> Vec:
            a, va = fa(env, n)
            r, ok = op(a)
            return r, va & ok

        return run1
    if len(fns) == 2:
        fa, fb = fns

        def run2(env: Env, n: int) -> Vec:
            a, va = fa(env, n)
            b, vb = fb(env, n)
            r, ok = op(a, b)
            return r, va & vb & ok

        return run2

    def run(env: Env, n: int) -> Vec:
        pairs = [f(env, n) for f in fns]
        r, ok = op(*(p[0] for p in pairs))
        for _, v in pairs:
            ok = ok & v
        return r, ok

    return run


class _Compiler:
    """Turns a checked tree into closures; every decision on names and types is taken
    here, once, so that a call only runs numpy."""

    def __init__(self, types: Mapping[str, EType]) -> None:
        self._types = types

    def compile(self, node: Node) -> tuple[str, Fn]:
        kind = KINDS[infer(node, self._types)]
        if isinstance(node, Col):
            if kind == NULL:
                return NULL, _nulls(NULL)
            name = node.name

            def column(env: Env, n: int) -> Vec:
                return env[name]

            return kind, column
        if isinstance(node, Lit):
            value = node.python
            return kind, (_nulls(kind) if value is None else _constant(kind, value))
        args = [self.compile(a) for a in node.args]
        if node.fn not in _NULL_AWARE and any(k == NULL for k, _ in args):
            return kind, _nulls(kind)
        return kind, _BUILDERS[node.fn](node, kind, args)


Args = list[tuple[str, Fn]]
Builder = Callable[[Call, str, Args], Fn]
# Functions that take a None argument as something other than "the result is None".
_NULL_AWARE = {"and", "or", "is_null", "is_nan", "coalesce", "case", "clip"}


# --- arithmetic ------------------------------------------------------------------------


def _float_op(f: Callable[[Array, Array], Array]) -> Op:
    def op(a: Array, b: Array) -> Vec:
        return always(f(a, b))

    return op


def _arith(node: Call, kind: str, args: Args) -> Fn:
    (ka, fa), (kb, fb) = args
    fn = node.fn
    if kind == FLOAT:
        fa, fb = _as_float(ka, fa), _as_float(kb, fb)
        if fn == "div":
            return _strict(div_float, fa, fb)
        f = {"add": np.add, "sub": np.subtract, "mul": np.multiply}[fn]
        return _strict(_float_op(f), fa, fb)
    if kind == TS:
        if fn == "add" and ka == DUR:  # duration + timestamp
            fa, fb = fb, fa
        return _strict(ts_add if fn == "add" else ts_sub, fa, fb)
    ops: dict[str, Op] = {
        "add": add_int,
        "sub": sub_int,
        "mul": mul_int,
        "floordiv": floordiv_int,
        "mod": mod_int,
    }
    return _strict(ops[fn], fa, fb)


def _neg(node: Call, kind: str, args: Args) -> Fn:
    ((_, fa),) = args
    if kind == FLOAT:
        return _strict(lambda a: always(-a), fa)
    return _strict(lambda a: (-a, a != INT64_MIN), fa)


def _abs(node: Call, kind: str, args: Args) -> Fn:
    ((ka, fa),) = args
    if kind == FLOAT:
        return _strict(lambda a: always(np.abs(a)), _as_float(ka, fa))
    return _strict(lambda a: (np.abs(a), a != INT64_MIN), fa)


# --- comparisons and logic -----------------------------------------------------------


def _float_compare(fn: str) -> Op:
    """IEEE comparisons, except that NaN equals NaN and is above every number."""

    def lt(a: Array, b: Array) -> Mask:
        result: Mask = (a < b) | (np.isnan(b) & ~np.isnan(a))
        return result

    def le(a: Array, b: Array) -> Mask:
        result: Mask = (a <= b) | np.isnan(b)
        return result

    def eq(a: Array, b: Array) -> Mask:
        result: Mask = (a == b) | (np.isnan(a) & np.isnan(b))
        return result

    compare: Callable[[Array, Array], Mask] = {
        "eq": eq,
        "ne": lambda a, b: ~eq(a, b),
        "lt": lt,
        "le": le,
        "gt": lambda a, b: lt(b, a),
        "ge": lambda a, b: le(b, a),
    }[fn]
    return lambda a, b: always(compare(a, b))


_COMPARE = {
    "eq": np.equal,
    "ne": np.not_equal,
    "lt": np.less,
    "le": np.less_equal,
    "gt": np.greater,
    "ge": np.greater_equal,
}


def _compare(node: Call, kind: str, args: Args) -> Fn:
    (ka, fa), (kb, fb) = args
    if FLOAT in (ka, kb):
        return _strict(_float_compare(node.fn), _as_float(ka, fa), _as_float(kb, fb))
    # Integers, timestamps, durations and booleans compare as numbers; strings compare
    # by code point (Python's str order) and bytes by value, through object arrays.
    f = _COMPARE[node.fn]
    return _strict(lambda a, b: always(np.asarray(f(a, b), dtype=np.bool_)), fa, fb)


def _logic(node: Call, kind: str, args: Args) -> Fn:
    fns = [_coerce(k, BOOL, f) for k, f in args]
    if node.fn == "not":
        return _strict(lambda a: always(~a), fns[0])
    fa, fb = fns
    if node.fn == "and":

        def kleene_and(env: Env, n: int) -> Vec:
            a, va = fa(env, n)
            b, vb = fb(env, n)
            a_false, b_false = va & ~a, vb & ~b
            return va & a & vb & b, (va & vb) | a_false | b_false

        return kleene_and

    def kleene_or(env: Env, n: int) -> Vec:
        a, va = fa(env, n)
        b, vb = fb(env, n)
        a_true, b_true = va & a, vb & b
        return a_true | b_true, (va & vb) | a_true | b_true

    return kleene_or


def _is_null(node: Call, kind: str, args: Args) -> Fn:
    ((_, fa),) = args

    def run(env: Env, n: int) -> Vec:
        _, valid = fa(env, n)
        return always(~valid)

    return run


def _is_nan(node: Call, kind: str, args: Args) -> Fn:
    ((ka, fa),) = args
    if ka == NULL:
        return lambda env, n: always(np.zeros(n, dtype=np.bool_))

    def run(env: Env, n: int) -> Vec:
        values, valid = fa(env, n)
        return always(valid & np.isnan(values))

    return run


# --- choosing values -------------------------------------------------------------------


def _coalesce(node: Call, kind: str, args: Args) -> Fn:
    fns = [_coerce(k, kind, f) for k, f in args if k != NULL]
    first, rest = fns[0], fns[1:]

    def run(env: Env, n: int) -> Vec:
        values, valid = first(env, n)
        for f in rest:
            v, m = f(env, n)
            take = m & ~valid
            values = np.where(take, v, values)
            valid = valid | m
        return values, valid

    return run


def _case(node: Call, kind: str, args: Args) -> Fn:
    pairs = [
        (_coerce(kc, BOOL, fc), _coerce(kv, kind, fv))
        for (kc, fc), (kv, fv) in zip(args[0:-1:2], args[1:-1:2], strict=True)
        if kc != NULL  # a None condition is never taken
    ]
    otherwise = _coerce(args[-1][0], kind, args[-1][1])
    # Later branches first, so that the first condition that holds has the last word.
    pairs.reverse()

    def run(env: Env, n: int) -> Vec:
        values, valid = otherwise(env, n)
        for cond, value in pairs:
            c, vc = cond(env, n)
            take = c & vc
            v, m = value(env, n)
            values = np.where(take, v, values)
            valid = np.where(take, m, valid)
        return values, valid

    return run


def _clip(node: Call, kind: str, args: Args) -> Fn:
    (kx, fx) = args[0]
    bounds = [a.python if isinstance(a, Lit) else None for a in node.args[1:]]
    low, high = bounds
    if kind == INT:

        def clip_int(x: Array) -> Vec:
            if low is not None:
                x = np.where(x < low, low, x)
            if high is not None:
                x = np.where(x > high, high, x)
            return always(x)

        return _strict(clip_int, fx)
    lo = None if low is None else float(low)
    hi = None if high is None else float(high)

    def clip_float(x: Array) -> Vec:
        # NaN stays NaN. A NaN lower bound is above every number (the comparison order),
        # so it replaces every other value; a NaN upper bound replaces nothing.
        if lo is not None:
            below = ~np.isnan(x) & ((x < lo) | np.isnan(lo))
            x = np.where(below, lo, x)
        if hi is not None:
            x = np.where(~np.isnan(x) & (x > hi), hi, x)
        return always(x)

    return _strict(clip_float, _as_float(kx, fx))


# --- numbers -----------------------------------------------------------------------------


def _round(node: Call, kind: str, args: Args) -> Fn:
    ((_, fx),) = args
    if kind == INT:
        return fx
    assert isinstance(node.option, int)
    return _strict(round_float(node.option), fx)


def _floor_ceil(node: Call, kind: str, args: Args) -> Fn:
    ((_, fx),) = args
    if kind == INT:
        return fx
    f = np.floor if node.fn == "floor" else np.ceil
    return _strict(lambda x: always(f(x) + 0.0), fx)


def _math(node: Call, kind: str, args: Args) -> Fn:
    fns = [_as_float(k, f) for k, f in args]
    match node.fn:
        case "sqrt":
            return _strict(lambda x: (np.sqrt(x), ~(x < 0.0)), *fns)
        case "log":
            return _strict(lambda x: (np.log(x), ~(x <= 0.0)), *fns)
        case "log1p":
            return _strict(lambda x: (np.log1p(x), ~(x <= -1.0)), *fns)
        case "exp":
            return _strict(lambda x: always(np.exp(x)), *fns)
    return _strict(java_pow, *fns)


# --- casts -----------------------------------------------------------------------------


def _cast(node: Call, kind: str, args: Args) -> Fn:
    ((source, fs),) = args
    target = parse_dtype(str(node.option))
    if target in (Int32, Int64):
        return _cast_to_int(source, fs, target == Int32)
    if target in (Float32, Float64):
        return _cast_to_float(source, fs, target == Float32)
    if target == Bool:
        return _cast_to_bool(source, fs)
    return _cast_to_string(source, fs)


def _cast_to_int(source: str, fs: Fn, int32: bool) -> Fn:
    low, high = (_INT32_MIN, _INT32_MAX) if int32 else (INT64_MIN, INT64_MAX)
    if source == INT:
        if not int32:
            return fs
        return _strict(lambda x: (x, (x >= low) & (x <= high)), fs)
    if source == FLOAT:
        return _strict(float_to_int(float(low), float(high) + 1.0), fs)
    if source == BOOL:
        return _strict(lambda x: always(x.astype(np.int64)), fs)
    return _strict(lambda x: parsed(x, lambda s: parse_int(s, low, high), np.int64), fs)


def _cast_to_float(source: str, fs: Fn, float32: bool) -> Fn:
    if source == STR:

        def read_floats(x: Array) -> Vec:
            values, ok = parsed(x, parse_float, np.float64)
            return (values.astype(np.float32).astype(np.float64) if float32 else values), ok

        return _strict(read_floats, fs)
    if float32:
        # Straight to float32, also from int64: one rounding, not two.
        return _strict(lambda x: always(x.astype(np.float32).astype(np.float64)), fs)
    return _strict(lambda x: always(x.astype(np.float64)), fs)


def _cast_to_bool(source: str, fs: Fn) -> Fn:
    if source == BOOL:
        return fs
    if source == STR:

        def parse_bool(x: Array) -> Vec:
            is_true = np.asarray(x == "true", dtype=np.bool_)
            return is_true, is_true | np.asarray(x == "false", dtype=np.bool_)

        return _strict(parse_bool, fs)
    return _strict(lambda x: always(x != 0), fs)  # NaN too is nonzero


def _cast_to_string(source: str, fs: Fn) -> Fn:
    if source == STR:
        return fs
    if source == BOOL:
        return _strict(lambda x: always(np.where(x, "true", "false").astype(object)), fs)
    return _strict(lambda x: always(x.astype(str).astype(object)), fs)


# --- strings -----------------------------------------------------------------------------

_UPPER = str.maketrans(string.ascii_lowercase, string.ascii_uppercase)
_LOWER = str.maketrans(string.ascii_uppercase, string.ascii_lowercase)


def _objects(items: Sequence[object] | Any, n: int) -> Array:
    out = np.empty(n, dtype=object)
    out[:] = items
    return out


def _strings(node: Call, kind: str, args: Args) -> Fn:
    fns = [f for _, f in args]
    match node.fn:
        case "lower" | "upper":
            # ASCII letters only: str.translate row by row (numpy's and Arrow's vectorized
            # case functions follow Unicode).
            table = _LOWER if node.fn == "lower" else _UPPER
            return _strict(
                lambda x: always(_objects([s.translate(table) for s in x], len(x))), *fns
            )
        case "length":
            return _strict(
                lambda x: always(np.fromiter(map(len, x), dtype=np.int64, count=len(x))), *fns
            )
        case "concat":

            def join(*parts: Array) -> Vec:
                out = parts[0]
                for p in parts[1:]:
                    out = out + p
                return always(out)

            return _strict(join, *fns)
    tests: dict[str, Callable[[Any, Any], bool]] = {
        "contains": operator.contains,
        "starts_with": str.startswith,
        "ends_with": str.endswith,
    }
    test = tests[node.fn]
    return _strict(
        lambda a, b: always(np.fromiter(map(test, a, b), dtype=np.bool_, count=len(a))), *fns
    )


# --- time ------------------------------------------------------------------------------


def _time(node: Call, kind: str, args: Args) -> Fn:
    ((_, fx),) = args
    part = time_part(node.fn, str(node.option))

    def run(env: Env, n: int) -> Vec:
        utc, valid = fx(env, n)
        # Instants outside the years 1 to 9999 (only an input can hold one) have no parts;
        # None rows are read as 1970 so that they cost no offset lookups.
        inside = valid & (utc >= TS_MIN) & (utc <= TS_MAX)
        return part(np.where(inside, utc, 0)), inside

    return run


def _total_seconds(node: Call, kind: str, args: Args) -> Fn:
    ((_, fx),) = args
    return _strict(lambda x: always(x.astype(np.float64) / 1e6), fx)


_BUILDERS: dict[str, Builder] = {
    **dict.fromkeys(("add", "sub", "mul", "div", "floordiv", "mod"), _arith),
    "neg": _neg,
    "abs": _abs,
    **dict.fromkeys(("eq", "ne", "lt", "le", "gt", "ge"), _compare),
    **dict.fromkeys(("and", "or", "not"), _logic),
    "is_null": _is_null,
    "is_nan": _is_nan,
    "coalesce": _coalesce,
    "case": _case,
    "clip": _clip,
    "round": _round,
    **dict.fromkeys(("floor", "ceil"), _floor_ceil),
    **dict.fromkeys(("sqrt", "log", "log1p", "exp", "pow"), _math),
    "cast": _cast,
    **dict.fromkeys(("lower", "upper", "length", "concat"), _strings),
    **dict.fromkeys(("contains", "starts_with", "ends_with"), _strings),
    **dict.fromkeys(
        ("year", "month", "day", "hour", "minute", "second", "day_of_week", "day_of_year"),
        _time,
    ),
    "is_weekend": _time,
    "total_seconds": _total_seconds,
}
