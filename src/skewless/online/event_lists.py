"""How a view with aggregations is stored online: per entity, its recent events.

An aggregation's value changes as time passes (events leave the window), so the online
store cannot hold the value; it holds what gives the value at any later time: the
entity's events within the view's horizon (its longest window), and the server
aggregates them at request time by the rule of rules/windows.py.

Storing the events is also the least that works for every function: a count over a
window ending at an arbitrary later time changes at each stored event's exit, so every
event time within the horizon must be known. The cost per entity is about 8 bytes per
event for its time plus the inputs' encoded sizes (docs/aggregations.md measures it).

The stored value is one row of the codec (online/codec.py) whose features are arrays,
one element per event: the events' times (`EVENT_TS`) and then each column some
aggregation reads, in schema order. Events are sorted by time, then by their values.
Its rank header (rules/ranking.py) is (the materialization's end, the run's start time,
a hash of the content): a list built to a later end replaces one built to an earlier
end, never the reverse, and re-running a run writes the same list again. A run writes
the events in (end - horizon, end].
"""

from __future__ import annotations

from skewless.definitions import FeatureView
from skewless.timeutil import micros
from skewless.types import Array, DType, ScalarType, UnixTimestamp

EVENT_TS = "__event_ts"


def list_columns(view: FeatureView) -> tuple[str, ...]:
    """The input columns the aggregations read, in schema order."""
    used = {a.column for a in view.aggregations}
    return tuple(f.name for f in view.stored if f.name in used)


def list_fields(view: FeatureView) -> tuple[tuple[str, DType], ...]:
    """The stored row's features: (name, array type), EVENT_TS first."""
    dtypes = {f.name: f.dtype for f in view.stored}
    fields: list[tuple[str, DType]] = [(EVENT_TS, Array(UnixTimestamp))]
    for name in list_columns(view):
        dtype = dtypes[name]
        assert isinstance(dtype, ScalarType)  # aggregations take scalars only
        fields.append((name, Array(dtype)))
    return tuple(fields)


def horizon_us(view: FeatureView) -> int:
    """The view's longest window, in microseconds: how far back its stored events go."""
    return max(micros(a.time_window) for a in view.aggregations)
