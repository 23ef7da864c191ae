"""The Python face of the expression language: `col("km") / (col("minutes") / 60)`.

An `Expr` wraps a node (expr/nodes.py) and builds bigger ones with Python's operators
and the functions below; nothing is computed here. Python values on either side of an
operator become literals. As in pandas and PySpark, `and`, `or`, `not` and chained
comparisons (`a < b < c`) cannot be overloaded, so an Expr refuses to be a truth value
and points to `&`, `|` and `~`.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from skewless.expr.functions import render
from skewless.expr.nodes import Call, Col, Lit, LitType, Node, float_lit, int_lit, null_lit
from skewless.timeutil import micros
from skewless.types import DType, ScalarType


class Expr:
    """An expression over input columns. Build it with `col()`, `lit()` and operators."""

    __slots__ = ("node",)
    __hash__ = None  # type: ignore[assignment]  # == builds an expression

    def __init__(self, node: Node) -> None:
        self.node = node

    def __repr__(self) -> str:
        return render(self.node)

    def __bool__(self) -> bool:
        raise TypeError(
            f"the expression {render(self.node)} has no truth value: combine conditions with "
            "& | ~ instead of and/or/not, and write (a < b) & (b < c) instead of a < b < c"
        )

    # arithmetic
    def __add__(self, other: Any) -> Expr:
        return _call("add", self, other)

    def __radd__(self, other: Any) -> Expr:
        return _call("add", other, self)

    def __sub__(self, other: Any) -> Expr:
        return _call("sub", self, other)

    def __rsub__(self, other: Any) -> Expr:
        return _call("sub", other, self)

    def __mul__(self, other: Any) -> Expr:
        return _call("mul", self, other)

    def __rmul__(self, other: Any) -> Expr:
        return _call("mul", other, self)

    def __truediv__(self, other: Any) -> Expr:
        return _call("div", self, other)

    def __rtruediv__(self, other: Any) -> Expr:
        return _call("div", other, self)

    def __floordiv__(self, other: Any) -> Expr:
        return _call("floordiv", self, other)

    def __rfloordiv__(self, other: Any) -> Expr:
        return _call("floordiv", other, self)

    def __mod__(self, other: Any) -> Expr:
        return _call("mod", self, other)

    def __rmod__(self, other: Any) -> Expr:
        return _call("mod", other, self)

    def __pow__(self, other: Any) -> Expr:
        return _call("pow", self, other)

    def __rpow__(self, other: Any) -> Expr:
        return _call("pow", other, self)

    def __neg__(self) -> Expr:
        return _call("neg", self)

    def __abs__(self) -> Expr:
        return _call("abs", self)

    # comparisons
    def __eq__(self, other: Any) -> Expr:  # type: ignore[override]
        return _call("eq", self, other)

    def __ne__(self, other: Any) -> Expr:  # type: ignore[override]
        return _call("ne", self, other)

    def __lt__(self, other: Any) -> Expr:
        return _call("lt", self, other)

    def __le__(self, other: Any) -> Expr:
        return _call("le", self, other)

    def __gt__(self, other: Any) -> Expr:
        return _call("gt", self, other)

    def __ge__(self, other: Any) -> Expr:
        return _call("ge", self, other)

    # boolean logic
    def __and__(self, other: Any) -> Expr:
        return _call("and", self, other)

    def __rand__(self, other: Any) -> Expr:
        return _call("and", other, self)

    def __or__(self, other: Any) -> Expr:
        return _call("or", self, other)

    def __ror__(self, other: Any) -> Expr:
        return _call("or", other, self)

    def __invert__(self) -> Expr:
        return _call("not", self)

    # methods
    def cast(self, dtype: DType) -> Expr:
        """This value as `dtype` (Int32, Int64, Float32, Float64, String or Bool)."""
        if not isinstance(dtype, ScalarType):
            raise TypeError(f"cast() takes a skewless scalar type such as Float64, not {dtype!r}")
        return Expr(Call("cast", (self.node,), dtype.name))

    def is_null(self) -> Expr:
        return is_null(self)

    def is_nan(self) -> Expr:
        return is_nan(self)

    def total_seconds(self) -> Expr:
        return total_seconds(self)


def to_node(value: Any) -> Node:
    """The node of an Expr, or a literal for a Python value."""
    if isinstance(value, Expr):
        return value.node
    return lit(value).node


def _call(fn: str, *args: Any, option: str | int | None = None) -> Expr:
    return Expr(Call(fn, tuple(to_node(a) for a in args), option))


# --- constructors --------------------------------------------------------------------


def col(name: str) -> Expr:
    """An input column: a source column in a feature view; a feature of a source view or
    a request field in an on-demand view."""
    if not isinstance(name, str) or not name:
        raise TypeError(f"col() takes a column name, not {name!r}")
    return Expr(Col(name))


def lit(value: Any, dtype: DType | None = None) -> Expr:
    """A constant. Python int, float, str, bool, bytes, datetime (naive means UTC) and
    timedelta values are typed as int64, float64, string, bool, bytes, unix_timestamp
    and duration; `lit(None, Int64)` is a typed null, `lit(None)` an untyped one."""
    if isinstance(value, Expr):
        return value
    if dtype is not None and not isinstance(dtype, ScalarType):
        raise TypeError(f"lit() takes a skewless scalar type such as Int64, not {dtype!r}")
    if value is None:
        if dtype is None:
            return Expr(null_lit())
        return Expr(
            Lit(None, _LIT_OF[dtype.name]) if dtype.name in _LIT_OF else _cast(null_lit(), dtype)
        )
    node = _literal(value)
    if dtype is None or _LIT_OF.get(dtype.name) == node.dtype:
        return Expr(node)
    if dtype.name in _LIT_OF and dtype.name not in _CASTABLE:
        raise TypeError(f"lit({value!r}) is {node.dtype}, not {dtype.name}")
    return Expr(_cast(node, dtype))


# The literal kind each scalar type's values take; int32 and float32 constants are
# int64 and float64 ones cast, as their columns are read.
_LIT_OF: dict[str, LitType] = {
    "int64": "int64",
    "float64": "float64",
    "string": "string",
    "bool": "bool",
    "unix_timestamp": "unix_timestamp",
    "bytes": "bytes",
}
_CASTABLE = ("int32", "int64", "float32", "float64", "string", "bool")


def _cast(node: Node, dtype: ScalarType) -> Call:
    return Call("cast", (node,), dtype.name)


def _literal(value: Any) -> Lit:  # noqa: PLR0911 - one case per Python type
    match value:
        case bool():
            return Lit(value, "bool")
        case int():
            try:
                return int_lit(value)
            except ValueError as exc:
                raise TypeError(str(exc)) from None
        case float():
            return float_lit(value)
        case str():
            return Lit(value, "string")
        case bytes():
            return Lit(value.hex(), "bytes")
        case datetime():
            aware = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
            delta = aware - datetime(1970, 1, 1, tzinfo=UTC)
            return Lit(micros(delta), "unix_timestamp")
        case timedelta():
            return Lit(micros(value), "duration")
    raise TypeError(
        f"cannot use {value!r} ({type(value).__name__}) in an expression: use col(), or a "
        "constant int, float, str, bool, bytes, datetime or timedelta"
    )


class When:
    """`when(cond, value).when(cond, value).otherwise(value)`; without `otherwise`,
    rows no condition holds for get None."""

    __slots__ = ("pairs",)

    def __init__(self, pairs: tuple[tuple[Node, Node], ...]) -> None:
        self.pairs = pairs

    def when(self, condition: Any, value: Any) -> When:
        return When((*self.pairs, (to_node(condition), to_node(value))))

    def otherwise(self, value: Any) -> Expr:
        args = [n for pair in self.pairs for n in pair]
        return Expr(Call("case", (*args, to_node(value))))

    def end(self) -> Expr:
        """The expression with no `otherwise` (None where no condition holds)."""
        return self.otherwise(None)

    def __bool__(self) -> bool:
        raise TypeError("when(...) needs .otherwise(value) (or .end() for None)")


def when(condition: Any, value: Any) -> When:
    """The first value whose condition is true; a None condition counts as false."""
    return When(((to_node(condition), to_node(value)),))


def coalesce(*values: Any) -> Expr:
    """The first value that is not None."""
    return _call("coalesce", *values)


def is_null(value: Any) -> Expr:
    """True where the value is None (NaN is not None); never None itself."""
    return _call("is_null", value)


def is_nan(value: Any) -> Expr:
    """True where a float is NaN; False for None."""
    return _call("is_nan", value)


def clip(value: Any, lower: float | None = None, upper: float | None = None) -> Expr:
    """The value held within constant bounds (None: no bound); NaN stays NaN."""
    return _call("clip", value, lower, upper)


def abs(value: Any) -> Expr:
    return _call("abs", value)


def round(value: Any, digits: int = 0) -> Expr:
    """Half away from zero at `digits` decimals (-15..15) of the binary value."""
    if isinstance(digits, bool) or not isinstance(digits, int):
        raise TypeError(f"round() digits must be an int, not {digits!r}")
    return _call("round", value, option=digits)


def floor(value: Any) -> Expr:
    return _call("floor", value)


def ceil(value: Any) -> Expr:
    return _call("ceil", value)


def sqrt(value: Any) -> Expr:
    return _call("sqrt", value)


def log(value: Any) -> Expr:
    """Natural logarithm; None for values <= 0."""
    return _call("log", value)


def log1p(value: Any) -> Expr:
    """log(1 + x); None for values <= -1."""
    return _call("log1p", value)


def exp(value: Any) -> Expr:
    return _call("exp", value)


def pow(base: Any, exponent: Any) -> Expr:
    return _call("pow", base, exponent)


def lower(value: Any) -> Expr:
    """ASCII letters in lower case; every other character unchanged."""
    return _call("lower", value)


def upper(value: Any) -> Expr:
    """ASCII letters in upper case; every other character unchanged."""
    return _call("upper", value)


def length(value: Any) -> Expr:
    """The number of characters (Unicode code points)."""
    return _call("length", value)


def concat(*values: Any) -> Expr:
    """The strings joined; None if any is None."""
    return _call("concat", *values)


def contains(value: Any, part: Any) -> Expr:
    return _call("contains", value, part)


def starts_with(value: Any, prefix: Any) -> Expr:
    return _call("starts_with", value, prefix)


def ends_with(value: Any, suffix: Any) -> Expr:
    return _call("ends_with", value, suffix)


def _part(fn: str, value: Any, tz: str) -> Expr:
    if not isinstance(tz, str):
        raise TypeError(f"{fn}() tz must be an IANA zone name such as 'Europe/Paris'")
    return _call(fn, value, option=tz)


def year(value: Any, tz: str = "UTC") -> Expr:
    return _part("year", value, tz)


def month(value: Any, tz: str = "UTC") -> Expr:
    return _part("month", value, tz)


def day(value: Any, tz: str = "UTC") -> Expr:
    """Day of the month, 1-31."""
    return _part("day", value, tz)


def hour(value: Any, tz: str = "UTC") -> Expr:
    return _part("hour", value, tz)


def minute(value: Any, tz: str = "UTC") -> Expr:
    return _part("minute", value, tz)


def second(value: Any, tz: str = "UTC") -> Expr:
    return _part("second", value, tz)


def day_of_week(value: Any, tz: str = "UTC") -> Expr:
    """ISO day of the week: Monday 1 to Sunday 7."""
    return _part("day_of_week", value, tz)


def day_of_year(value: Any, tz: str = "UTC") -> Expr:
    return _part("day_of_year", value, tz)


def is_weekend(value: Any, tz: str = "UTC") -> Expr:
    """True on Saturday and Sunday in the zone."""
    return _part("is_weekend", value, tz)


def total_seconds(value: Any) -> Expr:
    """A duration in seconds, as float64."""
    return _call("total_seconds", value)
