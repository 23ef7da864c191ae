"""Windowed aggregations online: an aggregated view's stored events, aggregated at
request time by the rule of rules/windows.py.

An aggregated view stores per entity its events within the view's horizon
(online/event_lists.py): one value of the codec whose features are arrays, the event
times first. A lookup reads it in the same MGET as the plain views; WindowPlan reads a
batch of rows' lists into flat arrays (EventLists: the rows' events one after another,
a row's events a segment) and evaluate() computes each requested aggregation for every
row at once with numpy, so the cost per event is a few array elements, not Python calls.

Exactly the rule, to the last bit (tests/window_reference.py checks it):
- the window of length w at time t holds the events with t - w < ts <= t; a null input
  is no value;
- integer sums are exact (the 64-bit values split into high and low halves, each summed
  exactly in int64), null past int64;
- float sums, means and deviations fold the values one at a time from +0.0 in (event
  time, value) order, NaN last: np.cumsum along a row of a grid (rows x events) is that
  sequential fold, where np.sum would add pairwise. The values outside the window become
  +0.0 in place and the grid is padded with +0.0: a sum started at +0.0 is never -0.0
  (round to nearest gives +0.0 for x + -x), and adding +0.0 to anything else leaves it
  unchanged, so those zeros change no bit;
- min and max order NaN above every number; last is the greatest (time, value), NaN
  greatest; a float zero they give is +0.0.

An aggregated feature's status is always PRESENT (its value is defined at every time,
count 0 for an entity without events), and its event time is the newest event time at
or before the request time within the view's horizon (None when there is none).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from skewless.feature_request import ViewRequest
from skewless.online.codec import key_prefix
from skewless.online.event_lists import horizon_us, list_fields
from skewless.serving.on_demand import column_entries
from skewless.serving.window_events import FLOATS, OBJECTS, EventListReader, EventLists, ListColumn
from skewless.timeutil import micros
from skewless.types import DType, to_arrow

Ints = npt.NDArray[np.int64]
Floats = npt.NDArray[np.float64]
Mask = npt.NDArray[np.bool_]

_INT64_MIN: Final = -(1 << 63)
_INT64_MAX: Final = (1 << 63) - 1


# --- the evaluator ----------------------------------------------------------------------


@dataclass(frozen=True)
class WindowSpec:
    """One aggregation as the evaluator computes it."""

    column: str
    function: str
    window_us: int
    kind: str  # the input's type name


class _Batch:
    """The work shared by a batch's aggregations at one request time: each window's
    events, each column's (time, value) order, the grids of the folds."""

    def __init__(self, lists: EventLists, now_us: int) -> None:
        self.lists = lists
        self.now_us = now_us
        self.rows = lists.rows
        self.size = len(lists.times)
        self.lengths = np.diff(lists.offsets)
        self._windows: dict[int, Mask] = {}
        self._orders: dict[str, Ints | None] = {}
        self._grids: list[tuple[Ints, Ints]] | None = None

    def in_window(self, window_us: int) -> Mask:
        mask = self._windows.get(window_us)
        if mask is None:
            t = self.lists.times
            # the bound as the window's rule puts it; Python ints, no int64 overflow
            low = self.now_us - window_us
            mask = t <= self.now_us if low < _INT64_MIN else (t > low) & (t <= self.now_us)
            self._windows[window_us] = mask
        return mask

    def count(self, mask: Mask) -> Ints:
        return np.bincount(self.lists.row_of[mask], minlength=self.rows).astype(np.int64)

    def segment_reduce(self, ufunc: np.ufunc, values: npt.NDArray[Any]) -> npt.NDArray[Any]:
        """`ufunc` reduced over each row's events (rows without events: the first
        element, or zero; callers mask them out)."""
        out = np.zeros(self.rows, dtype=values.dtype)
        some = self.lengths > 0
        if some.any():
            out[some] = ufunc.reduceat(values, self.lists.offsets[:-1][some])
        return out

    def order(self, column: str) -> Ints | None:
        """The permutation putting each row's events in (time, value) order, NaN last
        (None: they already are, as the writer stores them unless times tie)."""
        if column in self._orders:
            return self._orders[column]
        lists = self.lists
        values, t, rows = lists.columns[column].values, lists.times, lists.row_of
        same = rows[1:] == rows[:-1]
        ordered = not (same & (t[1:] < t[:-1])).any()
        if ordered:
            tie = same & (t[1:] == t[:-1])
            if tie.any():
                a, b = values[:-1][tie], values[1:][tie]
                fine = a <= b
                if values.dtype.kind == "f":
                    fine |= np.isnan(b)
                ordered = bool(fine.all())
        result = None if ordered else np.lexsort((values, t, rows)).astype(np.int64)
        self._orders[column] = result
        return result

    def grids(self) -> list[tuple[Ints, Ints]]:
        """The rows as grids for the folds: (rows, flat index of each cell; `size`, one
        past the last event, for padding).
        One grid when the rows' lengths are alike; else one per range of lengths within
        a factor of two, so a row of many events does not pad every other row to its
        length."""
        if self._grids is None:
            lengths = self.lengths
            widest = int(lengths.max(initial=0))
            if self.rows * widest <= 2 * self.size + 64 * self.rows:
                groups = [np.arange(self.rows)]
            else:
                band = np.frexp(lengths.astype(np.float64))[1]
                groups = [np.flatnonzero(band == b) for b in np.unique(band)]
            self._grids = []
            for rows in groups:
                width = int(lengths[rows].max(initial=0))
                at = np.arange(width)
                pad = at[None, :] >= lengths[rows][:, None]
                index = np.where(pad, self.size, self.lists.offsets[rows][:, None] + at)
                self._grids.append((rows, index))
        return self._grids

    def fold(self, values: Floats) -> Floats:
        """Each row's values (in fold order, +0.0 where not counted) added one at a time
        from +0.0."""
        out = np.zeros(self.rows, dtype=np.float64)
        padded = np.append(values, 0.0)
        with np.errstate(invalid="ignore", over="ignore"):  # inf - inf, 1e308 + 1e308
            for rows, index in self.grids():
                if index.shape[1]:
                    out[rows] = np.cumsum(padded[index], axis=1)[:, -1]
        # np.cumsum starts from the first value, the rule from +0.0: the two differ
        # only where the first would be -0.0 and the other +0.0
        result: Floats = out + 0.0
        return result


def evaluate(lists: EventLists, specs: Sequence[WindowSpec], now_us: int) -> list[list[Any]]:
    """Each aggregation's value for every row of `lists` at request time `now_us`
    (microseconds): a list per spec, a value per row (None for null); timestamps as
    microseconds."""
    batch = _Batch(lists, now_us)
    return [_aggregate(batch, spec) for spec in specs]


def newest_events(lists: EventLists, now_us: int, window_us: int) -> list[int | None]:
    """Per row, its newest event time in the window ending at `now_us` (None: none)."""
    batch = _Batch(lists, now_us)
    mask = batch.in_window(window_us)
    newest = batch.segment_reduce(np.maximum, np.where(mask, lists.times, _INT64_MIN))
    return _nulls_where(newest.tolist(), batch.count(mask) == 0)


def _nulls_where(values: list[Any], empty: Mask) -> list[Any]:
    if empty.any():
        for i in np.flatnonzero(empty).tolist():
            values[i] = None
    return values


@dataclass(frozen=True)
class _Case:
    """One aggregation over one batch: its input, and the events it counts."""

    batch: _Batch
    spec: WindowSpec
    column: ListColumn
    mask: Mask  # in the window and not null
    n: Ints  # per row, how many

    def ordered(self, values: npt.NDArray[Any]) -> tuple[npt.NDArray[Any], Mask]:
        """`values` (one per event) and the mask in each row's (time, value) order."""
        order = self.batch.order(self.spec.column)
        if order is None:
            return values, self.mask
        return values[order], self.mask[order]


def _aggregate(batch: _Batch, spec: WindowSpec) -> list[Any]:
    column = batch.lists.columns[spec.column]
    mask = batch.in_window(spec.window_us) & column.valid
    n = batch.count(mask)
    function = spec.function
    if function == "count":
        counts: list[Any] = n.tolist()
        return counts
    case = _Case(batch, spec, column, mask, n)
    if spec.kind in OBJECTS:
        return _in_python(case)
    if not n.any():
        return [0 if function == "count_distinct" else None] * batch.rows
    match function:
        case "count_distinct":
            return _count_distinct(case)
        case "sum" | "mean" | "stddev":
            return _float_moments(case) if spec.kind in FLOATS else _int_moments(case)
        case "min" | "max":
            result = _extreme(case)
        case _:  # last: the greatest (time, value) in each row
            values, kept = case.ordered(column.values)
            where = np.where(kept, np.arange(batch.size), -1)
            result = values[np.maximum(batch.segment_reduce(np.maximum, where), 0)]
    if spec.kind in FLOATS:
        result = result + result.dtype.type(0.0)  # -0.0 -> +0.0
    return _nulls_where(result.tolist(), n == 0)


def _extreme(case: _Case) -> npt.NDArray[Any]:
    batch, values, mask = case.batch, case.column.values, case.mask
    top = case.spec.function == "max"
    if values.dtype.kind == "f":
        if top:  # NaN above every number: np.maximum propagates it
            return batch.segment_reduce(np.maximum, np.where(mask, values, -np.inf))
        numbers = mask & ~np.isnan(values)
        least = batch.segment_reduce(np.minimum, np.where(numbers, values, np.inf))
        return np.where(batch.count(numbers) == 0, np.nan, least).astype(values.dtype)
    if top:
        return batch.segment_reduce(np.maximum, np.where(mask, values, _INT64_MIN))
    return batch.segment_reduce(np.minimum, np.where(mask, values, _INT64_MAX))


def _count_distinct(case: _Case) -> list[Any]:
    picked = np.flatnonzero(case.mask)
    rows, chosen = case.batch.lists.row_of[picked], case.column.values[picked]
    order = np.lexsort((chosen, rows))
    rows, chosen = rows[order], chosen[order]
    first = np.ones(len(rows), dtype=np.bool_)
    first[1:] = (rows[1:] != rows[:-1]) | (chosen[1:] != chosen[:-1])
    distinct: list[Any] = np.bincount(rows[first], minlength=case.batch.rows).tolist()
    return distinct


def _float_moments(case: _Case) -> list[Any]:
    x, mask = case.ordered(case.column.values.astype(np.float64))
    n = case.n
    total = case.batch.fold(np.where(mask, x, 0.0))
    if case.spec.function == "sum":
        return _nulls_where(total.tolist(), n == 0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = total / n
    if case.spec.function == "mean":
        return _nulls_where(mean.tolist(), n == 0)
    return _deviation(case, x, mask, mean)


def _deviation(case: _Case, x: Floats, mask: Mask, mean: Floats) -> list[Any]:
    """The sample deviation of values `x` (in fold order: an order within rows keeps each
    event in its row) about each row's mean."""
    batch, n = case.batch, case.n
    with np.errstate(invalid="ignore", over="ignore"):
        d = x - mean[batch.lists.row_of]
        squares = batch.fold(np.where(mask, d * d, 0.0))
        result = np.sqrt(squares / np.maximum(n - 1, 1))
    return _nulls_where(result.tolist(), n < 2)


def _int_moments(case: _Case) -> list[Any]:
    """Sums of integers exactly: each 64-bit value is high * 2**32 + low, and the highs
    and the lows add up in int64 without overflow (for fewer than 2**31 events)."""
    v = np.where(case.mask, case.column.values, 0).astype(np.int64)
    low, high = v & np.int64(0xFFFFFFFF), v >> np.int64(32)
    lows = _segment_sums(case.batch, low).tolist()
    highs = _segment_sums(case.batch, high).tolist()
    counts = case.n.tolist()
    totals = [(h << 32) + lo for h, lo in zip(highs, lows, strict=True)]
    if case.spec.function == "sum":
        return [
            t if c and _INT64_MIN <= t <= _INT64_MAX else None
            for t, c in zip(totals, counts, strict=True)
        ]
    means = [float(t) / c if c else 0.0 for t, c in zip(totals, counts, strict=True)]
    if case.spec.function == "mean":
        return [m if c else None for m, c in zip(means, counts, strict=True)]
    x, mask = case.ordered(case.column.values.astype(np.float64))
    return _deviation(case, x, mask, np.asarray(means, dtype=np.float64))


def _segment_sums(batch: _Batch, values: Ints) -> Ints:
    sums = np.concatenate(([0], np.cumsum(values, dtype=np.int64)))
    result: Ints = sums[batch.lists.offsets[1:]] - sums[batch.lists.offsets[:-1]]
    return result


def _in_python(case: _Case) -> list[Any]:
    """Strings and bytes (compared by code point and by unsigned byte, as Python
    compares them), row by row."""
    out: list[Any] = []
    offsets = case.batch.lists.offsets.tolist()
    times, function = case.batch.lists.times, case.spec.function
    for row in range(case.batch.rows):
        a, b = offsets[row], offsets[row + 1]
        kept = case.mask[a:b]
        values = case.column.values[a:b][kept].tolist()
        if function == "count_distinct":
            out.append(len(set(values)))
        elif not values:
            out.append(None)
        elif function == "min":
            out.append(min(values))
        elif function == "max":
            out.append(max(values))
        else:  # last
            out.append(max(zip(times[a:b][kept].tolist(), values, strict=True))[1])
    return out


# --- the lookup plan's part -------------------------------------------------------------


@dataclass(frozen=True)
class WindowAnswer:
    """What one aggregated view answered: per row the event time (None: no event in the
    horizon), per shown feature and per hidden column a column of values."""

    event_ts_us: list[int | None]
    columns: list[list[Any]]
    hidden: list[list[Any]]


@dataclass(frozen=True)
class WindowPlan:
    """One aggregated view of a lookup: its keys are built as a plain view's are (same
    key scheme, read in the same MGET); its stored event lists are aggregated."""

    request: ViewRequest
    prefix: bytes
    join_keys: tuple[str, ...]
    outputs: tuple[str, ...]  # output names of the shown features, in request order
    dtypes: tuple[DType, ...]  # their types
    hidden: tuple[str, ...]  # the hidden columns on-demand features read
    specs: tuple[WindowSpec, ...]  # each aggregation computed, once
    shown_at: tuple[int, ...]  # per output, its spec
    hidden_at: tuple[int, ...]  # per hidden column, its spec
    horizon_us: int
    read: EventListReader

    @classmethod
    def of(cls, project: str, req: ViewRequest) -> WindowPlan:
        view = req.view
        kinds = {f.name: f.dtype.name for f in view.stored}
        specs: dict[str, int] = {}
        listed: list[WindowSpec] = []
        for c in req.columns:
            if c.feature not in specs:
                agg = view.aggregation(c.feature)
                specs[c.feature] = len(listed)
                spec = WindowSpec(
                    agg.column, agg.function, micros(agg.time_window), kinds[agg.column]
                )
                listed.append(spec)
        shown = [c for c in req.columns if not c.hidden]
        hidden = [c for c in req.columns if c.hidden]
        return cls(
            request=req,
            prefix=key_prefix(project, req.name),
            join_keys=tuple(req.join_keys),
            outputs=tuple(c.output for c in shown),
            dtypes=tuple(c.dtype for c in shown),
            hidden=tuple(c.output for c in hidden),
            specs=tuple(listed),
            shown_at=tuple(specs[c.feature] for c in shown),
            hidden_at=tuple(specs[c.feature] for c in hidden),
            horizon_us=horizon_us(view),
            read=EventListReader(list_fields(view)),
        )

    def answer(self, stored: Sequence[bytes | None], now_us: int) -> WindowAnswer:
        """The aggregations of the rows' stored lists (None: nothing stored) at request
        time `now_us`."""
        lists = self.read(stored)
        values = evaluate(lists, self.specs, now_us)
        return WindowAnswer(
            newest_events(lists, now_us, self.horizon_us),
            [values[i] for i in self.shown_at],
            [values[i] for i in self.hidden_at],
        )

    def entries(self, answer: WindowAnswer) -> list[bytes]:
        """The shown columns as the gRPC response's FeatureColumn.values carry them."""
        return [
            column_entries(pa.array(column, type=to_arrow(dtype)), dtype)
            for column, dtype in zip(answer.columns, self.dtypes, strict=True)
        ]
