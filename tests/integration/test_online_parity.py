"""Online/offline parity: after materializing up to T, the online value of every entity
equals the offline point-in-time value at (entity, T), with the same statuses the ttl
implies, on hypothesis-generated worlds (ties, corrections, nulls, NaN, composite keys)."""

from __future__ import annotations

import tempfile
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pytest
import redis
from hypothesis import example, given, settings
from hypothesis import strategies as st
from pyspark.sql import SparkSession

from skewless.batch.materialize import Interval, OnlineWriter, materialize_view
from skewless.batch.retrieval import get_historical_features
from skewless.online.redis import RedisOnlineStore
from skewless.serving.plan import LookupPlan
from skewless.serving.response import FeatureStatus
from skewless.serving.service import lookup as online_lookup
from skewless.timeutil import from_micros
from tests.integration.helpers import (
    columns_for,
    make_view,
    requests_for,
    type_names,
    write_rows,
)
from tests.integration.test_pit_properties import (
    A_FEATURES,
    B_FEATURES,
    BASE,
    MINUTE,
    driver,
    worlds,
    zone,
)
from tests.reference import RefView, lookup, same

ALL_REFS = ["a:a_int", "a:a_float", "a:a_str", "b:b_float", "b:b_int"]


def expected_online(
    view: RefView, entity: dict[str, Any], t: int
) -> tuple[FeatureStatus, dict[str, Any] | None, dict[str, Any] | None]:
    """(status, the row served, the row stored) by the reference rules."""
    stored = lookup(RefView(view.name, view.keys, view.features, view.rows, None), entity, t)
    served = lookup(view, entity, t)
    if served is not None:
        return FeatureStatus.PRESENT, served, stored
    if stored is not None:
        return FeatureStatus.OUTSIDE_MAX_AGE, None, stored
    return FeatureStatus.NOT_FOUND, None, None


def run_parity(
    spark: SparkSession, redis_url: str, world: dict[str, Any], at_minute: int, folder: Path
) -> None:
    project = f"p{uuid.uuid4().hex[:8]}"
    t_us = BASE + at_minute * MINUTE
    a_cols = columns_for({"driver_id": pa.int64()}, A_FEATURES, world["a_created"])
    b_cols = columns_for(
        {"driver_id": pa.int64(), "zone_id": pa.string()}, B_FEATURES, world["b_created"]
    )
    a_ttl = None if world["a_ttl"] is None else timedelta(microseconds=world["a_ttl"])
    b_ttl = None if world["b_ttl"] is None else timedelta(microseconds=world["b_ttl"])
    views = [
        make_view(
            "a",
            [driver],
            A_FEATURES,
            write_rows(folder, world["a_rows"], a_cols),
            created=world["a_created"],
            ttl=a_ttl,
        ),
        make_view(
            "b",
            [driver, zone],
            B_FEATURES,
            write_rows(folder, world["b_rows"], b_cols),
            created=world["b_created"],
            ttl=b_ttl,
        ),
    ]
    for view in views:
        writer = OnlineWriter.for_view(project, view, redis_url)
        materialize_view(spark, view, folder, Interval(end_us=t_us), writer=writer, delta_path=None)

    entities = [{"driver_id": d, "zone_id": z} for d in (0, 1, 2, 3, None) for z in ("x", "y", "q")]
    requests = requests_for(views, ALL_REFS)
    store = RedisOnlineStore(redis.Redis.from_url(redis_url))
    online = online_lookup(LookupPlan(project, requests), store.read, entities, from_micros(t_us))

    offline_df = pd.DataFrame(
        {
            "driver_id": pd.array([e["driver_id"] for e in entities], dtype="Int64"),
            "zone_id": [e["zone_id"] for e in entities],
            "event_timestamp": pd.to_datetime([t_us] * len(entities), unit="us"),
        }
    )
    offline = (
        get_historical_features(spark, folder, offline_df, requests, "event_timestamp")
        .to_arrow()
        .to_pylist()
    )

    ref_views = {
        "a": RefView("a", ["driver_id"], type_names(A_FEATURES), world["a_rows"], world["a_ttl"]),
        "b": RefView(
            "b", ["driver_id", "zone_id"], type_names(B_FEATURES), world["b_rows"], world["b_ttl"]
        ),
    }
    for i, entity in enumerate(entities):
        for ref in ALL_REFS:
            view_name, feature = ref.split(":")
            status, served, stored = expected_online(ref_views[view_name], entity, t_us)
            got_value = online.values[feature][i]
            assert online.statuses[feature][i] is status, f"{entity} {ref}"
            assert same(got_value, None if served is None else served[feature]), f"{entity} {ref}"
            assert same(got_value, offline[i][feature]), f"{entity} {ref}: online != offline"
            want_ts = None if stored is None else from_micros(stored["ts"])
            assert online.event_timestamps[feature][i] == want_ts, f"{entity} {ref}"


CORRECTION = {
    "a_created": True,
    "b_created": False,
    "a_rows": [
        {
            "driver_id": 1,
            "ts": BASE + MINUTE,
            "cts": BASE + 2 * MINUTE,
            "a_int": 1,
            "a_float": None,
            "a_str": None,
        },
        {
            "driver_id": 1,
            "ts": BASE + MINUTE,
            "cts": BASE + 3 * MINUTE,
            "a_int": 0,
            "a_float": None,
            "a_str": None,
        },
    ],
    "b_rows": [],
    "a_ttl": None,
    "b_ttl": None,
}


@pytest.mark.spark
@settings(max_examples=40)
@example(world=CORRECTION, at_minute=5)  # the later-created correction wins, whatever its values
@given(world=worlds(), at_minute=st.integers(0, 10))
def test_online_values_equal_offline_point_in_time(
    spark: SparkSession, redis_url: str, world: dict[str, Any], at_minute: int
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        run_parity(spark, redis_url, world, at_minute, Path(tmp))
