"""Windowed aggregations offline: get_historical_features on views with aggregations
against the independent reference (tests/window_reference.py), and each edge of the rule
(rules/windows.py) pinned by an example.

The property test draws few cases, each one Spark job over hundreds of events and request
times (tests/window_strategies.py): every function over every input type it takes,
several windows (1 us to an hour), duplicates, corrections, equal times, and request
times on both edges of the windows.
"""

from __future__ import annotations

import math
import struct
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import given, settings
from pyspark.sql import SparkSession
from pyspark.sql import functions as F  # noqa: N812

from skewless.batch.retrieval import get_historical_features
from skewless.definitions import (
    Aggregation,
    Entity,
    FeatureView,
    Field,
    FileSource,
    OnDemandFeatureView,
)
from skewless.expr import col
from skewless.feature_request import compile_requests
from skewless.timeutil import utc_micros
from skewless.types import Float64, Int64, String, UnixTimestamp, parse_dtype, to_arrow
from tests.expr_strategies import examples
from tests.integration.helpers import requests_for, write_rows
from tests.window_strategies import WindowCase, window_case

driver = Entity("driver", join_keys=["driver_id"])
TS_TYPE = pa.timestamp("us", tz="UTC")


def _view(case: WindowCase, path: str) -> FeatureView:
    return FeatureView(
        "w",
        entities=[driver],
        schema=[
            Field("driver_id", Int64),
            *[Field(c, parse_dtype(kind)) for c, kind in case.inputs.items()],
        ],
        source=FileSource(
            path,
            timestamp_field="ts",
            created_timestamp_column="cts" if case.has_created else None,
        ),
        aggregations=[
            Aggregation(
                a.column,
                function=a.function,
                time_window=timedelta(microseconds=a.window_us),
                name=a.name,
            )
            for a in case.aggregations
        ],
    )


def _float_bits(value: float) -> bytes | str:
    """A float as its bits (-0.0 differs from 0.0), every NaN alike."""
    return "nan" if math.isnan(value) else struct.pack("<d", value)


def _same(got: Any, want: Any) -> bool:
    if isinstance(want, float) and isinstance(got, float):
        return _float_bits(got) == _float_bits(want)
    if isinstance(got, datetime):
        got = utc_micros(got)
    return type(got) is type(want) and got == want


def _run_case(spark: SparkSession, case: WindowCase, folder: Path) -> None:
    columns: dict[str, pa.DataType] = {"driver_id": pa.int64(), "ts": TS_TYPE}
    if case.has_created:
        columns["cts"] = TS_TYPE
    columns.update({c: to_arrow(parse_dtype(k)) for c, k in case.inputs.items()})
    rows = [{c: r[c] for c in columns} for r in case.rows]
    view = _view(case, write_rows(folder, rows, columns))
    entity = pd.DataFrame(
        {
            "driver_id": pd.array([key[0] for key, _ in case.times], dtype="Int64"),
            "event_timestamp": pd.to_datetime([t for _, t in case.times], unit="us", utc=True),
        }
    )
    refs = [f"w:{a.name}" for a in case.aggregations]
    job = get_historical_features(
        spark, folder, entity, requests_for([view], refs), "event_timestamp"
    )
    table = job.to_arrow()
    for feature in view.features:  # typed as the definition says
        assert table.schema.field(feature.name).type == to_arrow(feature.dtype), feature.name
    got = table.to_pylist()
    expected = case.expected()
    assert len(got) == len(case.times)
    for i, (g, e) in enumerate(zip(got, expected, strict=True)):
        assert g["driver_id"] == case.times[i][0][0], f"row {i} moved"
        for name, want in e.items():
            assert _same(g[name], want), (
                f"row {i} {case.times[i]}: {name} = {g[name]!r}, reference says {want!r}"
            )


@pytest.mark.spark
@settings(max_examples=examples(10))
@given(case=window_case())
def test_window_aggregations_match_reference(spark: SparkSession, case: WindowCase) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        _run_case(spark, case, Path(tmp))


# --- each edge pinned ---------------------------------------------------------------

T0 = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)
SECOND = timedelta(seconds=1)
US = timedelta(microseconds=1)
FUNCTIONS = ("count", "sum", "mean", "stddev", "min", "max", "last", "count_distinct")


def _trips(path: str, aggregations: list[Aggregation]) -> FeatureView:
    return FeatureView(
        "trips",
        entities=[driver],
        schema=[Field("driver_id", Int64), Field("fare", Float64), Field("passengers", Int64)],
        source=FileSource(path, timestamp_field="ts"),
        aggregations=aggregations,
    )


def _source(folder: Path, rows: list[tuple[int, datetime, float | None, int | None]]) -> str:
    columns = {
        "driver_id": pa.int64(),
        "ts": TS_TYPE,
        "fare": pa.float64(),
        "passengers": pa.int64(),
    }
    named = [dict(zip(columns, r, strict=True)) for r in rows]
    return write_rows(folder, named, columns)


def _lookups(rows: list[tuple[int | None, datetime | None]]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "driver_id": pd.array([k for k, _ in rows], dtype="Int64"),
            "event_timestamp": pd.to_datetime([t for _, t in rows], utc=True),
        }
    )


def _values(
    spark: SparkSession, folder: Path, view: FeatureView, entity: pd.DataFrame
) -> list[dict[str, Any]]:
    refs = [f"{view.name}:{f}" for f in view.feature_names]
    job = get_historical_features(
        spark, folder, entity, requests_for([view], refs), "event_timestamp"
    )
    return [{f: r[f] for f in view.feature_names} for r in job.to_arrow().to_pylist()]


def test_window_holds_an_event_at_t_and_not_one_at_t_minus_w(
    spark: SparkSession, tmp_path: Path
) -> None:
    path = _source(tmp_path, [(1, T0, 1.0, 1), (1, T0 + 10 * SECOND, 2.0, 2)])
    window = 10 * SECOND
    view = _trips(
        path,
        [
            Aggregation("passengers", function="count", time_window=window, name="n"),
            Aggregation("passengers", function="sum", time_window=window, name="total"),
            Aggregation("fare", function="last", time_window=window, name="last_fare"),
        ],
    )
    times = [
        T0 - US,  # before every event
        T0,  # the first event at exactly t
        T0 + window - US,  # the first event 1 us after t - w: still in
        T0 + window,  # the first at exactly t - w: out; the second at exactly t: in
        T0 + 2 * window - US,
        T0 + 2 * window,  # the second at exactly t - w: out
    ]
    got = _values(spark, tmp_path, view, _lookups([(1, t) for t in times]))
    assert got == [
        {"n": 0, "total": None, "last_fare": None},
        {"n": 1, "total": 1, "last_fare": 1.0},
        {"n": 1, "total": 1, "last_fare": 1.0},
        {"n": 1, "total": 2, "last_fare": 2.0},
        {"n": 1, "total": 2, "last_fare": 2.0},
        {"n": 0, "total": None, "last_fare": None},
    ]


def test_window_features_beside_plain_and_on_demand_features(
    spark: SparkSession, tmp_path: Path
) -> None:
    """One call with a plain view, a view with aggregations and an on-demand feature
    reading an aggregation (a hidden column), over a Spark entity frame."""
    path = _source(tmp_path, [(1, T0, 1.0, 1), (1, T0 + SECOND, 2.0, 2), (2, T0, 5.0, 7)])
    hour = timedelta(hours=1)
    trips = _trips(path, [Aggregation("passengers", function="sum", time_window=hour)])
    plain = FeatureView(
        "plain",
        entities=[driver],
        schema=[Field("driver_id", Int64), Field("fare", Float64), Field("passengers", Int64)],
        source=FileSource(path, timestamp_field="ts"),
    )
    doubled = OnDemandFeatureView(
        "doubled",
        sources=[trips],
        schema=[Field("twice", Int64, expr=col("passengers_sum_1h") * 2)],
    )
    request = compile_requests(
        ["plain:fare", "doubled:twice"],
        {"trips": trips, "plain": plain},
        full_feature_names=False,
        on_demand={"doubled": doubled},
    )
    entity = spark.createDataFrame(
        [(2, T0 + SECOND, "a"), (1, T0 + SECOND, "b"), (1, T0, "c")],
        "driver_id long, event_timestamp timestamp, label string",
    ).repartition(1)
    job = get_historical_features(spark, tmp_path, entity, request, "event_timestamp")
    got = [r.asDict() for r in job.to_spark().collect()]
    assert [(r["label"], r["fare"], r["twice"]) for r in got] == [
        ("a", 5.0, 14),
        ("b", 2.0, 6),
        ("c", 1.0, 2),
    ]


def test_window_empty_for_unknown_or_null_key_or_time(spark: SparkSession, tmp_path: Path) -> None:
    path = _source(tmp_path, [(1, T0, 1.5, 3), (1, T0 + SECOND, None, None)])
    aggregations = [
        Aggregation(column, function=f, time_window=timedelta(hours=1))
        for column in ("fare", "passengers")
        for f in FUNCTIONS
        if not (column == "fare" and f == "count_distinct")
    ]
    view = _trips(path, aggregations)
    entity = _lookups(
        [
            (99, T0 + SECOND),  # a key without events
            (None, T0 + SECOND),  # a null key
            (1, None),  # a null time
            (1, T0 - SECOND),  # before every event
            (1, T0 + 2 * SECOND),  # one event, and one whose inputs are null
        ]
    )
    got = _values(spark, tmp_path, view, entity)
    empty = {a.name: 0 if a.function in ("count", "count_distinct") else None for a in aggregations}
    assert got[:4] == [empty] * 4
    one = {
        "fare_count_1h": 1, "fare_sum_1h": 1.5, "fare_mean_1h": 1.5, "fare_stddev_1h": None,
        "fare_min_1h": 1.5, "fare_max_1h": 1.5, "fare_last_1h": 1.5,
        "passengers_count_1h": 1, "passengers_sum_1h": 3, "passengers_mean_1h": 3.0,
        "passengers_stddev_1h": None, "passengers_min_1h": 3, "passengers_max_1h": 3,
        "passengers_last_1h": 3, "passengers_count_distinct_1h": 1,
    }  # fmt: skip
    assert got[4] == one


def test_window_reads_pandas_parquet_and_zoned_entity_times(
    spark: SparkSession, tmp_path: Path
) -> None:
    """A source as pandas writes it by default (nanosecond times, NaN for a missing
    float, which Arrow writes as null) and entity times in Paris: times are truncated to
    the microsecond at or before them and compared as instants."""
    base = pd.Timestamp("2024-03-01 12:00:00")  # naive: UTC
    source = pd.DataFrame(
        {
            "driver_id": [1, 1, 1, 2],
            "ts": [base + pd.Timedelta(nanoseconds=500), base + pd.Timedelta(minutes=30),
                   base + pd.Timedelta(minutes=40), base],
            "fare": [10.0, np.nan, 4.0, 7.0],
            "passengers": [1, 2, 3, 4],
            "zone": ["a", "b", "a", "c"],
            "dropoff": pd.to_datetime(["2024-03-01 12:10", None, "2024-03-01 12:50", None]),
        }
    )  # fmt: skip
    assert str(source["ts"].dtype) == "datetime64[ns]"
    folder = tmp_path / "trips"
    folder.mkdir()
    source.to_parquet(folder / "part.parquet")
    hour = timedelta(hours=1)
    view = FeatureView(
        "trips",
        entities=[driver],
        schema=[
            Field("driver_id", Int64),
            Field("fare", Float64),
            Field("passengers", Int64),
            Field("zone", String),
            Field("dropoff", UnixTimestamp),
        ],
        source=FileSource(str(folder), timestamp_field="ts"),
        aggregations=[
            Aggregation("fare", function="count", time_window=hour),
            Aggregation("fare", function="mean", time_window=hour),
            Aggregation("passengers", function="sum", time_window=hour),
            Aggregation("zone", function="count_distinct", time_window=hour),
            Aggregation("zone", function="last", time_window=hour),
            Aggregation("dropoff", function="max", time_window=hour),
        ],
    )
    paris = pd.to_datetime(
        ["2024-03-01 13:00", "2024-03-01 13:45", "2024-03-01 14:00:00.000001"],
        format="ISO8601",
    ).tz_localize("Europe/Paris")  # 12:00, 12:45 and 1 us after 13:00 UTC
    entity = pd.DataFrame({"driver_id": [1, 1, 1], "event_timestamp": paris})
    refs = [f"trips:{f}" for f in view.feature_names]
    job = get_historical_features(
        spark, tmp_path, entity, requests_for([view], refs), "event_timestamp"
    )
    frame = job.to_pandas()
    assert {c: str(frame[c].dtype) for c in view.feature_names} == {
        "fare_count_1h": "Int64",
        "fare_mean_1h": "float64",
        "passengers_sum_1h": "Int64",
        "zone_count_distinct_1h": "Int64",
        "zone_last_1h": "object",
        "dropoff_max_1h": "datetime64[us, UTC]",
    }
    names = list(view.feature_names)
    rows = frame[names].astype(object).where(frame[names].notna(), None)
    assert rows.to_dict("records") == [
        # 12:00 UTC: the first event (12:00 and 500 ns) counts
        {"fare_count_1h": 1, "fare_mean_1h": 10.0, "passengers_sum_1h": 1,
         "zone_count_distinct_1h": 1, "zone_last_1h": "a",
         "dropoff_max_1h": pd.Timestamp("2024-03-01 12:10", tz="UTC")},
        # 12:45: three events, the NaN fare a null
        {"fare_count_1h": 2, "fare_mean_1h": 7.0, "passengers_sum_1h": 6,
         "zone_count_distinct_1h": 2, "zone_last_1h": "a",
         "dropoff_max_1h": pd.Timestamp("2024-03-01 12:50", tz="UTC")},
        # 13:00:00.000001: the first event left the window
        {"fare_count_1h": 1, "fare_mean_1h": 4.0, "passengers_sum_1h": 5,
         "zone_count_distinct_1h": 2, "zone_last_1h": "a",
         "dropoff_max_1h": pd.Timestamp("2024-03-01 12:50", tz="UTC")},
    ]  # fmt: skip


def test_window_extreme_times_and_sums_neither_raise_nor_round(
    spark: SparkSession, tmp_path: Path
) -> None:
    """Times at the ends of a long with the longest window (a frame's edge would leave
    a long: ANSI mode raises on that), and integer sums that leave int64 on the way and
    come back (exact) or end outside it (null)."""
    big = (1 << 63) - 1
    t0 = utc_micros(T0)
    columns = {
        "driver_id": pa.int64(),
        "ts": TS_TYPE,
        "fare": pa.float64(),
        "passengers": pa.int64(),
    }
    rows = [(1, -big, 1.0, 5), (2, t0, 1.0, big), (2, t0 + 1, 2.0, big), (2, t0 + 2, 3.0, -big)]
    path = write_rows(tmp_path, [dict(zip(columns, r, strict=True)) for r in rows], columns)
    longest = timedelta(days=3_652_500)
    view = _trips(
        path,
        [
            Aggregation("passengers", function="count", time_window=longest, name="n"),
            Aggregation("passengers", function="sum", time_window=longest, name="total"),
            Aggregation("passengers", function="mean", time_window=longest, name="avg"),
        ],
    )
    lookups = [(1, -big), (1, t0), (2, t0 + 1), (2, t0 + 2), (1, big)]
    entity = spark.createDataFrame(lookups, "driver_id long, us long").select(
        "driver_id", F.timestamp_micros("us").alias("event_timestamp")
    )
    refs = [f"trips:{f}" for f in view.feature_names]
    job = get_historical_features(
        spark, tmp_path, entity.repartition(1), requests_for([view], refs), "event_timestamp"
    )
    got = [tuple(r) for r in job.to_spark().select("n", "total", "avg").collect()]
    assert got == [
        (1, 5, 5.0),
        (0, None, None),
        (2, None, float(2 * big) / 2),
        (3, big, float(big) / 3),
        (0, None, None),
    ]
