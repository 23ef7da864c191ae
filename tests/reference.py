"""An independent point-in-time reference, used only by the tests.

Deliberately naive: for every entity row and view, scan every feature row. It shares no
code with skewless. Times are integer microseconds since the epoch (UTC), or None.

Rule: among feature rows with equal join keys (none of them null), a non-null event
time `ts <= t` and, with a ttl, `ts >= t - ttl`, pick the greatest by
(ts, created ts with null lowest, the view's feature values in schema order with null
lowest and NaN highest). No candidate, or a null key or time on the entity row: nulls.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any


@dataclass
class RefView:
    name: str
    keys: Sequence[str]
    features: Sequence[str]  # every feature of the view, in schema order
    rows: list[dict[str, Any]]  # keys, "ts", "cts", features
    ttl_us: int | None = None


def _value_key(v: Any) -> tuple[Any, ...]:
    if v is None:
        return (0,)
    if isinstance(v, float) and math.isnan(v):
        return (2,)
    return (1, v)


def _rank(row: dict[str, Any], features: Sequence[str]) -> tuple[Any, ...]:
    cts = row.get("cts")
    return (
        row["ts"],
        (0,) if cts is None else (1, cts),
        tuple(_value_key(row.get(f)) for f in features),
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
        if best is None or _rank(row, view.features) > _rank(best, view.features):
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
