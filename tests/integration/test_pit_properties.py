"""Property tests: get_historical_features against the independent reference.

Hypothesis generates small, collision-heavy worlds: few keys and minutes, so ties on
event time, created-time tie-breaks, same-time rows with different values, exact
duplicates, ttl boundaries (t - ttl and t exactly), nulls, NaN, unknown keys, null keys
and times, composite keys and two views in one call all occur often.
"""

from __future__ import annotations

import math
import tempfile
from datetime import timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F  # noqa: N812

from skewless.batch.retrieval import get_historical_features
from skewless.definitions import Entity
from skewless.types import Float64, Int64, String
from tests.integration.helpers import (
    columns_for,
    make_view,
    requests_for,
    type_names,
    write_rows,
)
from tests.reference import RefView, historical, same

MINUTE = 60_000_000
BASE = 1_700_000_000_000_000  # 2023-11-14T22:13:20Z, in microseconds

driver = Entity("driver", join_keys=["driver_id"])
zone = Entity("zone", join_keys=["zone_id"])

A_FEATURES = {"a_int": Int64, "a_float": Float64, "a_str": String}
B_FEATURES = {"b_float": Float64, "b_int": Int64}

minutes = st.integers(0, 6).map(lambda m: BASE + m * MINUTE)
maybe_time = st.one_of(minutes, minutes, minutes, minutes, st.none())
ints = st.one_of(st.none(), st.integers(-3, 3))
floats = st.one_of(st.none(), st.sampled_from([0.5, 1.5, -2.0, math.nan, 3.25]))
strings = st.one_of(st.none(), st.sampled_from(["a", "b", "é", ""]))
driver_ids = st.integers(0, 2)
zone_ids = st.sampled_from(["x", "y"])
ttls = st.one_of(st.none(), st.integers(1, 4).map(lambda m: m * MINUTE))


@st.composite
def rows_with_duplicates(
    draw: st.DrawFn, row: st.SearchStrategy[dict[str, Any]]
) -> list[dict[str, Any]]:
    rows = draw(st.lists(row, max_size=14))
    if rows:
        copies = draw(st.lists(st.sampled_from(rows), max_size=3))
        # Corrections: same keys and event time, a fresh created time and fresh values.
        fixes = []
        for original in draw(st.lists(st.sampled_from(rows), max_size=3)):
            fresh = draw(row)
            for key in ("driver_id", "zone_id", "ts"):
                if key in original:
                    fresh[key] = original[key]
            fixes.append(fresh)
        rows = rows + [dict(r) for r in copies] + fixes
        rows = draw(st.permutations(rows))
    return list(rows)


def a_row(created: bool) -> st.SearchStrategy[dict[str, Any]]:
    fields: dict[str, Any] = {
        "driver_id": driver_ids,
        "ts": maybe_time,
        "a_int": ints,
        "a_float": floats,
        "a_str": strings,
    }
    if created:
        fields["cts"] = maybe_time
    return st.fixed_dictionaries(fields)


def b_row(created: bool) -> st.SearchStrategy[dict[str, Any]]:
    fields: dict[str, Any] = {
        "driver_id": driver_ids,
        "zone_id": zone_ids,
        "ts": maybe_time,
        "b_float": floats,
        "b_int": ints,
    }
    if created:
        fields["cts"] = maybe_time
    return st.fixed_dictionaries(fields)


entity_rows = st.lists(
    st.fixed_dictionaries(
        {
            "driver_id": st.one_of(st.integers(0, 4), st.integers(0, 4), st.none()),
            "zone_id": st.one_of(st.sampled_from(["x", "y", "q"]), st.none()),
            # Entity times run past the data, so ttl expiry and "all in the past" occur.
            "t": st.one_of(st.integers(0, 10).map(lambda m: BASE + m * MINUTE), st.none()),
            "label": st.integers(0, 1),
        }
    ),
    min_size=1,
    max_size=12,
)


def probes(draw: st.DrawFn, rows: list[dict[str, Any]], ttl: int | None) -> list[dict[str, Any]]:
    """Entity rows aimed at feature rows: same keys, at exactly the row's time, at the ttl
    boundary (t - ttl == ts, still valid) and just past it."""
    timed = [r for r in rows if r["ts"] is not None]
    if not timed:
        return []
    out = []
    for row in draw(st.lists(st.sampled_from(timed), max_size=4)):
        offsets = [0, MINUTE] + ([] if ttl is None else [ttl, ttl + MINUTE])
        out.append(
            {
                "driver_id": row["driver_id"],
                "zone_id": row.get("zone_id", draw(st.sampled_from(["x", "y"]))),
                "t": row["ts"] + draw(st.sampled_from(offsets)),
                "label": draw(st.integers(0, 1)),
            }
        )
    return out


@st.composite
def worlds(draw: st.DrawFn) -> dict[str, Any]:
    a_created = draw(st.booleans())
    b_created = draw(st.booleans())
    a_rows = draw(rows_with_duplicates(a_row(a_created)))
    b_rows = draw(rows_with_duplicates(b_row(b_created)))
    a_ttl, b_ttl = draw(ttls), draw(ttls)
    entities = draw(entity_rows) + probes(draw, a_rows, a_ttl) + probes(draw, b_rows, b_ttl)
    entities = list(draw(st.permutations(entities)))
    if draw(st.booleans()):  # duplicate entity rows must not multiply or vanish
        entities += [dict(e) for e in draw(st.lists(st.sampled_from(entities), max_size=3))]
    return {
        "a_created": a_created,
        "b_created": b_created,
        "a_rows": a_rows,
        "b_rows": b_rows,
        "a_ttl": a_ttl,
        "b_ttl": b_ttl,
        "entities": entities,
        # How the entity rows come in and the training set goes out: a pandas frame out
        # as Arrow (put in order on the driver), a pandas frame out as a Spark frame
        # (over a checkpoint of every input column, ordered by Spark), or a Spark frame
        # with a column of an odd name and type.
        "via": draw(st.sampled_from(["pandas", "pandas_to_spark", "spark"])),
        "refs": draw(
            st.lists(
                st.sampled_from(["a:a_int", "a:a_float", "a:a_str", "b:b_float", "b:b_int"]),
                min_size=1,
                max_size=5,
                unique=True,
            )
        ),
    }


def _entity_frame(entities: list[dict[str, Any]]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "driver_id": pd.array([e["driver_id"] for e in entities], dtype="Int64"),
            "zone_id": pd.array([e["zone_id"] for e in entities], dtype=object),
            "event_timestamp": pd.to_datetime(
                [e["t"] for e in entities], unit="us"
            ),  # naive: means UTC
            "label": [e["label"] for e in entities],
        }
    )


def run_world(spark: SparkSession, world: dict[str, Any], folder: Path) -> None:
    a_cols = columns_for({"driver_id": pa.int64()}, A_FEATURES, world["a_created"])
    b_cols = columns_for(
        {"driver_id": pa.int64(), "zone_id": pa.string()}, B_FEATURES, world["b_created"]
    )
    a_path = write_rows(folder, world["a_rows"], a_cols)
    b_path = write_rows(folder, world["b_rows"], b_cols)
    a_ttl = None if world["a_ttl"] is None else timedelta(microseconds=world["a_ttl"])
    b_ttl = None if world["b_ttl"] is None else timedelta(microseconds=world["b_ttl"])
    views = [
        make_view("a", [driver], A_FEATURES, a_path, created=world["a_created"], ttl=a_ttl),
        make_view("b", [driver, zone], B_FEATURES, b_path, created=world["b_created"], ttl=b_ttl),
    ]
    refs = world["refs"]
    entity_df: pd.DataFrame | DataFrame = _entity_frame(world["entities"])
    odd = "tags. x"  # a dot and a space: carried through the join as any other column
    if world["via"] == "spark":
        frame = spark.createDataFrame(entity_df).repartition(1)  # one partition: input order
        entity_df = frame.withColumn(odd, F.array(F.col("label"), F.lit(None)))
    job = get_historical_features(
        spark, folder, entity_df, requests_for(views, refs), "event_timestamp"
    )
    if world["via"] == "pandas":
        got = job.to_arrow().to_pylist()
    else:
        got = job.to_spark().toArrow().to_pylist()

    ref_views = [
        RefView("a", ["driver_id"], type_names(A_FEATURES), world["a_rows"], world["a_ttl"]),
        RefView(
            "b", ["driver_id", "zone_id"], type_names(B_FEATURES), world["b_rows"], world["b_ttl"]
        ),
    ]
    wanted = [tuple(r.split(":")) for r in refs]
    expected = historical(world["entities"], ref_views, wanted)  # type: ignore[arg-type]

    assert len(got) == len(world["entities"])
    outputs = [r.split(":")[1] for r in refs]
    assert list(got[0]) == [*entity_df.columns, *outputs], "columns or their order changed"
    for i, (g, e, ent) in enumerate(zip(got, expected, world["entities"], strict=True)):
        assert g["label"] == ent["label"], f"row {i}: input order or columns changed"
        assert g["driver_id"] == ent["driver_id"]
        assert g["zone_id"] == ent["zone_id"]
        if world["via"] == "spark":
            assert g[odd] == [ent["label"], None]
        for feature, value in e.items():
            assert same(g[feature], value), (
                f"row {i} {ent}: {feature} = {g[feature]!r}, reference says {value!r}"
            )


@pytest.mark.spark
@settings(max_examples=300)
@given(world=worlds())
def test_historical_features_match_reference(spark: SparkSession, world: dict[str, Any]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        run_world(spark, world, Path(tmp))
