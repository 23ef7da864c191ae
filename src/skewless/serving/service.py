"""Online feature lookups on plain domain types (no transport here).

For every entity row and requested feature: the value stored online, its event time,
and a status: PRESENT, NOT_FOUND (no value stored for the entity), or OUTSIDE_MAX_AGE
(a value is stored but its event time is older than request time minus the view's ttl,
the same rule the offline join applies; its value is then withheld as null).

The logic is pure and compiled once per list of feature refs into a LookupPlan
(serving/plan.py: keys of every view, read with one MGET, decoded straight into columns);
`lookup`/`get_online_features` (blocking) and the gRPC server (grpc/backend.py) only add
the Redis read, so both paths answer identically by construction.
"""

from __future__ import annotations

import enum
import numbers
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pandas as pd
import pyarrow as pa

from skewless.batch.compile import ViewRequest
from skewless.errors import EntityRowsError
from skewless.online.codec import entity_key
from skewless.serving.plan import LookupPlan
from skewless.timeutil import utc_micros
from skewless.types import DType, pandas_dtype, to_arrow


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

    def to_dict(self) -> dict[str, list[Any]]:
        """Each join key and feature name to a list of values, in row order."""
        out: dict[str, list[Any]] = {
            k: [row.get(k) for row in self.entity_rows] for k in self.join_keys
        }
        out.update({f: list(self.values[f]) for f in self.features})
        return out

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


# Declared key type -> the Python values a key of that type takes (the key encoding
# has no other kinds); a type missing here (a float key) takes what any key takes.
_KEY_TYPES: dict[str, tuple[tuple[type, ...], str]] = {
    "int64": ((numbers.Integral,), "an int"),
    "int32": ((numbers.Integral,), "an int"),
    "unix_timestamp": ((numbers.Integral,), "an int"),
    "string": ((str,), "a str"),
    "bytes": ((bytes,), "bytes"),
    "bool": ((bool,), "a bool"),
}
_ENCODABLE = ((bool, numbers.Integral, str, bytes), "an int, str, bytes or bool")


def check_join_keys(
    requests: Sequence[ViewRequest], entity_rows: Sequence[Mapping[str, Any]]
) -> None:
    """Every join key the requests need is in every row, with a value the online key
    encoding takes (an integer, str, bytes, bool, or null, which finds nothing), of the
    type each view declares for it when one does (FeatureView.key_fields). Raises
    EntityRowsError naming the row, the key, and the expected and given types. In-process
    and gRPC lookups both go through here, so both refuse the same rows."""
    checks: dict[str, list[tuple[str, DType | None]]] = {}
    for req in requests:
        declared = {f.name: f.dtype for f in req.view.key_fields}
        for key in req.join_keys:
            checks.setdefault(key, []).append((req.name, declared.get(key)))
    for i, row in enumerate(entity_rows):
        for key, views in checks.items():
            if key not in row:
                raise EntityRowsError(
                    f"no join key '{key}' (needed by feature view '{views[0][0]}')",
                    row=i,
                    key=key,
                )
            value = row[key]
            if value is None:
                continue
            for view, dtype in views:
                problem = _key_problem(key, value, view, dtype)
                if problem is not None:
                    raise EntityRowsError(problem, row=i, key=key)


def _key_problem(key: str, value: Any, view: str, dtype: DType | None) -> str | None:
    """Why `value` (not null) cannot be join key `key` of `view`, declared `dtype` there
    (None: not declared), or None when it can."""
    types, wanted = _KEY_TYPES.get("" if dtype is None else dtype.name, _ENCODABLE)
    # a bool is an int to Python, not to the key encoding
    if isinstance(value, types) and (bool in types or not isinstance(value, bool)):
        return None
    given = f"join key '{key}' is a {type(value).__name__} ({value!r})"
    if dtype is None or dtype.name not in _KEY_TYPES:
        return f"{given}; a join key is {wanted} (feature view '{view}')"
    return f"{given}, but feature view '{view}' declares it {dtype!r}: give {wanted}"


def lookup_keys(
    project: str, requests: Sequence[ViewRequest], entity_rows: Sequence[Mapping[str, Any]]
) -> list[list[bytes]]:
    """The Redis keys to read: one list per request (view), one key per entity row."""
    check_join_keys(requests, entity_rows)
    return [
        [entity_key(project, req.name, [row[k] for k in req.join_keys]) for row in entity_rows]
        for req in requests
    ]


def required_keys(requests: Sequence[ViewRequest]) -> list[str]:
    keys: list[str] = []
    for req in requests:
        keys.extend(k for k in req.join_keys if k not in keys)
    return keys


def assemble(
    requests: Sequence[ViewRequest],
    entity_rows: Sequence[Mapping[str, Any]],
    raw: Sequence[Sequence[bytes | None]],
    request_time: datetime | None = None,
) -> OnlineResponse:
    """Decode what Redis returned (one list per request) into the response."""
    plan = LookupPlan("", requests)  # no keys are built here: the project is not needed
    flat = [value for values in raw for value in values]
    return _answer(plan, entity_rows, flat, request_time)


def _answer(
    plan: LookupPlan,
    entity_rows: Sequence[Mapping[str, Any]],
    raw: Sequence[bytes | None],
    request_time: datetime | None,
) -> OnlineResponse:
    now_us = utc_micros(request_time or datetime.now(UTC))
    return plan.response(entity_rows, plan.assemble(raw, len(entity_rows), now_us))


def lookup(
    plan: LookupPlan,
    read: Callable[[list[bytes]], list[bytes | None]],
    entity_rows: Sequence[Mapping[str, Any]],
    request_time: datetime | None = None,
) -> OnlineResponse:
    """A blocking lookup with a compiled plan: one `read` (an MGET) for every view."""
    keys = plan.keys(entity_rows)
    return _answer(plan, entity_rows, read(keys) if keys else [], request_time)


def get_online_features(
    read: Callable[[list[bytes]], list[bytes | None]],
    project: str,
    requests: Sequence[ViewRequest],
    entity_rows: Sequence[Mapping[str, Any]],
    request_time: datetime | None = None,
) -> OnlineResponse:
    """Blocking lookup; `read` is an MGET (e.g. RedisOnlineStore.read)."""
    return lookup(LookupPlan(project, requests), read, entity_rows, request_time)


async def get_online_features_async(
    read: Callable[[list[bytes]], Awaitable[list[bytes | None]]],
    project: str,
    requests: Sequence[ViewRequest],
    entity_rows: Sequence[Mapping[str, Any]],
    request_time: datetime | None = None,
) -> OnlineResponse:
    """The same lookup for asyncio servers; `read` is an async MGET."""
    plan = LookupPlan(project, requests)
    keys = plan.keys(entity_rows)
    raw = await read(keys) if keys else []
    return _answer(plan, entity_rows, raw, request_time)
