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
import re
import string
import zoneinfo
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from skewless.expr.check import Duration, EType, Null, infer
from skewless.expr.functions import FLOAT_TEXT, INT_TEXT
from skewless.expr.nodes import INT64_MAX, INT64_MIN, Call, Col, Lit, Node, columns
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
    from_arrow_scalar,
    parse_dtype,
    to_arrow,
)

Array = npt.NDArray[Any]
Mask = npt.NDArray[np.bool_]
Vec = tuple[Array, Mask]
Env = Mapping[str, Vec]
Fn = Callable[[Env, int], Vec]

# Physical kinds of values. NULL is the kind of an untyped None: its consumer decides
# what it becomes (an all-None column of the consumer's kind).
INT = "int"  # int64
FLOAT = "float"  # float64
BOOL = "bool"
STR = "str"  # object array of str
BYTES = "bytes"  # object array of bytes
TS = "ts"  # int64 microseconds since the epoch, UTC
DUR = "dur"  # int64 microseconds
NULL = "null"

_KINDS: dict[object, str] = {
    Int32: INT,
    Int64: INT,
    Float32: FLOAT,
    Float64: FLOAT,
    Bool: BOOL,
    String: STR,
    Bytes: BYTES,
    UnixTimestamp: TS,
    Duration: DUR,
    Null: NULL,
}

# Microseconds of 0001-01-01T00:00:00 and 9999-12-31T23:59:59.999999 (UTC): a timestamp
# plus or minus a duration outside them is None.
_EPOCH = datetime(1970, 1, 1)
TS_MIN = (datetime(1, 1, 1) - _EPOCH) // timedelta(microseconds=1)
TS_MAX = (datetime(9999, 12, 31, 23, 59, 59, 999999) - _EPOCH) // timedelta(microseconds=1)
_US = 1_000_000

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
            array = _column(inputs, name, length)
            target = to_arrow(self.output_type)  # type: ignore[arg-type]
            return array if array.type == target else array.cast(target)
        with np.errstate(all="ignore"):
            env = {
                name: _load(name, _column(inputs, name, length), t)
                for name, t in self._input_types.items()
                if t != Null
            }
            values, valid = self._run(env, length)
            return _to_arrow(values, valid, self.output_type)


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


def arrow_input_type(t: pa.DataType) -> EType | None:
    """The expression type of an Arrow column type (timestamps of any unit and zone,
    durations of any unit, lists of scalars), or None when it has none."""
    if pa.types.is_timestamp(t):
        return UnixTimestamp
    if pa.types.is_duration(t):
        return Duration
    if pa.types.is_null(t):
        return Null
    if pa.types.is_list(t) or pa.types.is_large_list(t):
        element = arrow_input_type(t.value_type)
        return ArrayType(element) if isinstance(element, ScalarType) else None
    return from_arrow_scalar(t)


# --- loading inputs and building the output ------------------------------------------


def _column(inputs: Mapping[str, pa.Array | pa.ChunkedArray], name: str, length: int) -> pa.Array:
    if name not in inputs:
        raise KeyError(f"no input column '{name}' (given: {', '.join(sorted(inputs)) or 'none'})")
    array = inputs[name]
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    if len(array) != length:
        raise ValueError(f"input column '{name}' has {len(array)} rows, expected {length}")
    return array


def _bits(buffer: pa.Buffer, offset: int, length: int) -> Mask:
    packed = np.frombuffer(buffer, dtype=np.uint8)
    bits = np.unpackbits(packed, count=offset + length, bitorder="little")[offset:]
    return bits.astype(np.bool_)


def _valid_of(array: pa.Array) -> Mask:
    if array.null_count == 0:
        return np.ones(len(array), dtype=np.bool_)
    return _bits(array.buffers()[0], array.offset, len(array))


# The Arrow types read straight from their buffers (a None row's slot holds any value).
_FIXED_WIDTH = {
    pa.int32(): np.int32,
    pa.int64(): np.int64,
    pa.float32(): np.float32,
    pa.float64(): np.float64,
}


def _fixed_width(array: pa.Array, dtype: Any) -> Array:
    n = len(array)
    if n == 0:
        return np.zeros(0, dtype=dtype)
    values = np.frombuffer(array.buffers()[1], dtype=dtype, count=array.offset + n)
    return values[array.offset :]


def _load(name: str, array: pa.Array, etype: EType) -> Vec:
    kind = _KINDS.get(etype)
    t = array.type
    valid = _valid_of(array)
    if kind in (TS, DUR) and (pa.types.is_timestamp(t) or pa.types.is_duration(t)):
        return _to_micros(_fixed_width(array, np.int64), t.unit, valid)
    ok = {
        INT: pa.types.is_integer(t),
        FLOAT: pa.types.is_floating(t) or pa.types.is_integer(t),
        BOOL: pa.types.is_boolean(t),
        STR: pa.types.is_string(t) or pa.types.is_large_string(t),
        BYTES: pa.types.is_binary(t) or pa.types.is_large_binary(t),
    }.get(kind or "", False)
    if not ok:
        raise TypeError(f"input column '{name}' is Arrow {t}, not {etype.name}")
    if kind in (INT, FLOAT):
        target = np.int64 if kind == INT else np.float64
        if t in _FIXED_WIDTH:
            return _fixed_width(array, _FIXED_WIDTH[t]).astype(target, copy=False), valid
        # Other widths: Arrow's safe cast (an unsigned 64-bit value above int64 fails).
        cast = array.cast(pa.int64() if kind == INT else pa.float64()).fill_null(0)
        return np.asarray(cast.to_numpy(zero_copy_only=False), dtype=target), valid
    if kind == BOOL:
        if len(array) == 0:
            return np.zeros(0, dtype=np.bool_), valid
        return _bits(array.buffers()[1], array.offset, len(array)), valid
    values = np.asarray(array.to_numpy(zero_copy_only=False), dtype=object)
    if not valid.all():
        values = values.copy()
        values[~valid] = "" if kind == STR else b""
    return values, valid


_UNIT_US = {"s": _US, "ms": 1000, "us": 1}


def _to_micros(raw: Array, unit: str, valid: Mask) -> Vec:
    if unit == "ns":
        # The instant at microsecond precision: floor, so that no time moves forward.
        return raw // 1000, valid
    scale = _UNIT_US[unit]
    if scale == 1:
        return raw, valid
    limit = INT64_MAX // scale
    fits = (raw >= -limit) & (raw <= limit)
    return np.where(fits, raw, 0) * scale, valid & fits


def _to_arrow(values: Array, valid: Mask, etype: EType) -> pa.Array:
    n = len(valid)
    if etype == Null:
        return pa.nulls(n)
    mask = None if valid.all() else ~valid
    if etype == Duration:
        return pa.array(values, type=pa.duration("us"), mask=mask)
    if etype == Int32:
        values = np.where(valid, values, 0).astype(np.int32)
    elif etype == Float32:
        values = values.astype(np.float32)
    return pa.array(values, type=to_arrow(etype), mask=mask)  # type: ignore[arg-type]


# --- compiling ---------------------------------------------------------------------------

Op = Callable[..., Vec]


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


def _always(values: Array) -> Vec:
    return values, np.ones(values.shape, dtype=np.bool_)


class _Compiler:
    """Turns a checked tree into closures; every decision on names and types is taken
    here, once, so that a call only runs numpy."""

    def __init__(self, types: Mapping[str, EType]) -> None:
        self._types = types

    def compile(self, node: Node) -> tuple[str, Fn]:
        kind = _KINDS[infer(node, self._types)]
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


def _add_int(a: Array, b: Array) -> Vec:
    r = a + b
    # Overflow wraps around: the sum then has the opposite sign of both operands.
    return r, ((a ^ r) & (b ^ r)) >= 0


def _sub_int(a: Array, b: Array) -> Vec:
    r = a - b
    return r, ((a ^ b) & (a ^ r)) >= 0


def _mul_int(a: Array, b: Array) -> Vec:
    r = a * b
    # Without overflow r // a gives b back exactly; a wrapped product never does, except
    # -1 * INT64_MIN, whose quotient wraps around too.
    divisor = np.where(a == 0, 1, a)
    ok = (a == 0) | (r // divisor == b)
    return r, ok & ~((a == -1) & (b == INT64_MIN))


def _floordiv_int(a: Array, b: Array) -> Vec:
    nonzero = b != 0
    r = a // np.where(nonzero, b, 1)
    return r, nonzero & ~((a == INT64_MIN) & (b == -1))


def _mod_int(a: Array, b: Array) -> Vec:
    nonzero = b != 0
    return a % np.where(nonzero, b, 1), nonzero


def _div_float(a: Array, b: Array) -> Vec:
    nonzero = b != 0.0  # also -0.0; a NaN divisor is nonzero and gives NaN
    return a / np.where(nonzero, b, 1.0), nonzero


def _in_years(r: Array, ok: Mask) -> Vec:
    return r, ok & (r >= TS_MIN) & (r <= TS_MAX)


def _ts_add(a: Array, b: Array) -> Vec:
    return _in_years(*_add_int(a, b))


def _ts_sub(a: Array, b: Array) -> Vec:
    return _in_years(*_sub_int(a, b))


def _float_op(f: Callable[[Array, Array], Array]) -> Op:
    def op(a: Array, b: Array) -> Vec:
        return _always(f(a, b))

    return op


def _arith(node: Call, kind: str, args: Args) -> Fn:
    (ka, fa), (kb, fb) = args
    fn = node.fn
    if kind == FLOAT:
        fa, fb = _as_float(ka, fa), _as_float(kb, fb)
        if fn == "div":
            return _strict(_div_float, fa, fb)
        f = {"add": np.add, "sub": np.subtract, "mul": np.multiply}[fn]
        return _strict(_float_op(f), fa, fb)
    if kind == TS:
        if fn == "add" and ka == DUR:  # duration + timestamp
            fa, fb = fb, fa
        return _strict(_ts_add if fn == "add" else _ts_sub, fa, fb)
    ops: dict[str, Op] = {
        "add": _add_int,
        "sub": _sub_int,
        "mul": _mul_int,
        "floordiv": _floordiv_int,
        "mod": _mod_int,
    }
    return _strict(ops[fn], fa, fb)


def _neg(node: Call, kind: str, args: Args) -> Fn:
    ((_, fa),) = args
    if kind == FLOAT:
        return _strict(lambda a: _always(-a), fa)
    return _strict(lambda a: (-a, a != INT64_MIN), fa)


def _abs(node: Call, kind: str, args: Args) -> Fn:
    ((ka, fa),) = args
    if kind == FLOAT:
        return _strict(lambda a: _always(np.abs(a)), _as_float(ka, fa))
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
    return lambda a, b: _always(compare(a, b))


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
    return _strict(lambda a, b: _always(np.asarray(f(a, b), dtype=np.bool_)), fa, fb)


def _logic(node: Call, kind: str, args: Args) -> Fn:
    fns = [_coerce(k, BOOL, f) for k, f in args]
    if node.fn == "not":
        return _strict(lambda a: _always(~a), fns[0])
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
        return _always(~valid)

    return run


def _is_nan(node: Call, kind: str, args: Args) -> Fn:
    ((ka, fa),) = args
    if ka == NULL:
        return lambda env, n: _always(np.zeros(n, dtype=np.bool_))

    def run(env: Env, n: int) -> Vec:
        values, valid = fa(env, n)
        return _always(valid & np.isnan(values))

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
            return _always(x)

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
        return _always(x)

    return _strict(clip_float, _as_float(kx, fx))


# --- numbers -----------------------------------------------------------------------------

_EXACT_INTEGERS = 2.0**52
_SPLIT = 2.0**27 + 1.0


def _two_product(a: Array, b: float) -> tuple[Array, Array]:
    """(fl(a * b), the exact a * b - fl(a * b)): Dekker's product, exact while nothing
    overflows or underflows, which holds wherever round() reads the error."""
    p = a * b
    c = _SPLIT * a
    a_hi = c - (c - a)
    a_lo = a - a_hi
    d = _SPLIT * b
    b_hi = d - (d - b)
    b_lo = b - b_hi
    error = ((a_hi * b_hi - p) + a_hi * b_lo + a_lo * b_hi) + a_lo * b_lo
    return p, error


def _round_float(digits: int) -> Op:
    """Half away from zero on the exact binary value times 10**digits, then scaled back
    to the nearest float. The scaling is done in floats, and its rounding error (exactly
    known, from Dekker's product) decides the two cases the rounded value cannot: an
    exact tie (fl(2.675 * 100) is 267.5, but 2.675 is 2.67499999... and goes down), and
    a value that rounded up to 2**52."""
    scale = float(10 ** abs(digits))

    def op(x: Array) -> Vec:
        if digits >= 0:
            y, error = _two_product(x, scale)  # x * scale == y + error exactly
        else:
            y = x / scale
            p, p_error = _two_product(y, scale)  # y * scale == p + p_error exactly
            error = (x - p) - p_error  # x - p is exact; only its sign against y's is read
        sign = np.copysign(1.0, y)
        # Where the exact value lies from y: 1 away from zero, 0 on it, -1 toward zero.
        beyond = np.sign(error) * sign
        t = np.trunc(y)
        part = np.abs(y - t)
        up = (part > 0.5) | ((part == 0.5) & (beyond >= 0))
        t = np.where(up, t + sign, t)
        # + 0.0 turns a zero result's -0.0 into 0.0.
        r = (t / scale if digits >= 0 else t * scale) + 0.0
        # NaN, infinities and values of 2**52 or more after scaling stay as they are.
        magnitude = np.abs(y)
        small = (magnitude < _EXACT_INTEGERS) | ((magnitude == _EXACT_INTEGERS) & (beyond < 0))
        return _always(np.where(small, r, x))

    return op


def _round(node: Call, kind: str, args: Args) -> Fn:
    ((_, fx),) = args
    if kind == INT:
        return fx
    assert isinstance(node.option, int)
    return _strict(_round_float(node.option), fx)


def _floor_ceil(node: Call, kind: str, args: Args) -> Fn:
    ((_, fx),) = args
    if kind == INT:
        return fx
    f = np.floor if node.fn == "floor" else np.ceil
    return _strict(lambda x: _always(f(x) + 0.0), fx)


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
            return _strict(lambda x: _always(np.exp(x)), *fns)
    return _strict(_java_pow, *fns)


def _java_pow(x: Array, y: Array) -> Vec:
    # Java's Math.pow where C's pow differs: pow(1, NaN) and pow(+-1, +-inf) are NaN.
    r = np.power(x, y)
    r = np.where(np.isnan(y) | (np.isinf(y) & (np.abs(x) == 1.0)), np.nan, r)
    return _always(np.where(y == 0.0, 1.0, r))


# --- casts -----------------------------------------------------------------------------

_INT_TEXT = re.compile(INT_TEXT)
_FLOAT_TEXT = re.compile(FLOAT_TEXT)
_INT64_DIGITS = 19


def _parse_int(text: str, low: int, high: int) -> int | None:
    # fullmatch, not match with $: $ would accept a trailing newline. [0-9] is ASCII only.
    if _INT_TEXT.fullmatch(text) is None:
        return None
    digits = text.lstrip("+-").lstrip("0")
    if len(digits) > _INT64_DIGITS:  # out of range; and int() refuses very long texts
        return None
    value = int(digits or "0")
    if text[0] == "-":
        value = -value
    return value if low <= value <= high else None


def _parse_float(text: str) -> float | None:
    return float(text) if _FLOAT_TEXT.fullmatch(text) else None


def _parsed(values: Array, parse: Callable[[str], object], dtype: Any) -> Vec:
    # No vectorized parser accepts exactly the language's grammar, so strings are parsed
    # one by one (a list over the rows, each a regular expression and int()/float()).
    parsed = [parse(s) for s in values]
    ok = np.fromiter((p is not None for p in parsed), dtype=np.bool_, count=len(parsed))
    zero = dtype(0)
    out = np.fromiter((zero if p is None else p for p in parsed), dtype=dtype, count=len(parsed))
    return out, ok


def _float_to_int(low: float, high_exclusive: float) -> Op:
    def op(x: Array) -> Vec:
        t = np.trunc(x)
        ok = np.isfinite(t) & (t >= low) & (t < high_exclusive)
        return np.where(ok, t, 0.0).astype(np.int64), ok

    return op


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
        return _strict(_float_to_int(float(low), float(high) + 1.0), fs)
    if source == BOOL:
        return _strict(lambda x: _always(x.astype(np.int64)), fs)
    return _strict(lambda x: _parsed(x, lambda s: _parse_int(s, low, high), np.int64), fs)


def _cast_to_float(source: str, fs: Fn, float32: bool) -> Fn:
    if source == STR:

        def parse_float(x: Array) -> Vec:
            values, ok = _parsed(x, _parse_float, np.float64)
            return (values.astype(np.float32).astype(np.float64) if float32 else values), ok

        return _strict(parse_float, fs)
    if float32:
        # Straight to float32, also from int64: one rounding, not two.
        return _strict(lambda x: _always(x.astype(np.float32).astype(np.float64)), fs)
    return _strict(lambda x: _always(x.astype(np.float64)), fs)


def _cast_to_bool(source: str, fs: Fn) -> Fn:
    if source == BOOL:
        return fs
    if source == STR:

        def parse_bool(x: Array) -> Vec:
            is_true = np.asarray(x == "true", dtype=np.bool_)
            return is_true, is_true | np.asarray(x == "false", dtype=np.bool_)

        return _strict(parse_bool, fs)
    return _strict(lambda x: _always(x != 0), fs)  # NaN too is nonzero


def _cast_to_string(source: str, fs: Fn) -> Fn:
    if source == STR:
        return fs
    if source == BOOL:
        return _strict(lambda x: _always(np.where(x, "true", "false").astype(object)), fs)
    return _strict(lambda x: _always(x.astype(str).astype(object)), fs)


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
                lambda x: _always(_objects([s.translate(table) for s in x], len(x))), *fns
            )
        case "length":
            return _strict(
                lambda x: _always(np.fromiter(map(len, x), dtype=np.int64, count=len(x))), *fns
            )
        case "concat":

            def join(*parts: Array) -> Vec:
                out = parts[0]
                for p in parts[1:]:
                    out = out + p
                return _always(out)

            return _strict(join, *fns)
    tests: dict[str, Callable[[Any, Any], bool]] = {
        "contains": operator.contains,
        "starts_with": str.startswith,
        "ends_with": str.endswith,
    }
    test = tests[node.fn]
    return _strict(
        lambda a, b: _always(np.fromiter(map(test, a, b), dtype=np.bool_, count=len(a))), *fns
    )


# --- time ------------------------------------------------------------------------------

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


def _local_micros(utc: Array, zone_name: str) -> Array:
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


def _time_part(part: str, zone_name: str) -> Callable[[Array], Array]:
    def values(utc: Array) -> Array:
        seconds = _local_micros(utc, zone_name) // _US
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


def _time(node: Call, kind: str, args: Args) -> Fn:
    ((_, fx),) = args
    part = _time_part(node.fn, str(node.option))

    def run(env: Env, n: int) -> Vec:
        utc, valid = fx(env, n)
        # Instants outside the years 1 to 9999 (only an input can hold one) have no parts;
        # None rows are read as 1970 so that they cost no offset lookups.
        inside = valid & (utc >= TS_MIN) & (utc <= TS_MAX)
        return part(np.where(inside, utc, 0)), inside

    return run


def _total_seconds(node: Call, kind: str, args: Args) -> Fn:
    ((_, fx),) = args
    return _strict(lambda x: _always(x.astype(np.float64) / 1e6), fx)


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
