"""Expression nodes: plain, immutable data.

An expression is a tree of three node kinds: `Col` (a named input column), `Lit` (a typed
constant) and `Call` (a function of argument nodes, with at most one option such as a
cast's target type, a rounding's digits or a time zone). Nodes compare and hash by
structure. Their canonical form (`to_data`) is JSON data with no Python in it: it is what
the registry stores and what fingerprints hash, so two expressions written with different
spacing, parentheses or helper variables but with the same structure are the same
expression. `from_data` reads it back and refuses anything that is not a node; nothing is
ever evaluated as Python source.

Literal values are held in their canonical form too: a float as `float.hex()` (exact, and
NaN, infinities and -0.0 survive JSON), a timestamp or a duration as microseconds, bytes
as hex; so a literal's equality is the equality of its data.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Literal

LitType = Literal[
    "int64", "float64", "string", "bool", "unix_timestamp", "duration", "bytes", "null"
]
LIT_TYPES: tuple[str, ...] = (
    "int64",
    "float64",
    "string",
    "bool",
    "unix_timestamp",
    "duration",
    "bytes",
    "null",
)

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1
# Nesting an expression may have: every part of skewless walks expressions recursively
# (type checks, both engines, the registry's JSON), and Python's stack is finite.
MAX_DEPTH = 64


@dataclass(frozen=True, slots=True)
class Col:
    """An input column, by name."""

    name: str


@dataclass(frozen=True, slots=True)
class Lit:
    """A constant. `value` is canonical: int (int64, unix_timestamp and duration, the last
    two in microseconds), float.hex() text (float64), str, bool, hex text (bytes) or None
    (null, whatever its type)."""

    value: int | str | bool | None
    dtype: LitType

    @property
    def python(self) -> int | float | str | bool | bytes | None:
        """The value as Python holds it (floats and bytes decoded)."""
        if self.value is None:
            return None
        if self.dtype == "float64":
            return float.fromhex(str(self.value))
        if self.dtype == "bytes":
            return bytes.fromhex(str(self.value))
        return self.value


@dataclass(frozen=True, slots=True)
class Call:
    """A function applied to arguments. `option` is the function's one constant setting:
    a cast's target type name, round's digits, a time part's IANA zone; else None."""

    fn: str
    args: tuple[Node, ...]
    option: str | int | None = None


Node = Col | Lit | Call


def float_lit(value: float) -> Lit:
    return Lit(float(value).hex(), "float64")


def int_lit(value: int) -> Lit:
    if not INT64_MIN <= value <= INT64_MAX:
        raise ValueError(f"integer literal {value} is outside the int64 range")
    return Lit(value, "int64")


def null_lit() -> Lit:
    return Lit(None, "null")


# --- canonical data ------------------------------------------------------------------


def to_data(node: Node) -> dict[str, Any]:
    """The canonical JSON data of an expression."""
    match node:
        case Col(name):
            return {"col": name}
        case Lit(value, dtype):
            return {"lit": value, "type": dtype}
        case Call(fn, args, option):
            data: dict[str, Any] = {"fn": fn, "args": [to_data(a) for a in args]}
            if option is not None:
                data["opt"] = option
            return data


def from_data(data: object, where: str = "expression") -> Node:
    """A node from its canonical data; ValueError naming the place for anything else."""
    if not isinstance(data, Mapping):
        raise ValueError(f"{where}: expected an expression node, got {data!r}")
    keys = set(data)
    if keys == {"col"} and isinstance(data["col"], str) and data["col"]:
        return Col(data["col"])
    if keys == {"lit", "type"} and data["type"] in LIT_TYPES:
        return _lit_from_data(data["lit"], data["type"], where)
    if keys in ({"fn", "args"}, {"fn", "args", "opt"}) and isinstance(data["fn"], str):
        args = data["args"]
        option = data.get("opt")
        if not isinstance(args, list) or not (option is None or isinstance(option, str | int)):
            raise ValueError(f"{where}: malformed call {dict(data)!r}")
        if isinstance(option, bool):
            raise ValueError(f"{where}: malformed option {option!r}")
        return Call(
            data["fn"],
            tuple(from_data(a, f"{where}.{data['fn']}[{i}]") for i, a in enumerate(args)),
            option,
        )
    raise ValueError(f"{where}: not an expression node: {dict(data)!r}")


def _lit_from_data(value: object, dtype: LitType, where: str) -> Lit:
    if value is None:
        return Lit(None, dtype)
    ok = False
    match dtype:
        case "int64" | "unix_timestamp" | "duration":
            ok = isinstance(value, int) and not isinstance(value, bool)
            ok = ok and INT64_MIN <= value <= INT64_MAX  # type: ignore[operator]
        case "float64":
            ok = isinstance(value, str) and _is_float_hex(value)
        case "string":
            ok = isinstance(value, str)
        case "bool":
            ok = isinstance(value, bool)
        case "bytes":
            ok = isinstance(value, str) and _is_hex(value)
        case "null":
            ok = False
    if not ok:
        raise ValueError(f"{where}: {value!r} is not a {dtype} literal")
    return Lit(value, dtype)  # type: ignore[arg-type]


def _is_float_hex(text: str) -> bool:
    try:
        value = float.fromhex(text)
    except ValueError:
        return False
    return value.hex() == text or (math.isnan(value) and text == "nan")


def _is_hex(text: str) -> bool:
    try:
        return bytes.fromhex(text).hex() == text
    except ValueError:
        return False


# --- walking -------------------------------------------------------------------------


def walk(node: Node) -> Iterator[Node]:
    """Every node of the tree, parents before children."""
    yield node
    if isinstance(node, Call):
        for arg in node.args:
            yield from walk(arg)


def columns(node: Node) -> tuple[str, ...]:
    """The input columns an expression reads, in first-use order."""
    seen: dict[str, None] = {}
    for n in walk(node):
        if isinstance(n, Col):
            seen.setdefault(n.name)
    return tuple(seen)


def depth(node: Node) -> int:
    """How deeply the tree nests (a column or a constant: 1), counted without
    recursion, so that any tree can be measured."""
    deepest, stack = 0, [(node, 1)]
    while stack:
        current, level = stack.pop()
        deepest = max(deepest, level)
        if isinstance(current, Call):
            stack.extend((arg, level + 1) for arg in current.args)
    return deepest
