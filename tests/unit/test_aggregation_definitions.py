"""Aggregation and FeatureView(aggregations=...): what a definition accepts, refuses and
records."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from skewless import (
    Aggregation,
    Array,
    Entity,
    FeatureView,
    Field,
    FileSource,
    Float32,
    Float64,
    Int32,
    Int64,
    String,
    UnixTimestamp,
)
from skewless.definitions.aggregation import FUNCTIONS, default_name, window_text
from skewless.errors import DefinitionError
from skewless.expr import col
from skewless.fingerprint import feature_view_fingerprint
from skewless.online.event_lists import EVENT_TS, horizon_us, list_columns, list_fields
from skewless.rules.windows import in_window

driver = Entity("driver", join_keys=["driver_id"])
trips = FileSource("data/trips.parquet", timestamp_field="ts")
DAY = timedelta(days=1)


def view(aggregations: list[Aggregation], **kw: Any) -> FeatureView:
    args: dict[str, Any] = {
        "entities": [driver],
        "schema": [
            Field("driver_id", Int64),
            Field("fare", Float64),
            Field("trip_id", String),
            Field("passengers", Int32),
            Field("fare_cents", Int64, expr=(col("fare") * 100).cast(Int64)),
        ],
        "source": trips,
        "aggregations": aggregations,
    }
    args.update(kw)
    return FeatureView("trips", **args)


def test_aggregation_default_name_spells_the_window() -> None:
    agg = Aggregation(column="fare", function="sum", time_window=timedelta(days=7))
    assert agg.name == "fare_sum_7d"
    assert window_text(timedelta(hours=1)) == "1h"
    assert window_text(timedelta(minutes=90)) == "90m"
    assert window_text(timedelta(seconds=30)) == "30s"
    assert window_text(timedelta(milliseconds=1500)) == "1500ms"
    assert window_text(timedelta(microseconds=7)) == "7us"
    assert default_name("fare", "mean", timedelta(days=2)) == "fare_mean_2d"


def test_aggregation_accepts_feast_spellings_of_functions() -> None:
    assert Aggregation(column="fare", function="avg", time_window=DAY).function == "mean"
    assert Aggregation(column="fare", function="std", time_window=DAY).name == "fare_stddev_1d"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"function": "median"}, "unknown aggregation function 'median'"),
        ({"time_window": timedelta(0)}, "time_window must be positive"),
        ({"time_window": timedelta(days=4_000_000)}, "time_window must be at most"),
        ({"name": "__x"}, "reserved"),
        ({"slide_interval": timedelta(hours=1)}, "windows slide continuously"),
    ],
)
def test_aggregation_refuses_bad_arguments(kwargs: dict[str, Any], message: str) -> None:
    args: dict[str, Any] = {"column": "fare", "function": "sum", "time_window": DAY}
    with pytest.raises(DefinitionError, match=message):
        Aggregation(**{**args, **kwargs})


def test_feature_view_with_aggregations_serves_the_aggregations() -> None:
    v = view(
        [
            Aggregation(column="fare", function="mean", time_window=DAY),
            Aggregation(column="trip_id", function="count", time_window=timedelta(hours=1)),
            Aggregation(column="passengers", function="sum", time_window=DAY),
            Aggregation(column="fare", function="max", time_window=DAY, name="top_fare"),
            Aggregation(column="fare_cents", function="sum", time_window=DAY),
        ]
    )
    assert v.feature_names == (
        "fare_mean_1d",
        "trip_id_count_1h",
        "passengers_sum_1d",
        "top_fare",
        "fare_cents_sum_1d",
    )
    assert [f.dtype for f in v.features] == [Float64, Int64, Int64, Float64, Int64]
    assert v.stored_names == ("fare", "trip_id", "passengers", "fare_cents")
    assert v.aggregation("top_fare").function == "max"
    assert list_columns(v) == ("fare", "trip_id", "passengers", "fare_cents")
    assert list_fields(v)[0] == (EVENT_TS, Array(UnixTimestamp))
    assert dict(list_fields(v))["passengers"] == Array(Int32)
    assert horizon_us(v) == 86_400_000_000


def test_feature_view_output_types_follow_the_function() -> None:
    schema = [Field("driver_id", Int64), Field("x", Float32), Field("when", UnixTimestamp)]
    v = view(
        [
            Aggregation(column="x", function=f, time_window=DAY)
            for f in ("sum", "mean", "stddev", "min", "max", "last", "count")
        ]
        + [
            Aggregation(column="when", function=f, time_window=DAY)
            for f in ("min", "last", "count_distinct")
        ],
        schema=schema,
    )
    assert [f.dtype for f in v.features] == [
        Float64,
        Float64,
        Float64,
        Float32,
        Float32,
        Float32,
        Int64,
        UnixTimestamp,
        UnixTimestamp,
        Int64,
    ]


@pytest.mark.parametrize(
    ("aggregations", "kw", "message"),
    [
        (
            [Aggregation(column="trip_id", function="sum", time_window=DAY)],
            {},
            "sum takes numbers, not string",
        ),
        (
            [Aggregation(column="fare", function="count_distinct", time_window=DAY)],
            {},
            "not floats",
        ),
        (
            [Aggregation(column="distance", function="sum", time_window=DAY)],
            {},
            "reads column 'distance', which is not in the schema",
        ),
        (
            [Aggregation(column="driver_id", function="count", time_window=DAY)],
            {},
            "which is a join key",
        ),
        (
            [
                Aggregation(column="fare", function="sum", time_window=DAY, name="x"),
                Aggregation(column="fare", function="max", time_window=DAY, name="x"),
            ],
            {},
            "two aggregations are named 'x'",
        ),
        (
            [Aggregation(column="fare", function="sum", time_window=DAY, name="trip_id")],
            {},
            "is a column of the view",
        ),
        (
            [Aggregation(column="fare", function="sum", time_window=DAY)],
            {"ttl": DAY},
            "has no ttl",
        ),
    ],
)
def test_feature_view_refuses_bad_aggregations(
    aggregations: list[Aggregation], kw: dict[str, Any], message: str
) -> None:
    with pytest.raises(DefinitionError, match=message) as caught:
        view(aggregations, **kw)
    assert "feature view 'trips'" in str(caught.value)


def test_feature_view_refuses_arrays_as_aggregation_inputs() -> None:
    schema = [Field("driver_id", Int64), Field("tags", Array(String))]
    with pytest.raises(DefinitionError, match="not arrays"):
        view([Aggregation(column="tags", function="count", time_window=DAY)], schema=schema)


def test_every_function_takes_some_type() -> None:
    assert set(FUNCTIONS) == {
        "count",
        "sum",
        "mean",
        "min",
        "max",
        "stddev",
        "last",
        "count_distinct",
    }
    assert all(f.inputs for f in FUNCTIONS.values())
    assert {n for n, f in FUNCTIONS.items() if f.empty == 0} == {"count", "count_distinct"}


def test_aggregated_view_round_trips_through_its_stored_form() -> None:
    v = view([Aggregation(column="fare", function="mean", time_window=timedelta(days=7))])
    assert FeatureView.model_validate(v.model_dump(mode="json", by_alias=True)) == v


def test_fingerprint_covers_aggregations_and_keeps_plain_views_hashes() -> None:
    base = view([Aggregation(column="fare", function="mean", time_window=DAY)])
    fp = feature_view_fingerprint(base)
    for other in (
        [Aggregation(column="fare", function="mean", time_window=2 * DAY)],
        [Aggregation(column="fare", function="max", time_window=DAY)],
        [Aggregation(column="fare", function="mean", time_window=DAY, name="m")],
    ):
        assert feature_view_fingerprint(view(other)).data_hash != fp.data_hash
    described = [Aggregation(column="fare", function="mean", time_window=DAY, description="d")]
    changed = feature_view_fingerprint(view(described))
    assert changed.data_hash == fp.data_hash
    assert changed.metadata_hash != fp.metadata_hash
    plain = FeatureView("trips", entities=[driver], schema=[Field("fare", Float64)], source=trips)
    assert "aggregations" not in plain.model_dump(mode="json", by_alias=True)


@pytest.mark.parametrize(
    ("event", "t", "window", "inside"),
    [(100, 100, 10, True), (90, 100, 10, False), (91, 100, 10, True), (101, 100, 10, False)],
)
def test_window_covers_t_minus_window_exclusive_to_t_inclusive(
    event: int, t: int, window: int, inside: bool
) -> None:
    assert in_window(event, t, window) is inside
