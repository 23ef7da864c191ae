"""Derived features end to end on real Spark, Delta and Redis: computed by Spark from
pandas-written Parquet (nanosecond timestamps, nulls, zeros) and from CSV text, with the
values docs/expressions.md defines (each expected value is computed here in plain
Python), stored in the Delta table, served online exactly as the training set has them
over two materializations, and refused clearly when the source changes under them."""

from __future__ import annotations

import textwrap
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pandas as pd
import pytest
from pyspark.sql import SparkSession

from skewless import FeatureStore
from skewless.errors import IncompatibleSchemaError
from skewless.plan import UpdateObject

DEFS = """
from skewless import *
from skewless.expr import *

driver = Entity("driver", join_keys=["driver_id"])
trips = FeatureView(
    "trips",
    entities=[driver],
    schema=[
        Field("km", Float64),
        Field("speed", Float64, expr=col("km") / (col("minutes") / {minutes_per_hour})),
        Field("minutes", Int64),
        Field("hour_paris", Int64, expr=hour(col("ts"), tz="Europe/Paris")),
        Field("weekend_ny", Bool, expr=is_weekend(col("ts"), tz="America/New_York")),
        Field("n64", Int64, expr=col("n32")),
        Field("fare_cents", Int64, expr=(coalesce(col("fare"), 0.0) * 100).cast(Int64)),
        Field("band", Int64, expr=when(col("km") < 5, 1).when(col("km") < 20, 2).otherwise(3)),
        Field("city_up", String, expr=upper(col("city"))),
    ],
    source=FileSource("data/trips", timestamp_field="ts"),
)
receipts = FeatureView(
    "receipts",
    entities=[driver],
    schema=[
        Field("driver_id", Int64),  # a CSV key is a string unless pinned
        Field("tip", Float64),
        Field("total", Float64, expr=col("amount").cast(Float64) + coalesce(col("tip"), 0.0)),
    ],
    source=FileSource("data/receipts.csv", timestamp_field="ts", file_format="csv"),
)
"""

TRIP_FEATURES = [
    "km",
    "speed",
    "minutes",
    "hour_paris",
    "weekend_ny",
    "n64",
    "fare_cents",
    "band",
    "city_up",
]
TRIP_REFS = [f"trips:{f}" for f in TRIP_FEATURES]
REFS = [*TRIP_REFS, "receipts:tip", "receipts:total"]
PARIS, NEW_YORK = ZoneInfo("Europe/Paris"), ZoneInfo("America/New_York")


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


# One row per dict; None is a null. Paris leaves winter time at 2024-03-31 01:00 UTC.
FIRST = [
    # Saturday 23:30 UTC: Sunday 00:30 in Paris, Saturday 19:30 in New York
    {"driver_id": 1, "ts": "2024-03-30 23:30", "km": 12.0, "minutes": 30, "n32": 1,
     "fare": 20.5, "city": "Paris"},
    # after the switch to summer time: 03:30 in Paris; zero minutes: no speed
    {"driver_id": 1, "ts": "2024-03-31 01:30", "km": 3.0, "minutes": 0, "n32": -2,
     "fare": None, "city": "lyon"},
    {"driver_id": 2, "ts": "2024-03-29 10:00", "km": None, "minutes": 15, "n32": None,
     "fare": 7.25, "city": None},
    {"driver_id": 3, "ts": "2024-03-29 22:15", "km": 0.0, "minutes": None, "n32": 2**31 - 1,
     "fare": 0.0, "city": "Nice"},
]  # fmt: skip
SECOND = [
    {"driver_id": 2, "ts": "2024-04-02 06:00", "km": 7.5, "minutes": 0, "n32": 5,
     "fare": -3.99, "city": "évry"},
    {"driver_id": 3, "ts": "2024-04-02 07:45", "km": 42.0, "minutes": 35, "n32": -(2**31),
     "fare": None, "city": "lille"},
]  # fmt: skip
RECEIPTS = (
    "driver_id,ts,amount,tip\n"
    "1,2024-03-30 12:00:00,10.5,1.5\n"
    "2,2024-03-29 09:00:00,abc,\n"  # not a number: the cast gives None
    "3,2024-03-29 09:00:00,,2\n"
)
RECEIPT_VALUES = {1: (1.5, 12.0), 2: (None, None), 3: (2.0, None)}


def expected(row: dict[str, Any]) -> dict[str, Any]:
    """The derived values by docs/expressions.md, computed without skewless."""
    km, minutes, fare, city = row["km"], row["minutes"], row["fare"], row["city"]
    at = utc(row["ts"])
    speed = None if km is None or minutes is None or minutes == 0 else km / (minutes / 60)
    band = 3 if km is None else 1 if km < 5 else 2 if km < 20 else 3
    return {
        "km": km,
        "speed": speed,
        "minutes": minutes,
        "hour_paris": at.astimezone(PARIS).hour,
        "weekend_ny": at.astimezone(NEW_YORK).isoweekday() >= 6,
        "n64": row["n32"],
        "fare_cents": int((fare or 0.0) * 100),  # truncated toward zero
        "band": band,
        "city_up": None if city is None else city.translate(_ASCII_UPPER),
    }


_ASCII_UPPER = str.maketrans("abcdefghijklmnopqrstuvwxyz", "ABCDEFGHIJKLMNOPQRSTUVWXYZ")


def write_trips(root: Path, rows: list[dict[str, Any]], name: str) -> None:
    """As pandas writes Parquet by default: nanosecond timestamps, int32 kept as int32."""
    frame = pd.DataFrame(
        {
            "driver_id": [r["driver_id"] for r in rows],
            "ts": pd.to_datetime([r["ts"] for r in rows]),
            "km": [r["km"] for r in rows],
            "minutes": pd.array([r["minutes"] for r in rows], dtype="Int64"),
            "n32": pd.array([r["n32"] for r in rows], dtype="Int32"),
            "fare": [r["fare"] for r in rows],
            "city": [r["city"] for r in rows],
        }
    )
    frame.to_parquet(root / "data" / "trips" / f"{name}.parquet")


def write_defs(root: Path, minutes_per_hour: str = "60") -> None:
    (root / "defs.py").write_text(textwrap.dedent(DEFS.format(minutes_per_hour=minutes_per_hour)))


@pytest.fixture(scope="module")
def store(
    tmp_path_factory: pytest.TempPathFactory, spark: SparkSession, redis_url: str
) -> FeatureStore:
    root = tmp_path_factory.mktemp("derived")
    (root / "data" / "trips").mkdir(parents=True)
    project = f"d_{uuid.uuid4().hex[:8]}"
    (root / "feature_store.yaml").write_text(
        f"project: {project}\nonline_store:\n  type: redis\n  url: {redis_url}\n"
    )
    write_defs(root)
    write_trips(root, FIRST, "part-0")
    (root / "data" / "receipts.csv").write_text(RECEIPTS)
    fs = FeatureStore(root)
    fs.apply()
    return fs


def latest(rows: list[dict[str, Any]], driver: int, at: datetime) -> dict[str, Any] | None:
    mine = [r for r in rows if r["driver_id"] == driver and utc(r["ts"]) <= at]
    return max(mine, key=lambda r: utc(r["ts"])) if mine else None


def want(
    rows: list[dict[str, Any]], driver: int, at: datetime, *, receipts: bool = True
) -> dict[str, Any]:
    row = latest(rows, driver, at)
    values = expected(row) if row else dict.fromkeys(TRIP_FEATURES)
    if not receipts:
        return values
    tip, total = RECEIPT_VALUES.get(driver, (None, None))
    return {**values, "tip": tip, "total": total}


def training(
    store: FeatureStore,
    drivers: list[int],
    at: datetime | list[datetime],
    refs: list[str] = REFS,
) -> list[dict[str, Any]]:
    times = at if isinstance(at, list) else [at] * len(drivers)
    entity_df = pd.DataFrame({"driver_id": drivers, "event_timestamp": times})
    rows: list[dict[str, Any]] = (
        store.get_historical_features(entity_df, refs).to_arrow().to_pylist()
    )
    return [{k: v for k, v in r.items() if k not in entity_df.columns} for r in rows]


def online(store: FeatureStore, drivers: list[int], at: datetime) -> list[dict[str, Any]]:
    rows = [{"driver_id": d} for d in drivers]
    response = store.get_online_features(TRIP_REFS, rows, request_time=at)
    return [
        {name: response.values[name][i] for name in response.values} for i in range(len(drivers))
    ]


def test_training_set_has_the_derived_values_the_docs_define(store: FeatureStore) -> None:
    saturday, sunday = utc("2024-03-31 00:00"), utc("2024-03-31 02:00")
    drivers = [1, 2, 3, 4] * 2
    times = [saturday] * 4 + [sunday] * 4
    got = training(store, drivers, times)
    assert got == [want(FIRST, d, t) for d, t in zip(drivers, times, strict=True)]
    # the cases the table pins: zero minutes, a null km (no branch taken), DST
    assert (got[0]["hour_paris"], got[0]["weekend_ny"], got[0]["speed"]) == (0, True, 24.0)
    assert (got[4]["speed"], got[4]["hour_paris"], got[4]["band"]) == (None, 3, 1)
    assert (got[1]["km"], got[1]["band"], got[1]["n64"], got[1]["fare_cents"]) == (
        None,
        3,
        None,
        725,
    )
    assert (got[2]["speed"], got[2]["n64"]) == (None, 2**31 - 1)
    assert (got[1]["tip"], got[1]["total"]) == (None, None)  # "abc" is no number


def test_online_values_equal_the_training_set_over_two_materializations(
    store: FeatureStore, spark: SparkSession
) -> None:
    drivers = [1, 2, 3, 4]
    first_end = utc("2024-04-01 00:00")
    (run,) = store.materialize(None, first_end, views=["trips"])
    offline = training(store, drivers, first_end, TRIP_REFS)
    assert offline == [want(FIRST, d, first_end, receipts=False) for d in drivers]
    assert online(store, drivers, first_end) == offline

    # the Delta table holds the derived features as the view declares them
    table = spark.read.format("delta").load(run.delta_path)
    types = dict(table.dtypes)
    assert (types["speed"], types["n64"], types["weekend_ny"]) == ("double", "bigint", "boolean")
    assert not [c for c in table.columns if c.startswith("__input")]

    write_trips(store.repo_path, SECOND, "part-1")
    second_end = utc("2024-04-03 00:00")
    store.materialize(first_end, second_end, views=["trips"])
    offline = training(store, drivers, second_end, TRIP_REFS)
    assert offline == [want(FIRST + SECOND, d, second_end, receipts=False) for d in drivers]
    assert offline[1]["speed"] is None and offline[1]["city_up"] == "éVRY"  # ASCII letters only
    assert offline[2]["n64"] == -(2**31)
    assert online(store, drivers, second_end) == offline


def test_editing_an_expression_plans_a_data_change(store: FeatureStore) -> None:
    root = store.repo_path
    try:
        write_defs(root, " 60 ")  # spacing: the same expression
        assert not FeatureStore(root).plan().has_changes
        write_defs(root, "60.0")  # an int64 literal becomes a float64 one
        plan = FeatureStore(root).plan()
        (stage,) = plan.stages
        assert isinstance(stage, UpdateObject) and stage.name == "trips"
        assert stage.data_changed
        assert plan.views_to_materialize == ["trips"]
    finally:
        write_defs(root)


def test_a_source_that_no_longer_fits_an_expression_fails_at_read_time(
    tmp_path: Path, spark: SparkSession
) -> None:
    (tmp_path / "data" / "trips").mkdir(parents=True)
    (tmp_path / "feature_store.yaml").write_text("project: derived_read\n")
    write_defs(tmp_path)
    write_trips(tmp_path, FIRST, "part-0")
    (tmp_path / "data" / "receipts.csv").write_text(RECEIPTS)
    fs = FeatureStore(tmp_path)
    fs.apply()
    changed = pd.read_parquet(tmp_path / "data" / "trips" / "part-0.parquet")
    changed["city"] = [1, 2, 3, 4]  # a number now: upper() takes a string
    (tmp_path / "data" / "trips" / "part-0.parquet").unlink()
    changed.to_parquet(tmp_path / "data" / "trips" / "part-1.parquet")
    entity_df = pd.DataFrame({"driver_id": [1], "event_timestamp": [utc("2024-04-01 00:00")]})
    with pytest.raises(IncompatibleSchemaError) as info:
        fs.get_historical_features(entity_df, ["trips:city_up"])
    assert info.value.problems == [
        "derived feature 'city_up': upper(col('city')): upper() takes a string, got int64"
    ]
    assert "feature view 'trips'" in str(info.value)
