"""Views with aggregations materialized and served: after each run (a full one, then
incremental ones bringing new and late events), the online value of every aggregation at
request times at and after the run's end equals the training set's value at those times,
bit for bit, and the brute-force reference (tests/window_reference.py); the Delta table
holds each event once by the identity rule; re-running a run commits nothing and stores
the same lists; a run to an earlier end never replaces a later one online.

Two views read one source: `trips` without a created-timestamp column (each distinct row
is an event) and `trips_c` with one (the latest created version of an event wins). The
rows come from a seeded generator over pools of edge values (NaN, -0.0, huge floats,
integers whose sums overflow, non-ASCII strings, nulls, duplicates, versions), on a
30-minute grid with some times 1 us off, so the request times land on window edges.
"""

from __future__ import annotations

import math
import random
import struct
import textwrap
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pytest
import redis
from pyspark.sql import SparkSession
from pyspark.sql import functions as F  # noqa: N812

from skewless import FeatureStore
from skewless.batch.materialize import Interval, OnlineWriter
from skewless.batch.window_materialize import materialize_window_view
from skewless.client import OnlineClient
from skewless.grpc import running_server
from skewless.online.codec import decode_value
from skewless.online.event_lists import list_fields
from skewless.registry import MaterializationRecord
from skewless.serving.response import FeatureStatus
from skewless.timeutil import from_micros, utc_micros
from tests.integration.test_grpc_server import POLL_S, health, wait_until
from tests.window_reference import RefAggregation, events, historical

MINUTE = 60_000_000
HOUR = 60 * MINUTE
DAY = 24 * HOUR
WINDOWS = {"1h": HOUR, "1d": DAY, "7d": 7 * DAY}
HORIZON = 7 * DAY
E1 = utc_micros(datetime(2024, 5, 1, tzinfo=UTC))
E2 = E1 + DAY
E3 = E2 + 2 * HOUR
INPUTS = {"trip_id": "string", "passengers": "int64", "fare": "float64", "city": "string"}
AGGREGATIONS = [
    ("trip_id", "count", "1h"),
    ("trip_id", "count", "1d"),
    ("trip_id", "count", "7d"),
    ("passengers", "sum", "1d"),
    ("passengers", "sum", "7d"),
    ("passengers", "mean", "1d"),
    ("passengers", "stddev", "7d"),
    ("passengers", "last", "1d"),
    ("fare", "sum", "7d"),
    ("fare", "mean", "1h"),
    ("fare", "mean", "7d"),
    ("fare", "stddev", "1d"),
    ("fare", "stddev", "7d"),
    ("fare", "min", "7d"),
    ("fare", "max", "1d"),
    ("fare", "last", "7d"),
    ("city", "last", "1h"),
    ("city", "min", "7d"),
    ("city", "count_distinct", "1d"),
    ("city", "count_distinct", "7d"),
]
REF_AGGS = [RefAggregation(f"{c}_{f}_{w}", c, f, WINDOWS[w]) for c, f, w in AGGREGATIONS]
VIEWS = {"trips": False, "trips_c": True}  # name: has a created-timestamp column
REFS = [f"{v}:{a.name}" for v in VIEWS for a in REF_AGGS]
DRIVERS: list[int | None] = [*range(1, 11), 97, 98, None]  # 97: only old events; 98: none

DEFS = f"""
from datetime import timedelta

from skewless import Aggregation, Entity, FeatureView, Field, FileSource, Float64, Int64, String

WINDOWS = {{"1h": timedelta(hours=1), "1d": timedelta(days=1), "7d": timedelta(days=7)}}
AGGREGATIONS = [
    Aggregation(column=c, function=f, time_window=WINDOWS[w]) for c, f, w in {AGGREGATIONS!r}
]
SCHEMA = [
    Field("trip_id", String),
    Field("passengers", Int64),
    Field("fare", Float64),
    Field("city", String),
]
driver = Entity("driver", join_keys=["driver_id"])
trips = FeatureView(
    "trips",
    entities=[driver],
    schema=SCHEMA,
    source=FileSource("data/trips", timestamp_field="ts"),
    aggregations=AGGREGATIONS,
)
trips_c = FeatureView(
    "trips_c",
    entities=[driver],
    schema=SCHEMA,
    source=FileSource("data/trips", timestamp_field="ts", created_timestamp_column="created_at"),
    aggregations=AGGREGATIONS,
)
"""

# Edge values are rare, so that most windows hold ordinary numbers whose sums depend on the
# order of addition; drivers 9 and 10 get the NaNs and the overflows.
FARE_EDGES = [-0.0, 0.0, 0.1, 0.2, 0.3, 5e-324, 1e16, -1e16, None]
PASSENGER_EDGES = [None, -1, 0, 2**62]
CITIES = ["paris", "lyon", "Zürich", "東京", "", None, "nice"]


# --- the source rows (the reference's form: times in microseconds, "ts" and "cts") ------


def _row(rng: random.Random, driver: int | None, ts: int | None) -> dict[str, Any]:
    created = None if ts is None or rng.random() < 0.1 else ts + rng.choice([0, 1, HOUR, DAY])
    fare = rng.uniform(0, 100) if rng.random() < 0.8 else rng.choice(FARE_EDGES)
    if driver == 9 and rng.random() < 0.2:
        fare = math.nan
    if driver == 10 and rng.random() < 0.2:
        fare = rng.choice([1e308, -1e308])
    passengers = rng.randrange(7) if rng.random() < 0.9 else rng.choice(PASSENGER_EDGES)
    if driver == 10 and rng.random() < 0.3:
        passengers = rng.choice([2**63 - 1, -(2**63)])
    return {
        "driver_id": driver,
        "ts": ts,
        "cts": created,
        "trip_id": None if rng.random() < 0.1 else f"t{rng.randrange(30)}",
        "passengers": passengers,
        "fare": fare,
        "city": rng.choice(CITIES),
    }


def _with_copies(rng: random.Random, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The rows, some delivered twice, some with a second version at the same time
    (other values, a later or an equal created time)."""
    out = []
    for r in rows:
        out.append(r)
        if rng.random() < 0.15:
            out.append(dict(r))
        if rng.random() < 0.15 and r["ts"] is not None:
            bump = rng.choice([0, MINUTE])
            out.append({**_row(rng, r["driver_id"], r["ts"]), "cts": (r["cts"] or r["ts"]) + bump})
    return out


def _times(rng: random.Random, low: int, high: int, n: int) -> list[int]:
    """`n` times in (low, high] on the 30-minute grid back from `high`, some 1 us off."""
    steps = (high - low) // (30 * MINUTE)
    dense = min(steps, 12)  # the last 6 hours, where the short windows have events
    out = []
    for _ in range(n):
        step = rng.randrange(dense if rng.random() < 0.5 else steps)
        t = high - step * 30 * MINUTE + rng.choice([0, 0, 0, 1, -1])
        out.append(min(max(t, low + 1), high))
    return out


def first_rows(rng: random.Random) -> list[dict[str, Any]]:
    """Events up to E1, over 8 days, and the edge cases."""
    rows = [_row(rng, d, t) for d in range(1, 11) for t in _times(rng, E1 - 8 * DAY, E1, 40)]
    rows += [_row(rng, 3, t) for t in (E1, E1 - HORIZON, E1 - HORIZON + 1, E1 - HOUR)]
    rows += [{**_row(rng, 5, t), "passengers": 2**63 - 1} for t in (E1 - HOUR, E1 - 2 * HOUR)]
    rows += [_row(rng, 97, t) for t in (E1 - 8 * DAY, E1 - 10 * DAY)]
    rows += [_row(rng, None, E1 - HOUR), _row(rng, None, E1), _row(rng, 4, None)]  # rejected
    return _with_copies(rng, rows)


def later_rows(
    rng: random.Random, start: int, end: int, seen: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """New events in (start, end], late events before `start` (inside the horizon and
    older), a redelivered row and a later version of an earlier event."""
    rows = [_row(rng, d, t) for d in (1, 2, 3, 6, 97) for t in _times(rng, start, end, 6)]
    rows += [_row(rng, d, start - t) for d in (2, 7) for t in (3 * HOUR, 6 * DAY, HORIZON + HOUR)]
    old = rng.choice([r for r in seen if r["ts"] is not None and r["driver_id"] is not None])
    later = {**_row(rng, old["driver_id"], old["ts"]), "cts": (old["cts"] or old["ts"]) + DAY}
    return _with_copies(rng, [*rows, dict(old), later])


def write_file(repo: Path, rows: list[dict[str, Any]]) -> None:
    """As users write them with pandas: nanosecond times; a float column of Arrow type,
    whose NaN stays a NaN (numpy's would be written as a null)."""

    def times(values: list[int | None]) -> pd.Series[Any]:
        stamps = [pd.NaT if v is None else pd.Timestamp(v, unit="us", tz="UTC") for v in values]
        return pd.Series(stamps, dtype="datetime64[ns, UTC]")

    frame = pd.DataFrame(
        {
            "driver_id": pd.array([r["driver_id"] for r in rows], dtype="Int64"),
            "ts": times([r["ts"] for r in rows]),
            "created_at": times([r["cts"] for r in rows]),
            "trip_id": [r["trip_id"] for r in rows],
            "passengers": pd.array([r["passengers"] for r in rows], dtype="Int64"),
            "fare": pd.Series(
                pa.array([r["fare"] for r in rows], pa.float64()), dtype=pd.ArrowDtype(pa.float64())
            ),
            "city": [r["city"] for r in rows],
        }
    )
    frame.to_parquet(repo / "data" / "trips" / f"{uuid.uuid4().hex}.parquet")


# --- comparisons ------------------------------------------------------------------------


def bits(value: Any) -> Any:
    """A value compared exactly: a float by its bits, every NaN alike."""
    if isinstance(value, float):
        return ("nan",) if math.isnan(value) else ("float", struct.pack("<d", value))
    return value


def newest_event(rows: list[dict[str, Any]], driver: int | None, t: int) -> datetime | None:
    """The event time served with a view's aggregations: its newest event at or before
    t within the horizon (no source row is later than the last run's end here)."""
    times = [
        r["ts"]
        for r in rows
        if driver is not None and r["driver_id"] == driver and r["ts"] is not None
        if t - HORIZON < r["ts"] <= t
    ]
    return from_micros(max(times)) if times else None


def offline(store: FeatureStore, times: list[int]) -> list[dict[str, Any]]:
    """The training set's rows for every driver at every time (driver-major within a
    time), in one job."""
    entity = [(d, t) for t in times for d in DRIVERS]
    entity_df = pd.DataFrame(
        {
            "driver_id": pd.array([d for d, _ in entity], dtype="Int64"),
            "event_timestamp": pd.to_datetime([t for _, t in entity], unit="us", utc=True),
            "row": list(range(len(entity))),
        }
    )
    table = store.get_historical_features(entity_df, REFS, full_feature_names=True).to_arrow()
    return sorted(table.to_pylist(), key=lambda r: r["row"])


@dataclass
class Server:
    """The gRPC server and its client; the server's request time is `clock[0]`."""

    client: OnlineClient
    clock: list[int]


def check_parity(
    store: FeatureStore, server: Server, rows: list[dict[str, Any]], times: list[int], what: str
) -> None:
    """Online at each time, in process and over gRPC, == the training set at that time
    == the reference."""
    want = offline(store, times)
    entity_rows = [{"driver_id": d} for d in DRIVERS]
    for i, t in enumerate(times):
        online = store.get_online_features(
            REFS, entity_rows, full_feature_names=True, request_time=from_micros(t)
        )
        server.clock[0] = t
        over_grpc = server.client.get_online_features(REFS, entity_rows, full_feature_names=True)
        for name, values in online.values.items():
            assert [bits(v) for v in over_grpc.values[name]] == [bits(v) for v in values], name
            assert over_grpc.statuses[name] == online.statuses[name], name
            assert over_grpc.event_timestamps[name] == online.event_timestamps[name], name
        for view, created in VIEWS.items():
            ref = historical(
                rows,
                ["driver_id"],
                INPUTS,
                created,
                REF_AGGS,
                [{"driver_id": d, "t": t} for d in DRIVERS],
            )
            for j, driver in enumerate(DRIVERS):
                at = f"{what}, t = E1 + {(t - E1) / HOUR:g} h, {view}, driver {driver}"
                for agg in REF_AGGS:
                    name = f"{view}__{agg.name}"
                    got = online.values[name][j]
                    train = want[i * len(DRIVERS) + j][name]
                    assert bits(got) == bits(train), (
                        f"{at}, {agg.name}: online {got!r} != offline {train!r}"
                    )
                    assert bits(got) == bits(ref[j][agg.name]), (
                        f"{at}, {agg.name}: {got!r} != reference {ref[j][agg.name]!r}"
                    )
                    assert online.statuses[name][j] is FeatureStatus.PRESENT, f"{at}, {agg.name}"
                    assert online.event_timestamps[name][j] == newest_event(rows, driver, t), at


def online_values(store: FeatureStore, t: int) -> dict[str, list[Any]]:
    online = store.get_online_features(
        REFS,
        [{"driver_id": d} for d in DRIVERS],
        full_feature_names=True,
        request_time=from_micros(t),
    )
    return {name: [bits(v) for v in values] for name, values in online.values.items()}


def stored_lists(url: str, project: str, view: str, fields: list[Any]) -> dict[bytes, Any]:
    """Every stored list of a view: (event time, tie hash, the arrays) by key (the
    created time is the run's start, new with each run)."""
    with redis.Redis.from_url(url) as client:
        keys = sorted(client.scan_iter(match=f"sk1|{project}|{view}|*".encode()))
        values = client.mget(keys)
    out = {}
    for key, value in zip(keys, values, strict=True):
        record = decode_value(value, fields)
        out[key] = (
            record.event_ts_us,
            record.tie_hash,
            [[bits(v) for v in a] for a in record.values],
        )
    return out


def table_events(spark: SparkSession, record: MaterializationRecord) -> Counter[tuple[Any, ...]]:
    frame = spark.read.format("delta").load(record.delta_path)
    frame = frame.withColumn("ts_us", F.unix_micros("ts"))
    return Counter(event_tuple(r["driver_id"], r["ts_us"], r.asDict()) for r in frame.collect())


def event_tuple(driver: int, ts: int, values: dict[str, Any]) -> tuple[Any, ...]:
    """An event as the identity rule compares them: -0.0 as 0.0, every NaN alike."""
    fare = values["fare"]
    inputs = [values[c] for c in INPUTS if c != "fare"]
    return (driver, ts, None if fare is None else bits(fare + 0.0), *inputs)


def want_events(rows: list[dict[str, Any]], created: bool) -> Counter[tuple[Any, ...]]:
    found = events(rows, ["driver_id"], INPUTS, created)
    return Counter(event_tuple(e["driver_id"], e["ts"], e) for e in found)


# --- the test ---------------------------------------------------------------------------


@pytest.fixture
def store(tmp_path: Path, redis_url: str, spark: SparkSession) -> FeatureStore:
    repo = tmp_path / "repo"
    (repo / "data" / "trips").mkdir(parents=True)
    (repo / "feature_store.yaml").write_text(
        f"project: w_{uuid.uuid4().hex[:8]}\nonline_store: {{type: redis, url: '{redis_url}'}}\n"
    )
    (repo / "defs.py").write_text(textwrap.dedent(DEFS))
    return FeatureStore(repo)


@contextmanager
def serving(store: FeatureStore) -> Iterator[Server]:
    """The repo's gRPC server, answering at the time the test sets."""
    clock = [E1]
    with (
        running_server(store.repo_path, poll_interval_s=POLL_S, clock=lambda: clock[0]) as running,
        OnlineClient(running.target) as client,
    ):
        wait_until(lambda: health(running.target) == "SERVING", "the server to be SERVING")
        yield Server(client, clock)


def by_view(records: list[MaterializationRecord]) -> dict[str, MaterializationRecord]:
    return {r.view: r for r in records}


def test_window_online_values_equal_offline_across_incremental_runs(
    store: FeatureStore, spark: SparkSession, redis_url: str
) -> None:
    rng = random.Random(26)
    rows = first_rows(rng)
    write_file(store.repo_path, rows)
    store.apply()
    with serving(store) as server:
        first = by_view(store.materialize(None, from_micros(E1)))
        rejected = sum(r["driver_id"] is None or r["ts"] is None for r in rows)
        assert rejected >= 3
        assert {r.rows_rejected for r in first.values()} == {rejected}
        e1_times = [E1, E1 + 30 * MINUTE, E1 + 2 * HOUR, E1 + 3 * DAY, E1 + 8 * DAY]
        check_parity(store, server, rows, e1_times, "E1")

        added = later_rows(rng, E1, E2, rows)
        rows += added
        write_file(store.repo_path, added)
        second = by_view(store.materialize_incremental(from_micros(E2)))
        check_parity(store, server, rows, [E2, E2 + HOUR, E2 + 2 * DAY, E2 + 8 * DAY], "E2")

        # Re-running the run commits nothing and stores the same lists.
        fields = {v: [d for _, d in list_fields(store.get_feature_view(v))] for v in VIEWS}
        lists = {v: stored_lists(redis_url, store.project, v, fields[v]) for v in VIEWS}
        again = by_view(store.materialize_incremental(from_micros(E2)))
        for view in VIEWS:
            assert again[view].delta_version == second[view].delta_version, view
            assert again[view].rows_written_offline == 0, view
            assert stored_lists(redis_url, store.project, view, fields[view]) == lists[view], view
            assert again[view].keys_offered_online == second[view].keys_offered_online > 0, view
        # the executors write the lists the driver wrote
        trips_c = store.get_feature_view("trips_c")
        materialize_window_view(
            spark,
            trips_c,
            store.repo_path,
            Interval(end_us=E2),
            writer=OnlineWriter.for_view(store.project, trips_c, redis_url),
            delta_path=None,
            driver_write_max_keys=0,
        )
        assert (
            stored_lists(redis_url, store.project, "trips_c", fields["trips_c"]) == lists["trips_c"]
        )

        added = later_rows(rng, E2, E3, rows)
        rows += added
        write_file(store.repo_path, added)
        third = by_view(store.materialize_incremental(from_micros(E3)))
        times = [E3, E3 + HOUR, E3 + 6 * DAY, E3 + 8 * DAY]
        check_parity(store, server, rows, times, "E3")
        for view, created in VIEWS.items():
            assert third[view].delta_version > second[view].delta_version, view
            assert table_events(spark, third[view]) == want_events(rows, created), view

        # A run to an earlier end writes no list over a later one.
        before = stored_lists(redis_url, store.project, "trips", fields["trips"])
        served = online_values(store, E3)
        store.materialize(None, from_micros(E1), ["trips"])
        after = stored_lists(redis_url, store.project, "trips", fields["trips"])
        assert {k: after[k] for k in before} == before
        assert online_values(store, E3) == served
