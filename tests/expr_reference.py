"""An independent reference of the expression language, used only by the tests.

Deliberately plain: one row at a time, in Python's own numbers (exact integers, IEEE
floats, fractions where exactness is the rule), written from docs/expressions.md ("One
behaviour in both engines") and sharing no code with skewless' engines. It reads the
node classes of skewless.expr.nodes and nothing else of skewless, so it carries its own
small notion of each value's kind.

`evaluate_row(node, row, types)`: `row` maps input columns to Python values (None for
None; timestamps as int microseconds since the epoch, UTC), `types` maps them to type
names ("int32", "float64", "unix_timestamp", ...). The result is a Python value: int,
float, str, bool, bytes, an int of microseconds for a timestamp or a duration, or None.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from fractions import Fraction
from typing import Any
from zoneinfo import ZoneInfo

from skewless.expr.nodes import Call, Col, Lit, Node

I64_LO, I64_HI = -(2**63), 2**63 - 1
I32_LO, I32_HI = -(2**31), 2**31 - 1

_EPOCH = datetime(1970, 1, 1)
_ONE_US = timedelta(microseconds=1)
FIRST_US = (datetime(1, 1, 1) - _EPOCH) // _ONE_US
LAST_US = (datetime(9999, 12, 31, 23, 59, 59, 999999) - _EPOCH) // _ONE_US

# kinds: "int", "float", "string", "bool", "ts", "dur", "bytes", "null"
_COLUMN_KINDS = {
    "int32": "int",
    "int64": "int",
    "float32": "float",
    "float64": "float",
    "string": "string",
    "bool": "bool",
    "unix_timestamp": "ts",
    "bytes": "bytes",
    "duration": "dur",
    "null": "null",
}
_LIT_KINDS = {
    "int64": "int",
    "float64": "float",
    "string": "string",
    "bool": "bool",
    "unix_timestamp": "ts",
    "duration": "dur",
    "bytes": "bytes",
    "null": "null",
}
_CAST_KINDS = {
    "int32": "int",
    "int64": "int",
    "float32": "float",
    "float64": "float",
    "string": "string",
    "bool": "bool",
}


def evaluate_row(node: Node, row: Mapping[str, Any], types: Mapping[str, str]) -> Any:
    return _Row(row, types).value(node)[1]


class _Row:
    def __init__(self, row: Mapping[str, Any], types: Mapping[str, str]) -> None:
        self.row = row
        self.types = types

    def value(self, node: Node) -> tuple[str, Any]:
        if isinstance(node, Col):
            return _COLUMN_KINDS[self.types[node.name]], self.row[node.name]
        if isinstance(node, Lit):
            if node.value is None:
                return _LIT_KINDS[node.dtype], None
            if node.dtype == "float64":
                return "float", float.fromhex(str(node.value))
            if node.dtype == "bytes":
                return "bytes", bytes.fromhex(str(node.value))
            return _LIT_KINDS[node.dtype], node.value
        assert isinstance(node, Call)
        method = getattr(self, "fn_" + node.fn, None)
        if method is not None:
            return method(node)
        return self.strict(node)

    # --- functions that see None arguments ------------------------------------------

    def fn_is_null(self, node: Call) -> tuple[str, Any]:
        return "bool", self.value(node.args[0])[1] is None

    def fn_is_nan(self, node: Call) -> tuple[str, Any]:
        x = self.value(node.args[0])[1]
        return "bool", x is not None and math.isnan(x)

    def fn_and(self, node: Call) -> tuple[str, Any]:
        a, b = (self.value(x)[1] for x in node.args)
        if a is False or b is False:
            return "bool", False
        if a is None or b is None:
            return "bool", None
        return "bool", True

    def fn_or(self, node: Call) -> tuple[str, Any]:
        a, b = (self.value(x)[1] for x in node.args)
        if a is True or b is True:
            return "bool", True
        if a is None or b is None:
            return "bool", None
        return "bool", False

    def fn_coalesce(self, node: Call) -> tuple[str, Any]:
        parts = [self.value(a) for a in node.args]
        kind = _unified([k for k, _ in parts])
        for k, v in parts:
            if v is not None:
                return kind, _widen(k, kind, v)
        return kind, None

    def fn_case(self, node: Call) -> tuple[str, Any]:
        args = node.args
        kind = _unified([self.kind(a) for a in (*args[1:-1:2], args[-1])])
        for i in range(0, len(args) - 1, 2):
            if self.value(args[i])[1] is True:
                k, v = self.value(args[i + 1])
                return kind, _widen(k, kind, v)
        k, v = self.value(args[-1])
        return kind, _widen(k, kind, v)

    def fn_clip(self, node: Call) -> tuple[str, Any]:
        kx, x = self.value(node.args[0])
        bounds = [self.value(b) for b in node.args[1:]]
        kind = _unified([kx, *(k for k, _ in bounds)])
        if x is None:
            return kind, None
        x = _widen(kx, kind, x)
        low, high = (_widen(k, kind, v) for k, v in bounds)
        if kind == "int":
            if low is not None and x < low:
                x = low
            if high is not None and x > high:
                x = high
            return kind, x
        if math.isnan(x):
            return kind, x
        # A NaN lower bound is above every number (NaN's place in the order).
        if low is not None and (math.isnan(low) or x < low):
            x = low
        if high is not None and not math.isnan(x) and x > high:
            x = high
        return kind, x

    def kind(self, node: Node) -> str:
        """The kind of a node without caring for its value (evaluates it: cheap)."""
        return self.value(node)[0]

    # --- functions that are None on a None argument ---------------------------------

    def strict(self, node: Call) -> tuple[str, Any]:
        parts = [self.value(a) for a in node.args]
        kinds = [k for k, _ in parts]
        kind = _result_kind(node, kinds)
        values = [v for _, v in parts]
        if any(v is None for v in values):
            return kind, None
        return kind, _STRICT[node.fn](node, kinds, values, kind)


def _unified(kinds: list[str]) -> str:
    typed = [k for k in kinds if k != "null"]
    if all(k in ("int", "float") for k in typed):
        return "float" if "float" in typed else "int"
    return typed[0]


def _widen(kind: str, to: str, value: Any) -> Any:
    if value is not None and kind == "int" and to == "float":
        return float(value)
    return value


def _result_kind(node: Call, kinds: list[str]) -> str:
    fn = node.fn
    typed = [k for k in kinds if k != "null"]
    if fn in ("add", "sub"):
        if "ts" in typed:
            return "dur" if fn == "sub" and kinds == ["ts", "ts"] else "ts"
        if "dur" in typed:
            return "dur"
        return _unified(kinds)
    if fn in ("mul", "neg", "abs", "round", "floor", "ceil"):
        return "dur" if typed == ["dur"] else _unified(kinds)
    if fn in ("div", "sqrt", "log", "log1p", "exp", "pow", "total_seconds"):
        return "float"
    if fn in ("floordiv", "mod", "length"):
        return "int"
    if fn == "cast":
        return _CAST_KINDS[str(node.option)]
    if fn in ("lower", "upper", "concat"):
        return "string"
    if fn in ("year", "month", "day", "hour", "minute", "second", "day_of_week", "day_of_year"):
        return "int"
    return "bool"


# --- integers --------------------------------------------------------------------------


def _int_or_none(v: int) -> int | None:
    return v if I64_LO <= v <= I64_HI else None


def _in_years(v: int) -> int | None:
    return v if FIRST_US <= v <= LAST_US else None


def _add(node: Call, kinds: list[str], vals: list[Any], kind: str) -> Any:
    a, b = vals
    if kind == "float":
        return float(a) + float(b)
    total = a + b
    if kind == "ts":
        return _in_years(total) if _int_or_none(total) is not None else None
    return _int_or_none(total)


def _sub(node: Call, kinds: list[str], vals: list[Any], kind: str) -> Any:
    a, b = vals
    if kind == "float":
        return float(a) - float(b)
    difference = a - b
    if kind == "ts":
        return _in_years(difference) if _int_or_none(difference) is not None else None
    return _int_or_none(difference)


def _mul(node: Call, kinds: list[str], vals: list[Any], kind: str) -> Any:
    a, b = vals
    if kind == "float":
        return float(a) * float(b)
    return _int_or_none(a * b)


def _div(node: Call, kinds: list[str], vals: list[Any], kind: str) -> Any:
    a, b = float(vals[0]), float(vals[1])
    if b == 0:
        return None
    return a / b


def _floordiv(node: Call, kinds: list[str], vals: list[Any], kind: str) -> Any:
    a, b = vals
    return None if b == 0 else _int_or_none(a // b)


def _mod(node: Call, kinds: list[str], vals: list[Any], kind: str) -> Any:
    a, b = vals
    return None if b == 0 else a % b


def _neg(node: Call, kinds: list[str], vals: list[Any], kind: str) -> Any:
    (a,) = vals
    return -a if kind == "float" else _int_or_none(-a)


def _abs(node: Call, kinds: list[str], vals: list[Any], kind: str) -> Any:
    (a,) = vals
    return abs(float(a)) if kind == "float" else _int_or_none(abs(a))


# --- comparisons -------------------------------------------------------------------------


def _order_key(kind: str, v: Any) -> Any:
    # NaN equals NaN and sorts above every number; -0.0 equals 0.0 (float equality).
    if kind == "float":
        return (1, 0.0) if math.isnan(v) else (0, v)
    return v


def _compare(node: Call, kinds: list[str], vals: list[Any], kind: str) -> Any:
    a, b = vals
    ka, kb = kinds
    if "float" in (ka, kb):
        a, b, ka = float(a), float(b), "float"
    x, y = _order_key(ka, a), _order_key(ka, b)
    return {
        "eq": x == y,
        "ne": x != y,
        "lt": x < y,
        "le": x <= y,
        "gt": x > y,
        "ge": x >= y,
    }[node.fn]


def _not(node: Call, kinds: list[str], vals: list[Any], kind: str) -> Any:
    return not vals[0]


# --- floats ------------------------------------------------------------------------------


def _round(node: Call, kinds: list[str], vals: list[Any], kind: str) -> Any:
    (x,) = vals
    if kind == "int":
        return x
    if math.isnan(x) or math.isinf(x):
        return x
    digits = int(node.option)  # type: ignore[arg-type]
    scaled = Fraction(x) * Fraction(10) ** digits  # the exact binary value, scaled
    if abs(scaled) >= 2**52:
        return x
    whole = _half_away(scaled)
    return float(Fraction(whole) / Fraction(10) ** digits) + 0.0


def _half_away(q: Fraction) -> int:
    magnitude = abs(q)
    n = math.floor(magnitude)
    if magnitude - n >= Fraction(1, 2):
        n += 1
    return n if q >= 0 else -n


def _floor(node: Call, kinds: list[str], vals: list[Any], kind: str) -> Any:
    (x,) = vals
    if kind == "int" or math.isnan(x) or math.isinf(x):
        return x
    return float(math.floor(x) if node.fn == "floor" else math.ceil(x))


def _sqrt(node: Call, kinds: list[str], vals: list[Any], kind: str) -> Any:
    x = float(vals[0])
    return None if x < 0 else math.sqrt(x)


def _log(node: Call, kinds: list[str], vals: list[Any], kind: str) -> Any:
    x = float(vals[0])
    if node.fn == "log":
        return None if x <= 0 else math.log(x)
    return None if x <= -1 else math.log1p(x)


def _exp(node: Call, kinds: list[str], vals: list[Any], kind: str) -> Any:
    try:
        return math.exp(float(vals[0]))
    except OverflowError:
        return math.inf


def _odd_integer(y: float) -> bool:
    return math.isfinite(y) and y == math.floor(y) and math.floor(y) % 2 == 1


def _pow(node: Call, kinds: list[str], vals: list[Any], kind: str) -> Any:
    x, y = float(vals[0]), float(vals[1])
    # Java's Math.pow.
    if y == 0:
        return 1.0
    if math.isnan(y) or math.isnan(x):
        return math.nan
    if math.isinf(y) and abs(x) == 1:
        return math.nan
    try:
        return math.pow(x, y)
    except OverflowError:
        return -math.inf if x < 0 and _odd_integer(y) else math.inf
    except ValueError:
        if x == 0:  # zero to a negative power
            return -math.inf if math.copysign(1.0, x) < 0 and _odd_integer(y) else math.inf
        return math.nan  # a negative number to a non-integer power


def _float32(x: float) -> float:
    """The float32 nearest to a float64 (ties to even), as a Python float."""
    try:
        return struct.unpack("<f", struct.pack("<f", x))[0]  # type: ignore[no-any-return]
    except OverflowError:
        return math.copysign(math.inf, x)


def _int_to_float32(n: int) -> float:
    """The float32 nearest to an integer, rounded once (ties to even)."""
    magnitude = abs(n)
    drop = max(magnitude.bit_length() - 24, 0)
    q, r = divmod(magnitude, 1 << drop)
    half = (1 << drop) >> 1
    if drop and (r > half or (r == half and q % 2 == 1)):
        q += 1
    return math.copysign(float(q << drop), n) if n else 0.0


# --- casts -------------------------------------------------------------------------------

_DIGITS = "0123456789"


def _text_to_int(s: str, low: int, high: int) -> int | None:
    body = s[1:] if s[:1] in ("+", "-") else s
    if not body or any(c not in _DIGITS for c in body):
        return None
    value = 0
    for c in body:
        value = value * 10 + _DIGITS.index(c)
        if value > 2**64:  # far out of range already
            return None
    if s[0] == "-":
        value = -value
    return value if low <= value <= high else None


def _is_float_text(s: str) -> bool:
    i = 1 if s[:1] in ("+", "-") else 0
    whole = 0
    while i < len(s) and s[i] in _DIGITS:
        i, whole = i + 1, whole + 1
    fraction = 0
    if i < len(s) and s[i] == ".":
        i += 1
        while i < len(s) and s[i] in _DIGITS:
            i, fraction = i + 1, fraction + 1
    if whole + fraction == 0:
        return False
    if i < len(s) and s[i] in "eE":
        i += 1
        if i < len(s) and s[i] in "+-":
            i += 1
        exponent = 0
        while i < len(s) and s[i] in _DIGITS:
            i, exponent = i + 1, exponent + 1
        if exponent == 0:
            return False
    return i == len(s)


def _cast(node: Call, kinds: list[str], vals: list[Any], kind: str) -> Any:
    (x,) = vals
    (source,) = kinds
    target = str(node.option)
    if target in ("int32", "int64"):
        low, high = (I32_LO, I32_HI) if target == "int32" else (I64_LO, I64_HI)
        if source == "bool":
            return int(x)
        if source == "string":
            return _text_to_int(x, low, high)
        if source == "float":
            if math.isnan(x) or math.isinf(x):
                return None
            x = math.trunc(x)
        return x if low <= x <= high else None
    if target in ("float32", "float64"):
        if source == "string":
            if not _is_float_text(x):
                return None
            x = float(x)
        if target == "float64":
            return float(x)
        if source == "int":
            return _int_to_float32(x)
        return _float32(float(x))
    if target == "bool":
        if source == "string":
            return {"true": True, "false": False}.get(x)
        return x != 0 if source != "bool" else x
    if source == "bool":
        return "true" if x else "false"
    return str(x)


# --- strings -----------------------------------------------------------------------------


def _case_ascii(s: str, upper: bool) -> str:
    out = []
    for c in s:
        if upper and "a" <= c <= "z":
            out.append(chr(ord(c) - 32))
        elif not upper and "A" <= c <= "Z":
            out.append(chr(ord(c) + 32))
        else:
            out.append(c)
    return "".join(out)


def _strings(node: Call, kinds: list[str], vals: list[Any], kind: str) -> Any:
    match node.fn:
        case "lower" | "upper":
            return _case_ascii(vals[0], node.fn == "upper")
        case "length":
            return len(vals[0])
        case "concat":
            return "".join(vals)
        case "contains":
            return vals[1] in vals[0]
        case "starts_with":
            return vals[0].startswith(vals[1])
    return vals[0].endswith(vals[1])


# --- time --------------------------------------------------------------------------------

_400_YEARS = timedelta(days=146097)  # the Gregorian cycle: same dates, same weekdays


def _local(us: int, zone: str) -> tuple[datetime, int]:
    """The wall-clock time of an instant in a zone, and a shift in years to add to its
    year: Python's datetimes stop at years 1 and 9999, and an instant there can be in
    year 0 or 10000 in some zones, so those are computed 400 years away."""
    utc = _EPOCH + timedelta(microseconds=us)
    # zoneinfo's offset at the instant; the first and last two days of the range, where
    # no zone changes its offset, use a time just inside.
    probe = min(max(utc, datetime(1, 1, 3)), datetime(9999, 12, 30))
    offset = probe.replace(tzinfo=UTC).astimezone(ZoneInfo(zone)).utcoffset()
    assert offset is not None
    shift = 400 if utc.year < 3 else -400 if utc.year > 9997 else 0
    return utc + _400_YEARS * (shift // 400) + offset, -shift


def _time(node: Call, kinds: list[str], vals: list[Any], kind: str) -> Any:
    (us,) = vals
    if not FIRST_US <= us <= LAST_US:
        return None
    local, years = _local(us, str(node.option))
    match node.fn:
        case "year":
            return local.year + years
        case "month":
            return local.month
        case "day":
            return local.day
        case "hour":
            return local.hour
        case "minute":
            return local.minute
        case "second":
            return local.second
        case "day_of_week":
            return local.isoweekday()
        case "day_of_year":
            return local.timetuple().tm_yday
    return local.isoweekday() >= 6


def _total_seconds(node: Call, kinds: list[str], vals: list[Any], kind: str) -> Any:
    return float(vals[0]) / 1e6


_STRICT: dict[str, Any] = {
    "add": _add,
    "sub": _sub,
    "mul": _mul,
    "div": _div,
    "floordiv": _floordiv,
    "mod": _mod,
    "neg": _neg,
    "abs": _abs,
    **dict.fromkeys(("eq", "ne", "lt", "le", "gt", "ge"), _compare),
    "not": _not,
    "round": _round,
    "floor": _floor,
    "ceil": _floor,
    "sqrt": _sqrt,
    "log": _log,
    "log1p": _log,
    "exp": _exp,
    "pow": _pow,
    "cast": _cast,
    **dict.fromkeys(
        ("lower", "upper", "length", "concat", "contains", "starts_with", "ends_with"), _strings
    ),
    **dict.fromkeys(
        (
            "year",
            "month",
            "day",
            "hour",
            "minute",
            "second",
            "day_of_week",
            "day_of_year",
            "is_weekend",
        ),
        _time,
    ),
    "total_seconds": _total_seconds,
}
