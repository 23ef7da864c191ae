"""The gRPC server against hostile and oversized requests, with a real redis-server and
the real server (no Spark: values are encoded by the online codec and written by the
online store's writer, as materialization does).

Limits refuse at once with RESOURCE_EXHAUSTED naming the config key and both numbers;
undecodable requests are INVALID_ARGUMENT, counted and logged once per interval; client
text in the details is clipped; a large allowed request does not hold up other calls;
a hung Redis is UNAVAILABLE within the deadline, also under load.
"""

from __future__ import annotations

import json
import logging
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from skewless import FeatureStore
from skewless.grpc import convert, running_server
from skewless.grpc.server import RunningServer
from skewless.online.codec import encode_values, entity_key
from skewless.serving.service import OnlineQuery
from skewless.types import Float64
from tests.integration.redis_server import free_port
from tests.integration.test_grpc_server import (
    SERVICE,
    calls,
    health,
    scrape,
    start_redis,
    stop_redis,
    wait_until,
)

METHOD = f"/{SERVICE}/GetOnlineFeatures"
FEATURES = 10
REFS = [f"wide:f{i}" for i in range(FEATURES)]
STORED = 100_000  # entities with a stored value: ids 0 .. STORED-1
POLL_S = 0.2

DEFS = f"""
from skewless import *

driver = Entity("driver", join_keys=["driver_id"])
wide = FeatureView(
    "wide",
    entities=[driver],
    schema=[Field("driver_id", Int64)] + [Field(f"f{{i}}", Float64) for i in range({FEATURES})],
    source=FileSource("data/wide.parquet", timestamp_field="ts"),
)
svc = FeatureService("svc", features=[wide])
"""

# Limits small enough to cross with a few rows; the defaults are checked elsewhere.
SMALL = """
serving:
  max_entity_rows: 50
  max_features: 3
  max_response_values: 100
  max_request_bytes: 2048
"""
# Room for a request far larger than the default limits allow.
ROOMY = """
serving:
  max_entity_rows: 200000
  max_response_values: 10000000
"""


def write_config(repo: Path, redis_url: str, registry: Path, extra: str = "") -> Path:
    repo.mkdir(parents=True, exist_ok=True)
    (repo / "feature_store.yaml").write_text(
        f"project: hard\nregistry: '{registry}'\n"
        f"online_store: {{type: redis, url: '{redis_url}'}}\n{extra}"
    )
    return repo


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory, redis_url: str) -> Path:
    """Applied definitions and STORED entities' values in the shared redis-server."""
    root = tmp_path_factory.mktemp("hardening")
    repo = write_config(root / "repo", redis_url, root / "registry.db")
    (repo / "data").mkdir()
    (repo / "defs.py").write_text(DEFS)
    now = datetime.now(UTC)
    rng = np.random.default_rng(3)
    ids = pa.array(np.arange(STORED), pa.int64())
    features = [pa.array(rng.normal(size=STORED)) for _ in range(FEATURES)]
    table = pa.table(
        {
            "driver_id": ids,
            "ts": pa.array([now] * STORED, pa.timestamp("us", tz="UTC")),
            **{f"f{i}": column for i, column in enumerate(features)},
        }
    )
    pq.write_table(table, repo / "data/wide.parquet")
    store = FeatureStore(repo)
    store.apply()
    event_us = pa.array(np.full(STORED, int(now.timestamp() * 1e6)), pa.int64())
    values = encode_values(
        event_us, pa.array([None] * STORED, pa.int64()), ids, features, [Float64] * FEATURES
    )
    written = store.online_store().write(
        (entity_key("hard", "wide", [i]), value, 0) for i, value in enumerate(values)
    )
    assert written.written == STORED
    return repo


def serve(repo: Path) -> Iterator[RunningServer]:
    with running_server(repo, poll_interval_s=POLL_S, metrics_port=0) as running:
        wait_until(lambda: health(running.target) == "SERVING", "the server to be SERVING")
        yield running


@pytest.fixture(scope="module")
def server(repo: Path) -> Iterator[RunningServer]:
    """The default limits."""
    yield from serve(repo)


@pytest.fixture(scope="module")
def small(repo: Path, redis_url: str) -> Iterator[RunningServer]:
    yield from serve(
        write_config(repo.parent / "small", redis_url, repo.parent / "registry.db", SMALL)
    )


@pytest.fixture(scope="module")
def roomy(repo: Path, redis_url: str) -> Iterator[RunningServer]:
    yield from serve(
        write_config(repo.parent / "roomy", redis_url, repo.parent / "registry.db", ROOMY)
    )


# --- helpers -------------------------------------------------------------------------------


def request(features: list[str] | str, rows: list[dict[str, Any]]) -> bytes:
    return convert.query_to_proto(OnlineQuery(features, rows)).SerializeToString()


def drivers(n: int) -> list[dict[str, Any]]:
    return [{"driver_id": i} for i in range(n)]


def channel(target: str) -> grpc.Channel:
    """A channel without gRPC's own size caps on what it sends and receives."""
    unlimited = [("grpc.max_send_message_length", -1), ("grpc.max_receive_message_length", -1)]
    return grpc.insecure_channel(target, options=unlimited)


def call(target: str, payload: bytes, timeout_s: float = 10.0) -> bytes:
    """One GetOnlineFeatures call with the request's bytes as they are."""
    with channel(target) as ch:
        reply: bytes = ch.unary_unary(METHOD)(payload, timeout=timeout_s)
        return reply


def refused(target: str, payload: bytes, timeout_s: float = 10.0) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as info:
        call(target, payload, timeout_s)
    return info.value


def answer(payload: bytes) -> Any:
    return convert.GetOnlineFeaturesResponse.FromString(payload)


def counted(server: RunningServer, code: str) -> float:
    return calls(scrape(server), code)


# --- limits --------------------------------------------------------------------------------


def test_grpc_more_entity_rows_than_the_default_limit_are_refused_at_once(
    server: RunningServer,
) -> None:
    at_limit = answer(call(server.target, request(REFS, drivers(10_000))))
    # read in several MGETs and gathered in chunks: every row's own values, in order
    draws = np.random.default_rng(3)  # as the repo fixture drew them
    for column in at_limit.features[:2]:
        stored = draws.normal(size=STORED)
        assert [v.double_value for v in column.values] == stored[:10_000].tolist()
        assert set(column.statuses) == {convert.pb.FEATURE_STATUS_PRESENT}
    before = counted(server, "RESOURCE_EXHAUSTED")
    error = refused(server.target, request(REFS, drivers(10_001)))
    assert error.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
    assert error.details() == (
        "request has 10001 entity rows; the limit is serving.max_entity_rows = 10000 "
        "(split the request)"
    )
    assert counted(server, "RESOURCE_EXHAUSTED") == before + 1
    assert health(server.target) == "SERVING"


def test_grpc_request_over_the_byte_limit_is_refused_by_the_server_and_counted(
    server: RunningServer,
) -> None:
    """Up to twice the limit the server refuses it itself (the details name the limit,
    the metrics count it); past that gRPC's transport refuses it with the same code."""
    over = request(REFS, [{"driver_id": 1, "note": "x" * (2 * 1024 * 1024)}])
    before = counted(server, "RESOURCE_EXHAUSTED")
    error = refused(server.target, over)
    assert error.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
    assert error.details() == (
        f"request has {len(over)} bytes; the limit is serving.max_request_bytes = 2097152 "
        "(split the request)"
    )
    assert counted(server, "RESOURCE_EXHAUSTED") == before + 1
    past_the_cap = request(REFS, [{"driver_id": 1, "note": "x" * (5 * 1024 * 1024)}])
    assert refused(server.target, past_the_cap).code() is grpc.StatusCode.RESOURCE_EXHAUSTED
    assert counted(server, "RESOURCE_EXHAUSTED") == before + 1  # the server never saw it
    assert len(answer(call(server.target, request(REFS, drivers(3)))).features) == FEATURES


@pytest.mark.parametrize(
    ("features", "rows", "details"),
    [
        (
            REFS[:3],
            drivers(51),
            "request has 51 entity rows; the limit is serving.max_entity_rows = 50",
        ),
        (
            REFS[:4],
            drivers(1),
            "request has 4 features; the limit is serving.max_features = 3",
        ),
        # a feature service counts its features
        ("svc", drivers(1), "request has 10 features; the limit is serving.max_features = 3"),
        (
            REFS[:3],
            drivers(34),
            "request has 102 feature values (34 entity rows x 3 features); the limit is "
            "serving.max_response_values = 100",
        ),
        (
            REFS[:1],
            [{"driver_id": 1, "note": "x" * 3000}],
            "request has {size} bytes; the limit is serving.max_request_bytes = 2048",
        ),
    ],
    ids=["rows", "features", "service", "values", "bytes"],
)
def test_grpc_each_configured_limit_refuses_naming_its_key_and_both_numbers(
    small: RunningServer, features: list[str] | str, rows: list[dict[str, Any]], details: str
) -> None:
    payload = request(features, rows)
    error = refused(small.target, payload)
    assert error.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
    assert error.details() == details.format(size=len(payload)) + " (split the request)"


def test_grpc_requests_within_the_configured_limits_are_answered(small: RunningServer) -> None:
    got = answer(call(small.target, request(REFS[:2], drivers(50))))
    assert [len(c.values) for c in got.features] == [50, 50]


# --- undecodable requests --------------------------------------------------------------------

# A GetOnlineFeaturesRequest whose `features` holds bytes that are not UTF-8, and bytes
# that are no message at all (a length running past the end).
NOT_UTF8 = b"\x12\x04\xff\xfe\xfd\xfc"
GARBAGE = b"\x0a\xff\xff\xff\x0f\x01"


def test_grpc_undecodable_requests_are_invalid_argument_counted_and_logged_once(
    server: RunningServer, caplog: pytest.LogCaptureFixture
) -> None:
    before = counted(server, "INVALID_ARGUMENT")
    caplog.set_level(logging.WARNING)
    caplog.clear()
    for payload in [NOT_UTF8, GARBAGE] * 20:
        error = refused(server.target, payload)
        assert error.code() is grpc.StatusCode.INVALID_ARGUMENT
        assert error.details() == (
            f"the request ({len(payload)} bytes) is not a valid GetOnlineFeaturesRequest"
        )
    assert counted(server, "INVALID_ARGUMENT") == before + 40
    # one line for the first; the other 39 wait for the end of the interval (60 s)
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 1, lines
    assert "not a valid GetOnlineFeaturesRequest" in lines[0]
    assert health(server.target) == "SERVING"


# --- client text in the details ---------------------------------------------------------------


def test_grpc_a_huge_unknown_name_is_invalid_argument_naming_it_clipped(
    server: RunningServer,
) -> None:
    name = "n" * 16_000
    for features, shown in [
        (
            [f"wide:{name}"],
            f"feature view 'wide' has no feature '{'n' * 200}...(16000 characters)'",
        ),
        ([f"{name}:f1"], f"unknown feature view '{'n' * 200}...(16000 characters)'"),
        (name, f"unknown feature service '{'n' * 200}...(16000 characters)'"),
    ]:
        error = refused(server.target, request(features, drivers(1)))
        assert error.code() is grpc.StatusCode.INVALID_ARGUMENT
        details = error.details() or ""
        assert details.startswith(shown)
        assert len(details) < 1000


def test_grpc_a_huge_mistyped_key_value_is_invalid_argument_naming_row_and_key(
    server: RunningServer,
) -> None:
    error = refused(server.target, request(REFS, [{"driver_id": 1}, {"driver_id": "é" * 100_000}]))
    assert error.code() is grpc.StatusCode.INVALID_ARGUMENT
    details = error.details() or ""
    assert details.startswith("entity row 1: join key 'driver_id' is a str ('ééé")
    assert "...(100002 characters)" in details
    assert len(details) < 1000


def test_grpc_entity_columns_of_different_lengths_name_both_without_the_offline_label(
    server: RunningServer,
) -> None:
    msg = convert.query_to_proto(OnlineQuery(REFS, [{"driver_id": 1, "c" * 5000: 2}] * 2))
    msg.entity_columns["c" * 5000].values.pop()
    error = refused(server.target, msg.SerializeToString())
    assert error.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert error.details() == (
        f"entity columns differ in length: '{'c' * 200}...(5000 characters)' has 1, "
        "'driver_id' has 2 values (a column has a value per entity row)"
    )


# --- join keys sent as other integer kinds ------------------------------------------------


def test_grpc_int64_key_takes_an_int32_value_and_refuses_a_timestamp(
    server: RunningServer,
) -> None:
    def with_key(field: str) -> bytes:
        msg = convert.GetOnlineFeaturesRequest(features=REFS[:1])
        column = msg.entity_columns["driver_id"]
        column.values.add(int64_value=5)
        setattr(column.values.add(), field, 7)
        return msg.SerializeToString()

    widened = answer(call(server.target, with_key("int32_value")))
    same = answer(call(server.target, with_key("int64_value")))
    assert widened == same
    assert list(widened.features[0].statuses) == [1, 1]  # PRESENT: found as int64 keys
    error = refused(server.target, with_key("unix_timestamp_value"))
    assert error.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert (error.details() or "").startswith(
        "entity row 1: join key 'driver_id' is a datetime (datetime.datetime(1970, 1, 1, 0, 0, "
        "0, 7, tzinfo=datetime.timezone.utc)), but feature view 'wide' declares it Int64"
    )


# --- a large allowed request and everyone else --------------------------------------------------


@dataclass
class Probe:
    """Small calls and health checks, one after the other, until stopped."""

    target: str
    answered: list[float]
    statuses: list[str]

    def run(self, stop: threading.Event, started: threading.Event) -> None:
        small = request(REFS, drivers(1))
        with channel(self.target) as ch:
            lookup = ch.unary_unary(METHOD)
            check = health_pb2_grpc.HealthStub(ch).Check
            while not stop.is_set():
                assert len(answer(lookup(small, timeout=10)).features) == FEATURES
                status = check(health_pb2.HealthCheckRequest(), timeout=10).status
                self.statuses.append(health_pb2.HealthCheckResponse.ServingStatus.Name(status))
                self.answered.append(time.monotonic())
                started.set()


# Another process sends the large calls, so that its client's work (copying a 20 MB
# answer) does not take this process's interpreter from the server.
BIG_CLIENT = """
import json, sys, time
import grpc
payload = open(sys.argv[2], "rb").read()
options = [("grpc.max_send_message_length", -1), ("grpc.max_receive_message_length", -1)]
with grpc.insecure_channel(sys.argv[1], options=options) as ch:
    lookup = ch.unary_unary(sys.argv[3])
    spans = []
    for _ in range(2):
        began = time.monotonic()
        size = len(lookup(payload, timeout=60))
        spans.append((began, time.monotonic()))
print(json.dumps({"spans": spans, "size": size}))
"""


def test_grpc_a_large_request_does_not_hold_up_other_calls(
    roomy: RunningServer, tmp_path: Path
) -> None:
    """While a request of 100,000 rows x 10 features is decoded, looked up and encoded,
    the other calls and health checks keep being answered: the longest wait between two
    answers is a small part of the large call's time (both measured in this run)."""
    payload = tmp_path / "big.bin"
    payload.write_bytes(request(REFS, drivers(STORED)))
    probe = Probe(roomy.target, [], [])
    stop, started = threading.Event(), threading.Event()
    with ThreadPoolExecutor(1) as pool:
        probing = pool.submit(probe.run, stop, started)
        try:
            assert started.wait(30), "the probe got no answer"
            argv = [sys.executable, "-c", BIG_CLIENT, roomy.target, str(payload), METHOD]
            done = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=True)
        finally:
            stop.set()
            probing.result()
    big = json.loads(done.stdout)
    assert big["size"] > STORED * FEATURES * 10  # every value answered
    assert set(probe.statuses) == {"SERVING"}
    for began, ended in big["spans"]:
        during = [t for t in probe.answered if began <= t <= ended]
        waits = np.diff([began, *during, ended])
        assert max(waits) < (ended - began) / 3, (ended - began, sorted(waits)[-3:])


# --- a hung Redis under load --------------------------------------------------------------


@pytest.fixture
def own_redis(repo: Path, tmp_path: Path) -> Iterator[tuple[RunningServer, Any]]:
    """A server over the same registry and its own (empty) redis-server, which the test
    may pause."""
    port = free_port()
    proc = start_redis(port, tmp_path)
    own = write_config(
        tmp_path / "repo", f"redis://127.0.0.1:{port}/0", repo.parent / "registry.db"
    )
    try:
        with running_server(own, poll_interval_s=POLL_S, metrics_port=0) as running:
            wait_until(lambda: health(running.target) == "SERVING", "SERVING")
            yield running, proc
    finally:
        proc.send_signal(signal.SIGCONT)
        stop_redis(proc)


def wide_request(rows: int, columns: int) -> bytes:
    """`rows` entity rows with a driver_id and `columns` string columns no feature needs
    (a client sending its whole frame), within the default limits."""
    msg = convert.query_to_proto(OnlineQuery(REFS, drivers(rows)))
    for c in range(columns):
        values = msg.entity_columns[f"extra_{c}"].values
        for _ in range(rows):
            values.add(string_value="ab")
    return msg.SerializeToString()


def test_grpc_hung_redis_under_load_is_unavailable_before_the_deadline(
    own_redis: tuple[RunningServer, Any],
) -> None:
    """8 clients call with a 1 s deadline while Redis is frozen, 3 of them with large
    requests (2,000 rows with 60 columns no feature needs, 0.7 MB): every call ends
    UNAVAILABLE, none DEADLINE_EXCEEDED. The server's own work on the large requests
    eats neither their margin nor the others'. (The margin is at least 40 ms, so 100 ms
    deadlines end UNAVAILABLE too, unless the machine itself stalls the server.)"""
    server, redis_proc = own_redis
    small = [request(REFS, drivers(1)), request(REFS, drivers(100))]
    wide = wide_request(2000, 60)
    assert len(wide) < 2 * 1024 * 1024
    clients = 8
    channels = [channel(server.target) for _ in range(clients)]
    ready = threading.Barrier(clients)

    def calls_of_one_client(client: int) -> list[str]:
        lookup: Callable[..., bytes] = channels[client].unary_unary(METHOD)
        lookup(small[0], timeout=10)  # connected before the clock starts
        if ready.wait() == 0:
            redis_proc.send_signal(signal.SIGSTOP)  # accepts connections, never answers
        ready.wait()
        codes = []
        for i in range(3):
            try:
                lookup(wide if client < 3 else small[i % 2], timeout=1.0)
                codes.append("OK")
            except grpc.RpcError as exc:
                codes.append(exc.code().name)
        return codes

    before = counted(server, "UNAVAILABLE")
    try:
        with ThreadPoolExecutor(clients) as pool:
            codes = [c for codes in pool.map(calls_of_one_client, range(clients)) for c in codes]
    finally:
        redis_proc.send_signal(signal.SIGCONT)
        for ch in channels:
            ch.close()
    assert codes == ["UNAVAILABLE"] * len(codes)
    assert counted(server, "UNAVAILABLE") == before + len(codes)
