"""Aggregated views in the lookup plan (serving/plan.py, serving/windows.py): read in the
same MGET as plain views, answered in process (assemble/response) and as the gRPC
response carries them (entries), always PRESENT, with the newest event time in the
horizon; on-demand features read them as hidden columns. No JVM, no network."""

from __future__ import annotations

import math
import random
from datetime import UTC, datetime, timedelta
from typing import Any

import pyarrow as pa

from skewless import (
    Aggregation,
    Entity,
    FeatureView,
    Field,
    FileSource,
    Float64,
    Int64,
    OnDemandFeatureView,
    String,
    UnixTimestamp,
)
from skewless.expr import col
from skewless.feature_request import compile_requests
from skewless.online.codec import Record, encode_value, encode_values, entity_key
from skewless.online.columns import decode_column
from skewless.online.event_lists import list_columns, list_fields
from skewless.serving.plan import LookupPlan
from skewless.serving.response import FeatureStatus
from skewless.serving.service import lookup
from skewless.timeutil import from_micros, micros, utc_micros
from skewless.types import to_arrow
from tests.window_reference import RefAggregation, window_value

SECOND = 1_000_000
HOUR, DAY = timedelta(hours=1), timedelta(days=1)
NOW = datetime(2026, 3, 1, 12, tzinfo=UTC)
NOW_US = utc_micros(NOW)

driver = Entity("driver", join_keys=["driver_id"])
src = FileSource("trips.parquet", timestamp_field="ts")
trips = FeatureView(
    "trips",
    entities=[driver],
    schema=[
        Field("driver_id", Int64),
        Field("fare", Float64),
        Field("unused", Int64),
        Field("city", String),
        Field("at", UnixTimestamp),
    ],
    source=src,
    aggregations=[
        Aggregation("fare", function="sum", time_window=HOUR),
        Aggregation("fare", function="mean", time_window=DAY, name="fare_mean"),
        Aggregation("city", function="count_distinct", time_window=DAY),
        Aggregation("at", function="max", time_window=HOUR),
        Aggregation("city", function="last", time_window=DAY),
        Aggregation("fare", function="count", time_window=HOUR),
    ],
)
stats = FeatureView(
    "stats",
    entities=[driver],
    schema=[Field("driver_id", Int64), Field("rating", Float64)],
    source=src,
    ttl=HOUR,
)
doubled = OnDemandFeatureView(
    "doubled",
    sources=[trips[["fare_mean"]]],
    schema=[Field("twice_mean", Float64, expr=col("fare_mean") * 2)],
)
VIEWS = {"trips": trips, "stats": stats}
ODFVS = {"doubled": doubled}
AGGS = {a.name: a for a in trips.aggregations}
KINDS = {f.name: f.dtype.name for f in trips.stored}


def random_events(rnd: random.Random, n: int) -> list[dict[str, Any]]:
    """`n` events in the last two days (some at the edges of the windows)."""
    edges = [NOW_US, NOW_US - micros(HOUR), NOW_US - micros(DAY), NOW_US + 1]
    out = []
    for _ in range(n):
        ts = rnd.choice(edges) if rnd.random() < 0.2 else NOW_US - rnd.randrange(micros(2 * DAY))
        out.append(
            {
                "ts": ts,
                "fare": rnd.choice([None, 0.1, 0.2, 1e16, -1e16, math.nan, -0.0, 7.5]),
                "city": rnd.choice([None, "paris", "lyon", "é"]),
                "at": rnd.choice([None, ts, 0, -1]),
            }
        )
    return out


def stored_value(evs: list[dict[str, Any]]) -> bytes:
    """One entity's stored list, as the writer encodes it (Arrow, sorted by time)."""
    evs = sorted(evs, key=lambda e: e["ts"])
    names = list_columns(trips)
    fields = list_fields(trips)
    columns = [pa.array([[e["ts"] for e in evs]], type=to_arrow(fields[0][1]))]
    columns += [
        pa.array([[e[c] for e in evs]], type=to_arrow(d))
        for c, (_, d) in zip(names, fields[1:], strict=True)
    ]
    return encode_values(
        pa.array([NOW_US]),
        pa.array([NOW_US - SECOND]),
        pa.array([42]),
        columns,
        [d for _, d in fields],
    )[0]


def expected(evs: list[dict[str, Any]], feature: str, now_us: int) -> Any:
    agg = AGGS[feature]
    ref = RefAggregation(feature, agg.column, agg.function, micros(agg.time_window))
    return window_value(evs, ref, KINDS[agg.column], now_us)


def same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a):
        return math.isnan(b)
    return type(a) is type(b) and a == b


def newest(evs: list[dict[str, Any]], now_us: int) -> int | None:
    inside = [e["ts"] for e in evs if now_us - micros(DAY) < e["ts"] <= now_us]
    return max(inside, default=None)


def entity_rows(n: int) -> tuple[list[dict[str, Any]], dict[bytes, bytes], list[list[Any]]]:
    """`n` entity rows (a null key among them), what Redis holds for them, and each
    row's events (none for a row with nothing stored)."""
    rnd = random.Random(n)
    rows: list[dict[str, Any]] = []
    store: dict[bytes, bytes] = {}
    per_row: list[list[Any]] = []
    for i in range(n):
        key = None if i == 1 else i
        rows.append({"driver_id": key})
        evs = [] if key is None or i % 5 == 2 else random_events(rnd, rnd.choice([1, 3, 40]))
        if evs:
            store[entity_key("p", "trips", [key])] = stored_value(evs)
        per_row.append(evs)
    return rows, store, per_row


def test_aggregated_features_in_process_equal_the_reference_and_are_present() -> None:
    features = ["fare_sum_1h", "city_count_distinct_1d", "at_max_1h", "city_last_1d", "fare_mean"]
    reqs = compile_requests([f"trips:{f}" for f in features], VIEWS, full_feature_names=False)
    rows, store, per_row = entity_rows(12)
    response = lookup(LookupPlan("p", reqs), lambda keys: [store.get(k) for k in keys], rows, NOW)
    assert response.features == features
    for feature in features:
        assert response.statuses[feature] == [FeatureStatus.PRESENT] * len(rows)
        times = [newest(evs, NOW_US) for evs in per_row]
        assert response.event_timestamps[feature] == [
            None if t is None else from_micros(t) for t in times
        ]
        for i, evs in enumerate(per_row):
            want = expected(evs, feature, NOW_US)
            if feature == "at_max_1h" and want is not None:
                want = from_micros(want)  # timestamps as offline gives them
            assert same(response.values[feature][i], want), (feature, i)
    # nothing stored, or a null key: an empty window
    assert response.values["city_count_distinct_1d"][1] == 0
    assert response.values["fare_sum_1h"][1] is None


def test_aggregated_entries_decode_to_the_in_process_answer() -> None:
    """entries() (the gRPC answer) says what assemble() says, for few rows (entries
    written one by one) and many (written with numpy)."""
    features = [*AGGS]
    reqs = compile_requests([f"trips:{f}" for f in features], VIEWS, full_feature_names=False)
    plan = LookupPlan("p", reqs)
    for n in (3, 100):
        rows, store, _ = entity_rows(n)
        raw = [store.get(k) for k in plan.keys(rows)]
        for now_us in (NOW_US, NOW_US - micros(HOUR), NOW_US + micros(DAY)):
            (columns,) = plan.assemble(raw, n, now_us)
            (entries,) = plan.entries(raw, n, now_us)
            assert entries.statuses == columns.statuses == [FeatureStatus.PRESENT] * n
            assert entries.event_ts_us == columns.event_ts_us
            for name, column, entry in zip(
                plan.windows[0].outputs, columns.columns, entries.entries, strict=True
            ):
                decoded = decode_column(entry, n, plan.dtypes[name])
                assert all(same(a, b) for a, b in zip(decoded, column, strict=True)), name


def test_plan_reads_plain_then_aggregated_views_in_one_read() -> None:
    reqs = compile_requests(
        ["trips:fare_count_1h", "stats:rating", "trips:fare_sum_1h"],
        VIEWS,
        full_feature_names=True,
    )
    plan = LookupPlan("p", reqs)
    rows = [{"driver_id": 1}, {"driver_id": 2}]
    assert plan.keys(rows) == [
        entity_key("p", "stats", [1]),
        entity_key("p", "stats", [2]),
        entity_key("p", "trips", [1]),
        entity_key("p", "trips", [2]),
    ]
    assert [p.outputs for p in plan.parts] == [
        ("stats__rating",),
        ("trips__fare_count_1h", "trips__fare_sum_1h"),
    ]
    evs = [{"ts": NOW_US - SECOND, "fare": 2.5, "city": "x", "at": 0}]
    store = {
        entity_key("p", "stats", [1]): encode_value(
            Record(NOW_US - 2 * micros(HOUR), None, (4.0,)), [Float64]
        ),
        entity_key("p", "trips", [2]): stored_value(evs),
    }
    response = lookup(plan, lambda keys: [store.get(k) for k in keys], rows, NOW)
    assert response.features == ["trips__fare_count_1h", "stats__rating", "trips__fare_sum_1h"]
    # the plain view as ever: stale withheld, missing not found
    assert response.values["stats__rating"] == [None, None]
    assert response.statuses["stats__rating"] == [
        FeatureStatus.OUTSIDE_MAX_AGE,
        FeatureStatus.NOT_FOUND,
    ]
    assert response.values["trips__fare_count_1h"] == [0, 1]
    assert response.values["trips__fare_sum_1h"] == [None, 2.5]
    assert response.event_timestamps["trips__fare_sum_1h"] == [None, from_micros(NOW_US - SECOND)]


def test_on_demand_feature_reads_an_aggregated_feature() -> None:
    reqs = compile_requests(
        ["doubled:twice_mean", "trips:fare_sum_1h"],
        VIEWS,
        full_feature_names=False,
        on_demand=ODFVS,
    )
    plan = LookupPlan("p", reqs)
    assert plan.windows[0].hidden and plan.windows[0].outputs == ("fare_sum_1h",)
    rows, store, per_row = entity_rows(20)
    raw = [store.get(k) for k in plan.keys(rows)]
    response = plan.response(rows, plan.assemble(raw, len(rows), NOW_US))
    want = [expected(evs, "fare_mean", NOW_US) for evs in per_row]
    twice = [None if m is None else m * 2 for m in want]
    assert all(same(a, b) for a, b in zip(response.values["twice_mean"], twice, strict=True))
    assert response.features == ["twice_mean", "fare_sum_1h"]
    entries = plan.entries(raw, len(rows), NOW_US)
    decoded = decode_column(entries[1].entries[0], len(rows), Float64)
    assert all(same(a, b) for a, b in zip(decoded, twice, strict=True))


def test_aggregated_view_answers_as_time_passes() -> None:
    """The same stored list answers each request time by the window rule: an event
    leaves the one-hour sum exactly an hour after its time."""
    reqs = compile_requests(
        ["trips:fare_sum_1h", "trips:fare_count_1h"], VIEWS, full_feature_names=False
    )
    plan = LookupPlan("p", reqs)
    t0 = NOW_US - micros(HOUR)
    evs = [{"ts": t0, "fare": 1.0, "city": None, "at": None}]
    raw = [stored_value(evs)]
    for now_us, total, count in (
        (t0 - 1, None, 0),
        (t0, 1.0, 1),
        (t0 + micros(HOUR) - 1, 1.0, 1),
        (t0 + micros(HOUR), None, 0),
    ):
        (got,) = plan.assemble(raw, 1, now_us)
        assert got.columns == [[total], [count]], now_us
        assert got.event_ts_us == [None if now_us < t0 else t0]
