"""The HTTP adapter's pure parts: Feast's request JSON into a query, a lookup's stored
entries into Feast's response JSON, and the error table (no network)."""

from __future__ import annotations

import base64
import json
import math
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given

from skewless.errors import (
    EntityRowsError,
    FeatureNotFoundError,
    FeatureServiceNotFoundError,
    FeatureViewNotFoundError,
    InvalidFeatureRefError,
    MalformedRequestError,
    NothingAppliedError,
    OnlineStoreUnavailableError,
    RegistryConflictError,
    RequestTooLargeError,
    ServerBusyError,
    ServerOverloadedError,
    SkewlessError,
)
from skewless.http import convert
from skewless.http.errors import status_for
from skewless.online import columns
from skewless.online.codec import CodecError
from skewless.online.entries import encode_entry
from skewless.serving.catalog import CatalogNotLoadedError
from skewless.serving.plan import LookupPlan
from skewless.serving.response import FeatureStatus
from skewless.serving.service import Lookup
from skewless.timeutil import from_micros, utc_micros
from skewless.types import Array, Bytes, Float32, Float64, Int64, String, UnixTimestamp
from tests.unit.test_grpc_convert import T0, lookups

# --- requests ---------------------------------------------------------------------------


def test_parse_request_takes_features_entities_and_full_names() -> None:
    query = convert.parse_request(
        b'{"features": ["stats:trips", "zones:demand"], "full_feature_names": true,'
        b' "entities": {"driver_id": [1, 2], "city": ["a", null]}}'
    )
    assert query.features == ["stats:trips", "zones:demand"]
    assert query.full_feature_names is True
    assert query.rows == 2
    assert query.entity_columns(["city", "zone"]) == {"city": ["a", None]}


def test_parse_request_takes_a_feature_service_and_nulls_as_absent() -> None:
    query = convert.parse_request(
        b'{"feature_service": "svc", "features": null, "full_feature_names": null, "entities": {}}'
    )
    assert query.features == "svc"
    assert query.full_feature_names is False
    assert query.rows == 0


def test_parse_request_keeps_integers_past_53_bits_exact() -> None:
    query = convert.parse_request(b'{"features": [], "entities": {"id": [9007199254740993]}}')
    assert query.entities["id"] == [2**53 + 1]


@pytest.mark.parametrize(
    ("body", "field", "says"),
    [
        (b"", None, "not JSON"),
        (b"{", None, "not JSON"),
        (b"\xff", None, "not JSON"),
        (b"[" * 100_000, None, "not JSON"),
        (b"[1]", None, "must be a JSON object, got an array"),
        (b'"x"', None, "got a string"),
        (b'{"entities": {}}', "features", "missing"),
        (b'{"features": "v:f", "entities": {}}', "features", "got a string"),
        (b'{"features": ["v:f", 2], "entities": {}}', "features", "item 1"),
        (
            b'{"features": ["v:f"], "feature_service": "s", "entities": {}}',
            "feature_service",
            "not both",
        ),
        (b'{"feature_service": 3, "entities": {}}', "feature_service", "got a number"),
        (b'{"features": ["v:f"]}', "entities", "missing"),
        (b'{"features": ["v:f"], "entities": [[1]]}', "entities", "got an array"),
        (b'{"features": ["v:f"], "entities": {"k": {"a": 1}}}', "entities.k", "got an object"),
        (b'{"features": ["v:f"], "entities": {"k": 1}}', "entities.k", "got a number"),
        (
            b'{"features": ["v:f"], "entities": {}, "full_feature_names": 1}',
            "full_feature_names",
            "true or false",
        ),
        (b'{"features": ["v:f"], "entities": {}, "top_k": 3}', "top_k", "not a field"),
    ],
)
def test_parse_request_refuses_a_malformed_body_naming_the_field(
    body: bytes, field: str | None, says: str
) -> None:
    with pytest.raises(MalformedRequestError) as info:
        convert.parse_request(body)
    assert info.value.field == field
    assert says in str(info.value)
    if field is not None:
        assert f"'{field}'" in str(info.value)


def test_parse_request_refuses_columns_of_unequal_length_naming_both() -> None:
    with pytest.raises(EntityRowsError) as info:
        convert.parse_request(b'{"features": ["v:f"], "entities": {"a": [1, 2], "b": [1]}}')
    assert info.value.key == "b"
    assert str(info.value) == (
        "entity columns differ in length: 'b' has 1, 'a' has 2 values "
        "(a column has a value per entity row)"
    )


# --- values -----------------------------------------------------------------------------


def reference_rfc3339(t: datetime) -> str:
    """RFC 3339 as protobuf writes a Timestamp, from datetime.isoformat."""
    text = t.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="microseconds")
    if text.endswith(".000000"):
        text = text[: -len(".000000")]
    elif text.endswith("000"):
        text = text[:-3]
    return text + "Z"


@pytest.mark.parametrize(
    ("us", "text"),
    [
        (0, "1970-01-01T00:00:00Z"),
        (1, "1970-01-01T00:00:00.000001Z"),
        (1000, "1970-01-01T00:00:00.001Z"),
        (-1, "1969-12-31T23:59:59.999999Z"),
        (utc_micros(T0) + 120_000, "2024-03-01T12:00:00.120Z"),
        (utc_micros(datetime.min.replace(tzinfo=UTC)), "0001-01-01T00:00:00Z"),
        (utc_micros(datetime.max.replace(tzinfo=UTC)), "9999-12-31T23:59:59.999999Z"),
    ],
)
def test_rfc3339_writes_utc_with_the_fraction_protobuf_writes(us: int, text: str) -> None:
    assert convert.rfc3339(us) == text == reference_rfc3339(from_micros(us))


def test_json_values_spell_what_json_cannot_carry() -> None:
    floats = convert.json_value(Float64)
    assert floats is not None
    assert [floats(v) for v in (1.5, math.nan, math.inf, -math.inf)] == [
        1.5,
        "NaN",
        "Infinity",
        "-Infinity",
    ]
    assert convert.json_value(Float32) is not None
    blob = convert.json_value(Bytes)
    assert blob is not None
    assert blob(b"\x00\xff") == "AP8="
    stamps = convert.json_value(Array(UnixTimestamp))
    assert stamps is not None
    assert stamps([0, None, 1000]) == ["1970-01-01T00:00:00Z", None, "1970-01-01T00:00:00.001Z"]
    assert convert.json_value(Int64) is None  # every digit, as a JSON number
    assert convert.json_value(Array(String)) is None


def test_column_values_read_a_columns_entries() -> None:
    values = [b"\x00", None, b""]
    blob = b"".join(encode_entry(v, Bytes) for v in values)
    assert convert.column_values(blob, 3, Bytes) == ["AA==", None, ""]
    with pytest.raises(CodecError, match="2 entries for 3 rows"):
        convert.column_values(blob[: -len(encode_entry(b"", Bytes))], 3, Bytes)
    with pytest.raises(CodecError, match="not FeatureColumn.values' tag"):
        convert.column_values(b"\x0a\x00", 1, Bytes)


# --- responses --------------------------------------------------------------------------


def as_json(value: Any) -> Any:
    """A value of the in-process answer as the response writes it, independently."""
    if isinstance(value, list):
        return [as_json(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    if isinstance(value, datetime):
        return reference_rfc3339(value)
    return value


@given(case=lookups())
def test_response_json_is_the_in_process_answer_in_feasts_shape(
    case: tuple[LookupPlan, list[bytes | None], int],
) -> None:
    """What the server writes from the stored entries is what FeatureStore's lookup
    decodes from the same stored values, in Feast's JSON."""
    check_response_json(case)


@given(case=lookups())
def test_response_json_read_with_numpy_is_the_in_process_answer(
    case: tuple[LookupPlan, list[bytes | None], int],
) -> None:
    """The same, with every column of a scalar type read by read_columns (as columns of
    VECTOR_VALUES values or more are)."""
    vector_values = columns.VECTOR_VALUES
    columns.VECTOR_VALUES = 1  # type: ignore[misc]
    try:
        check_response_json(case)
    finally:
        columns.VECTOR_VALUES = vector_values  # type: ignore[misc]


def check_response_json(case: tuple[LookupPlan, list[bytes | None], int]) -> None:
    plan, raw, version = case
    rows = len(raw)
    entities = {"note": ["x"] * rows, "driver_id": list(range(rows))}
    now = utc_micros(T0)
    lookup = Lookup(plan, rows, plan.entries(raw, rows, now), version)
    got = json.loads(convert.encode_lookup(lookup, entities), parse_constant=_no_constant)

    want = plan.response([{"driver_id": i} for i in range(rows)], plan.assemble(raw, rows, now))
    results: list[dict[str, Any]] = [
        {
            "values": list(range(rows)),
            "statuses": ["PRESENT"] * rows,
            "event_timestamps": ["1970-01-01T00:00:00Z"] * rows,
        }
    ]
    for name in want.features:
        results.append(
            {
                "values": as_json(want.values[name]),
                "statuses": [s.value for s in want.statuses[name]],
                "event_timestamps": [
                    "1970-01-01T00:00:00Z"
                    if s is FeatureStatus.NOT_FOUND or t is None
                    else reference_rfc3339(t)
                    for s, t in zip(want.statuses[name], want.event_timestamps[name], strict=True)
                ],
            }
        )
    assert got == {"metadata": {"feature_names": ["driver_id", *want.features]}, "results": results}


def _no_constant(name: str) -> Any:
    raise AssertionError(f"the response holds the bare {name}, which is not JSON")


def test_response_statuses_use_feasts_names() -> None:
    assert {s.value for s in FeatureStatus} == {"PRESENT", "NOT_FOUND", "OUTSIDE_MAX_AGE"}


# --- errors -> HTTP statuses ------------------------------------------------------------


@pytest.mark.parametrize(
    ("error", "status", "names"),
    [
        (FeatureNotFoundError("stats", "bogus", ["trips"]), 400, "bogus"),
        (FeatureViewNotFoundError("nope", ["stats"]), 400, "nope"),
        (FeatureServiceNotFoundError("nope", ["svc"]), 400, "nope"),
        (InvalidFeatureRefError("stats", "expected 'view:feature'"), 400, "stats"),
        (EntityRowsError("no join key 'city'", row=0, key="city"), 400, "city"),
        (MalformedRequestError("entities", "missing"), 400, "'entities'"),
        (RequestTooLargeError(9, "entity rows", "serving.max_entity_rows", 5), 413, "= 5"),
        (ServerOverloadedError(10, 20, 25), 429, "max_inflight_request_bytes"),
        (ServerBusyError("the server is busy"), 503, "busy"),
        (NothingAppliedError("p"), 409, "'p'"),
        (CatalogNotLoadedError("not read yet"), 503, "not read yet"),
        (OnlineStoreUnavailableError("refused"), 503, "refused"),
        (RegistryConflictError(1, 2), 503, "version"),  # retryable
        (CodecError("value is truncated"), 500, "truncated"),
        (SkewlessError("odd"), 500, "odd"),
        (KeyError("x"), 500, "KeyError"),
    ],
)
def test_status_table_maps_errors_to_http_statuses(
    error: Exception, status: int, names: str
) -> None:
    got, message = status_for(error)
    assert got == status
    assert names in message
