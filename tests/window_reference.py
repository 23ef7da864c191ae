"""An independent reference of windowed aggregations, used only by the tests.

Deliberately naive: for every entity row and aggregation, scan every event. It shares no
code with skewless (the ranking of corrections comes from tests/reference.py). Times
are integer microseconds since the epoch (UTC).

The rule (README, "Windowed aggregations"): the value at t aggregates the entity's
events with t - window < ts <= t whose input is not null.
- Events: rows with a null join key or event time are never events. Without a created
  column, rows equal in (keys, ts, every input column) are one event; with one, rows
  equal in (keys, ts) are one event, the greatest by the ranking rule.
- count, count_distinct: 0 for an empty window; every other function: None.
- sum of integers: exact, None outside int64; of floats: added one at a time from +0.0
  in (ts, value) order, NaN last.
- mean: float(sum) / n. stddev: the sample deviation: sqrt(sum((float(x) - mean)^2) /
  (n - 1)), the squares added in that same order; None when n < 2.
- min, max: NaN above every number; last: the value at the greatest ts, the greatest
  value among ties. A float zero from min, max or last is +0.0.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from tests.reference import rank

FLOATS = {"float32", "float64"}
INT64_MIN, INT64_MAX = -(1 << 63), (1 << 63) - 1


@dataclass(frozen=True)
class RefAggregation:
    name: str
    column: str
    function: str
    window_us: int


def _norm(v: Any) -> Any:
    """A value as equality of events sees it: every NaN alike, -0.0 as 0.0."""
    if isinstance(v, float):
        if math.isnan(v):
            return ("nan",)
        return v + 0.0
    return v


def events(
    rows: Sequence[Mapping[str, Any]],
    keys: Sequence[str],
    inputs: Mapping[str, str],
    has_created: bool,
) -> list[dict[str, Any]]:
    """The events of source rows ("ts", "cts", keys, inputs), by the identity rule."""
    valid = [dict(r) for r in rows if r["ts"] is not None and all(r[k] is not None for k in keys)]
    if has_created:
        best: dict[tuple[Any, ...], dict[str, Any]] = {}
        for r in valid:
            ident = (tuple(r[k] for k in keys), r["ts"])
            if ident not in best or rank(r, inputs) > rank(best[ident], inputs):
                best[ident] = r
        return list(best.values())
    seen: dict[tuple[Any, ...], dict[str, Any]] = {}
    for r in valid:
        row_ident = (tuple(r[k] for k in keys), r["ts"], tuple(_norm(r[c]) for c in inputs))
        seen.setdefault(row_ident, r)
    return list(seen.values())


def _order(v: Any) -> tuple[int, Any]:
    if isinstance(v, float) and math.isnan(v):
        return (1, 0.0)
    return (0, v)


def _fold(pairs: list[tuple[int, float]]) -> float:
    acc = 0.0
    for _, v in sorted(pairs, key=lambda p: (p[0], _order(p[1]))):
        acc = acc + float(v)
    return acc


def _positive_zero(v: Any) -> Any:
    return v + 0.0 if isinstance(v, float) and v == 0.0 else v


def aggregate(function: str, kind: str, pairs: Sequence[tuple[int, Any]]) -> Any:
    """`function` over (ts, value) pairs of a window (nulls included, then ignored)."""
    vals = [(ts, v) for ts, v in pairs if v is not None]
    n = len(vals)
    if function == "count":
        return n
    if function == "count_distinct":
        return len({v for _, v in vals})
    if n == 0:
        return None
    floats = kind in FLOATS
    if function == "sum":
        if floats:
            return _fold(vals)
        total = sum(v for _, v in vals)
        return total if INT64_MIN <= total <= INT64_MAX else None
    if function in ("mean", "stddev"):
        mean = _fold(vals) / n if floats else float(sum(v for _, v in vals)) / n
        if function == "mean":
            return mean
        if n < 2:
            return None
        acc = 0.0
        for _, v in sorted(vals, key=lambda p: (p[0], _order(p[1]))):
            d = float(v) - mean
            acc = acc + d * d
        return math.sqrt(acc / (n - 1))
    if function in ("min", "max"):
        values = [v for _, v in vals]
        if floats:
            numbers = [v for v in values if not math.isnan(v)]
            if function == "max":
                result = math.nan if len(numbers) < len(values) else max(numbers)
            else:
                result = min(numbers) if numbers else math.nan
            return _positive_zero(result)
        return max(values) if function == "max" else min(values)
    if function == "last":
        latest = max(ts for ts, _ in vals)
        tied = [v for ts, v in vals if ts == latest]
        return _positive_zero(max(tied, key=_order))
    raise ValueError(f"unknown function {function}")


def window_value(
    entity_events: Sequence[Mapping[str, Any]], agg: RefAggregation, kind: str, t: int
) -> Any:
    """The aggregation at time t over one entity's events."""
    pairs = [(e["ts"], e[agg.column]) for e in entity_events if t - agg.window_us < e["ts"] <= t]
    return aggregate(agg.function, kind, pairs)


def historical(
    rows: Sequence[Mapping[str, Any]],
    keys: Sequence[str],
    inputs: Mapping[str, str],
    has_created: bool,
    aggregations: Sequence[RefAggregation],
    entity_rows: Sequence[Mapping[str, Any]],
) -> list[dict[str, Any]]:
    """One dict per entity row (keys and "t"), in order: each aggregation's value."""
    evs = events(rows, keys, inputs, has_created)
    by_key: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
    for e in evs:
        by_key.setdefault(tuple(e[k] for k in keys), []).append(e)
    out = []
    for entity in entity_rows:
        key = tuple(entity[k] for k in keys)
        mine = [] if any(v is None for v in key) else by_key.get(key, [])
        out.append(
            {a.name: window_value(mine, a, inputs[a.column], entity["t"]) for a in aggregations}
        )
    return out
