"""The numpy kernels of the online evaluator (serving/expressions.py): each computes one
operation of the expression language on whole arrays, with the behaviour
docs/expressions.md defines where numpy's own differs (overflow and division by zero
give None, floor division and modulo as Python, Java's pow, round half away from zero
on the exact value, the number grammar of casts). A kernel returns (values, mask of the
rows that have a value); it neither fails nor warns on any input value.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt

from skewless.expr.functions import FLOAT_TEXT, INT_TEXT
from skewless.expr.nodes import INT64_MIN
from skewless.timeutil import MAX_MICROS, MIN_MICROS

Array = npt.NDArray[Any]
Mask = npt.NDArray[np.bool_]
Vec = tuple[Array, Mask]
Op = Callable[..., Vec]

# a timestamp plus or minus a duration outside the years 1 to 9999 is None
TS_MIN, TS_MAX = MIN_MICROS, MAX_MICROS


def always(values: Array) -> Vec:
    return values, np.ones(values.shape, dtype=np.bool_)


def add_int(a: Array, b: Array) -> Vec:
    r = a + b
    # Overflow wraps around: the sum then has the opposite sign of both operands.
    return r, ((a ^ r) & (b ^ r)) >= 0


def sub_int(a: Array, b: Array) -> Vec:
    r = a - b
    return r, ((a ^ b) & (a ^ r)) >= 0


def mul_int(a: Array, b: Array) -> Vec:
    r = a * b
    # Without overflow r // a gives b back exactly; a wrapped product never does, except
    # -1 * INT64_MIN, whose quotient wraps around too.
    divisor = np.where(a == 0, 1, a)
    ok = (a == 0) | (r // divisor == b)
    return r, ok & ~((a == -1) & (b == INT64_MIN))


def floordiv_int(a: Array, b: Array) -> Vec:
    nonzero = b != 0
    r = a // np.where(nonzero, b, 1)
    return r, nonzero & ~((a == INT64_MIN) & (b == -1))


def mod_int(a: Array, b: Array) -> Vec:
    nonzero = b != 0
    return a % np.where(nonzero, b, 1), nonzero


def div_float(a: Array, b: Array) -> Vec:
    nonzero = b != 0.0  # also -0.0; a NaN divisor is nonzero and gives NaN
    return a / np.where(nonzero, b, 1.0), nonzero


def _in_years(r: Array, ok: Mask) -> Vec:
    return r, ok & (r >= TS_MIN) & (r <= TS_MAX)


def ts_add(a: Array, b: Array) -> Vec:
    return _in_years(*add_int(a, b))


def ts_sub(a: Array, b: Array) -> Vec:
    return _in_years(*sub_int(a, b))


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


def round_float(digits: int) -> Op:
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
        return always(np.where(small, r, x))

    return op


def java_pow(x: Array, y: Array) -> Vec:
    # Java's Math.pow where C's pow differs: pow(1, NaN) and pow(+-1, +-inf) are NaN.
    r = np.power(x, y)
    r = np.where(np.isnan(y) | (np.isinf(y) & (np.abs(x) == 1.0)), np.nan, r)
    return always(np.where(y == 0.0, 1.0, r))


_INT_TEXT = re.compile(INT_TEXT)
_FLOAT_TEXT = re.compile(FLOAT_TEXT)
_INT64_DIGITS = 19


def parse_int(text: str, low: int, high: int) -> int | None:
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


def parse_float(text: str) -> float | None:
    return float(text) if _FLOAT_TEXT.fullmatch(text) else None


def parsed(values: Array, parse: Callable[[str], object], dtype: Any) -> Vec:
    # No vectorized parser accepts exactly the language's grammar, so strings are parsed
    # one by one (a list over the rows, each a regular expression and int()/float()).
    results = [parse(s) for s in values]
    ok = np.fromiter((p is not None for p in results), dtype=np.bool_, count=len(results))
    zero = dtype(0)
    out = np.fromiter((zero if p is None else p for p in results), dtype=dtype, count=len(results))
    return out, ok


def float_to_int(low: float, high_exclusive: float) -> Op:
    def op(x: Array) -> Vec:
        t = np.trunc(x)
        ok = np.isfinite(t) & (t >= low) & (t < high_exclusive)
        return np.where(ok, t, 0.0).astype(np.int64), ok

    return op
