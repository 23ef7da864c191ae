"""The gRPC online server against real Redis: answers equal FeatureStore's, health,
reflection, status codes, Redis outages and live reload of applied definitions."""

from __future__ import annotations

import math
import shutil
import signal
import socket
import subprocess
import textwrap
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import grpc
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import redis
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from prometheus_client.parser import text_string_to_metric_families
from pyspark.sql import SparkSession

from skewless import FeatureStore
from skewless.client import OnlineClient
from skewless.errors import BindError, EntityRowsError
from skewless.grpc import running_server
from skewless.grpc.server import RunningServer
from skewless.registry import SqliteRegistry
from skewless.serving.response import FeatureStatus, OnlineResponse
from skewless.timeutil import utc_micros
from tests.integration.redis_server import free_port

NOW = datetime.now(UTC).replace(microsecond=0)
SERVICE = "skewless.serving.v1.OnlineServing"
POLL_S = 0.2  # the servers' health/registry poll in these tests (production: 1 s)

DEFS = """
from datetime import timedelta
from skewless import *

driver = Entity("driver", join_keys=["driver_id"])
trip_zone = Entity("trip_zone", join_keys=["city", "zone"])

stats = FeatureView(
    "stats",
    entities=[driver],
    schema=[
        Field("driver_id", Int64),
        Field("rating", Float64),
        Field("trips", Int64),
        Field("small", Int32),
        Field("active", Bool),
        Field("ratio", Float32),
        Field("name", String),
        Field("tags", Array(String)),
        Field("blob", Bytes),
        Field("seen", UnixTimestamp),
    ],
    source=FileSource(
        "data/stats.parquet", timestamp_field="ts", created_timestamp_column="created"
    ),
    ttl=timedelta(hours=1),
)

zones = FeatureView(
    "zones",
    entities=[trip_zone],
    schema=[
        Field("city", String),
        Field("zone", Int64),
        Field("demand", Float64),
        Field("scores", Array(Float32)),
    ],
    source=FileSource("data/zones.parquet", timestamp_field="ts"),
)

svc = FeatureService("svc", features=[stats[["rating", "trips"]], zones[["demand"]]])
"""

EXTRA_VIEW = """
extra = FeatureView(
    "extra",
    entities=[driver],
    schema=[Field("trips", Int64)],
    source=FileSource("data/stats.parquet", timestamp_field="ts"),
)
"""

TS = pa.timestamp("us", tz="UTC")
STATS_SCHEMA = pa.schema(
    [
        ("driver_id", pa.int64()),
        ("ts", TS),
        ("created", TS),
        ("rating", pa.float64()),
        ("trips", pa.int64()),
        ("small", pa.int32()),
        ("active", pa.bool_()),
        ("ratio", pa.float32()),
        ("name", pa.string()),
        ("tags", pa.list_(pa.string())),
        ("blob", pa.binary()),
        ("seen", TS),
    ]
)
ZONES_SCHEMA = pa.schema(
    [
        ("city", pa.string()),
        ("zone", pa.int64()),
        ("ts", TS),
        ("demand", pa.float64()),
        ("scores", pa.list_(pa.float32())),
    ]
)


def ago(minutes: float) -> datetime:
    return NOW - timedelta(minutes=minutes)


def stats_row(driver_id: int, at: datetime, **values: Any) -> dict[str, Any]:
    return {"driver_id": driver_id, "ts": at, "created": at, **values}


STATS_ROWS = [
    stats_row(1, ago(50), rating=3.0, trips=1),  # older: loses to the next row
    stats_row(
        1,
        ago(20),
        rating=4.5,
        trips=12,
        small=-3,
        active=True,
        ratio=0.1,
        name="ann",
        tags=["x", None],
        blob=b"\x00\xff",
        seen=ago(600),
    ),
    stats_row(2, ago(180), rating=2.0, trips=5),  # older than the 1 h ttl: outside max age
    stats_row(3, ago(5), rating=float("nan"), trips=None, tags=[]),  # NaN and nulls stay
]
ZONE_ROWS = [
    {"city": "paris", "zone": 1, "ts": ago(1440), "demand": 1.5, "scores": [0.5, None]},
    {"city": "paris", "zone": 2, "ts": ago(30), "demand": 2.0, "scores": None},
    {"city": "lyon", "zone": 1, "ts": ago(30), "demand": 3.0, "scores": []},
]

STATS_REFS = [
    "stats:rating",
    "stats:trips",
    "stats:small",
    "stats:active",
    "stats:ratio",
    "stats:name",
    "stats:tags",
    "stats:blob",
    "stats:seen",
]
DRIVERS = [{"driver_id": d} for d in (1, 2, 3, 99, 1)]
ZONES = [
    {"city": "paris", "zone": 1},
    {"city": "lyon", "zone": 1},
    {"city": "lyon", "zone": 2},  # unknown
    {"city": "paris", "zone": 2},
]


def write_repo(repo: Path, redis_url: str, registry: Path | None = None) -> None:
    (repo / "data").mkdir(parents=True, exist_ok=True)
    lines = ["project: srv", f"online_store: {{type: redis, url: '{redis_url}'}}"]
    if registry is not None:
        lines.append(f"registry: '{registry}'")
    (repo / "feature_store.yaml").write_text("\n".join(lines) + "\n")


@pytest.fixture(scope="module")
def store(
    tmp_path_factory: pytest.TempPathFactory, spark: SparkSession, redis_url: str
) -> FeatureStore:
    repo = tmp_path_factory.mktemp("grpc_repo")
    write_repo(repo, redis_url)
    (repo / "defs.py").write_text(textwrap.dedent(DEFS))
    stats = pa.Table.from_pylist(STATS_ROWS, schema=STATS_SCHEMA)
    pq.write_table(stats, repo / "data/stats.parquet")
    pq.write_table(
        pa.Table.from_pylist(ZONE_ROWS, schema=ZONES_SCHEMA), repo / "data/zones.parquet"
    )
    fs = FeatureStore(repo)
    fs.apply()
    fs.materialize(None, NOW)
    return fs


@pytest.fixture(scope="module")
def server(store: FeatureStore) -> Iterator[RunningServer]:
    with running_server(store.repo_path, poll_interval_s=POLL_S, metrics_port=0) as running:
        wait_until(lambda: health(running.target) == "SERVING", "the server to be SERVING")
        yield running


@pytest.fixture(scope="module")
def client(server: RunningServer) -> Iterator[OnlineClient]:
    with OnlineClient(server.target) as c:
        yield c


# --- helpers -----------------------------------------------------------------------------


def wait_until(condition: Callable[[], bool], what: str, timeout_s: float = 30.0) -> None:
    """Poll until `condition` holds (a correctness wait, never a speed assertion)."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def health(target: str, service: str = "") -> str:
    with grpc.insecure_channel(target) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        reply = stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=5)
    return health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)


def scrape(server: RunningServer) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """The server's /metrics as {(sample name, sorted labels): value}."""
    assert server.metrics_port is not None
    url = f"http://127.0.0.1:{server.metrics_port}/metrics"
    with urllib.request.urlopen(url, timeout=5) as reply:
        text = reply.read().decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def rpc_error(call: Callable[[], object]) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as info:
        call()
    return info.value


def same(a: Any, b: Any) -> bool:
    """Equal, NaN equal to NaN, and of the same type (1 is not 1.0, True or b"1")."""
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, float) and isinstance(b, float):
        return (math.isnan(a) and math.isnan(b)) or a == b
    return bool(a == b) and type(a) is type(b)


def assert_same_response(got: OnlineResponse, want: OnlineResponse) -> None:
    assert got.join_keys == want.join_keys
    assert got.entity_rows == want.entity_rows
    assert got.features == want.features
    for name in want.features:
        assert same(got.values[name], want.values[name]), name
        assert got.statuses[name] == want.statuses[name], name
        assert got.event_timestamps[name] == want.event_timestamps[name], name
    pd.testing.assert_frame_equal(got.to_pandas(), want.to_pandas())


# --- answers ------------------------------------------------------------------------------


def test_grpc_answers_equal_feature_store_for_every_type_and_status(
    store: FeatureStore, client: OnlineClient
) -> None:
    got = client.get_online_features(STATS_REFS, DRIVERS)
    want = store.get_online_features(STATS_REFS, DRIVERS)
    assert_same_response(got, want)
    status = {row["driver_id"]: s for row, s in zip(DRIVERS, got.statuses["trips"], strict=True)}
    assert status == {
        1: FeatureStatus.PRESENT,
        2: FeatureStatus.OUTSIDE_MAX_AGE,
        3: FeatureStatus.PRESENT,
        99: FeatureStatus.NOT_FOUND,
    }
    first = {name: got.values[name][0] for name in got.features}
    assert first == {
        "rating": 4.5,
        "trips": 12,
        "small": -3,
        "active": True,
        "ratio": pytest.approx(0.1),
        "name": "ann",
        "tags": ["x", None],
        "blob": b"\x00\xff",
        "seen": ago(600),  # microseconds on the wire, a UTC datetime as offline gives it
    }
    assert got.event_timestamps["rating"][0] == ago(20)
    assert got.event_timestamps["rating"][1] == ago(180)  # stored, too old, value withheld
    assert got.values["rating"][1] is None
    assert got.event_timestamps["rating"][3] is None
    assert math.isnan(got.values["rating"][2])
    assert got.values["trips"][2] is None
    assert got.values["tags"][2] == []


def test_timestamp_features_online_equal_the_training_set(
    store: FeatureStore, client: OnlineClient
) -> None:
    """A UnixTimestamp feature is the same Python value for training and for serving:
    an aware UTC datetime, from get_historical_features, FeatureStore's online lookup and
    the gRPC client alike (no integer microseconds for one and datetimes for the other)."""
    rows = [{"driver_id": 1}, {"driver_id": 99}]
    entity = pd.DataFrame({"driver_id": [1, 99], "event_timestamp": [NOW, NOW]})
    offline = store.get_historical_features(entity, ["stats:seen"]).to_arrow().to_pylist()
    served = store.get_online_features(["stats:seen"], rows).values["seen"]
    over_grpc = client.get_online_features(["stats:seen"], rows).values["seen"]
    assert [r["seen"] for r in offline] == served == over_grpc == [ago(600), None]
    assert served[0].tzinfo is not None and served[0].utcoffset() == timedelta(0)


def test_grpc_composite_keys_full_names_and_services_equal_feature_store(
    store: FeatureStore, client: OnlineClient
) -> None:
    refs = ["zones:scores", "zones:demand"]
    got = client.get_online_features(refs, ZONES, full_feature_names=True)
    assert got.features == ["zones__scores", "zones__demand"]
    assert_same_response(got, store.get_online_features(refs, ZONES, full_feature_names=True))
    assert got.values["zones__demand"] == [1.5, 3.0, None, 2.0]
    assert got.statuses["zones__demand"][2] is FeatureStatus.NOT_FOUND
    rows = [{**d, **z} for d, z in zip(DRIVERS, ZONES, strict=False)]
    assert_same_response(
        client.get_online_features("svc", rows), store.get_online_features("svc", rows)
    )
    service = store.get_feature_service("svc")
    assert_same_response(
        client.get_online_features(service, rows), store.get_online_features(service, rows)
    )


def test_grpc_no_rows_is_an_empty_answer(store: FeatureStore, client: OnlineClient) -> None:
    assert_same_response(
        client.get_online_features(["stats:trips"], []),
        store.get_online_features(["stats:trips"], []),
    )


# --- health and reflection ------------------------------------------------------------------


def test_grpc_health_is_serving(server: RunningServer) -> None:
    assert health(server.target) == "SERVING"
    assert health(server.target, SERVICE) == "SERVING"


def test_grpc_reflection_lists_the_service(server: RunningServer) -> None:
    with grpc.insecure_channel(server.target) as channel:
        stub = reflection_pb2_grpc.ServerReflectionStub(channel)
        request = reflection_pb2.ServerReflectionRequest(list_services="")
        (reply,) = list(stub.ServerReflectionInfo(iter([request]), timeout=5))
    names = {s.name for s in reply.list_services_response.service}
    assert {SERVICE, "grpc.health.v1.Health"} <= names


# --- errors ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("features", "rows", "named"),
    [
        (["stats:bogus"], DRIVERS, "bogus"),
        (["nope:rating"], DRIVERS, "nope"),
        ("no_such_service", DRIVERS, "no_such_service"),
        (["stats"], DRIVERS, "stats"),
        (["zones:demand"], [{"city": "paris"}], "zone"),  # missing join key
        (["stats:trips"], [{"driver_id": "1"}], "driver_id"),  # mistyped join key
        (["zones:demand"], [{"city": "paris", "zone": 1.5}], "zone"),
    ],
)
def test_grpc_bad_requests_are_invalid_argument_naming_the_culprit(
    client: OnlineClient, features: Any, rows: list[dict[str, Any]], named: str
) -> None:
    error = rpc_error(lambda: client.get_online_features(features, rows))
    assert error.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert f"'{named}'" in (error.details() or "")


# --- entity rows: what FeatureStore takes and refuses, over gRPC alike ------------------------


@pytest.mark.parametrize(
    ("features", "rows"),
    [
        # keys no feature needs, different in every row
        (
            ["stats:trips"],
            [{"driver_id": 1}, {"driver_id": 2, "city": "paris"}, {"note": b"x", "driver_id": 3}],
        ),
        # a service over views with different keys; rows list them in any order
        (
            "svc",
            [
                {"driver_id": 1, "city": "paris", "zone": 1},
                {"zone": 2, "city": "paris", "driver_id": 99, "extra": 1.5},
            ],
        ),
        # null keys find nothing
        (["stats:trips", "zones:demand"], [{"driver_id": None, "city": "lyon", "zone": None}]),
    ],
)
def test_grpc_takes_the_entity_rows_feature_store_takes(
    store: FeatureStore, client: OnlineClient, features: Any, rows: list[dict[str, Any]]
) -> None:
    assert_same_response(
        client.get_online_features(features, rows), store.get_online_features(features, rows)
    )


@pytest.mark.parametrize(
    ("features", "rows", "message"),
    [
        (
            "svc",
            [{"driver_id": 1, "city": "paris", "zone": 1}, {"driver_id": 2}],
            "entity row 1: no join key 'city' (needed by feature view 'zones')",
        ),
        (
            ["stats:trips"],
            [{"driver_id": 1}, {"driver_id": "1001"}],
            "entity row 1: join key 'driver_id' is a str ('1001'), but feature view 'stats' "
            "declares it Int64: give an int",
        ),
        # `zones` does not list `zone` in its schema: apply recorded the source's type
        (
            ["zones:demand"],
            [{"city": "paris", "zone": "1"}],
            "entity row 0: join key 'zone' is a str ('1'), but feature view 'zones' declares "
            "it Int64: give an int",
        ),
        (
            ["zones:demand"],
            [{"city": "paris", "zone": None}, {"city": "paris", "zone": [1]}],
            "entity row 1: join key 'zone' is a list ([1]), but feature view 'zones' declares "
            "it Int64: give an int",
        ),
    ],
)
def test_grpc_refuses_the_entity_rows_feature_store_refuses_with_its_message(
    store: FeatureStore,
    client: OnlineClient,
    features: Any,
    rows: list[dict[str, Any]],
    message: str,
) -> None:
    with pytest.raises(EntityRowsError) as info:
        store.get_online_features(features, rows)
    assert str(info.value) == message  # the offline entity_df's label is not online's
    error = rpc_error(lambda: client.get_online_features(features, rows))
    assert error.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert error.details() == message


# --- metrics ------------------------------------------------------------------------------

METHOD = (("method", f"/{SERVICE}/GetOnlineFeatures"),)


def calls(metrics: dict[tuple[str, tuple[tuple[str, str], ...]], float], code: str) -> float:
    labels = tuple(sorted((*METHOD, ("code", code))))
    return metrics.get(("skewless_online_requests_total", labels), 0.0)


def test_grpc_metrics_count_and_time_every_call_by_status(
    server: RunningServer, client: OnlineClient
) -> None:
    before = scrape(server)
    for _ in range(3):
        client.get_online_features(["stats:trips"], DRIVERS)
    rpc_error(lambda: client.get_online_features(["stats:nope"], DRIVERS))
    after = scrape(server)
    assert calls(after, "OK") - calls(before, "OK") == 3
    assert calls(after, "INVALID_ARGUMENT") - calls(before, "INVALID_ARGUMENT") == 1
    count = ("skewless_online_request_seconds_count", METHOD)
    assert after[count] - before.get(count, 0.0) == 4
    total = ("skewless_online_request_seconds_sum", METHOD)
    assert after[total] > before.get(total, 0.0)
    # the histogram is cumulative: every call is in the +Inf bucket, none below 0
    inf = ("skewless_online_request_seconds_bucket", tuple(sorted((*METHOD, ("le", "+Inf")))))
    assert after[inf] == after[count]
    assert after[("skewless_online_serving", ())] == 1.0


def view_gauges(metrics: dict[tuple[str, tuple[tuple[str, str], ...]], float]) -> dict[str, float]:
    """The view gauges as {"<name> <view>": value}."""
    return {
        f"{name.removeprefix('skewless_view_')} {dict(labels)['view']}": value
        for (name, labels), value in metrics.items()
        if name.startswith("skewless_view_")
    }


def test_grpc_metrics_export_each_view_freshness_read_from_the_registry_at_each_scrape(
    store: FeatureStore, redis_url: str, tmp_path: Path
) -> None:
    # A copy of the store's registry, holding the fixture's materialization of both views
    # up to NOW: this test records a run of its own without touching the others' registry.
    registry_path = tmp_path / "registry.db"
    shutil.copyfile(store.repo_path / "data/registry.db", registry_path)
    repo = tmp_path / "repo"
    write_repo(repo, redis_url, registry=registry_path)
    registry = SqliteRegistry(registry_path, "srv")
    finished = {r.view: r.finished_at.timestamp() for r in registry.materializations()}
    now = NOW + timedelta(seconds=90)
    with running_server(
        repo, poll_interval_s=POLL_S, metrics_port=0, clock=lambda: utc_micros(now)
    ) as running:
        wait_until(lambda: health(running.target) == "SERVING", "SERVING")
        metrics = scrape(running)
        assert view_gauges(metrics) == {
            "materialized_until_seconds stats": NOW.timestamp(),
            "materialized_until_seconds zones": NOW.timestamp(),
            "freshness_lag_seconds stats": 90.0,
            "freshness_lag_seconds zones": 90.0,
            "last_success_seconds stats": finished["stats"],
            "last_success_seconds zones": finished["zones"],
        }  # a view applied but never materialized (extra, once applied) has no sample
        assert metrics[("skewless_online_serving", ())] == 1.0

        # a later run of stats, recorded while the server runs: the next scrape has it
        (stats_run,) = registry.materializations("stats")
        later = datetime.fromtimestamp(finished["stats"], UTC) + timedelta(seconds=80)
        registry.record_materialization(
            replace(
                stats_run,
                kind="incremental",
                end_us=utc_micros(NOW + timedelta(seconds=60)),
                finished_at=later,
            )
        )
        gauges = view_gauges(scrape(running))
    assert gauges["materialized_until_seconds stats"] == NOW.timestamp() + 60
    assert gauges["freshness_lag_seconds stats"] == 30.0
    assert gauges["last_success_seconds stats"] == later.timestamp()
    assert gauges["freshness_lag_seconds zones"] == 90.0


@pytest.mark.parametrize("taken", ["port", "metrics_port"])
def test_grpc_a_taken_port_is_a_clear_error_and_nothing_keeps_running(
    store: FeatureStore, taken: str
) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        ports = {"port": 0, "metrics_port": 0, taken: port}
        before = set(threading.enumerate())
        with (
            pytest.raises(BindError, match=f"127.0.0.1:{port} for"),
            running_server(store.repo_path, poll_interval_s=POLL_S, **ports),
        ):
            pass
    # no thread is left behind: neither the server's event loop nor a metrics server.
    # Compared by identity: a thread an earlier test left winding down (an HTTP request
    # thread of its /metrics) may end meanwhile, which an equality of names counted.
    left = set(threading.enumerate()) - before
    assert not left, sorted(t.name for t in left)


# --- Redis outages ------------------------------------------------------------------------


def start_redis(port: int, workdir: Path) -> subprocess.Popen[bytes]:
    binary = shutil.which("redis-server")
    assert binary is not None, "redis-server is not installed: run scripts/setup.sh"
    args = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", ""]
    args += ["--appendonly", "no", "--dir", str(workdir)]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    client = redis.Redis(port=port, socket_timeout=1)

    def up() -> bool:
        try:
            return bool(client.ping())
        except redis.ConnectionError:
            assert proc.poll() is None, "redis-server exited"
            return False

    wait_until(up, f"redis-server on port {port}")
    return proc


def stop_redis(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    proc.wait(10)


@dataclass
class Outage:
    """A server over the same registry but its own redis-server, which a test may stop,
    pause and restart on the same port."""

    server: RunningServer
    port: int
    workdir: Path
    redis: subprocess.Popen[bytes]

    def restart_redis(self) -> None:
        self.redis = start_redis(self.port, self.workdir)


@pytest.fixture
def outage(store: FeatureStore, tmp_path: Path) -> Iterator[Outage]:
    port = free_port()
    proc = start_redis(port, tmp_path)
    repo = tmp_path / "repo"
    write_repo(repo, f"redis://127.0.0.1:{port}/0", registry=store.repo_path / "data/registry.db")
    state: Outage | None = None
    try:
        with running_server(repo, poll_interval_s=POLL_S, metrics_port=0) as running:
            wait_until(lambda: health(running.target) == "SERVING", "SERVING")
            state = Outage(running, port, tmp_path, proc)
            yield state
    finally:
        last = proc if state is None else state.redis
        for p in {proc, last}:
            if p.poll() is None:
                p.send_signal(signal.SIGCONT)
                stop_redis(p)


def test_grpc_redis_down_is_unavailable_then_recovers_on_restart(outage: Outage) -> None:
    target = outage.server.target
    with OnlineClient(target) as client:
        got = client.get_online_features(["stats:trips"], DRIVERS)
        assert got.statuses["trips"] == [FeatureStatus.NOT_FOUND] * len(DRIVERS)  # empty Redis
        stop_redis(outage.redis)
        error = rpc_error(lambda: client.get_online_features(["stats:trips"], DRIVERS))
        assert error.code() is grpc.StatusCode.UNAVAILABLE
        wait_until(lambda: health(target) == "NOT_SERVING", "NOT_SERVING")
        assert health(target, SERVICE) == "NOT_SERVING"
        metrics = scrape(outage.server)
        assert metrics[("skewless_online_serving", ())] == 0.0
        assert calls(metrics, "UNAVAILABLE") == 1

        outage.restart_redis()
        wait_until(lambda: health(target) == "SERVING", "SERVING after the restart")
        assert scrape(outage.server)[("skewless_online_serving", ())] == 1.0
        got = client.get_online_features(["stats:trips"], DRIVERS)
        assert got.statuses["trips"] == [FeatureStatus.NOT_FOUND] * len(DRIVERS)


def test_grpc_hung_redis_is_unavailable_within_the_deadline(outage: Outage) -> None:
    target = outage.server.target
    with OnlineClient(target) as client:
        outage.redis.send_signal(signal.SIGSTOP)  # accepts connections, never answers
        try:
            error = rpc_error(
                lambda: client.get_online_features(["stats:trips"], DRIVERS, timeout_s=1.0)
            )
            # the server gave up on Redis and answered before the caller's deadline
            assert error.code() is grpc.StatusCode.UNAVAILABLE
            assert "deadline" in (error.details() or "")
            wait_until(lambda: health(target) == "NOT_SERVING", "NOT_SERVING")
        finally:
            outage.redis.send_signal(signal.SIGCONT)
        wait_until(lambda: health(target) == "SERVING", "SERVING after the pause")
        assert client.get_online_features(["stats:trips"], DRIVERS).features == ["trips"]


# --- live reload ----------------------------------------------------------------------------


def test_grpc_picks_up_a_new_apply_without_restart(
    store: FeatureStore, server: RunningServer, client: OnlineClient
) -> None:
    error = rpc_error(lambda: client.get_online_features(["extra:trips"], DRIVERS))
    assert error.code() is grpc.StatusCode.INVALID_ARGUMENT
    defs = store.repo_path / "defs.py"
    defs.write_text(defs.read_text() + textwrap.dedent(EXTRA_VIEW))
    store.apply()

    def served() -> bool:
        try:
            client.get_online_features(["extra:trips"], DRIVERS)
        except grpc.RpcError:
            return False
        return True

    wait_until(served, "the new view to be served")
    refs = ["extra:trips", "stats:trips"]
    got = client.get_online_features(refs, DRIVERS, full_feature_names=True)
    assert_same_response(got, store.get_online_features(refs, DRIVERS, full_feature_names=True))
    assert got.statuses["extra__trips"][0] is FeatureStatus.NOT_FOUND  # not materialized
    assert got.statuses["stats__trips"][0] is FeatureStatus.PRESENT
