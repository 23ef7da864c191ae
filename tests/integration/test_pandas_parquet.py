"""Parquet files as pandas writes them by default (`DataFrame.to_parquet()`: nanosecond
timestamps, naive or with a zone) through plan, apply, training sets, materialization and
online lookups. Every time is truncated to the microsecond at or before it, source and
entity rows alike, so the data holds times that differ below the microsecond."""

from __future__ import annotations

import textwrap
import uuid
import warnings
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from pyspark.sql import SparkSession
from pyspark.sql import functions as F  # noqa: N812

from skewless import Entity, FeatureStore, FeatureView, Field, FileSource, Float64, Int64
from skewless.batch.sources import from_nanos, read_source
from skewless.errors import EntityRowsError, IncompatibleSchemaError
from skewless.plan import AddObject
from skewless.rules.schema import nanos_to_micros
from skewless.serving.response import FeatureStatus
from skewless.timeutil import utc_micros

DEFS = """
from skewless import *

driver = Entity("driver", join_keys=["driver_id"])
trips = FeatureView(
    "trips",
    entities=[driver],
    schema=[Field("fare", Float64), Field("passengers", Int64), Field("dropoff", UnixTimestamp)],
    source=FileSource(
        "data/trips.parquet", timestamp_field="ts", created_timestamp_column="created"
    ),
)
shifts = FeatureView(
    "shifts",
    entities=[driver],
    schema=[Field("hours", Float64)],
    source=FileSource("data/shifts.parquet", timestamp_field="started"),
)
"""

REFS = ["trips:fare", "trips:passengers", "trips:dropoff", "shifts:hours"]
END = datetime(2024, 3, 2, tzinfo=UTC)


def utc(text: str) -> pd.Timestamp:
    return pd.Timestamp(text, tz="UTC")


def us(text: str) -> datetime:
    """An exact microsecond, as skewless hands times back."""
    stamp = utc(text)
    assert stamp.nanosecond == 0
    return stamp.to_pydatetime()


# ts: naive nanoseconds (UTC); created and dropoff: nanoseconds in Europe/Berlin.
TRIPS = [
    # 1001: both rows fall on the microsecond 12:00:00.000001; the later created time wins
    # there, although the first row's event time is the greater in nanoseconds.
    (1001, "2024-03-01 12:00:00.000001999", "2024-03-01 12:00:00.000000500", 10.0, 1,
     "2024-03-01 12:20:00.000001999"),
    (1001, "2024-03-01 12:00:00.000001001", "2024-03-01 12:00:00.000001", 11.0, 2,
     "2024-03-01 12:20:00.000003500"),
    (1001, "2024-03-01 14:00:00", "2024-03-01 14:00:00", 12.0, 3, "2024-03-01 14:20:00.000000001"),
    # 1002: known from 12:00:00.000000 on (not from 12:00:00.000000999)
    (1002, "2024-03-01 12:00:00.000000999", "2024-03-01 12:00:00", 20.0, 4,
     "2024-03-01 12:20:00"),
    # 1003: one nanosecond before the epoch is its last microsecond (a floor), not the epoch
    (1003, "1969-12-31 23:59:59.999999999", "1969-12-31 23:59:59.999999999", 30.0, 5,
     "1970-01-01 00:19:59.999999999"),
]  # fmt: skip

# started: nanoseconds in Asia/Kolkata (+05:30).
SHIFTS = [
    (1001, "2024-03-01 12:00:00.000000999", 8.0),
    (1002, "2024-03-01 13:00:00", 6.5),
]


def write_sources(data: Path) -> None:
    trips = pd.DataFrame(TRIPS, columns=["driver_id", "ts", "created", "fare", "passengers", "d"])
    trips["ts"] = pd.to_datetime(trips["ts"], format="ISO8601")
    for column in ("created", "d"):
        trips[column] = pd.to_datetime(trips[column], utc=True, format="ISO8601").dt.tz_convert(
            "Europe/Berlin"
        )
    trips = trips.rename(columns={"d": "dropoff"})
    trips.to_parquet(data / "trips.parquet")
    shifts = pd.DataFrame(SHIFTS, columns=["driver_id", "started", "hours"])
    shifts["started"] = pd.to_datetime(shifts["started"], utc=True, format="ISO8601").dt.tz_convert(
        "Asia/Kolkata"
    )
    shifts.to_parquet(data / "shifts.parquet")


@pytest.fixture
def store(tmp_path: Path, redis_url: str, spark: SparkSession) -> FeatureStore:
    (tmp_path / "data").mkdir()
    project = f"pq_{uuid.uuid4().hex[:8]}"
    (tmp_path / "feature_store.yaml").write_text(
        f"project: {project}\nonline_store:\n  type: redis\n  url: {redis_url}\n"
    )
    (tmp_path / "defs.py").write_text(textwrap.dedent(DEFS))
    write_sources(tmp_path / "data")
    return FeatureStore(tmp_path)


# entity time (nanoseconds, naive UTC) -> expected (fare, passengers, dropoff, hours)
ENTITY_ROWS: list[tuple[int, str, tuple[Any, ...]]] = [
    (1001, "2024-03-01 12:00:00.000000999", (None, None, None, 8.0)),
    (1001, "2024-03-01 12:00:00.000001", (11.0, 2, us("2024-03-01 12:20:00.000003"), 8.0)),
    (1001, "2024-03-01 13:59:59.999999999", (11.0, 2, us("2024-03-01 12:20:00.000003"), 8.0)),
    (1001, "2024-03-01 14:00:00.000000001", (12.0, 3, us("2024-03-01 14:20:00"), 8.0)),
    (1002, "2024-03-01 12:00:00.000000500", (20.0, 4, us("2024-03-01 12:20:00"), None)),
    (1003, "1969-12-31 23:59:59.999999", (30.0, 5, us("1970-01-01 00:19:59.999999"), None)),
    (1004, "2024-03-01 15:00:00", (None, None, None, None)),
]


def entity_frame(zone: str | None) -> pd.DataFrame:
    times = pd.to_datetime([t for _, t, _ in ENTITY_ROWS], format="ISO8601")
    if zone is not None:
        times = times.tz_localize("UTC").tz_convert(zone)
    return pd.DataFrame({"driver_id": [d for d, _, _ in ENTITY_ROWS], "event_timestamp": times})


def test_pandas_parquet_plans_and_applies_with_source_key_types(store: FeatureStore) -> None:
    plan = store.plan()
    views = {s.name: s for s in plan.stages if s.kind == "feature_view"}
    assert set(views) == {"trips", "shifts"}
    for stage in views.values():
        assert isinstance(stage, AddObject)
        assert stage.spec["schema_"][0]["dtype"] == "int64"  # driver_id, from the source
    store.apply(plan)
    assert [(f.name, f.dtype) for f in store.get_feature_view("trips").key_fields] == [
        ("driver_id", Int64)
    ]


@pytest.mark.parametrize("zone", [None, "America/New_York"])
def test_pandas_parquet_training_set_truncates_every_time_to_the_microsecond(
    store: FeatureStore, zone: str | None
) -> None:
    store.apply()
    entity = entity_frame(zone)
    assert str(entity["event_timestamp"].dtype).startswith("datetime64[ns")  # pandas' default
    job = store.get_historical_features(entity, REFS)
    rows = job.to_arrow().to_pylist()
    got = [(r["fare"], r["passengers"], r["dropoff"], r["hours"]) for r in rows]
    assert got == [expected for _, _, expected in ENTITY_ROWS]
    frame = job.to_pandas()
    assert frame["event_timestamp"].equals(entity["event_timestamp"])  # input untouched
    assert [None if pd.isna(x) else x for x in frame["fare"]] == [e[0] for _, _, e in ENTITY_ROWS]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        spark_rows = job.to_spark().select(F.unix_micros("event_timestamp"), "fare").collect()
    assert not [w for w in caught if "Arrow" in str(w.message)]  # no row-by-row fallback
    nanos = pd.to_datetime([t for _, t, _ in ENTITY_ROWS], format="ISO8601").asi8
    assert [tuple(r) for r in spark_rows] == [
        (nanos_to_micros(int(n)), e[0]) for n, (_, _, e) in zip(nanos, ENTITY_ROWS, strict=True)
    ]


def test_pandas_parquet_online_values_equal_the_training_set_at_the_same_time(
    store: FeatureStore,
) -> None:
    store.apply()
    runs = store.materialize(None, END)
    assert sorted((r.view, r.rows_read) for r in runs) == [("shifts", 2), ("trips", 5)]
    drivers = [1001, 1002, 1003, 1004]
    entity = pd.DataFrame({"driver_id": drivers, "event_timestamp": [END] * len(drivers)})
    offline = store.get_historical_features(entity, REFS).to_arrow().to_pylist()
    resp = store.get_online_features(REFS, [{"driver_id": d} for d in drivers], request_time=END)
    for feature in ("fare", "passengers", "dropoff", "hours"):
        assert resp.values[feature] == [row[feature] for row in offline], feature
    assert resp.values["fare"] == [12.0, 20.0, 30.0, None]
    assert resp.values["dropoff"][2] == us("1970-01-01 00:19:59.999999")
    assert resp.event_timestamps["fare"][:3] == [
        us("2024-03-01 14:00:00"),
        us("2024-03-01 12:00:00"),
        us("1969-12-31 23:59:59.999999"),
    ]
    assert resp.statuses["hours"] == [FeatureStatus.PRESENT] * 2 + [FeatureStatus.NOT_FOUND] * 2
    with pytest.raises(EntityRowsError, match="join key 'driver_id'") as info:
        store.get_online_features(REFS, [{"driver_id": "1001"}], request_time=END)
    assert info.value.key == "driver_id"


def test_from_nanos_is_the_rules_floor(spark: SparkSession) -> None:
    nanos = [0, 999, 1000, 1999, -1, -999, -1000, -1001, 1_709_294_400_000_001_999, -(10**17) - 1]
    frame = spark.createDataFrame([(n,) for n in nanos], "n bigint")
    got = [r[0] for r in frame.select(F.unix_micros(from_nanos("n"))).collect()]
    assert got == [nanos_to_micros(n) for n in nanos]


def _view(path: Path, ts: str = "ts") -> FeatureView:
    return FeatureView(
        "v",
        entities=[Entity("driver", join_keys=["driver_id"])],
        schema=[Field("fare", Float64)],
        source=FileSource(str(path), timestamp_field=ts),
    )


def test_read_source_refuses_a_folder_mixing_nanoseconds_and_microseconds(
    tmp_path: Path, spark: SparkSession
) -> None:
    frame = pd.DataFrame(
        {
            "driver_id": [1],
            "ts": pd.to_datetime(["2024-03-01 12:00:00.000001999"], format="ISO8601"),
            "fare": [1.0],
        }
    )
    folder = tmp_path / "trips"
    folder.mkdir()
    frame.to_parquet(folder / "part-0.parquet")
    frame.to_parquet(
        folder / "part-1.parquet", coerce_timestamps="us", allow_truncated_timestamps=True
    )
    with pytest.raises(IncompatibleSchemaError) as info:
        read_source(spark, _view(folder), tmp_path)
    assert info.value.problems == [
        "timestamp field 'ts' must be a timestamp or a date but the source has a timestamp "
        f"in nanoseconds in {folder}/part-0.parquet but unix_timestamp in "
        f"{folder}/part-1.parquet (every file of a folder must store it in the same unit)"
    ]
    (folder / "part-1.parquet").unlink()
    frame.assign(fare=2.0).to_parquet(folder / "part-1.parquet")  # both in nanoseconds
    rows = read_source(spark, _view(folder), tmp_path)
    got = rows.select(F.unix_micros("__ts"), "fare").orderBy("fare").collect()
    at = utc_micros(datetime(2024, 3, 1, 12, 0, 0, 1, tzinfo=UTC))
    assert [tuple(r) for r in got] == [(at, 1.0), (at, 2.0)]


def test_read_source_takes_a_date_as_midnight_utc(tmp_path: Path, spark: SparkSession) -> None:
    frame = pd.DataFrame({"driver_id": [1], "day": [date(2024, 3, 1)], "fare": [1.0]})
    frame.to_parquet(tmp_path / "days.parquet")
    rows = read_source(spark, _view(tmp_path / "days.parquet", ts="day"), tmp_path)
    got = [r[0] for r in rows.select(F.unix_micros("__ts")).collect()]
    assert got == [utc_micros(datetime(2024, 3, 1, tzinfo=UTC))]
