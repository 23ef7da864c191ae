"""Protobuf <-> domain conversions of the gRPC adapter: pure, no server, no network."""

from __future__ import annotations

import dataclasses
import math
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import grpc
import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from skewless.definitions import Entity, FeatureView, Field, FileSource
from skewless.errors import (
    EntityRowsError,
    FeatureNotFoundError,
    FeatureServiceNotFoundError,
    InvalidFeatureRefError,
    NothingAppliedError,
    OnlineStoreUnavailableError,
    RegistryConflictError,
    RequestTooLargeError,
    ServerBusyError,
    SkewlessError,
    UndecodableRequestError,
)
from skewless.feature_request import compile_requests
from skewless.grpc import convert
from skewless.grpc.errors import status_for
from skewless.online.codec import CodecError, Record, encode_value
from skewless.online.entries import decode_entry, encode_entry
from skewless.serving.catalog import Catalog
from skewless.serving.keys import check_join_keys
from skewless.serving.plan import MISSING, LookupPlan
from skewless.serving.response import FeatureStatus, OnlineResponse
from skewless.serving.service import Lookup, OnlineAnswer, OnlineQuery
from skewless.timeutil import from_micros, utc_micros
from skewless.types import (
    Array,
    ArrayType,
    Bool,
    Bytes,
    DType,
    Float32,
    Float64,
    Int32,
    Int64,
    String,
    UnixTimestamp,
)

T0 = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)
T0_US = 1_709_294_400_000_000

SCALARS: dict[DType, st.SearchStrategy[Any]] = {
    Int64: st.integers(-(2**63), 2**63 - 1),
    Int32: st.integers(-(2**31), 2**31 - 1),
    Float64: st.floats(allow_nan=True),
    Float32: st.floats(width=32, allow_nan=True),
    String: st.text(),
    Bool: st.booleans(),
    Bytes: st.binary(),
    # Python's datetimes (years 1 to 9999), as get_historical_features gives them
    UnixTimestamp: st.datetimes(timezones=st.just(UTC)),
}

# What the online store holds: timestamps as microseconds since the epoch (those of
# Python's datetimes, which is what a lookup gives back).
STORED: dict[DType, st.SearchStrategy[Any]] = {
    **SCALARS,
    UnixTimestamp: st.integers(
        utc_micros(datetime.min.replace(tzinfo=UTC)), utc_micros(datetime.max.replace(tzinfo=UTC))
    ),
}


def same(a: Any, b: Any) -> bool:
    """Equal, with NaN equal to NaN and types compared too (1 is not 1.0 or True)."""
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, float) and isinstance(b, float):
        return (math.isnan(a) and math.isnan(b)) or a == b
    return bool(a == b) and type(a) is type(b)


def wire(msg: Any) -> Any:
    """The message after a trip through bytes, as the peer would see it."""
    return type(msg).FromString(msg.SerializeToString())


def round_trip(value: Any, dtype: DType | None = None) -> Any:
    return convert.from_value(wire(convert.to_value(value, dtype)))


# --- values ------------------------------------------------------------------------------


@st.composite
def typed_values(
    draw: st.DrawFn, scalars: dict[DType, st.SearchStrategy[Any]] = SCALARS
) -> tuple[DType, Any]:
    """A type (a scalar of `scalars`, or an array of one) and a value of it, or None."""
    scalar = draw(st.sampled_from(list(scalars)))
    if draw(st.booleans()):
        items = st.lists(st.none() | scalars[scalar], max_size=5)
        return Array(scalar), draw(st.none() | items)  # type: ignore[arg-type]
    return scalar, draw(st.none() | scalars[scalar])


@given(typed=typed_values())
def test_convert_typed_values_round_trip(typed: tuple[DType, Any]) -> None:
    dtype, value = typed
    assert same(round_trip(value, dtype), value) or (value is None and round_trip(value) is None)


@pytest.mark.parametrize(
    ("dtype", "value", "field"),
    [
        (Int64, 7, "int64_value"),
        (Int32, -7, "int32_value"),
        (Float64, 0.1, "double_value"),
        (Float32, 0.5, "float_value"),
        (String, "é", "string_value"),
        (Bool, False, "bool_value"),
        (Bytes, b"\x00\xff", "bytes_value"),
        (UnixTimestamp, T0, "unix_timestamp_value"),
        (Array(Int64), [1, None], "int64_list_value"),
        (Array(Int32), [1], "int32_list_value"),
        (Array(Float64), [0.5], "double_list_value"),
        (Array(Float32), [0.5], "float_list_value"),
        (Array(String), ["a", None], "string_list_value"),
        (Array(Bool), [True], "bool_list_value"),
        (Array(Bytes), [b"x"], "bytes_list_value"),
        (Array(UnixTimestamp), [T0, None], "unix_timestamp_list_value"),
    ],
)
def test_convert_declared_type_picks_the_wire_field(dtype: DType, value: Any, field: str) -> None:
    msg = convert.to_value(value, dtype)
    assert msg.WhichOneof("kind") == field
    assert same(convert.from_value(wire(msg)), value)


def test_convert_null_is_an_empty_value() -> None:
    msg = convert.to_value(None, Float64)
    assert msg.WhichOneof("kind") is None
    assert msg.SerializeToString() == b""
    assert convert.from_value(msg) is None


def test_convert_nan_and_infinities_survive() -> None:
    for dtype in (Float64, Float32, None):
        assert math.isnan(round_trip(float("nan"), dtype))
        assert round_trip(float("-inf"), dtype) == float("-inf")
    got = round_trip([float("nan"), None, 1.5], Array(Float32))
    assert math.isnan(got[0])
    assert got[1:] == [None, 1.5]


def test_convert_float32_is_exact_for_float32_values() -> None:
    stored = float(np.float32(0.1))  # what the online codec decodes for a Float32 0.1
    assert round_trip(stored, Float32) == stored


def test_convert_empty_array_is_not_null() -> None:
    for dtype in (Array(Int64), Array(String), None):
        assert round_trip([], dtype) == []
    assert round_trip([None, None], Array(Bytes)) == [None, None]


def test_convert_timestamps_are_microseconds_on_the_wire_and_utc_datetimes_in_python() -> None:
    assert convert.to_value(T0, UnixTimestamp).unix_timestamp_value == T0_US
    assert convert.to_value(T0).WhichOneof("kind") == "unix_timestamp_value"
    assert round_trip(T0, UnixTimestamp) == T0
    assert round_trip(T0_US, UnixTimestamp) == T0  # microseconds are accepted too
    assert round_trip(T0.replace(tzinfo=None)) == T0  # naive means UTC
    later = T0.astimezone(timezone(timedelta(hours=2)))
    back = round_trip(later)
    assert back == T0 and back.utcoffset() == timedelta(0)
    assert round_trip([T0, None]) == [T0, None]


@pytest.mark.parametrize(
    ("value", "field", "expected"),
    [
        (True, "bool_value", True),
        (3, "int64_value", 3),
        (2.5, "double_value", 2.5),
        ("a", "string_value", "a"),
        (b"a", "bytes_value", b"a"),
        (bytearray(b"a"), "bytes_value", b"a"),
        (np.int64(4), "int64_value", 4),
        (np.int32(4), "int64_value", 4),
        (np.float32(0.5), "double_value", 0.5),
        (np.bool_(True), "bool_value", True),
        (np.array([1, 2]), "int64_list_value", [1, 2]),
        ([1, 2.5], "double_list_value", [1.0, 2.5]),
        (("x", None), "string_list_value", ["x", None]),
        ([True, False], "bool_list_value", [True, False]),
    ],
)
def test_convert_infers_the_kind_of_untyped_values(value: Any, field: str, expected: Any) -> None:
    msg = convert.to_value(value)
    assert msg.WhichOneof("kind") == field
    assert same(convert.from_value(wire(msg)), expected)


def test_convert_pandas_missing_values_are_null() -> None:
    assert convert.to_value(pd.NA).WhichOneof("kind") is None
    assert convert.to_value(pd.NaT).WhichOneof("kind") is None
    assert round_trip([1, pd.NA]) == [1, None]


def test_convert_rejects_what_it_cannot_send() -> None:
    with pytest.raises(TypeError, match="mixes"):
        convert.to_value([1, "a"])
    with pytest.raises(TypeError, match="dict"):
        convert.to_value({"a": 1})


def test_convert_malformed_array_is_an_error() -> None:
    msg = convert.to_value([1, 2], Array(Int64))
    msg.int64_list_value.null_indices.append(5)
    with pytest.raises(ValueError, match="null index 5"):
        convert.from_value(msg)


# --- requests ---------------------------------------------------------------------------


def test_convert_request_rows_round_trip_with_composite_keys() -> None:
    rows = [
        {"city": "paris", "zone": 1, "driver_id": 10},
        {"city": "lyon", "zone": 2, "driver_id": None},
        {"city": None, "zone": 3, "driver_id": 12},
    ]
    query = OnlineQuery(["zones:demand", "stats:trips"], rows, full_feature_names=True)
    msg = wire(convert.query_to_proto(query))
    assert sorted(msg.entity_columns) == ["city", "driver_id", "zone"]
    assert len(msg.entity_columns["zone"].values) == 3
    back = convert.query_from_proto(msg)
    assert back == query


def _length_delimited(field: int, payload: bytes) -> bytes:
    assert len(payload) < 128
    return bytes([field << 3 | 2, len(payload)]) + payload


def _request_with_column(name: str, column: bytes) -> Any:
    """A request whose entity column `name` is `column`, bytes as a peer may send them."""
    entry = _length_delimited(1, name.encode()) + _length_delimited(2, column)
    return convert.GetOnlineFeaturesRequest.FromString(_length_delimited(1, entry))


ENTITY_VALUES = st.none() | st.integers(-(2**63), 2**63 - 1) | st.text(max_size=3) | st.booleans()


@given(
    ids=st.lists(st.integers(-(2**63), 2**63 - 1), max_size=40)
    | st.lists(ENTITY_VALUES, max_size=40)
)
def test_convert_request_columns_read_back_the_values_sent(ids: list[Any]) -> None:
    # int64 columns take a shortcut (read by upb as packed varints); any other value in
    # a column sends the whole column the general way; both give back what was sent
    msg = wire(convert.query_to_proto(OnlineQuery(["s:f"], [{"id": v} for v in ids])))
    columns, rows = convert.entity_columns_from_proto(msg.entity_columns)
    assert rows == len(ids)
    assert same(columns.get("id", []), ids)


def test_convert_request_int64_shortcut_reads_values_as_upb_does() -> None:
    one, two, empty = b"\x08\x01", b"\x08\x02", b""
    cases = {
        # a Value with int64_value twice (the last one counts), then a null Value: the
        # count of varints matches two rows, the layout does not
        _length_delimited(1, one + two) + _length_delimited(1, empty): [2, None],
        # a field ValueColumn does not have (kept by upb as unknown)
        _length_delimited(1, one) + b"\x18\x05": [1],
        # a unix_timestamp_value (another varint field) is a time, which no key takes
        _length_delimited(1, one) + _length_delimited(1, b"\x40\x07"): [1, from_micros(7)],
        _length_delimited(1, b"\x08" + b"\xff" * 9 + b"\x01"): [-1],
    }
    for column, expected in cases.items():
        msg = _request_with_column("id", column)
        columns, _ = convert.entity_columns_from_proto(msg.entity_columns)
        assert columns["id"] == expected, column


def test_convert_request_feature_service_by_name() -> None:
    msg = wire(convert.query_to_proto(OnlineQuery("svc", [{"driver_id": 1}])))
    assert msg.feature_service == "svc"
    assert list(msg.features) == []
    assert convert.query_from_proto(msg).features == "svc"


def test_convert_request_with_no_rows() -> None:
    msg = wire(convert.query_to_proto(OnlineQuery(["stats:trips"], [])))
    assert convert.query_from_proto(msg) == OnlineQuery(["stats:trips"], [])


def test_convert_request_rows_with_different_keys_arrive_as_they_were_sent() -> None:
    # a missing key is not a null one: the server refuses a row without a key a feature
    # needs, as FeatureStore does, and finds nothing for a null key
    rows: list[dict[str, Any]] = [
        {"city": "paris", "zone": 1},
        {"driver_id": 7, "city": None},
        {"zone": 2, "extra": "x"},
        {},
    ]
    msg = wire(convert.query_to_proto(OnlineQuery(["zones:demand"], rows)))
    assert sorted(msg.entity_columns) == ["city", "driver_id", "extra", "zone"]
    assert list(msg.entity_columns["city"].missing_indices) == [2, 3]
    assert list(msg.entity_columns["driver_id"].missing_indices) == [0, 2, 3]
    assert convert.query_from_proto(msg).entity_rows == rows
    columns, count = convert.entity_columns_from_proto(msg.entity_columns)
    assert count == 4
    assert columns["zone"] == [1, MISSING, 2, MISSING]
    assert columns["city"] == ["paris", None, MISSING, MISSING]


def test_convert_request_int64_column_with_a_missing_row_is_read_the_general_way() -> None:
    rows: list[dict[str, Any]] = [{"driver_id": 1}, {}, {"driver_id": 2**40}]
    msg = wire(convert.query_to_proto(OnlineQuery(["stats:trips"], rows)))
    assert convert.query_from_proto(msg).entity_rows == rows


def test_convert_request_missing_index_past_the_rows_is_an_error() -> None:
    msg = convert.query_to_proto(OnlineQuery(["stats:trips"], [{"driver_id": 1}]))
    msg.entity_columns["driver_id"].missing_indices.append(1)
    with pytest.raises(EntityRowsError, match="missing index 1") as info:
        convert.query_from_proto(msg)
    assert info.value.key == "driver_id"


def test_convert_request_unsendable_value_names_the_row_and_key() -> None:
    rows = [{"driver_id": 1}, {"driver_id": object()}]
    with pytest.raises(EntityRowsError, match="entity row 1: join key 'driver_id'") as info:
        convert.query_to_proto(OnlineQuery(["stats:trips"], rows))
    assert (info.value.row, info.value.key) == (1, "driver_id")
    assert "entity_df" not in str(info.value)


def test_convert_request_columns_of_different_lengths_are_an_error() -> None:
    msg = convert.query_to_proto(OnlineQuery(["zones:demand"], [{"city": "a", "zone": 1}] * 2))
    msg.entity_columns["zone"].values.pop()
    with pytest.raises(EntityRowsError, match="differ in length") as info:
        convert.query_from_proto(msg)
    assert info.value.key == "zone"


def test_convert_request_features_and_service_exclude_each_other() -> None:
    msg = convert.query_to_proto(OnlineQuery(["stats:trips"], []))
    msg.feature_service = "svc"
    with pytest.raises(InvalidFeatureRefError, match="not both"):
        convert.query_from_proto(msg)


# --- responses ----------------------------------------------------------------------------


def sample_response() -> OnlineResponse:
    rows: list[dict[str, Any]] = [
        {"driver_id": 1, "label": "a"},
        {"driver_id": 2, "label": "b"},
        {"driver_id": 99, "label": "c"},
    ]
    present, missing, old = (
        FeatureStatus.PRESENT,
        FeatureStatus.NOT_FOUND,
        FeatureStatus.OUTSIDE_MAX_AGE,
    )
    when = [T0, T0 - timedelta(days=3), None]
    return OnlineResponse(
        join_keys=["driver_id"],
        entity_rows=rows,
        features=["rating", "ratio", "tags", "seen"],
        values={
            "rating": [float("nan"), None, None],
            "ratio": [float(np.float32(0.1)), None, None],
            "tags": [["x", None], None, None],
            "seen": [T0, None, None],
        },
        statuses={name: [present, old, missing] for name in ("rating", "ratio", "tags", "seen")},
        event_timestamps={name: list(when) for name in ("rating", "ratio", "tags", "seen")},
    )


DTYPES: dict[str, DType] = {
    "rating": Float64,
    "ratio": Float32,
    "tags": Array(String),
    "seen": UnixTimestamp,
}


def same_response(a: OnlineResponse, b: OnlineResponse) -> bool:
    return (
        a.join_keys == b.join_keys
        and a.entity_rows == b.entity_rows
        and a.features == b.features
        and all(same(a.values[f], b.values[f]) for f in a.features)
        and a.statuses == b.statuses
        and a.event_timestamps == b.event_timestamps
    )


def test_convert_response_round_trips_to_the_same_online_response() -> None:
    response = sample_response()
    msg = wire(convert.answer_to_proto(OnlineAnswer(response, DTYPES, registry_version=7)))
    assert msg.registry_version == 7
    assert [c.name for c in msg.features] == response.features
    back = convert.response_from_proto(msg, response.entity_rows)
    assert same_response(back, response)
    assert back.to_dict().keys() == response.to_dict().keys()
    assert back.dtypes == DTYPES  # so to_pandas() types even an all-null column
    pd.testing.assert_frame_equal(
        back.to_pandas(), dataclasses.replace(response, dtypes=DTYPES).to_pandas()
    )


def test_convert_response_without_or_with_an_unknown_dtype_is_untyped() -> None:
    msg = convert.answer_to_proto(OnlineAnswer(sample_response(), DTYPES, registry_version=1))
    msg.features[0].ClearField("dtype")  # a server that does not send it
    msg.features[1].dtype = "decimal"  # a type of a newer skewless
    back = convert.response_from_proto(msg, sample_response().entity_rows)
    assert back.dtypes == {"tags": DTYPES["tags"], "seen": DTYPES["seen"]}
    assert back.to_pandas()["ratio"].dtype == "float64"  # as pandas infers it


def test_convert_response_is_column_major_and_typed() -> None:
    msg = convert.answer_to_proto(OnlineAnswer(sample_response(), DTYPES, registry_version=1))
    ratio = msg.features[1]
    assert ratio.values[0].WhichOneof("kind") == "float_value"
    assert ratio.values[1].WhichOneof("kind") is None  # withheld: outside max age
    assert list(ratio.statuses) == [
        convert.pb.FEATURE_STATUS_PRESENT,
        convert.pb.FEATURE_STATUS_OUTSIDE_MAX_AGE,
        convert.pb.FEATURE_STATUS_NOT_FOUND,
    ]
    assert list(ratio.event_timestamps) == [T0_US, T0_US - 3 * 86_400_000_000, 0]
    assert msg.features[3].values[0].WhichOneof("kind") == "unix_timestamp_value"
    assert msg.features[3].values[0].unix_timestamp_value == T0_US  # microseconds


def test_convert_response_not_found_has_no_event_time() -> None:
    msg = convert.answer_to_proto(OnlineAnswer(sample_response(), DTYPES, registry_version=1))
    back = convert.response_from_proto(msg, sample_response().entity_rows)
    assert back.event_timestamps["rating"][2] is None
    assert back.event_timestamps["rating"][0] == T0


def test_convert_response_tells_a_present_value_without_event_time_from_one_at_the_epoch() -> None:
    """An empty window's count (PRESENT, no event time) and a value whose event is at
    exactly the epoch both travel as 0; no_event_time_rows tells them apart."""
    present = FeatureStatus.PRESENT
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    response = OnlineResponse(
        join_keys=["driver_id"],
        entity_rows=[{"driver_id": 1}, {"driver_id": 2}],
        features=["trips_1h"],
        values={"trips_1h": [0, 3]},
        statuses={"trips_1h": [present, present]},
        event_timestamps={"trips_1h": [None, epoch]},
    )
    msg = wire(convert.answer_to_proto(OnlineAnswer(response, {"trips_1h": Int64}, 1)))
    assert list(msg.features[0].event_timestamps) == [0, 0]
    assert list(msg.features[0].no_event_time_rows) == [0]
    back = convert.response_from_proto(msg, response.entity_rows)
    assert back.event_timestamps["trips_1h"] == [None, epoch]


def test_convert_response_listing_a_row_past_the_end_is_an_error() -> None:
    msg = convert.answer_to_proto(OnlineAnswer(sample_response(), DTYPES, registry_version=1))
    msg.features[0].no_event_time_rows.append(3)
    with pytest.raises(ValueError, match="'rating' lists row 3 of 3"):
        convert.response_from_proto(msg, sample_response().entity_rows)


def test_convert_response_of_the_wrong_length_is_an_error() -> None:
    msg = convert.answer_to_proto(OnlineAnswer(sample_response(), DTYPES, registry_version=1))
    with pytest.raises(ValueError, match="does not have 2 rows"):
        convert.response_from_proto(msg, [{"driver_id": 1}, {"driver_id": 2}])


# --- join keys (pure checks the server runs before a lookup) ------------------------------

DRIVER = Entity("driver", join_keys=["driver_id"])
ZONE = Entity("zone", join_keys=["city", "zone_id"])


def catalog() -> Catalog:
    source = FileSource("data/x.parquet", timestamp_field="ts")
    stats = FeatureView(
        "stats",
        entities=[DRIVER],
        schema=[Field("driver_id", Int64), Field("trips", Int64)],
        source=source,
    )
    zones = FeatureView("zones", entities=[ZONE], schema=[Field("demand", Float64)], source=source)
    return Catalog("p", 3, {"stats": stats, "zones": zones}, {})


def test_join_keys_accept_pinned_and_unpinned_types_and_nulls() -> None:
    requests = catalog().compile(["stats:trips", "zones:demand"], full_feature_names=False).views
    check_join_keys(requests, [{"driver_id": 1, "city": "paris", "zone_id": 2}])
    check_join_keys(requests, [{"driver_id": None, "city": None, "zone_id": None}])


@pytest.mark.parametrize(
    ("row", "key"),
    [
        ({"driver_id": "1", "city": "a", "zone_id": 1}, "driver_id"),  # pinned Int64
        ({"driver_id": True, "city": "a", "zone_id": 1}, "driver_id"),  # bool is no int
        ({"driver_id": 1, "city": "a", "zone_id": 1.5}, "zone_id"),  # no key is a float
        ({"driver_id": 1, "city": ["a"], "zone_id": 1}, "city"),
        ({"driver_id": 1, "city": "a"}, "zone_id"),  # missing
    ],
)
def test_join_keys_mistyped_or_missing_name_the_key(row: dict[str, Any], key: str) -> None:
    requests = catalog().compile(["stats:trips", "zones:demand"], full_feature_names=False).views
    with pytest.raises(EntityRowsError, match=f"'{key}'") as info:
        check_join_keys(requests, [{"driver_id": 1, "city": "b", "zone_id": 0}, row])
    assert (info.value.row, info.value.key) == (1, key)
    assert str(info.value).startswith("entity row 1: ")


def test_catalog_without_views_is_nothing_applied() -> None:
    with pytest.raises(NothingAppliedError):
        Catalog("p", 0, {}, {}).compile(["stats:trips"], full_feature_names=False)


# --- errors -> status codes ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("error", "code", "names"),
    [
        (FeatureNotFoundError("stats", "bogus", ["trips"]), "INVALID_ARGUMENT", "bogus"),
        (FeatureServiceNotFoundError("nope", ["svc"]), "INVALID_ARGUMENT", "nope"),
        (InvalidFeatureRefError("stats", "expected 'view:feature'"), "INVALID_ARGUMENT", "stats"),
        (EntityRowsError("no join key 'city'", row=0, key="city"), "INVALID_ARGUMENT", "city"),
        (NothingAppliedError("p"), "FAILED_PRECONDITION", "p"),
        (OnlineStoreUnavailableError("refused"), "UNAVAILABLE", "refused"),
        (RegistryConflictError(1, 2), "UNAVAILABLE", "version"),  # retryable
        (CodecError("value is truncated"), "INTERNAL", "truncated"),
        (
            RequestTooLargeError(9, "entity rows", "serving.max_entity_rows", 5),
            "RESOURCE_EXHAUSTED",
            "serving.max_entity_rows = 5",
        ),
        (UndecodableRequestError("GetOnlineFeaturesRequest", 3), "INVALID_ARGUMENT", "(3 bytes)"),
        (ServerBusyError("the server is busy"), "UNAVAILABLE", "busy"),
        (SkewlessError("odd"), "INTERNAL", "odd"),
        (KeyError("x"), "INTERNAL", "KeyError"),
    ],
)
def test_status_table_maps_errors_to_codes(error: Exception, code: str, names: str) -> None:
    got, details = status_for(error)
    assert got is getattr(grpc.StatusCode, code)
    assert names in details


# --- responses encoded by hand ------------------------------------------------------------

ALL_TYPES: list[DType] = [*SCALARS, *(Array(s) for s in SCALARS)]  # type: ignore[arg-type]


def wide_view(ttl: timedelta | None) -> FeatureView:
    schema = [Field("driver_id", Int64)]
    schema += [Field(f"f{i}", dtype) for i, dtype in enumerate(ALL_TYPES)]
    source = FileSource("data/x.parquet", timestamp_field="ts")
    return FeatureView("wide", entities=[DRIVER], schema=schema, source=source, ttl=ttl)


@st.composite
def lookups(draw: st.DrawFn) -> tuple[Any, list[Any], int]:
    """A plan over some features of a view of every type, what Redis holds for some
    rows (stored, stale or missing) and a registry version."""
    view = wide_view(draw(st.sampled_from([None, timedelta(hours=1)])))
    names = draw(st.permutations([f.name for f in view.features]))[: draw(st.integers(0, 4))]
    if not names:
        names = ["f0"]
    full = draw(st.booleans())
    plan = LookupPlan(
        "p", compile_requests([f"wide:{n}" for n in names], {"wide": view}, full_feature_names=full)
    )
    raw: list[bytes | None] = []
    for _ in range(draw(st.integers(0, 12))):
        if draw(st.integers(0, 3)) == 0:
            raw.append(None)
            continue
        values = []
        for f in view.features:
            strategy = (
                st.lists(st.none() | STORED[f.dtype.element], max_size=3)
                if isinstance(f.dtype, ArrayType)
                else STORED[f.dtype]
            )
            values.append(draw(st.none() | strategy))
        age = timedelta(minutes=draw(st.sampled_from([1, 59, 61, 10_000])))
        raw.append(
            encode_value(
                Record(utc_micros(T0 - age), None, tuple(values)), [f.dtype for f in view.features]
            )
        )
    version = draw(st.sampled_from([0, 1, 300, 2**40]))
    return plan, raw, version


@given(case=lookups())
def test_encode_lookup_is_byte_for_byte_the_generated_serialization(
    case: tuple[LookupPlan, list[bytes | None], int],
) -> None:
    plan, raw, version = case
    views = plan.assemble(raw, len(raw), utc_micros(T0))
    rows = [{"driver_id": i} for i in range(len(raw))]
    reference = convert.answer_to_proto(
        OnlineAnswer(plan.response(rows, views), plan.dtypes, registry_version=version)
    )
    # as the server answers: the stored entries, gathered
    gathered = plan.entries(raw, len(raw), utc_micros(T0))
    encoded = convert.encode_lookup(Lookup(plan, len(raw), gathered, version))
    assert encoded == reference.SerializeToString()


@given(typed=typed_values(STORED))
def test_stored_entries_are_the_generated_serialization_of_their_value(
    typed: tuple[DType, Any],
) -> None:
    """What the online writer stores per feature is byte for byte the FeatureColumn.values
    field the generated code writes for the same value, and reads back as that value."""
    dtype, value = typed
    message = b"" if value is None else convert.to_value(value, dtype).SerializeToString()
    entry = encode_entry(value, dtype)
    assert entry == b"\x12" + convert._varint(len(message)) + message
    assert same(decode_entry(entry, dtype), value)


def test_query_to_proto_refuses_an_integer_key_past_64_bits_naming_it() -> None:
    with pytest.raises(EntityRowsError, match="join key 'driver_id' cannot be sent") as info:
        convert.query_to_proto(
            OnlineQuery(["stats:rating"], [{"driver_id": 1}, {"driver_id": 2**63}])
        )
    assert (info.value.row, info.value.key) == (1, "driver_id")
