"""An independent point-in-time reference, used only by the tests.

Deliberately naive: for every entity row and view, scan every feature row. It shares no
code with skewless. Times are integer microseconds since the epoch (UTC), or None.

Rule: among feature rows with equal join keys (none of them null), a non-null event
time `ts <= t` and, with a ttl, `ts >= t - ttl`, pick the greatest by
(ts, created ts with null lowest, the tie hash of the view's feature values, the values
in schema order with null lowest and NaN highest). No candidate, or a null key or time on
the entity row: nulls.

The tie hash is Spark's xxhash64 (seed 42) of, per feature in schema order: whether it is
null, then the value, or for an array its size and each element as (is it null, the
element). It is computed here from Spark's published hashing of each type (XXH64 of the
value's little-endian bytes, -0.0 as 0.0, one NaN, UTF-8 for strings, nulls skipped,
each input's hash the seed of the next), with the xxhash package, not with Spark.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import xxhash

SEED = 42
_MASK = (1 << 64) - 1


@dataclass
class RefView:
    name: str
    keys: Sequence[str]
    features: Mapping[str, str]  # every feature of the view, in schema order: its type name
    rows: list[dict[str, Any]]  # keys, "ts", "cts", features
    ttl_us: int | None = None


def _xxh64(data: bytes, seed: int) -> int:
    h = xxhash.xxh64_intdigest(data, seed & _MASK)
    return h - (1 << 64) if h >= 1 << 63 else h


def _float_bits(value: float, width: int) -> bytes:
    if value == 0.0:
        value = 0.0
    if math.isnan(value):
        return struct.pack("<I", 0x7FC00000) if width == 4 else struct.pack("<Q", 0x7FF8 << 48)
    return struct.pack("<f" if width == 4 else "<d", value)


def _scalar_bytes(value: Any, kind: str) -> bytes:
    match kind:
        case "bool":
            return struct.pack("<i", 1 if value else 0)
        case "int32":
            return struct.pack("<i", value)
        case "int64" | "unix_timestamp":
            return struct.pack("<q", value)
        case "float32":
            return _float_bits(value, 4)
        case "float64":
            return _float_bits(value, 8)
        case "string":
            return str(value).encode()
        case "bytes":
            return bytes(value)
    raise ValueError(kind)


def _hash(value: Any, kind: str, seed: int) -> int:
    """Spark's hash of one input: null leaves the seed as it is."""
    return seed if value is None else _xxh64(_scalar_bytes(value, kind), seed)


def tie_hash(values: Sequence[Any], kinds: Sequence[str]) -> int:
    """The tie hash of a row's feature values (kinds: "int64", "array<float32>", ...)."""
    h = SEED
    for value, kind in zip(values, kinds, strict=True):
        h = _hash(value is None, "bool", h)
        if kind.startswith("array<"):
            element = kind[len("array<") : -1]
            h = _hash(None if value is None else len(value), "int32", h)
            for item in value or ():
                h = _hash(item is None, "bool", h)
                h = _hash(item, element, h)
        else:
            h = _hash(value, kind, h)
    return h


def _value_key(v: Any) -> tuple[Any, ...]:
    if v is None:
        return (0,)
    if isinstance(v, float) and math.isnan(v):
        return (2,)
    return (1, v)


def rank(row: dict[str, Any], features: Mapping[str, str]) -> tuple[Any, ...]:
    """The ranking rule's key of a feature row: greater wins."""
    cts = row.get("cts")
    values = [row.get(f) for f in features]
    return (
        row["ts"],
        (0,) if cts is None else (1, cts),
        tie_hash(values, list(features.values())),
        tuple(_value_key(v) for v in values),
    )


def lookup(view: RefView, entity: dict[str, Any], t: int | None) -> dict[str, Any] | None:
    if t is None or any(entity.get(k) is None for k in view.keys):
        return None
    best: dict[str, Any] | None = None
    for row in view.rows:
        if row["ts"] is None or any(row.get(k) is None for k in view.keys):
            continue
        if any(row[k] != entity[k] for k in view.keys):
            continue
        if row["ts"] > t:
            continue
        if view.ttl_us is not None and row["ts"] < t - view.ttl_us:
            continue
        if best is None or rank(row, view.features) > rank(best, view.features):
            best = row
    return best


def historical(
    entities: list[dict[str, Any]],
    views: Sequence[RefView],
    wanted: Sequence[tuple[str, str]],
) -> list[dict[str, Any]]:
    """One output dict per entity row, in order: each (view, feature) in `wanted`."""
    by_name = {v.name: v for v in views}
    out = []
    for entity in entities:
        row: dict[str, Any] = {}
        for view_name, feature in wanted:
            hit = lookup(by_name[view_name], entity, entity["t"])
            row[feature] = None if hit is None else hit.get(feature)
        out.append(row)
    return out


def same(a: Any, b: Any) -> bool:
    """Equality where NaN equals NaN and None differs from NaN."""
    if a is None or b is None:
        return a is None and b is None
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return bool(a == b)
