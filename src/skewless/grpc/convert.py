"""Protobuf <-> domain types. The only module that builds and reads the generated messages.

Request: entity columns -> entity rows (list of dicts; a row sent without a key, listed
in its column's missing_indices, is a row without it); "features" or "feature_service"
-> an OnlineQuery. Response: an OnlineAnswer -> feature columns typed by each feature's
declared type, which each column names (dtype); back on the client, feature columns ->
the same OnlineResponse FeatureStore.get_online_features returns, dtypes included.

Python values of decoded Values: int64/int32 -> int, double/float -> float, string ->
str, bool -> bool, bytes -> bytes, unix_timestamp (microseconds since the epoch on the
wire) -> an aware UTC datetime, as FeatureStore.get_online_features and the training
sets give it, lists -> list with None for null elements, an empty Value -> None.
Encoding without a declared type (the client's entity values) infers the kind from the
Python type; datetimes become unix_timestamp microseconds (naive means UTC).
"""

from __future__ import annotations

import re
import weakref
from collections.abc import Collection, Mapping, Sequence
from datetime import datetime
from typing import Any, Final

import numpy as np
import pandas as pd
from google.protobuf.message import DecodeError

from skewless._proto.skewless.serving.v1 import serving_pb2 as pb
from skewless._proto.skewless.serving.v1 import serving_pb2_grpc as pb_grpc
from skewless.errors import (
    EntityRowsError,
    InvalidFeatureRefError,
    UndecodableRequestError,
    clip,
)
from skewless.online.entries import varint as _varint
from skewless.serving.plan import MISSING, LookupPlan
from skewless.serving.response import FeatureStatus, OnlineResponse
from skewless.serving.service import Lookup, OnlineAnswer, OnlineQuery
from skewless.timeutil import from_micros, from_micros_shared, utc_micros
from skewless.types import ENGINES, ArrayType, DType, parse_dtype

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
    name: (e.proto, e.proto_list, e.zero) for name, e in ENGINES.items()
}
_SCALAR_FIELDS: Final = frozenset(f for f, _, _ in _FIELDS.values())
# the scalar fields whose Python value is the field's own (not unix_timestamp's datetime)
_PLAIN_FIELDS: Final = _SCALAR_FIELDS - {_FIELDS["unix_timestamp"][0]}
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
    if field == "unix_timestamp_value":  # microseconds on the wire, a datetime in Python
        return from_micros(msg.unix_timestamp_value)
    if field in _SCALAR_FIELDS:
        return getattr(msg, field)
    array = getattr(msg, field)
    values: list[Any] = list(array.values)
    if field == "unix_timestamp_list_value":
        values = [from_micros(t) for t in values]
    for i in array.null_indices:
        if i >= len(values):
            raise ValueError(f"null index {i} is past the end of an array of {len(values)}")
        values[i] = None
    return values


# --- requests ---------------------------------------------------------------------------


def query_to_proto(query: OnlineQuery) -> pb.GetOnlineFeaturesRequest:
    """Rows -> columns, one per key any row has; a row without a key is listed in that
    column's missing_indices (a null key is an empty Value), so the server sees the rows
    as they were. A value the wire cannot carry is an EntityRowsError."""
    msg = pb.GetOnlineFeaturesRequest(full_feature_names=query.full_feature_names)
    if isinstance(query.features, str):
        msg.feature_service = query.features
    else:
        msg.features.extend(query.features)
    names = list(dict.fromkeys(name for row in query.entity_rows for name in row))
    for name in names:
        column = msg.entity_columns[name]
        for i, row in enumerate(query.entity_rows):
            if name not in row:
                column.values.add()
                column.missing_indices.append(i)
                continue
            try:
                set_value(column.values.add(), row[name])
            except (TypeError, ValueError) as exc:  # a type, or an int past 64 bits
                raise EntityRowsError(
                    f"join key '{name}' cannot be sent: {exc}", row=i, key=name
                ) from None
    for name, values in query.request_data.items():
        column = msg.request_columns[name]
        for i, value in enumerate(values):
            try:
                set_value(column.values.add(), value)
            except (TypeError, ValueError) as exc:
                raise EntityRowsError(
                    f"request field '{name}' cannot be sent: {exc}", row=i, key=name
                ) from None
    return msg


def request_from_bytes(data: bytes) -> pb.GetOnlineFeaturesRequest:
    """The request a call's bytes hold; UndecodableRequestError when they hold none (the
    parser refuses garbage and string fields that are not UTF-8)."""
    try:
        return pb.GetOnlineFeaturesRequest.FromString(data)
    except DecodeError:
        raise UndecodableRequestError(
            pb.GetOnlineFeaturesRequest.DESCRIPTOR.name, len(data)
        ) from None


def entity_row_count(columns: Mapping[str, pb.ValueColumn]) -> int:
    """How many entity rows the columns hold (the longest column), without reading a
    value: what the server's row limit is checked against before any decoding."""
    return max((len(column.values) for column in columns.values()), default=0)


def features_from_proto(msg: pb.GetOnlineFeaturesRequest) -> list[str] | str:
    """The feature refs, or the feature service's name, a request asks for."""
    if msg.feature_service:
        if msg.features:
            raise InvalidFeatureRefError(
                msg.feature_service, "give either features or feature_service, not both"
            )
        return msg.feature_service
    return list(msg.features)


def query_from_proto(msg: pb.GetOnlineFeaturesRequest) -> OnlineQuery:
    return OnlineQuery(
        features_from_proto(msg), entity_rows_from_proto(msg.entity_columns), msg.full_feature_names
    )


# A ValueColumn whose every Value is an int64_value, as upb serializes it: per row the
# `values` tag, the Value's length, int64_value's tag and a varint of one byte less than
# that length. Only this exact layout takes the shortcut below.
_INT64_COLUMN: Final = re.compile(
    b"(?:"
    + b"|".join(  # n: the varint's length
        rb"\x0a"
        + re.escape(bytes([n + 1]))
        + rb"\x08"
        + rb"[\x80-\xff]" * (n - 1)
        + rb"[\x00-\x7f]"
        for n in range(1, 11)
    )
    + b")*",
    re.DOTALL,
)


def _int64_column(column: pb.ValueColumn) -> list[int] | None:
    """The values of a column of int64 Values (the usual entity ids), read by upb in one
    call, or None for any other column. Parsed as an Int64List, the column's bytes are
    the packed varints (tag, value) of each row: exact when the layout is _INT64_COLUMN's."""
    raw = column.SerializeToString()
    if not _INT64_COLUMN.fullmatch(raw):
        return None
    return list(pb.Int64List.FromString(raw).values)[1::2]


def _check_lengths(columns: Mapping[str, pb.ValueColumn]) -> int:
    """The number of rows, which every column must have."""
    rows = entity_row_count(columns)
    for name, column in columns.items():
        if len(column.missing_indices) > rows:  # bounds the work they cause by the rows
            raise EntityRowsError(
                f"entity column '{clip(name)}' lists {len(column.missing_indices)} missing "
                f"indices for {rows} rows",
                key=name,
            )
        if len(column.values) != rows:
            longest = next(n for n, c in columns.items() if len(c.values) == rows)
            raise EntityRowsError(
                f"entity columns differ in length: '{clip(name)}' has {len(column.values)}, "
                f"'{clip(longest)}' has {rows} values (a column has a value per entity row)",
                key=name,
            )
    return rows


def entity_columns_from_proto(
    columns: Mapping[str, pb.ValueColumn],
    keys: Collection[str] | None = None,
    *,
    what: str = "join key",
) -> tuple[dict[str, list[Any]], int]:
    """Each entity column's Python values (MISSING for a row sent without that key), and
    the number of rows; with `keys`, only those columns' values (a lookup reads no other).
    A unix_timestamp_value is a datetime, which no join key takes; an int32_value is an
    int, as an int64_value."""
    rows = _check_lengths(columns)
    decoded: dict[str, list[Any]] = {}
    for name, column in columns.items():
        if keys is not None and name not in keys:
            continue
        ints = None if column.missing_indices else _int64_column(column)
        if ints is not None:
            decoded[name] = ints
            continue
        values: list[Any] = []
        add = values.append
        for v in column.values:
            field = v.WhichOneof("kind")
            if field is None:
                add(None)
            elif field in _PLAIN_FIELDS:
                add(getattr(v, field))
            else:
                try:
                    add(from_value(v))
                except (ValueError, OverflowError) as exc:  # an array, or a time past year 9999
                    raise EntityRowsError(
                        f"{what} '{clip(name)}' has a malformed {field}: {exc}",
                        row=len(values),
                        key=name,
                    ) from None
        for i in column.missing_indices:
            if i >= rows:
                raise EntityRowsError(
                    f"entity column '{clip(name)}': missing index {i} is past its {rows} rows",
                    key=name,
                )
            values[i] = MISSING
        decoded[name] = values
    return decoded, rows


def request_columns_from_proto(
    columns: Mapping[str, pb.ValueColumn], fields: Mapping[str, DType]
) -> dict[str, list[Any]]:
    """The request values of `fields` (request fields on-demand features read): each
    column's Python values, None for a null or a row listed as missing. Their types are
    checked by the service (serving/on_demand.py)."""
    decoded, _ = entity_columns_from_proto(columns, fields, what="request field")
    return {name: [None if v is MISSING else v for v in values] for name, values in decoded.items()}


def entity_rows_from_proto(columns: Mapping[str, pb.ValueColumn]) -> list[dict[str, Any]]:
    """The entity rows of a request's columns; a row lacks the keys it was sent without."""
    decoded, rows = entity_columns_from_proto(columns)
    return [
        {name: v for name, values in decoded.items() if (v := values[i]) is not MISSING}
        for i in range(rows)
    ]


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
        column.dtype = answer.dtypes[name].name
        column.statuses.extend(_STATUS_TO_PROTO[s] for s in response.statuses[name])
        for t in response.event_timestamps[name]:
            if t is not None and t not in micros:
                micros[t] = utc_micros(t)
        times = response.event_timestamps[name]
        column.event_timestamps.extend(0 if t is None else micros[t] for t in times)
        column.no_event_time_rows.extend(i for i, t in enumerate(times) if t is None)
    return msg


def _column(
    column: pb.FeatureColumn, rows: int, times_of: dict[int, datetime]
) -> tuple[list[Any], list[FeatureStatus], list[datetime | None]]:
    if not len(column.values) == len(column.statuses) == len(column.event_timestamps) == rows:
        raise ValueError(f"feature column '{column.name}' does not have {rows} rows")
    if any(s not in _STATUS_FROM_PROTO for s in column.statuses):
        raise ValueError(f"feature column '{column.name}' has an unknown status")
    statuses = [_STATUS_FROM_PROTO[s] for s in column.statuses]
    found: list[int | None] = [
        None if status is FeatureStatus.NOT_FOUND else t
        for status, t in zip(statuses, column.event_timestamps, strict=True)
    ]
    for row in column.no_event_time_rows:
        if row >= rows:
            raise ValueError(f"feature column '{column.name}' lists row {row} of {rows}")
        found[row] = None
    times = from_micros_shared(found, times_of)
    return [from_value(v) for v in column.values], statuses, times


def response_from_proto(
    msg: pb.GetOnlineFeaturesResponse, entity_rows: Sequence[Mapping[str, Any]]
) -> OnlineResponse:
    """The response as FeatureStore.get_online_features builds it for the same rows."""
    values: dict[str, list[Any]] = {}
    statuses: dict[str, list[FeatureStatus]] = {}
    times: dict[str, list[datetime | None]] = {}
    dtypes: dict[str, DType] = {}
    times_of: dict[int, datetime] = {}  # one datetime per distinct event time, shared
    for column in msg.features:
        values[column.name], statuses[column.name], times[column.name] = _column(
            column, len(entity_rows), times_of
        )
        dtype = _dtype(column.dtype)
        if dtype is not None:
            dtypes[column.name] = dtype
    return OnlineResponse(
        list(msg.join_keys),
        [dict(r) for r in entity_rows],
        [c.name for c in msg.features],
        values,
        statuses,
        times,
        dtypes,
    )


def _dtype(name: str) -> DType | None:
    """A FeatureColumn's declared type; None when the server sent none, or one this
    skewless does not know (the values are still read by their Value kinds)."""
    try:
        return parse_dtype(name) if name else None
    except ValueError:
        return None


# --- responses, encoded by hand ------------------------------------------------------------
#
# Filling a GetOnlineFeaturesResponse costs about a microsecond per Value message (one
# Python call into upb each). encode_lookup() writes the same bytes directly: the values
# are the entries the online store holds (online/codec.py), and the event times and
# statuses of a view are shared by all its features (packed once, by upb).
# tests/unit/test_grpc_convert.py checks the bytes are exactly what
# answer_to_proto(...).SerializeToString() produces.

_STATUS_CODES: Final = dict(_STATUS_TO_PROTO)
_PRESENT: Final = bytes([_STATUS_CODES[FeatureStatus.PRESENT]])


def _field(tag: bytes, payload: bytes) -> bytes:
    return tag + _varint(len(payload)) + payload


def _tail(statuses: list[FeatureStatus], event_ts_us: list[int | None]) -> tuple[bytes, bytes]:
    """FeatureColumn.statuses with .event_timestamps, and .no_event_time_rows (after
    .dtype, in field order), of one view's rows."""
    if not statuses:
        return b"", b""
    if statuses.count(FeatureStatus.PRESENT) == len(statuses):  # the usual case
        codes = _PRESENT * len(statuses)
    else:
        codes = bytes([_STATUS_CODES[s] for s in statuses])  # each code is one byte
    times = pb.FeatureColumn(event_timestamps=[0 if t is None else t for t in event_ts_us])
    head = b"\x1a" + _varint(len(codes)) + codes + times.SerializeToString()
    timeless = [i for i, t in enumerate(event_ts_us) if t is None]
    if not timeless:  # every row has an event time: the field is absent
        return head, b""
    return head, pb.FeatureColumn(no_event_time_rows=timeless).SerializeToString()


# Per plan (which lives as long as its definitions): each feature's FeatureColumn.name and
# .dtype fields, the same in every response. Encoded once per plan, a response of 50
# features (100 rows) takes 53 us to encode instead of 86 us (67 us without .dtype).
_COLUMN_FIELDS: Final[weakref.WeakKeyDictionary[LookupPlan, dict[str, tuple[bytes, bytes]]]] = (
    weakref.WeakKeyDictionary()
)


def _column_fields(plan: LookupPlan) -> dict[str, tuple[bytes, bytes]]:
    fields = _COLUMN_FIELDS.get(plan)
    if fields is None:
        fields = {
            name: (
                _field(b"\x0a", name.encode()) if name else b"",
                _field(b"\x2a", plan.dtypes[name].name.encode()),
            )
            for name in plan.features
        }
        _COLUMN_FIELDS[plan] = fields
    return fields


def encode_lookup(lookup: Lookup) -> bytes:
    """The serialized GetOnlineFeaturesResponse of a lookup."""
    plan = lookup.plan
    out = [_field(b"\x0a", key.encode()) for key in plan.join_keys]
    # output -> its FeatureColumn's values, then statuses and times, then timeless rows
    where: dict[str, tuple[bytes, bytes, bytes]] = {}
    for view, got in zip(plan.parts, lookup.views, strict=True):
        tail, timeless = _tail(got.statuses, got.event_ts_us)
        for name, column in zip(view.outputs, got.entries, strict=True):
            where[name] = (column, tail, timeless)
    fields = _column_fields(plan)
    for name in plan.features:
        column, tail, timeless = where[name]
        head, dtype = fields[name]
        out.append(_field(b"\x12", b"".join([head, column, tail, dtype, timeless])))
    if lookup.registry_version:
        out.append(b"\x18" + _varint(lookup.registry_version))
    return b"".join(out)


def serialize_response(response: pb.GetOnlineFeaturesResponse | bytes) -> bytes:
    """The response serializer: encode_lookup()'s bytes go out as they are."""
    return response if isinstance(response, bytes) else response.SerializeToString()
