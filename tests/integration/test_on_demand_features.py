"""On-demand features end to end: a training set with on-demand features equals the
online answer for the same entities, request values and time, in process and over
gRPC, across two materializations; request values of the wrong type are refused naming
the field."""

from __future__ import annotations

import math
import struct
import textwrap
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
import httpx
import pandas as pd
import pytest
from pyspark.sql import SparkSession

from skewless import FeatureStore
from skewless.client import OnlineClient
from skewless.errors import EntityDataFrameError, EntityRowsError
from skewless.grpc import running_server
from skewless.grpc.server import RunningServer
from tests.integration.test_grpc_server import POLL_S, health, wait_until

DEFS = """
from datetime import timedelta

from skewless import (
    Bool, Entity, FeatureService, FeatureView, Field, FileSource, Float64, Int64,
    OnDemandFeatureView, RequestSource, String, UnixTimestamp,
)
from skewless.expr import coalesce, col, concat, hour, is_weekend, round, upper

driver = Entity("driver", join_keys=["driver_id"])
stats = FeatureView(
    "stats",
    entities=[driver],
    schema=[Field("fare", Float64), Field("trips", Int64), Field("city", String)],
    source=FileSource("data/stats.parquet", timestamp_field="ts"),
    ttl=timedelta(days=2),
)
trip = RequestSource(
    "trip",
    schema=[
        Field("distance_km", Float64),
        Field("pickup_at", UnixTimestamp),
        Field("promo", String),
    ],
)
ratios = OnDemandFeatureView(
    "ratios",
    sources=[stats, trip],
    schema=[
        Field("fare_per_km", Float64, expr=col("fare") / col("distance_km")),
        Field("busy", Bool, expr=col("trips") >= 10),
        Field("pickup_hour_paris", Int64, expr=hour(col("pickup_at"), tz="Europe/Paris")),
        Field("weekend_ny", Bool, expr=is_weekend(col("pickup_at"), tz="America/New_York")),
        Field(
            "label",
            String,
            expr=concat(upper(coalesce(col("city"), "none")), "-", coalesce(col("promo"), "")),
        ),
        Field("trips_twice", Int64, expr=coalesce(col("trips"), 0) * 2),
        Field("fare_rounded", Float64, expr=round(col("fare") * 1.1, 2)),
    ],
)
pricing = FeatureService("pricing", features=[stats[["fare"]], ratios])
"""

REFS = [
    "stats:fare",
    "ratios:fare_per_km",
    "ratios:busy",
    "ratios:pickup_hour_paris",
    "ratios:weekend_ny",
    "ratios:label",
    "ratios:trips_twice",
    "ratios:fare_rounded",
]
FEATURES = [r.split(":")[1] for r in REFS]
DRIVERS = [1, 2, 3, 4, 5]  # 4: too old for the ttl; 5: never seen
# Paris moves to summer time at 01:00 UTC on 2026-03-29. In New York (UTC-5 in
# January) the third time is the last microsecond of Saturday 2026-01-03 and the fourth
# the first of Monday 2026-01-05.
PICKUPS = [
    datetime(2026, 3, 29, 0, 30, tzinfo=UTC),
    datetime(2026, 3, 29, 1, 30, tzinfo=UTC),
    datetime(2026, 1, 4, 4, 59, 59, 999999, tzinfo=UTC),
    datetime(2026, 1, 5, 5, 0, tzinfo=UTC),
    datetime(1999, 12, 31, 23, 0, tzinfo=UTC),
]
REQUEST: dict[str, list[Any]] = {
    "distance_km": [2.0, 4.0, 0.0, 1.5, None],
    "pickup_at": PICKUPS,
    "promo": ["x", None, "ü", "", "a"],
}


def stats_frame(now: datetime, run: int) -> pd.DataFrame:
    """What users write with pandas' defaults: nanosecond times, NaN for a missing
    float (to_parquet writes it as a null), a nullable integer column."""
    day = timedelta(days=1)
    return pd.DataFrame(
        {
            "driver_id": [1, 2, 3, 4, 1],
            "ts": pd.to_datetime(
                [now - 3 * day, now - day, now - day, now - 5 * day, now - day / 2], utc=True
            ),
            "fare": [1.0, float("nan"), 0.0, 9.0, 12.5 + run],
            "trips": pd.array([1, None, 3, 40, 12 + run], dtype="Int64"),
            "city": ["old", "lyon", None, "nice", "paris"],
        }
    )


@pytest.fixture(scope="module")
def store(
    tmp_path_factory: pytest.TempPathFactory, spark: SparkSession, redis_url: str
) -> FeatureStore:
    repo = tmp_path_factory.mktemp("on_demand_repo")
    (repo / "data").mkdir()
    (repo / "feature_store.yaml").write_text(
        f"project: odfv\nonline_store: {{type: redis, url: '{redis_url}'}}\n"
    )
    (repo / "defs.py").write_text(textwrap.dedent(DEFS))
    return FeatureStore(repo)


@pytest.fixture(scope="module")
def server(store: FeatureStore) -> Iterator[RunningServer]:
    with running_server(
        store.repo_path, poll_interval_s=POLL_S, metrics_port=0, http_port=0
    ) as running:
        yield running


def bits(value: Any) -> Any:
    """A value compared exactly: floats by their bits (NaN equal to NaN)."""
    if isinstance(value, float):
        return ("float", struct.pack("<d", value)) if not math.isnan(value) else ("nan",)
    if isinstance(value, pd.Timestamp):
        return value.to_pydatetime()
    return value


def offline(store: FeatureStore, now: datetime) -> list[dict[str, Any]]:
    entity_df = pd.DataFrame(
        {
            "driver_id": DRIVERS,
            "event_timestamp": [now] * len(DRIVERS),
            "distance_km": pd.array(REQUEST["distance_km"], dtype="Float64"),
            "pickup_at": pd.to_datetime(REQUEST["pickup_at"], utc=True),
            "promo": REQUEST["promo"],
        }
    )
    table = store.get_historical_features(entity_df, REFS).to_arrow()
    return [{f: row[f] for f in FEATURES} for row in table.to_pylist()]


def _json(value: Any) -> Any:
    """A value as the HTTP answer writes it."""
    if isinstance(value, float) and math.isnan(value):
        return "NaN"
    return value


def online_rows(response: Any) -> list[dict[str, Any]]:
    data = response.to_dict()
    return [{f: data[f][i] for f in FEATURES} for i in range(len(DRIVERS))]


def assert_rows_equal(got: list[dict[str, Any]], want: list[dict[str, Any]], what: str) -> None:
    for i, (g, w) in enumerate(zip(got, want, strict=True)):
        for f in FEATURES:
            assert bits(g[f]) == bits(w[f]), (
                f"{what}: driver {DRIVERS[i]}, {f}: {g[f]!r} != {w[f]!r}"
            )


def test_on_demand_training_set_equals_online_in_process_and_over_grpc(
    store: FeatureStore, server: RunningServer
) -> None:
    rows = [{"driver_id": d} for d in DRIVERS]
    for run in range(2):
        now = datetime.now(UTC).replace(microsecond=0)
        stats_frame(now, run).to_parquet(store.repo_path / "data/stats.parquet")
        store.apply()
        store.materialize(None, now)
        want = offline(store, now)

        # values pinned from docs/expressions.md, independently of both engines
        assert want[0]["fare_per_km"] == (12.5 + run) / 2.0
        assert want[1]["fare_per_km"] is None  # pandas writes its NaN as a Parquet null
        assert want[2]["fare_per_km"] is None  # 0.0 / 0.0
        assert want[3]["fare_per_km"] is None  # stale row: no fare
        assert [r["busy"] for r in want] == [True, None, False, None, None]
        assert [r["pickup_hour_paris"] for r in want] == [1, 3, 5, 6, 0]
        assert [r["weekend_ny"] for r in want] == [True, True, True, False, False]
        assert [r["label"] for r in want] == ["PARIS-x", "LYON-", "NONE-ü", "NONE-", "NONE-a"]
        assert [r["trips_twice"] for r in want] == [2 * (12 + run), 0, 6, 0, 0]
        assert want[2]["fare_rounded"] == 0.0

        in_process = store.get_online_features(REFS, rows, request_data=REQUEST)
        assert_rows_equal(online_rows(in_process), want, f"run {run}, in process")
        # Feast passes request values inside the entity rows: the same answer
        feast_rows = [
            {"driver_id": d, **{k: v[i] for k, v in REQUEST.items()}} for i, d in enumerate(DRIVERS)
        ]
        assert_rows_equal(
            online_rows(store.get_online_features(REFS, feast_rows)), want, f"run {run}, rows"
        )

        wait_until(lambda: health(server.target) == "SERVING", "the server to be SERVING")
        with OnlineClient(server.target) as client:
            over_grpc = client.get_online_features(REFS, rows, request_data=REQUEST)
            assert_rows_equal(online_rows(over_grpc), want, f"run {run}, gRPC")
            service = client.get_online_features("pricing", rows, request_data=REQUEST)
            assert service.features == ["fare", *FEATURES[1:]]
            # request values among a Feast client's entity columns
            in_entities = client.get_online_features(REFS, feast_rows)
            assert_rows_equal(online_rows(in_entities), want, f"run {run}, gRPC entity columns")

        # over HTTP, request values are columns of `entities`, as Feast sends them
        entities: dict[str, list[Any]] = {
            "driver_id": DRIVERS,
            "distance_km": REQUEST["distance_km"],
            "pickup_at": [t.isoformat() for t in PICKUPS],
            "promo": REQUEST["promo"],
        }
        reply = httpx.post(
            f"{server.http_url}/get-online-features",
            json={"features": REFS, "entities": entities},
            timeout=30,
        )
        assert reply.status_code == 200, reply.text
        document = reply.json()
        names = document["metadata"]["feature_names"]
        for f in FEATURES:
            got = document["results"][names.index(f)]["values"]
            assert got == [_json(w[f]) for w in want], f"run {run}, HTTP, {f}"


def test_request_values_of_the_wrong_type_are_refused_naming_the_field(
    store: FeatureStore, server: RunningServer
) -> None:
    now = datetime.now(UTC)
    if not (store.repo_path / "data/stats.parquet").exists():
        stats_frame(now, 0).to_parquet(store.repo_path / "data/stats.parquet")
        store.apply()
    bad = {**REQUEST, "distance_km": [1.0, "far", None, None, None]}
    rows = [{"driver_id": d} for d in DRIVERS]
    with pytest.raises(EntityRowsError, match="request field 'distance_km'") as err:
        store.get_online_features(["ratios:fare_per_km"], rows, request_data=bad)
    assert err.value.row == 1
    missing = {k: v for k, v in REQUEST.items() if k != "distance_km"}
    with pytest.raises(EntityRowsError, match="missing request field 'distance_km'"):
        store.get_online_features(["ratios:fare_per_km"], rows, request_data=missing)

    wait_until(lambda: health(server.target) == "SERVING", "the server to be SERVING")
    with OnlineClient(server.target) as client, pytest.raises(grpc.RpcError) as rpc:
        client.get_online_features(["ratios:fare_per_km"], rows, request_data=bad)
    assert rpc.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "distance_km" in str(rpc.value.details())

    entity_df = pd.DataFrame(
        {"driver_id": [1], "event_timestamp": [now], "distance_km": ["far"], "pickup_at": [now]}
    )
    with pytest.raises(EntityDataFrameError, match="column 'distance_km' is string"):
        store.get_historical_features(entity_df, ["ratios:fare_per_km"]).to_pandas()
    with pytest.raises(EntityDataFrameError, match="missing request field 'distance_km'"):
        store.get_historical_features(entity_df.drop(columns=["distance_km"]), REFS)
