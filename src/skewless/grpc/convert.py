"""Protobuf <-> domain types. The only module that imports the generated stubs.

Request: entity columns -> entity rows (list of dicts); "features" or "feature_service"
-> an OnlineQuery. Response: an OnlineAnswer -> feature columns typed by each feature's
declared type; back on the client, feature columns -> the same OnlineResponse
FeatureStore.get_online_features returns.

Python values of decoded Values: int64/int32 -> int, double/float -> float, string ->
str, bool -> bool, bytes -> bytes, unix_timestamp -> int microseconds since the epoch
(as the online store and FeatureStore.get_online_features hold them), lists -> list with
None for null elements, an empty Value -> None. Encoding without a declared type (the
client's entity values) infers the kind from the Python type; datetimes become
unix_timestamp microseconds (naive means UTC).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Final

import numpy as np
import pandas as pd

from skewless._proto.skewless.serving.v1 import serving_pb2 as pb
from skewless._proto.skewless.serving.v1 import serving_pb2_grpc as pb_grpc
from skewless.errors import EntityDataFrameError, InvalidFeatureRefError
from skewless.grpc.backend import OnlineAnswer, OnlineQuery
from skewless.serving.service import FeatureStatus, OnlineResponse
from skewless.timeutil import from_micros, utc_micros
from skewless.types import ArrayType, DType

# Re-exported for server.py, servicer.py and client.py, which never import the stubs.
GetOnlineFeaturesRequest = pb.GetOnlineFeaturesRequest
GetOnlineFeaturesResponse = pb.GetOnlineFeaturesResponse
OnlineServingServicerBase = pb_grpc.OnlineServingServicer
OnlineServingStub = pb_grpc.OnlineServingStub
add_servicer_to_server = pb_grpc.add_OnlineServingServicer_to_server
SERVICE_NAME: Final[str] = pb.DESCRIPTOR.services_by_name["OnlineServing"].full_name

# --- statuses --------------------------------------------------------------------------

_STATUS_TO_PROTO: Final[dict[FeatureStatus, pb.FeatureStatus.ValueType]] = {
    FeatureStatus.PRESENT: pb.FEATURE_STATUS_PRESENT,
    FeatureStatus.NOT_FOUND: pb.FEATURE_STATUS_NOT_FOUND,
    FeatureStatus.OUTSIDE_MAX_AGE: pb.FEATURE_STATUS_OUTSIDE_MAX_AGE,
}
_STATUS_FROM_PROTO: Final = {v: k for k, v in _STATUS_TO_PROTO.items()}

# --- values ----------------------------------------------------------------------------

# scalar dtype name -> (Value field for a scalar, Value field for an array, placeholder)
_FIELDS: Final[dict[str, tuple[str, str, Any]]] = {
    "int64": ("int64_value", "int64_list_value", 0),
    "int32": ("int32_value", "int32_list_value", 0),
    "float64": ("double_value", "double_list_value", 0.0),
    "float32": ("float_value", "float_list_value", 0.0),
    "string": ("string_value", "string_list_value", ""),
    "bool": ("bool_value", "bool_list_value", False),
    "bytes": ("bytes_value", "bytes_list_value", b""),
    "unix_timestamp": ("unix_timestamp_value", "unix_timestamp_list_value", 0),
}
_SCALAR_FIELDS: Final = frozenset(f for f, _, _ in _FIELDS.values())
_LIST_FIELDS: Final = frozenset(f for _, f, _ in _FIELDS.values())


def _plain(value: Any) -> Any:
    """numpy scalars and arrays as Python objects; pandas' missing markers as None."""
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if value is pd.NA or value is pd.NaT:
        return None
    return value


def _scalar_kind(value: Any) -> str:
    """The dtype name a Python value is sent as when no type is declared."""
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int64"
    if isinstance(value, float):
        return "float64"
    if isinstance(value, str):
        return "string"
    if isinstance(value, bytes | bytearray | memoryview):
        return "bytes"
    if isinstance(value, datetime):
        return "unix_timestamp"
    raise TypeError(f"cannot send a {type(value).__name__} ({value!r})")


def _element_kind(items: Sequence[Any]) -> str:
    kinds = {_scalar_kind(x) for x in items if x is not None}
    if kinds <= {"int64"}:
        return "int64"  # also the empty and the all-null array: any kind decodes alike
    if kinds == {"int64", "float64"}:
        return "float64"
    if len(kinds) == 1:
        return kinds.pop()
    raise TypeError(f"an array mixes {sorted(kinds)}")


def _coerce(kind: str, value: Any) -> Any:
    if kind == "unix_timestamp":
        return utc_micros(value) if isinstance(value, datetime) else int(value)
    if kind == "bytes":
        return bytes(value)
    return value


def set_value(msg: pb.Value, value: Any, dtype: DType | None = None) -> None:
    """Fill an empty Value with `value`, typed by `dtype` (inferred when None)."""
    value = _plain(value)
    if value is None:
        return
    if isinstance(dtype, ArrayType) or (dtype is None and isinstance(value, list | tuple)):
        items = [_plain(x) for x in value]
        kind = dtype.element.name if isinstance(dtype, ArrayType) else _element_kind(items)
        _, field, placeholder = _FIELDS[kind]
        array = getattr(msg, field)
        array.SetInParent()  # an empty array is still an array, not a null
        array.values.extend(placeholder if x is None else _coerce(kind, x) for x in items)
        array.null_indices.extend(i for i, x in enumerate(items) if x is None)
        return
    kind = dtype.name if dtype is not None else _scalar_kind(value)
    setattr(msg, _FIELDS[kind][0], _coerce(kind, value))


def to_value(value: Any, dtype: DType | None = None) -> pb.Value:
    msg = pb.Value()
    set_value(msg, value, dtype)
    return msg


def from_value(msg: pb.Value) -> Any:
    """The Python value of a Value; raises ValueError on a malformed array."""
    field = msg.WhichOneof("kind")
    if field is None:
        return None
    if field in _SCALAR_FIELDS:
        return getattr(msg, field)
    array = getattr(msg, field)
    values: list[Any] = list(array.values)
    for i in array.null_indices:
        if i >= len(values):
            raise ValueError(f"null index {i} is past the end of an array of {len(values)}")
        values[i] = None
    return values


# --- requests ---------------------------------------------------------------------------


def query_to_proto(query: OnlineQuery) -> pb.GetOnlineFeaturesRequest:
    """Rows -> columns. Every row must have the same keys: a column cannot tell a
    missing key from a null one."""
    msg = pb.GetOnlineFeaturesRequest(full_feature_names=query.full_feature_names)
    if isinstance(query.features, str):
        msg.feature_service = query.features
    else:
        msg.features.extend(query.features)
    names: list[str] = list(query.entity_rows[0]) if query.entity_rows else []
    for i, row in enumerate(query.entity_rows):
        if len(row) != len(names) or any(n not in row for n in names):
            missing = sorted(set(names) ^ set(row))
            raise EntityDataFrameError(
                f"entity row {i} does not have the keys row 0 has (differs in {missing})",
                column=missing[0],
            )
    for name in names:
        column = msg.entity_columns[name]
        for i, row in enumerate(query.entity_rows):
            try:
                set_value(column.values.add(), row[name])
            except TypeError as exc:
                raise EntityDataFrameError(
                    f"entity row {i}, '{name}': {exc}", column=name
                ) from None
    return msg


def query_from_proto(msg: pb.GetOnlineFeaturesRequest) -> OnlineQuery:
    features: list[str] | str
    if msg.feature_service:
        if msg.features:
            raise InvalidFeatureRefError(
                msg.feature_service, "give either features or feature_service, not both"
            )
        features = msg.feature_service
    else:
        features = list(msg.features)
    return OnlineQuery(features, entity_rows_from_proto(msg.entity_columns), msg.full_feature_names)


def entity_rows_from_proto(columns: Mapping[str, pb.ValueColumn]) -> list[dict[str, Any]]:
    decoded: dict[str, list[Any]] = {}
    for name, column in columns.items():
        try:
            decoded[name] = [from_value(v) for v in column.values]
        except ValueError as exc:
            raise EntityDataFrameError(f"column '{name}': {exc}", column=name) from None
    lengths = {name: len(values) for name, values in decoded.items()}
    if len(set(lengths.values())) > 1:
        shortest = min(lengths, key=lambda n: lengths[n])
        raise EntityDataFrameError(f"entity columns differ in length ({lengths})", column=shortest)
    rows = max(lengths.values(), default=0)
    return [{name: values[i] for name, values in decoded.items()} for i in range(rows)]


# --- responses --------------------------------------------------------------------------


def _fill_column(column: pb.FeatureColumn, values: Sequence[Any], dtype: DType) -> None:
    add = column.values.add
    if isinstance(dtype, ArrayType):
        for value in values:
            set_value(add(), value, dtype)
        return
    # Scalars, the common case, in one keyword-constructed message each: the values come
    # from the online codec as plain Python objects of the declared type.
    field = _FIELDS[dtype.name][0]
    for value in values:
        if value is None:
            add()
        elif isinstance(value, datetime):
            add(**{field: utc_micros(value)})
        else:
            add(**{field: value})


def answer_to_proto(answer: OnlineAnswer) -> pb.GetOnlineFeaturesResponse:
    response = answer.response
    msg = pb.GetOnlineFeaturesResponse(
        join_keys=response.join_keys, registry_version=answer.registry_version
    )
    micros: dict[datetime, int] = {}  # the features of one view share their event times
    for name in response.features:
        column = msg.features.add(name=name)
        _fill_column(column, response.values[name], answer.dtypes[name])
        column.statuses.extend(_STATUS_TO_PROTO[s] for s in response.statuses[name])
        for t in response.event_timestamps[name]:
            if t is not None and t not in micros:
                micros[t] = utc_micros(t)
        column.event_timestamps.extend(
            0 if t is None else micros[t] for t in response.event_timestamps[name]
        )
    return msg


def _column(
    column: pb.FeatureColumn, rows: int, times_of: dict[int, datetime]
) -> tuple[list[Any], list[FeatureStatus], list[datetime | None]]:
    if not len(column.values) == len(column.statuses) == len(column.event_timestamps) == rows:
        raise ValueError(f"feature column '{column.name}' does not have {rows} rows")
    if any(s not in _STATUS_FROM_PROTO for s in column.statuses):
        raise ValueError(f"feature column '{column.name}' has an unknown status")
    statuses = [_STATUS_FROM_PROTO[s] for s in column.statuses]
    times: list[datetime | None] = []
    for status, t in zip(statuses, column.event_timestamps, strict=True):
        if status is FeatureStatus.NOT_FOUND:
            times.append(None)
        else:
            when = times_of.get(t)
            if when is None:
                when = times_of[t] = from_micros(t)
            times.append(when)
    return [from_value(v) for v in column.values], statuses, times


def response_from_proto(
    msg: pb.GetOnlineFeaturesResponse, entity_rows: Sequence[Mapping[str, Any]]
) -> OnlineResponse:
    """The response as FeatureStore.get_online_features builds it for the same rows."""
    values: dict[str, list[Any]] = {}
    statuses: dict[str, list[FeatureStatus]] = {}
    times: dict[str, list[datetime | None]] = {}
    times_of: dict[int, datetime] = {}  # one datetime per distinct event time, shared
    for column in msg.features:
        values[column.name], statuses[column.name], times[column.name] = _column(
            column, len(entity_rows), times_of
        )
    return OnlineResponse(
        list(msg.join_keys),
        [dict(r) for r in entity_rows],
        [c.name for c in msg.features],
        values,
        statuses,
        times,
    )
