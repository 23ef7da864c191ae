"""HTTP/JSON serving (`skewless serve --http-port`) against real Redis and materialized
data: the same answers as gRPC from the same server, in Feast's JSON shapes; every error
mapping; /health; HTTPS with the gRPC port's certificate."""

from __future__ import annotations

import asyncio
import base64
import json
import math
import re
import shutil
import signal
import socket
import ssl
import textwrap
import threading
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import grpc
import httpx
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import redis
from pyspark.sql import SparkSession

from skewless import FeatureStore
from skewless.client import OnlineClient
from skewless.config import ServingConfig, TlsConfig, load_config
from skewless.errors import BindError, ConfigError
from skewless.grpc import running_server
from skewless.grpc.server import OnlineServer, RunningServer, server_credentials
from skewless.http import TlsFiles
from skewless.serving.response import FeatureStatus, OnlineResponse
from skewless.serving.service import OnlineService
from tests.integration import test_grpc_tls as tls
from tests.integration.redis_server import free_port
from tests.integration.test_grpc_server import (
    DEFS,
    DRIVERS,
    NOW,
    STATS_REFS,
    STATS_ROWS,
    STATS_SCHEMA,
    ZONE_ROWS,
    ZONES,
    ZONES_SCHEMA,
    ago,
    scrape,
    start_redis,
    stop_redis,
    wait_until,
    write_repo,
)

POLL_S = 0.2
LOOKUP = "/get-online-features"
ZERO_TIME = "1970-01-01T00:00:00Z"


@pytest.fixture(scope="module")
def store(
    tmp_path_factory: pytest.TempPathFactory, spark: SparkSession, redis_url: str
) -> FeatureStore:
    repo = tmp_path_factory.mktemp("http_repo")
    write_repo(repo, redis_url)
    (repo / "defs.py").write_text(textwrap.dedent(DEFS))
    pq.write_table(
        pa.Table.from_pylist(STATS_ROWS, schema=STATS_SCHEMA), repo / "data/stats.parquet"
    )
    pq.write_table(
        pa.Table.from_pylist(ZONE_ROWS, schema=ZONES_SCHEMA), repo / "data/zones.parquet"
    )
    fs = FeatureStore(repo)
    fs.apply()
    fs.materialize(None, NOW)
    return fs


@pytest.fixture(scope="module")
def server(store: FeatureStore) -> Iterator[RunningServer]:
    with running_server(
        store.repo_path, poll_interval_s=POLL_S, http_port=0, metrics_port=0
    ) as running:
        assert running.http_url is not None
        wait_until(lambda: http_health(running.http_url) == 200, "the server to be SERVING")
        yield running


@pytest.fixture(scope="module")
def http(server: RunningServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.http_url or "", timeout=10) as client:
        yield client


@pytest.fixture(scope="module")
def grpc_client(server: RunningServer) -> Iterator[OnlineClient]:
    with OnlineClient(server.target) as c:
        yield c


# --- helpers -----------------------------------------------------------------------------


def http_health(url: str | None) -> int:
    try:
        return httpx.get(f"{url}/health", timeout=5).status_code
    except httpx.TransportError:
        return 0


def columns(rows: list[dict[str, Any]]) -> dict[str, list[Any]]:
    """Entity rows as Feast's entity columns (every row has every key here)."""
    keys = list(dict.fromkeys(k for row in rows for k in row))
    return {k: [row[k] for row in rows] for k in keys}


def rfc3339(t: datetime) -> str:
    """Protobuf's JSON form of a Timestamp, written independently of skewless.http."""
    text = t.strftime("%Y-%m-%dT%H:%M:%S")
    if t.microsecond == 0:
        return text + "Z"
    if t.microsecond % 1000 == 0:
        return f"{text}.{t.microsecond // 1000:03d}Z"
    return f"{text}.{t.microsecond:06d}Z"


def as_json(value: Any) -> Any:
    if isinstance(value, list):
        return [as_json(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    if isinstance(value, datetime):
        return rfc3339(value)
    return value


STATUS = {
    FeatureStatus.PRESENT: "PRESENT",
    FeatureStatus.NOT_FOUND: "NOT_FOUND",
    FeatureStatus.OUTSIDE_MAX_AGE: "OUTSIDE_MAX_AGE",
}


def feast_json(got: OnlineResponse, entities: dict[str, list[Any]]) -> dict[str, Any]:
    """The Feast response JSON of a gRPC answer for the entity columns `entities`."""
    rows = len(got.entity_rows)
    keys = [k for k in entities if k in got.join_keys]
    results = [
        {
            "values": entities[k],
            "statuses": ["PRESENT"] * rows,
            "event_timestamps": [ZERO_TIME] * rows,
        }
        for k in keys
    ]
    for name in got.features:
        results.append(
            {
                "values": [as_json(v) for v in got.values[name]],
                "statuses": [STATUS[s] for s in got.statuses[name]],
                "event_timestamps": [
                    ZERO_TIME if t is None else rfc3339(t) for t in got.event_timestamps[name]
                ],
            }
        )
    return {"metadata": {"feature_names": keys + got.features}, "results": results}


def lookup(http: httpx.Client, body: dict[str, Any]) -> dict[str, Any]:
    reply = http.post(LOOKUP, json=body)
    assert reply.status_code == 200, reply.text
    assert reply.headers["content-type"] == "application/json"
    document: dict[str, Any] = reply.json()
    return document


def same_as_grpc(
    http: httpx.Client,
    grpc_client: OnlineClient,
    features: list[str] | str,
    rows: list[dict[str, Any]],
    *,
    full_feature_names: bool = False,
) -> dict[str, Any]:
    entities = columns(rows)
    body: dict[str, Any] = {"entities": entities, "full_feature_names": full_feature_names}
    body["feature_service" if isinstance(features, str) else "features"] = features
    got = lookup(http, body)
    want = grpc_client.get_online_features(features, rows, full_feature_names=full_feature_names)
    assert got == feast_json(want, entities)
    return got


def column(document: dict[str, Any], name: str) -> dict[str, list[Any]]:
    names: list[str] = document["metadata"]["feature_names"]
    result: dict[str, list[Any]] = document["results"][names.index(name)]
    return result


# --- answers ------------------------------------------------------------------------------


def test_http_answers_what_grpc_answers_for_every_type_and_status(
    http: httpx.Client, grpc_client: OnlineClient
) -> None:
    got = same_as_grpc(http, grpc_client, STATS_REFS, DRIVERS)
    assert got["metadata"]["feature_names"] == ["driver_id"] + [r.split(":")[1] for r in STATS_REFS]
    assert column(got, "driver_id") == {
        "values": [1, 2, 3, 99, 1],
        "statuses": ["PRESENT"] * 5,
        "event_timestamps": [ZERO_TIME] * 5,
    }
    trips = column(got, "trips")
    assert trips["statuses"] == ["PRESENT", "OUTSIDE_MAX_AGE", "PRESENT", "NOT_FOUND", "PRESENT"]
    # a stale row keeps its (too old) event time, an unknown one has the epoch's
    assert trips["event_timestamps"][1] == rfc3339(ago(180))
    assert trips["event_timestamps"][3] == ZERO_TIME
    assert trips["values"] == [12, None, None, None, 12]  # stale withheld, stored null, unknown
    first = {name: column(got, name)["values"][0] for name in got["metadata"]["feature_names"]}
    assert first == {
        "driver_id": 1,
        "rating": 4.5,
        "trips": 12,
        "small": -3,
        "active": True,
        "ratio": pytest.approx(0.1),
        "name": "ann",
        "tags": ["x", None],
        "blob": "AP8=",  # b"\x00\xff", base64
        "seen": rfc3339(ago(600)),
    }
    assert column(got, "rating")["values"][2] == "NaN"
    assert column(got, "tags")["values"][2] == []


def test_http_composite_keys_full_names_and_services_answer_what_grpc_answers(
    http: httpx.Client, grpc_client: OnlineClient
) -> None:
    got = same_as_grpc(
        http, grpc_client, ["zones:scores", "zones:demand"], ZONES, full_feature_names=True
    )
    assert got["metadata"]["feature_names"] == ["city", "zone", "zones__scores", "zones__demand"]
    assert column(got, "zones__demand")["values"] == [1.5, 3.0, None, 2.0]
    assert column(got, "zones__scores")["values"][0] == [0.5, None]
    rows = [{**d, **z} for d, z in zip(DRIVERS, ZONES, strict=False)]
    got = same_as_grpc(http, grpc_client, "svc", rows)
    assert got["metadata"]["feature_names"] == [
        "driver_id",
        "city",
        "zone",
        "rating",
        "trips",
        "demand",
    ]


@pytest.mark.parametrize("count", [1, 100])
def test_http_answers_what_grpc_answers_for_1_and_100_entities(
    http: httpx.Client, grpc_client: OnlineClient, count: int
) -> None:
    rows = [{"driver_id": i % 5} for i in range(count)]  # 1, 2, 3 stored; 0, 4 not
    got = same_as_grpc(http, grpc_client, ["stats:rating", "stats:trips", "stats:seen"], rows)
    assert len(column(got, "rating")["values"]) == count


def test_http_join_keys_no_feature_needs_are_not_echoed(http: httpx.Client) -> None:
    got = lookup(http, {"features": ["stats:trips"], "entities": {"note": ["a"], "driver_id": [1]}})
    assert got["metadata"]["feature_names"] == ["driver_id", "trips"]


def test_http_null_keys_find_nothing(http: httpx.Client, grpc_client: OnlineClient) -> None:
    got = same_as_grpc(http, grpc_client, ["stats:trips"], [{"driver_id": None}, {"driver_id": 1}])
    assert column(got, "trips")["statuses"] == ["NOT_FOUND", "PRESENT"]


def test_http_no_rows_is_an_empty_answer(http: httpx.Client) -> None:
    got = lookup(http, {"features": ["stats:trips"], "entities": {"driver_id": []}})
    assert got == {
        "metadata": {"feature_names": ["driver_id", "trips"]},
        "results": [
            {"values": [], "statuses": [], "event_timestamps": []},
            {"values": [], "statuses": [], "event_timestamps": []},
        ],
    }


# --- health -------------------------------------------------------------------------------


def test_http_metrics_count_and_time_lookups_by_http_status(
    server: RunningServer, http: httpx.Client
) -> None:
    method = ("method", "POST /get-online-features")

    def count(metrics: dict[Any, float], status: str) -> float:
        key = ("skewless_online_requests_total", tuple(sorted((method, ("code", status)))))
        return metrics.get(key, 0.0)

    before = scrape(server)
    for _ in range(2):
        lookup(http, {"features": ["stats:trips"], "entities": {"driver_id": [1, 2]}})
    assert http.post("/get-online-features", json={"features": ["stats:nope"]}).status_code == 400
    after = scrape(server)
    assert count(after, "200") - count(before, "200") == 2
    assert count(after, "400") - count(before, "400") == 1
    seconds = ("skewless_online_request_seconds_count", (method,))
    assert after[seconds] - before.get(seconds, 0.0) == 3


def test_http_and_grpc_calls_share_one_inflight_byte_count(
    server: RunningServer, http: httpx.Client, grpc_client: OnlineClient
) -> None:
    inflight = server.server.backend.inflight
    body = {"features": ["stats:trips"], "entities": {"driver_id": [1]}}
    with inflight.hold(inflight.limit):  # as if calls of either transport held it all
        refused = http.post("/get-online-features", json=body)
        assert refused.status_code == 429
        assert "max_inflight_request_bytes" in refused.json()["message"]
        with pytest.raises(grpc.RpcError) as info:
            grpc_client.get_online_features(["stats:trips"], [{"driver_id": 1}])
        assert info.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert lookup(http, body)["results"][1]["statuses"] == ["PRESENT"]


def test_http_health_is_serving(http: httpx.Client) -> None:
    reply = http.get("/health")
    assert reply.status_code == 200
    assert reply.json() == {"status": "SERVING"}


# --- errors -------------------------------------------------------------------------------


def error(reply: httpx.Response, status: int) -> tuple[str, str]:
    assert reply.status_code == status, reply.text
    body = reply.json()
    assert set(body) == {"error", "message"}
    return body["error"], body["message"]


@pytest.mark.parametrize(
    ("body", "kind", "named"),
    [
        (
            {"features": ["stats:bogus"], "entities": {"driver_id": [1]}},
            "FeatureNotFoundError",
            "'bogus'",
        ),
        (
            {"features": ["nope:rating"], "entities": {"driver_id": [1]}},
            "FeatureViewNotFoundError",
            "'nope'",
        ),
        (
            {"feature_service": "no_such", "entities": {"driver_id": [1]}},
            "FeatureServiceNotFoundError",
            "'no_such'",
        ),
        (
            {"features": ["stats"], "entities": {"driver_id": [1]}},
            "InvalidFeatureRefError",
            "'stats'",
        ),
        (
            {"features": ["zones:demand"], "entities": {"city": ["paris"]}},
            "EntityRowsError",
            "'zone'",
        ),
        (
            {"features": ["stats:trips"], "entities": {"driver_id": ["1"]}},
            "EntityRowsError",
            "'driver_id'",
        ),
        (
            {"features": ["zones:demand"], "entities": {"city": ["paris"], "zone": [1.5]}},
            "EntityRowsError",
            "'zone'",
        ),
        (
            {"features": ["stats:trips"], "entities": {"driver_id": [[1]]}},
            "EntityRowsError",
            "'driver_id'",
        ),
        (
            {"features": ["stats:trips"], "entities": {"driver_id": [2**64]}},
            "EntityRowsError",
            "'driver_id'",
        ),
        # shapes
        ({"features": ["stats:trips"], "entities": [1, 2]}, "MalformedRequestError", "'entities'"),
        (
            {"features": ["stats:trips"], "entities": {"driver_id": 1}},
            "MalformedRequestError",
            "'entities.driver_id'",
        ),
        ({"features": ["stats:trips"]}, "MalformedRequestError", "'entities'"),
        (
            {"features": ["zones:demand"], "entities": {"city": ["paris", "lyon"], "zone": [1]}},
            "EntityRowsError",
            "'zone' has 1, 'city' has 2",
        ),
        (
            {"features": "stats:trips", "entities": {"driver_id": [1]}},
            "MalformedRequestError",
            "'features'",
        ),
        ({"features": [1], "entities": {"driver_id": [1]}}, "MalformedRequestError", "'features'"),
        ({"entities": {"driver_id": [1]}}, "MalformedRequestError", "'features'"),
        (
            {"features": ["stats:trips"], "feature_service": "svc", "entities": {"driver_id": [1]}},
            "MalformedRequestError",
            "'feature_service'",
        ),
        (
            {"feature_service": ["svc"], "entities": {"driver_id": [1]}},
            "MalformedRequestError",
            "'feature_service'",
        ),
        (
            {
                "features": ["stats:trips"],
                "entities": {"driver_id": [1]},
                "full_feature_names": "yes",
            },
            "MalformedRequestError",
            "'full_feature_names'",
        ),
        (
            {"features": ["stats:trips"], "entities": {"driver_id": [1]}, "query_embedding": [0.1]},
            "MalformedRequestError",
            "'query_embedding'",
        ),
        ([1, 2], "MalformedRequestError", "must be a JSON object"),
    ],
)
def test_http_bad_requests_are_400_naming_the_culprit(
    http: httpx.Client, body: Any, kind: str, named: str
) -> None:
    got_kind, message = error(http.post(LOOKUP, json=body), 400)
    assert got_kind == kind
    assert named in message


@pytest.mark.parametrize("body", [b"{not json", b"", b"\xff\xfe\x00", b'{"features": [' * 100_000])
def test_http_malformed_json_is_400(http: httpx.Client, body: bytes) -> None:
    kind, message = error(http.post(LOOKUP, content=body), 400)
    assert kind == "MalformedRequestError"
    assert message.startswith("the request body: not JSON")


def test_http_entity_rows_refused_with_feature_stores_message(
    store: FeatureStore, http: httpx.Client
) -> None:
    body = {"features": ["stats:trips"], "entities": {"driver_id": [1, "1001"]}}
    _, message = error(http.post(LOOKUP, json=body), 400)
    assert message == (
        "entity row 1: join key 'driver_id' is a str ('1001'), but feature view 'stats' "
        "declares it Int64: give an int"
    )


def test_http_unknown_paths_and_methods(http: httpx.Client) -> None:
    assert http.get(LOOKUP).status_code == 405
    assert http.post("/nope", json={}).status_code == 404


# --- limits -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def small(store: FeatureStore) -> Iterator[httpx.Client]:
    config = load_config(store.repo_path)
    limits = ServingConfig(max_request_bytes=400, max_entity_rows=20)
    config = config.model_copy(update={"serving": limits})
    with (
        running_server(
            store.repo_path, poll_interval_s=POLL_S, http_port=0, config=config
        ) as running,
        httpx.Client(base_url=running.http_url or "", timeout=10) as client,
    ):
        wait_until(lambda: http_health(running.http_url) == 200, "SERVING")
        yield client


def test_http_over_max_request_bytes_is_413(small: httpx.Client) -> None:
    body = {"features": ["stats:trips"], "entities": {"driver_id": [1], "note": ["x" * 400]}}
    kind, message = error(small.post(LOOKUP, json=body), 413)
    assert kind == "RequestTooLargeError"
    assert "serving.max_request_bytes = 400" in message


def test_http_over_max_request_bytes_without_a_length_is_413(small: httpx.Client) -> None:
    """A chunked body (no Content-Length) is refused once what arrived passes the limit."""
    raw = json.dumps(
        {"features": ["stats:trips"], "entities": {"driver_id": [1], "n": ["x" * 400]}}
    )

    def chunks() -> Iterator[bytes]:
        data = raw.encode()
        for i in range(0, len(data), 64):
            yield data[i : i + 64]

    reply = small.post(LOOKUP, content=chunks())
    assert "content-length" not in reply.request.headers
    _, message = error(reply, 413)
    assert "serving.max_request_bytes = 400" in message


def test_http_over_max_entity_rows_is_413(small: httpx.Client) -> None:
    body = {"features": ["stats:trips"], "entities": {"driver_id": [1] * 21}}
    _, message = error(small.post(LOOKUP, json=body), 413)
    assert "serving.max_entity_rows = 20" in message
    assert small.post(LOOKUP, json={**body, "entities": {"driver_id": [1] * 20}}).status_code == 200


# --- Redis down ---------------------------------------------------------------------------


def test_http_redis_down_is_503_and_health_follows(store: FeatureStore, tmp_path: Path) -> None:
    port = free_port()
    proc = start_redis(port, tmp_path)
    repo = tmp_path / "repo"
    write_repo(repo, f"redis://127.0.0.1:{port}/0", registry=store.repo_path / "data/registry.db")
    body = {"features": ["stats:trips"], "entities": {"driver_id": [1, 2]}}
    try:
        with (
            running_server(repo, poll_interval_s=POLL_S, http_port=0) as running,
            httpx.Client(base_url=running.http_url or "", timeout=10) as client,
        ):
            wait_until(lambda: client.get("/health").status_code == 200, "SERVING")
            assert column(lookup(client, body), "trips")["statuses"] == ["NOT_FOUND"] * 2
            stop_redis(proc)
            kind, message = error(client.post(LOOKUP, json=body), 503)
            assert kind == "OnlineStoreUnavailableError"
            assert message.startswith("the online store is unavailable")
            wait_until(lambda: client.get("/health").status_code == 503, "NOT_SERVING")
            assert client.get("/health").json() == {"status": "NOT_SERVING"}
            proc = start_redis(port, tmp_path)
            wait_until(lambda: client.get("/health").status_code == 200, "SERVING again")
            assert column(lookup(client, body), "trips")["statuses"] == ["NOT_FOUND"] * 2
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGCONT)
            stop_redis(proc)


# --- binding ------------------------------------------------------------------------------


def test_http_a_taken_port_is_a_bind_error_and_nothing_keeps_running(store: FeatureStore) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        before = set(threading.enumerate())
        with (
            pytest.raises(BindError, match=f"127.0.0.1:{port} for HTTP"),
            running_server(store.repo_path, poll_interval_s=POLL_S, http_port=port),
        ):
            pass
    left = set(threading.enumerate()) - before
    assert not left, sorted(t.name for t in left)


def test_http_is_not_served_without_a_port(store: FeatureStore) -> None:
    with running_server(store.repo_path, poll_interval_s=POLL_S) as running:
        assert running.http_port is None
        assert running.http_url is None


# --- TLS ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def http_certs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if shutil.which("openssl") is None:
        pytest.skip("needs openssl")
    certs = tmp_path_factory.mktemp("http_certs")
    tls.authority("ca", "skewless test CA", certs)
    tls.issue(certs, "server", server=True)
    tls.issue(certs, "client", server=False)
    return certs


def test_https_with_the_grpc_ports_certificate_and_client_ca(
    tmp_path_factory: pytest.TempPathFactory, http_certs: Path, redis_url: str
) -> None:
    certs = http_certs
    repo = tls.make_repo(
        tmp_path_factory.mktemp("https"), redis_url, tls.tls_section(certs, mutual=True)
    )
    trusting = ssl.create_default_context(cafile=str(certs / "ca.pem"))
    with running_server(repo, http_port=0) as running:
        assert running.http_url is not None and running.http_url.startswith("https://")
        body = {"features": ["rating:score"], "entities": {"driver_id": [1, 2]}}
        with pytest.raises(httpx.TransportError):  # no client certificate: refused
            httpx.post(f"{running.http_url}{LOOKUP}", json=body, verify=trusting, timeout=5)
        trusting.load_cert_chain(str(certs / "client.pem"), str(certs / "client.key"))
        reply = httpx.post(f"{running.http_url}{LOOKUP}", json=body, verify=trusting, timeout=5)
        assert reply.status_code == 200
        assert column(reply.json(), "score")["values"] == [4.5, 3.0]


def listening(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


def test_https_with_a_key_not_the_certificates_is_a_config_error_and_nothing_runs(
    tmp_path_factory: pytest.TempPathFactory, http_certs: Path, redis_url: str
) -> None:
    section = tls.tls_section(http_certs, mutual=False).replace("server.key", "client.key")
    repo = tls.make_repo(tmp_path_factory.mktemp("mismatched"), redis_url, section)
    ports = {"gRPC": free_port(), "HTTP": free_port(), "metrics": free_port()}
    before = set(threading.enumerate())
    with (
        pytest.raises(ConfigError) as info,
        running_server(
            repo, port=ports["gRPC"], http_port=ports["HTTP"], metrics_port=ports["metrics"]
        ),
    ):
        pass
    message = str(info.value)
    assert f"serving.tls.key_file: {http_certs / 'client.key'} is not the private key" in message
    assert f"serving.tls.cert_file's certificate ({http_certs / 'server.pem'})" in message
    left = set(threading.enumerate()) - before
    assert not left, sorted(t.name for t in left)
    assert not [name for name, port in ports.items() if listening(port)]


@pytest.mark.parametrize(
    ("files", "names"),
    [
        (("client.ext", "server.key", None), "serving.tls.cert_file: {certs}/client.ext holds no"),
        (("server.pem", "server.csr", None), "serving.tls.key_file: {certs}/server.csr holds no"),
        (("server.pem", "client.key", None), "serving.tls.key_file: {certs}/client.key is not"),
        (("server.pem", "server.key", "ca.key"), "serving.tls.client_ca_file: {certs}/ca.key"),
    ],
    ids=["cert-not-pem", "key-not-pem", "key-not-the-certificates", "client-ca-not-pem"],
)
def test_tls_files_that_are_not_what_their_key_says_are_config_errors(
    http_certs: Path, files: tuple[str, str, str | None], names: str
) -> None:
    cert, key, client_ca = files
    config = TlsConfig(cert_file=cert, key_file=key, client_ca_file=client_ca)
    with pytest.raises(ConfigError, match=re.escape(names.format(certs=http_certs))):
        server_credentials(http_certs, config)
    assert server_credentials(http_certs, TlsConfig(cert_file="server.pem", key_file="server.key"))


def test_http_failing_to_start_stops_grpc_metrics_and_redis(
    store: FeatureStore, http_certs: Path, redis_url: str
) -> None:
    """Whatever the HTTP server raises when it starts (here its ssl module refusing a key
    that is not the certificate's, as when a file changed after the config was checked),
    the gRPC server, /metrics and the Redis connections already opened are closed, and
    the error propagates."""
    root = store.repo_path
    ports = {"gRPC": free_port(), "HTTP": free_port(), "metrics": free_port()}
    server = OnlineServer(
        OnlineService.from_repo(root, load_config(root)),
        port=ports["gRPC"],
        http_port=ports["HTTP"],
        metrics_port=ports["metrics"],
        poll_interval_s=POLL_S,
        http_tls=TlsFiles(http_certs / "server.pem", http_certs / "client.key"),
    )
    serving: list[str] = []

    async def start() -> None:
        with pytest.raises(ssl.SSLError, match="KEY_VALUES_MISMATCH"):
            await server.start()
        serving.extend(name for name, port in ports.items() if listening(port))

    with redis.Redis.from_url(redis_url) as probe:
        clients = len(probe.client_list())
        before = set(threading.enumerate())
        asyncio.run(start())
        assert serving == []
        left = set(threading.enumerate()) - before
        assert not left, sorted(t.name for t in left)
        wait_until(lambda: len(probe.client_list()) == clients, "its Redis connection to close")
