"""The online server's limits, its error details and its deadline margin, as pure logic
(tests/integration/test_grpc_hardening.py runs them in the real server)."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
import pytest

from skewless import Entity, FeatureView, Field, FileSource, Float64, Int64
from skewless.config import ServingConfig, parse_config
from skewless.errors import (
    ConfigError,
    EntityRowsError,
    FeatureViewNotFoundError,
    RequestTooLargeError,
    ServerOverloadedError,
    UndecodableRequestError,
    clip,
)
from skewless.feature_request import compile_requests
from skewless.grpc import convert
from skewless.grpc.errors import MAX_DETAILS_BYTES, bounded, with_status
from skewless.grpc.server import receive_cap
from skewless.online.codec import Record, encode_value
from skewless.serving import limits
from skewless.serving.log_throttle import LogThrottle
from skewless.serving.plan import GATHER_ROWS, LookupPlan
from skewless.serving.service import OnlineQuery, margin_s
from skewless.timeutil import utc_micros

# --- config -----------------------------------------------------------------------------------


def test_serving_config_defaults_and_overrides() -> None:
    default = parse_config({"project": "p"}, "fs.yaml", environ={}).serving
    assert default == ServingConfig(
        max_entity_rows=10_000,
        max_features=1_000,
        max_response_values=1_000_000,
        max_request_bytes=2 * 1024 * 1024,
        max_inflight_request_bytes=64 * 1024 * 1024,
        tls=None,
    )
    raw = {"project": "p", "serving": {"max_entity_rows": 5, "max_request_bytes": 2048}}
    got = parse_config(raw, "fs.yaml", environ={}).serving
    assert (got.max_entity_rows, got.max_request_bytes, got.max_features) == (5, 2048, 1000)


@pytest.mark.parametrize(
    ("serving", "named"),
    [
        ({"max_entity_rows": 0}, "serving.max_entity_rows"),
        ({"max_features": -1}, "serving.max_features"),
        ({"max_request_bytes": 0}, "serving.max_request_bytes"),
        ({"max_request_bytes": 2**31}, "serving.max_request_bytes"),
        ({"max_rows": 5}, "serving.max_rows"),
    ],
)
def test_serving_config_errors_name_the_key(serving: dict[str, Any], named: str) -> None:
    with pytest.raises(ConfigError, match=named):
        parse_config({"project": "p", "serving": serving}, "fs.yaml", environ={})


def test_receive_cap_leaves_room_above_the_limit_within_an_int32() -> None:
    assert receive_cap(4 * 1024 * 1024) == 8 * 1024 * 1024
    assert receive_cap(2**30) == 2**31 - 1


# --- limits -----------------------------------------------------------------------------------

SMALL = ServingConfig(
    max_entity_rows=10, max_features=4, max_response_values=20, max_request_bytes=2048
)


def test_limits_take_what_is_at_the_limit() -> None:
    limits.check_request_bytes(2048, SMALL)
    limits.check_entity_rows(10, SMALL)
    limits.check_features(5, 4, SMALL)


@pytest.mark.parametrize(
    ("check", "message", "key"),
    [
        (
            lambda: limits.check_request_bytes(2049, SMALL),
            "request has 2049 bytes; the limit is serving.max_request_bytes = 2048",
            "serving.max_request_bytes",
        ),
        (
            lambda: limits.check_entity_rows(700_000, SMALL),
            "request has 700000 entity rows; the limit is serving.max_entity_rows = 10",
            "serving.max_entity_rows",
        ),
        (
            lambda: limits.check_features(1, 5, SMALL),
            "request has 5 features; the limit is serving.max_features = 4",
            "serving.max_features",
        ),
        (
            lambda: limits.check_features(6, 4, SMALL),
            "request has 24 feature values (6 entity rows x 4 features); the limit is "
            "serving.max_response_values = 20",
            "serving.max_response_values",
        ),
    ],
)
def test_limits_refuse_naming_the_key_and_both_numbers(check: Any, message: str, key: str) -> None:
    with pytest.raises(RequestTooLargeError) as info:
        check()
    assert str(info.value) == f"{message} (split the request)"
    assert info.value.key == key


# --- client text in errors ------------------------------------------------------------------


def test_inflight_bytes_refuse_past_the_limit_and_free_what_a_call_held() -> None:
    inflight = limits.InflightBytes(100)
    with inflight.hold(60):
        with inflight.hold(40):  # exactly at the limit
            assert inflight.held == 100
            with pytest.raises(ServerOverloadedError) as info, inflight.hold(1):
                pass
            assert "100 bytes of requests are in flight and this one has 1" in str(info.value)
            assert "serving.max_inflight_request_bytes = 100" in str(info.value)
        with pytest.raises(ServerOverloadedError), inflight.hold(41):
            pass
        assert inflight.held == 60  # a refused call holds nothing
    assert inflight.held == 0
    with inflight.hold(500):  # alone, a request larger than the limit still runs
        assert inflight.held == 500
    with pytest.raises(RuntimeError), inflight.hold(10):
        raise RuntimeError("a failed call")
    assert inflight.held == 0


def test_clip_keeps_short_text_and_cuts_long_text_saying_how_long() -> None:
    assert clip("a" * 200) == "a" * 200
    assert clip("a" * 201) == "a" * 200 + "...(201 characters)"


def test_an_unknown_huge_name_is_named_clipped_without_a_hint() -> None:
    error = FeatureViewNotFoundError("v" * 100_000, ["vv"])
    assert str(error) == f"unknown feature view '{'v' * 200}...(100000 characters)'."
    assert error.name == "v" * 100_000  # the structured field keeps it whole


def test_bounded_details_fit_a_grpc_status_whatever_the_characters() -> None:
    assert bounded("short") == "short"
    cut = bounded("é" * 5000)  # 2 bytes each: cut between characters, never inside one
    assert cut.endswith("...(10000 bytes)")
    assert len(cut.removesuffix("...(10000 bytes)").encode()) <= MAX_DETAILS_BYTES


def test_join_key_value_of_any_size_is_shown_clipped() -> None:
    view = FeatureView(
        "v",
        entities=[Entity("d", join_keys=["d"])],
        schema=[Field("d", Int64), Field("x", Float64)],
        source=FileSource("x.parquet", timestamp_field="ts"),
    )
    plan = LookupPlan("p", compile_requests(["v:x"], {"v": view}, full_feature_names=False))
    with pytest.raises(EntityRowsError, match=r"is a str \('dddd.*\.\.\.\(100002 characters\)"):
        plan.keys([{"d": "d" * 100_000}])
    with pytest.raises(EntityRowsError, match="is a 33220-bit integer, outside a 64-bit"):
        plan.keys([{"d": 10**10_000}])


# --- requests from bytes ------------------------------------------------------------------


@pytest.mark.parametrize("data", [b"\x12\x02\xff\xfe", b"\x0a\xff\xff\xff\x0f\x01", b"\xff"])
def test_undecodable_request_bytes_are_an_error_naming_the_message(data: bytes) -> None:
    with pytest.raises(UndecodableRequestError) as info:
        convert.request_from_bytes(data)
    assert str(info.value) == (
        f"the request ({len(data)} bytes) is not a valid GetOnlineFeaturesRequest"
    )


def test_entity_rows_are_counted_without_decoding_and_only_needed_columns_decoded() -> None:
    rows = [{"driver_id": i, "note": "x"} for i in range(3)]
    msg = convert.query_to_proto(OnlineQuery(["v:x"], rows))
    # an array with a null index past its end: malformed, but in a column no one needs
    bad = msg.entity_columns["note"].values[2].int64_list_value
    bad.null_indices.append(9)
    assert convert.entity_row_count(msg.entity_columns) == 3
    columns, rows_ = convert.entity_columns_from_proto(msg.entity_columns, ["driver_id"])
    assert (columns, rows_) == ({"driver_id": [0, 1, 2]}, 3)
    with pytest.raises(EntityRowsError, match="entity row 2: join key 'note' has a malformed"):
        convert.entity_columns_from_proto(msg.entity_columns)


def test_a_timestamp_past_year_9999_as_a_key_names_the_row() -> None:
    msg = convert.GetOnlineFeaturesRequest()
    msg.entity_columns["driver_id"].values.add(int64_value=1)
    msg.entity_columns["driver_id"].values.add(unix_timestamp_value=2**62)
    with pytest.raises(EntityRowsError, match="entity row 1: join key 'driver_id' has a "):
        convert.entity_columns_from_proto(msg.entity_columns)


# --- the deadline margin ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("remaining_s", "margin"),
    [(0.03, 0.015), (0.1, 0.04), (0.5, 0.1), (1.0, 0.2), (10.0, 0.25)],
)
def test_margin_grows_with_the_deadline_within_bounds(remaining_s: float, margin: float) -> None:
    assert margin_s(remaining_s) == pytest.approx(margin)


# --- logging once an interval ----------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_log_throttle_logs_the_first_then_one_line_with_the_count(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = Clock()
    throttle = LogThrottle(logging.getLogger("t"), logging.WARNING, 60.0, clock)
    caplog.set_level(logging.WARNING, "t")
    for i in range(100):
        clock.now = i * 0.1
        throttle.event(f"refused {i}")
    assert [r.getMessage() for r in caplog.records] == ["refused 0"]
    assert throttle.held == 99
    clock.now = 60.0
    throttle.flush()  # what the timer does when the interval is over
    assert caplog.records[-1].getMessage() == (
        "99 more like this since the last report; the latest: refused 99"
    )
    clock.now = 70.0  # within the interval the summary started
    throttle.event("refused again")
    assert len(caplog.records) == 2
    clock.now = 200.0  # past it, with one held: the two are one line
    throttle.event("refused later")
    assert caplog.records[-1].getMessage() == (
        "2 more like this since the last report; the latest: refused later"
    )
    clock.now = 300.0  # nothing held: logged as it is
    throttle.event("alone")
    assert caplog.records[-1].getMessage() == "alone"
    assert throttle.held == 0


# --- gathering in chunks -----------------------------------------------------------------------


def test_entries_of_many_rows_are_the_entries_of_each_row() -> None:
    view = FeatureView(
        "v",
        entities=[Entity("d", join_keys=["d"])],
        schema=[Field("d", Int64), Field("x", Float64), Field("y", Float64)],
        source=FileSource("x.parquet", timestamp_field="ts"),
        ttl=timedelta(hours=1),
    )
    plan = LookupPlan("p", compile_requests(["v:y", "v:x"], {"v": view}, full_feature_names=False))
    now = datetime(2026, 3, 1, tzinfo=UTC)
    rows = 2 * GATHER_ROWS + 7
    raw: list[bytes | None] = [
        None
        if i % 5 == 0
        else encode_value(
            Record(utc_micros(now - timedelta(hours=i % 3)), None, (float(i), None)),
            [Float64, Float64],
        )
        for i in range(rows)
    ]
    (whole,) = plan.entries(raw, rows, utc_micros(now))
    one_by_one = [plan.entries([v], 1, utc_micros(now))[0] for v in raw]
    assert whole.statuses == [e.statuses[0] for e in one_by_one]
    assert whole.event_ts_us == [e.event_ts_us[0] for e in one_by_one]
    for f in range(2):
        assert whole.entries[f] == b"".join(e.entries[f] for e in one_by_one)


def test_log_throttle_reports_a_burst_followed_by_silence(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def burst() -> None:
        throttle = LogThrottle(logging.getLogger("t"), logging.WARNING, 0.05)
        for i in range(10):
            throttle.event(f"refused {i}")
        await asyncio.sleep(0.2)  # nothing more comes: the timer reports the 9

    caplog.set_level(logging.WARNING, "t")
    asyncio.run(burst())
    assert [r.getMessage() for r in caplog.records] == [
        "refused 0",
        "9 more like this since the last report; the latest: refused 9",
    ]


class _AbortingContext:
    """What with_status asks of a call's context: abort() ends the call, as grpc's does."""

    async def abort(self, code: Any, details: str) -> None:
        raise grpc.aio.AbortError()


def test_internal_errors_of_each_type_log_their_first_traceback(
    caplog: pytest.LogCaptureFixture,
) -> None:
    raised = [KeyError("a"), KeyError("b"), ZeroDivisionError("c")]

    async def handler(request: Any, context: Any) -> bytes:
        raise raised.pop(0)

    call = with_status("/m", handler)

    async def three_calls() -> None:
        for _ in range(3):
            with pytest.raises(grpc.aio.AbortError):
                await call(b"", _AbortingContext())

    with caplog.at_level(logging.ERROR):
        asyncio.run(three_calls())
    logged = [r.exc_info[0] for r in caplog.records if r.exc_info is not None]
    assert logged == [KeyError, ZeroDivisionError]  # the second KeyError is held and counted
