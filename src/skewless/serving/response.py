"""What an online lookup answers, on plain domain types: per entity row and feature, a
value, a status and an event time."""

from __future__ import annotations

import enum
import numbers
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import pandas as pd
import pyarrow as pa

from skewless.types import DType, pandas_dtype, to_arrow

# to_dict(include_event_timestamps=True): a feature's event times, as Feast names them
TIMESTAMP_SUFFIX = "__ts"


class FeatureStatus(enum.Enum):
    PRESENT = "PRESENT"
    NOT_FOUND = "NOT_FOUND"
    OUTSIDE_MAX_AGE = "OUTSIDE_MAX_AGE"


@dataclass(frozen=True)
class OnlineResponse:
    """Per row, per feature: value, status and event time (UTC).

    `dtypes` holds each feature's declared type (empty when unknown, e.g. from a server
    that does not send it); to_pandas() types the feature columns by it.
    """

    join_keys: list[str]
    entity_rows: list[dict[str, Any]]
    features: list[str]
    values: dict[str, list[Any]]
    statuses: dict[str, list[FeatureStatus]]
    event_timestamps: dict[str, list[datetime | None]]
    dtypes: Mapping[str, DType] = field(default_factory=dict)

    def to_dict(self, include_event_timestamps: bool = False) -> dict[str, list[Any]]:
        """Each join key and feature name to a list of values, in row order. With
        `include_event_timestamps` (Feast's argument), `<feature>__ts` holds each value's
        event time in whole seconds since the epoch, None where there is no value."""
        out: dict[str, list[Any]] = {
            k: [row.get(k) for row in self.entity_rows] for k in self.join_keys
        }
        for f in self.features:
            out[f] = list(self.values[f])
            if include_event_timestamps:
                out[f + TIMESTAMP_SUFFIX] = [
                    None if t is None else int(t.timestamp()) for t in self.event_timestamps[f]
                ]
        return out

    def to_df(self) -> pd.DataFrame:
        """Feast's name for to_pandas()."""
        return self.to_pandas()

    def to_pandas(self) -> pd.DataFrame:
        """One row per entity row: the join keys, then the features in request order.

        Features have exactly the dtypes and values get_historical_features(...).to_pandas()
        gives (types.pandas_dtype, through Arrow as there): nullable Int64, Int32 and
        boolean, float32 and float64 (a null is NaN there), datetime64[us, UTC], and
        objects for strings, bytes and arrays (an array is the numpy array Arrow makes of
        it). Join keys are typed by their values, as the rows give them, so in-process
        and OnlineClient responses agree: integers as nullable Int64 (a null key does not
        turn them into floats), bools as boolean, anything else as objects. There are no
        event-time columns: a training set has none per feature either, and an online row
        has no request time; statuses and event times are in `.statuses` and
        `.event_timestamps`.
        """
        columns: dict[str, pd.Series[Any]] = {
            k: _key_column([row.get(k) for row in self.entity_rows]) for k in self.join_keys
        }
        for name in self.features:
            dtype = self.dtypes.get(name)
            values = self.values[name]
            columns[name] = pd.Series(values) if dtype is None else _feature_column(values, dtype)
        return pd.DataFrame(columns, index=pd.RangeIndex(len(self.entity_rows)))


def _feature_column(values: list[Any], dtype: DType) -> pd.Series[Any]:
    """A feature column as the training set's to_pandas() makes it: Arrow's conversion
    (integers and bools to pandas' nullable types, so large integers stay exact), then
    types.pandas_dtype."""
    target = pandas_dtype(dtype)
    arrow = to_arrow(dtype)
    nullable = isinstance(target, pd.api.extensions.ExtensionDtype)
    series: pd.Series[Any] = pa.array(values, type=arrow).to_pandas(
        types_mapper={arrow: target}.get if nullable else None
    )
    return series if target is object or series.dtype == target else series.astype(target)


def _key_column(values: list[Any]) -> pd.Series[Any]:
    present = [v for v in values if v is not None]
    if present and all(isinstance(v, bool) for v in present):
        return pd.Series(pd.array(values, dtype=pd.BooleanDtype()))
    # a bool is an int to Python, not here (nor to the key encoding)
    if present and all(type(v) is not bool and isinstance(v, numbers.Integral) for v in present):
        return pd.Series(pd.array(values, dtype=pd.Int64Dtype()))
    return pd.Series(values, dtype=object)
