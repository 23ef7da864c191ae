"""A compiled online lookup: the per-view work of a list of feature refs, resolved once.

compile_requests() turns feature refs into per-view requests (validated and named);
LookupPlan adds what every lookup with those requests needs and nothing in it depends
on the entity rows: each view's key prefix, join-key type checks, ttl in microseconds and
a column decoder for its dtypes (online/codec.py). Callers cache plans per definitions
snapshot (the server's Catalog, FeatureStore per registry version), so a lookup does only
per-row work: build the keys of every view (one MGET for all of them), decode straight
into columns, compare event times with the ttl once per row and view.

The statuses: a stored value is
PRESENT, or OUTSIDE_MAX_AGE when its event time is older than request time minus the
view's ttl (its values withheld as null, its event time still reported), and NOT_FOUND
when nothing is stored. Decoded columns keep timestamps as microseconds (what the gRPC
response carries); response() turns UnixTimestamp values into UTC datetimes, the values
get_historical_features gives for the same rows.

A view with aggregations is read in the same MGET (its keys after the plain views'); its
stored value is the entity's recent events, which serving/windows.py aggregates at the
request time: its features are always PRESENT (an entity without events is an empty
window), with the newest event time within the view's horizon.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

import pyarrow as pa

from skewless.feature_request import FeatureRequest, ViewRequest
from skewless.online.codec import (
    ColumnDecoder,
    Gather,
    column_decoder,
    entity_keys,
    entry_gatherer,
    event_times,
    key_prefix,
)
from skewless.serving.keys import PLAIN_KEY_TYPES, check_join_keys, required_keys
from skewless.serving.on_demand import OnDemandPlan, column_entries, request_arrays
from skewless.serving.response import FeatureStatus, OnlineResponse
from skewless.serving.windows import WindowPlan
from skewless.timeutil import from_micros_shared, micros
from skewless.types import ArrayType, DType, ScalarType, UnixTimestamp


class _Missing:
    __slots__ = ()

    def __repr__(self) -> str:
        return "MISSING"


# An entity column's entry for a row that does not have that key at all, which is not a
# null key (that finds nothing): a row without a key the features need is refused, as
# keys() refuses a row dict without it. Columns of a gRPC request can say so.
MISSING: Final = _Missing()


@dataclass(frozen=True, slots=True)
class ViewPlan:
    """One view of a lookup: how to build its keys and read its stored values."""

    request: ViewRequest
    prefix: bytes
    join_keys: tuple[str, ...]
    ttl_us: int | None
    outputs: tuple[str, ...]  # output names of the shown features, in request order
    decode: ColumnDecoder
    gather: Gather
    # the hidden columns on-demand features read (feature_request.hidden_name), and a
    # decoder of just those (the gRPC answer gathers entries, which it cannot compute on)
    hidden: tuple[str, ...] = ()
    hidden_decode: ColumnDecoder | None = None


@dataclass(frozen=True, slots=True)
class ViewColumns:
    """What one view answered, column-major: per row a status and an event time (None
    when not found), per selected feature a column (None when not PRESENT or null)."""

    statuses: list[FeatureStatus]
    event_ts_us: list[int | None]
    columns: list[list[Any]]
    hidden: list[list[Any]] = field(default_factory=list)  # the ViewPlan's hidden columns


@dataclass(frozen=True, slots=True)
class ViewEntries:
    """What one view answered, as the gRPC response carries it: per row a status and an
    event time, per selected feature its FeatureColumn.values entries, concatenated (null
    entries where a row is not PRESENT)."""

    statuses: list[FeatureStatus]
    event_ts_us: list[int | None]
    entries: list[bytes]


class LookupPlan:
    """Everything about a lookup that does not depend on the entity rows."""

    def __init__(self, project: str, request: FeatureRequest) -> None:
        self.requests = list(request.views)
        self.views = tuple(
            _view_plan(project, req) for req in self.requests if not req.view.aggregations
        )
        # views with aggregations: their stored event lists aggregated (serving/windows.py)
        self.windows = tuple(
            WindowPlan.of(project, req) for req in self.requests if req.view.aggregations
        )
        self.on_demand = tuple(OnDemandPlan.of(o) for o in request.on_demand)
        # what answers each output, views, aggregated views, then on-demand views (each
        # has `.outputs`); the stored ones in the order of keys()
        self.stored: tuple[ViewPlan | WindowPlan, ...] = (*self.views, *self.windows)
        self.parts: tuple[ViewPlan | WindowPlan | OnDemandPlan, ...] = (
            *self.stored,
            *self.on_demand,
        )
        self.join_keys = required_keys(self.requests)
        self.features = request.outputs
        self.dtypes: dict[str, DType] = request.output_dtypes
        self.request_fields: dict[str, DType] = {}
        for odfv in self.on_demand:
            for name in odfv.request.request_fields:
                dtype = odfv.input_types[name]
                if isinstance(dtype, ScalarType):
                    self.request_fields.setdefault(name, dtype)
        # join key -> the Python types accepted at a glance (the intersection over views)
        plain: dict[str, frozenset[type]] = {}
        for req in self.requests:
            pinned = {f.name: f.dtype.name for f in req.view.key_fields}
            for key in req.join_keys:
                types = PLAIN_KEY_TYPES.get(pinned.get(key), frozenset())
                plain[key] = plain.get(key, types) & types
        self._plain_key_types = plain

    # --- keys ---------------------------------------------------------------------------

    def keys(self, entity_rows: Sequence[Mapping[str, Any]]) -> list[bytes]:
        """The Redis keys of every view (view after view, a key per row in row order),
        after the join-key checks of keys.check_join_keys (which raises
        EntityRowsError naming the row and the key)."""
        try:
            columns = {k: [row[k] for row in entity_rows] for k in self._plain_key_types}
        except KeyError:
            columns = None
        if columns is None or not self._plainly_typed(columns):
            check_join_keys(self.requests, entity_rows)  # raises, or accepts odd types
            columns = {k: [row[k] for row in entity_rows] for k in self._plain_key_types}
        try:
            return self._keys(columns, len(entity_rows))
        except struct.error:  # an integer past 64 bits, which the check names
            check_join_keys(self.requests, entity_rows)
            raise

    def keys_from_columns(self, columns: Mapping[str, Sequence[Any]], rows: int) -> list[bytes]:
        """keys() of entity rows given as columns (each of length `rows`); an entry
        MISSING means that row does not have that key."""
        needed = self._plain_key_types
        if rows and not (needed.keys() <= columns.keys() and self._plainly_typed(columns)):
            return self.keys(_rows_of(columns, rows))
        try:
            return self._keys({k: columns.get(k, ()) for k in needed}, rows)
        except struct.error:  # an integer past 64 bits: keys() names it
            return self.keys(_rows_of(columns, rows))

    def _plainly_typed(self, columns: Mapping[str, Sequence[Any]]) -> bool:
        return all(set(map(type, columns[k])) <= ok for k, ok in self._plain_key_types.items())

    def _keys(self, columns: Mapping[str, Sequence[Any]], rows: int) -> list[bytes]:
        keys: list[bytes] = []
        for view in self.stored:
            keys.extend(entity_keys(view.prefix, [columns[k] for k in view.join_keys], rows))
        return keys

    # --- values -------------------------------------------------------------------------

    def assemble(self, raw: Sequence[bytes | None], rows: int, now_us: int) -> list[ViewColumns]:
        """Decode what Redis returned for keys() (of `rows` entity rows) at request time
        `now_us` (microseconds since the epoch)."""
        per_view = self._per_view(raw, rows)
        answered = [
            _decoded(view, stored, now_us)
            for view, stored in zip(self.views, per_view[: len(self.views)], strict=True)
        ]
        for window, stored in zip(self.windows, per_view[len(self.views) :], strict=True):
            got = window.answer(stored, now_us)
            present = [FeatureStatus.PRESENT] * rows  # defined at every time
            answered.append(ViewColumns(present, got.event_ts_us, got.columns, got.hidden))
        return answered

    def request_arrays(
        self, values: Mapping[str, Sequence[Any]] | None, rows: int
    ) -> dict[str, pa.Array]:
        """The request fields on-demand features read, checked and typed
        (serving/on_demand.py); nothing when none is read."""
        if not self.request_fields:
            return {}
        return request_arrays(self.request_fields, values or {}, rows)

    def entries(
        self,
        raw: Sequence[bytes | None],
        rows: int,
        now_us: int,
        request: Mapping[str, pa.Array] | None = None,
    ) -> list[ViewEntries]:
        """assemble()'s answer as the gRPC response carries it: the stored entries of
        each view, gathered, then each on-demand view's computed entries (`request`:
        request_arrays())."""
        out: list[ViewEntries] = []
        held: dict[str, list[Any]] = {}
        per_view = self._per_view(raw, rows)
        for view, stored in zip(self.views, per_view[: len(self.views)], strict=True):
            event_ts = event_times(stored)
            statuses, fresh = _statuses(event_ts, view.ttl_us, now_us)
            kept = stored if fresh is None else _withhold(stored, fresh)
            out.append(ViewEntries(statuses, event_ts, _gathered(view, kept)))
            if view.hidden_decode is not None:
                _, columns = view.hidden_decode(kept)
                held.update(zip(view.hidden, columns, strict=True))
        for window, stored in zip(self.windows, per_view[len(self.views) :], strict=True):
            got = window.answer(stored, now_us)
            present = [FeatureStatus.PRESENT] * rows
            out.append(ViewEntries(present, got.event_ts_us, window.entries(got)))
            held.update(zip(window.hidden, got.hidden, strict=True))
        for odfv in self.on_demand:
            computed = odfv.compute(held, request or {}, rows)
            entries = [
                column_entries(column, dtype)
                for column, dtype in zip(computed, odfv.dtypes, strict=True)
            ]
            out.append(ViewEntries([FeatureStatus.PRESENT] * rows, [None] * rows, entries))
        return out

    def _per_view(self, raw: Sequence[bytes | None], rows: int) -> list[Sequence[bytes | None]]:
        if len(raw) != rows * len(self.stored):
            views = len(self.stored)
            raise ValueError(f"{len(raw)} stored values for {rows} rows of {views} views")
        return [raw[i * rows : (i + 1) * rows] for i in range(len(self.stored))]

    def response(
        self,
        entity_rows: Sequence[Mapping[str, Any]],
        answered: Sequence[ViewColumns],
        request: Mapping[str, pa.Array] | None = None,
    ) -> OnlineResponse:
        """The OnlineResponse of assemble()'s answer for `entity_rows` (`request`:
        request_arrays() of the request values, for on-demand features)."""
        values: dict[str, list[Any]] = {}
        statuses: dict[str, list[FeatureStatus]] = {}
        times: dict[str, list[datetime | None]] = {}
        shared: dict[int, datetime] = {}  # one datetime per distinct time
        held: dict[str, list[Any]] = {}
        for view, got in zip(self.stored, answered, strict=True):
            when = from_micros_shared(got.event_ts_us, shared)
            held.update(zip(view.hidden, got.hidden, strict=True))
            for name, column in zip(view.outputs, got.columns, strict=True):
                # a list of its own (decoder, withholding); times as offline gives them
                values[name] = _as_datetimes(column, self.dtypes[name], shared)
                statuses[name] = list(got.statuses)
                times[name] = list(when)
        rows = len(entity_rows)
        for odfv in self.on_demand:
            computed = odfv.compute(held, request or {}, rows)
            for name, column in zip(odfv.outputs, computed, strict=True):
                values[name] = column.to_pylist()
                statuses[name] = [FeatureStatus.PRESENT] * rows
                times[name] = [None] * rows
        return OnlineResponse(
            list(self.join_keys),
            [dict(r) for r in entity_rows],
            list(self.features),
            values,
            statuses,
            times,
            self.dtypes,
        )


def _rows_of(columns: Mapping[str, Sequence[Any]], rows: int) -> list[dict[str, Any]]:
    """Entity rows of entity columns, each without the keys MISSING in it."""
    return [
        {k: v for k, col in columns.items() if (v := col[i]) is not MISSING} for i in range(rows)
    ]


# The gatherer's temporaries take about 16 bytes per byte it answers: rows are gathered
# this many at a time, so a large lookup needs a few MB of them, not hundreds, and the
# thread doing it lets the others run between its steps.
GATHER_ROWS: Final = 4096


def _gathered(view: ViewPlan, stored: Sequence[bytes | None]) -> list[bytes]:
    if not view.outputs:
        return []
    if len(stored) <= GATHER_ROWS:
        return view.gather(stored)
    parts = [view.gather(stored[i : i + GATHER_ROWS]) for i in range(0, len(stored), GATHER_ROWS)]
    return [b"".join(column) for column in zip(*parts, strict=True)]


def _decoded(view: ViewPlan, stored: Sequence[bytes | None], now_us: int) -> ViewColumns:
    """One view's stored values, decoded, stale rows' values withheld."""
    if view.outputs:
        event_ts, columns = view.decode(stored)
    else:  # read for on-demand features only
        event_ts, columns = event_times(stored), []
    hidden: list[list[Any]] = []
    if view.hidden_decode is not None:
        _, hidden = view.hidden_decode(stored)
    statuses, fresh = _statuses(event_ts, view.ttl_us, now_us)
    if fresh is not None:
        columns = [_withhold(column, fresh) for column in columns]
        hidden = [_withhold(column, fresh) for column in hidden]
    return ViewColumns(statuses, event_ts, columns, hidden)


def _statuses(
    event_ts: list[int | None], ttl_us: int | None, now_us: int
) -> tuple[list[FeatureStatus], list[bool] | None]:
    """Per row PRESENT, NOT_FOUND (nothing stored) or OUTSIDE_MAX_AGE (older than the
    ttl), and, when some row is stale, which rows' values are shown (None: all)."""
    present, missing, stale = (
        FeatureStatus.PRESENT,
        FeatureStatus.NOT_FOUND,
        FeatureStatus.OUTSIDE_MAX_AGE,
    )
    if ttl_us is None:
        return [missing if t is None else present for t in event_ts], None
    oldest = now_us - ttl_us
    statuses = [missing if t is None else stale if t < oldest else present for t in event_ts]
    if stale not in statuses:
        return statuses, None
    return statuses, [s is not stale for s in statuses]


def _withhold(values: Sequence[Any], shown: list[bool]) -> list[Any]:
    return [v if keep else None for v, keep in zip(values, shown, strict=True)]


def _as_datetimes(column: list[Any], dtype: DType, shared: dict[int, datetime]) -> list[Any]:
    """A UnixTimestamp column's (or array column's) values as UTC datetimes, as
    get_historical_features gives them; other columns as they are."""
    if dtype == UnixTimestamp:
        return from_micros_shared(column, shared)
    if isinstance(dtype, ArrayType) and dtype.element == UnixTimestamp:
        return [None if ts is None else from_micros_shared(ts, shared) for ts in column]
    return column


def _view_plan(project: str, req: ViewRequest) -> ViewPlan:
    view = req.view
    features = view.features
    position = {f.name: i for i, f in enumerate(features)}
    dtypes = [f.dtype for f in features]
    # a hidden column may read a feature the request also shows: decoded apart
    shown = [c for c in req.columns if not c.hidden]
    positions = [position[c.feature] for c in shown]
    hidden = [c for c in req.columns if c.hidden]
    return ViewPlan(
        request=req,
        prefix=key_prefix(project, req.name),
        join_keys=tuple(req.join_keys),
        ttl_us=None if req.ttl is None else micros(req.ttl),
        outputs=tuple(c.output for c in shown),
        decode=column_decoder(dtypes, positions),
        gather=entry_gatherer(dtypes, positions),
        hidden=tuple(c.output for c in hidden),
        hidden_decode=(
            column_decoder(dtypes, [position[c.feature] for c in hidden]) if hidden else None
        ),
    )
