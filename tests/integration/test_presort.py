"""The sort hint (batch/presort.py): ordered as (hash, time) is, safe over every time a
long can hold, and still in the plans of the point-in-time join and of materialization's
deduplication (their results are pinned by test_pit_properties.py,
test_historical_features.py and test_materialize.py)."""

from __future__ import annotations

import itertools
import random
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F  # noqa: N812

from skewless.batch.materialize import ARRIVAL, deduplicate
from skewless.batch.presort import sort_hint
from skewless.batch.retrieval import get_historical_features
from skewless.batch.sources import CTS, TS
from skewless.definitions import Entity
from skewless.timeutil import utc_micros
from skewless.types import Float64, Int64
from tests.integration.helpers import (
    columns_for,
    make_view,
    requests_for,
    type_names,
    write_rows,
)
from tests.reference import rank, same

# Spark's timestamp range, in microseconds: 0001-01-01 to 9999-12-31T23:59:59.999999.
MIN_US = -62_135_596_800_000_000
MAX_US = 253_402_300_799_999_999
LONG = (-(2**63), 2**63 - 1)


def _rows() -> list[tuple[int, int | None]]:
    rng = random.Random(4)
    edges_h = [LONG[0], LONG[1], 0, -1, 1, 2**32 - 1, 2**32, -(2**32), -(2**32) - 1]
    # Beyond Spark's range too: a long read from a file can hold any time.
    edges_t = [None, MIN_US, MAX_US, 0, -1, 1, 2**27, -(2**27), 1_700_000_000_000_000]
    edges_t += [LONG[0], LONG[1], 2**58 - 1, 2**58, -(2**58), -(2**58) - 1]
    rows = [(h, t) for h in edges_h for t in edges_t]
    for _ in range(4000):
        h = rng.choice([rng.randint(*LONG), rng.choice(edges_h) + rng.randint(-3, 3)])
        h = min(max(h, LONG[0]), LONG[1])
        t = rng.choice(
            [
                None,
                rng.randint(MIN_US, MAX_US),
                rng.randint(*LONG),
                1_700_000_000_000_000 + rng.randint(-(10**9), 10**9),
            ]
        )
        rows.append((h, t))
    return rows


def _plan(frame: DataFrame) -> tuple[str, list[str], int]:
    """The physical plan before it runs (AQE's initial plan), its sort lines, outermost
    first, and its number of shuffles."""
    plan = frame._jdf.queryExecution().executedPlan().toString()
    assert "isFinalPlan=false" in plan
    lines = plan.splitlines()
    return plan, [line for line in lines if "Sort [" in line], sum("Exchange" in x for x in lines)


@pytest.mark.spark
def test_sort_hint_orders_as_hash_then_time(spark: SparkSession) -> None:
    frame = spark.createDataFrame(_rows(), "h long, us long")
    hinted = frame.select("h", "us", sort_hint(F.col("h"), F.timestamp_micros("us")).alias("hint"))
    got = [(r["h"], r["us"], r["hint"]) for r in hinted.collect()]
    assert len(got) == len(_rows())

    # Spark's order (hash, then time with nulls first), up to what the hint leaves to
    # Spark's own sort: the low 32 bits of the hash and the time within a 2**27 us step
    # (times beyond +-2**58 us, past year 9999, share the first or last step; a null time
    # is in the first).
    def step(t: int | None) -> int:
        return 0 if t is None else min(max((t >> 27) + 2**31, 0), 2**32 - 1)

    got.sort(key=lambda r: (r[0] >> 32, r[1] is not None, r[1] or 0))
    for (h1, t1, a), (h2, t2, b) in itertools.pairwise(got):
        assert a <= b, f"hint of ({h1}, {t1}) = {a} > hint of ({h2}, {t2}) = {b}"
        if (h1 >> 32, step(t1)) != (h2 >> 32, step(t2)):
            assert a < b, f"({h1}, {t1}) and ({h2}, {t2}) share the hint {a}"


@pytest.mark.spark
def test_pit_join_radix_sorts_before_the_window_sort_in_one_shuffle(
    spark: SparkSession, tmp_path: Path
) -> None:
    driver = Entity("driver", join_keys=["driver_id"])
    features = {"x": Int64}
    path = write_rows(
        tmp_path / "src",
        [{"driver_id": 1, "ts": pd.Timestamp("2024-01-01", tz="UTC"), "x": 5}],
        columns_for({"driver_id": pa.int64()}, features, created=False),
    )
    view = make_view("v", [driver], features, path, created=False, ttl=None)
    entity = pd.DataFrame({"driver_id": [1], "t": [pd.Timestamp("2024-01-02", tz="UTC")]})
    job = get_historical_features(spark, tmp_path, entity, requests_for([view], ["v:x"]), "t")
    plan, sorts, shuffles = _plan(job._features)
    assert job.to_pandas()["x"].tolist() == [5]
    assert shuffles == 1, plan
    assert len(sorts) == 2, plan
    window_sort, hint_sort = sorts
    assert "__key_hash" in window_sort and "shiftright" not in window_sort, plan
    assert "shiftright" in hint_sort, plan


@pytest.mark.spark
def test_deduplicate_keeps_the_hint_in_one_shuffle_and_one_exact_sort(
    spark: SparkSession, tmp_path: Path
) -> None:
    driver = Entity("driver", join_keys=["driver_id"])
    view = make_view("v", [driver], {"x": Int64}, str(tmp_path / "unused"), created=True, ttl=None)
    rows = spark.createDataFrame(
        [(1, 10, 11, 5, 12), (1, 10, 12, 6, 12), (1, 20, 21, 7, 22), (2, 10, 10, None, 12)],
        "driver_id long, t long, c long, x long, a long",
    ).select(
        "driver_id",
        F.timestamp_micros("t").alias(TS),
        F.timestamp_micros("c").alias(CTS),
        "x",
        F.timestamp_micros("a").alias(ARRIVAL),
    )
    deduplicated = deduplicate(rows, view)
    plan, sorts, shuffles = _plan(deduplicated)
    assert shuffles == 1, plan
    assert len(sorts) == 2, plan
    assert "__key_hash" in sorts[0] and "shiftright" in sorts[1], plan
    got = sorted(
        (r["driver_id"], r["x"], r["__rows"], r["__latest"]) for r in deduplicated.collect()
    )
    assert got == [(1, 6, 2, False), (1, 7, 1, True), (2, None, 1, True)]


DEDUP_ROWS = st.lists(
    st.tuples(
        st.sampled_from([None, 1, 2, 3]),  # driver_id
        st.sampled_from([None, 0, 1, 2]),  # event time, minutes
        st.sampled_from([None, 0, 1]),  # created time, minutes
        st.sampled_from([None, -1, 0, 5]),  # x
        st.sampled_from([None, 0.5, float("nan")]),  # y
        st.integers(0, 3),  # arrival, minutes
    ),
    max_size=14,
)


@pytest.mark.spark
@settings(max_examples=25, deadline=None)
@given(rows=DEDUP_ROWS)
def test_deduplicate_equals_a_reference_and_the_grouped_reduction(
    spark: SparkSession, rows: list[tuple[Any, ...]]
) -> None:
    """One row per (driver, event time), nulls included: the count and latest arrival of
    its rows, whether it is the driver's newest (and not rejected), by a reference in
    Python; the winning row is the reference's highest ranked of its group."""
    driver = Entity("driver", join_keys=["driver_id"])
    view = make_view("v", [driver], {"x": Int64, "y": Float64}, "unused", created=True, ttl=None)
    minute = 60_000_000
    frame = spark.createDataFrame(
        [(d, t, c, x, y, a) for d, t, c, x, y, a in rows],
        "driver_id long, t long, c long, x long, y double, a long",
    ).select(
        "driver_id",
        F.timestamp_micros(F.col("t") * minute).alias(TS),
        F.timestamp_micros(F.col("c") * minute).alias(CTS),
        "x",
        "y",
        F.timestamp_micros(F.col("a") * minute).alias(ARRIVAL),
    )
    got = deduplicate(frame, view).collect()
    groups: dict[tuple[Any, Any], list[tuple[Any, ...]]] = {}
    for r in rows:
        groups.setdefault((r[0], r[1]), []).append(r)
    newest = {
        d: max(t for dd, t in groups if dd == d and t is not None)
        for d, t in groups
        if d is not None and t is not None
    }
    expected = {
        (d, t): (
            len(members),
            max(m[5] for m in members) * minute,
            d is not None and t is not None and newest[d] == t,
            d is None or t is None,
        )
        for (d, t), members in groups.items()
    }
    seen = {
        (r["driver_id"], None if r[TS] is None else utc_micros(r[TS]) // minute): (
            r["__rows"],
            r["__arrived_us"],
            r["__latest"],
            r["__rejected"],
        )
        for r in got
    }
    assert len(got) == len(seen) == len(expected)
    assert seen == expected

    features = type_names({"x": Int64, "y": Float64})
    for r in got:
        key = (r["driver_id"], None if r[TS] is None else utc_micros(r[TS]) // minute)
        members = [
            {"ts": m[1], "cts": None if m[2] is None else m[2] * minute, "x": m[3], "y": m[4]}
            for m in groups[key]
        ]
        best = max(members, key=lambda m: rank(m, features))
        created = None if r[CTS] is None else utc_micros(r[CTS])
        assert (created, r["x"]) == (best["cts"], best["x"]), (key, r, best)
        assert same(r["y"], best["y"]), (key, r, best)
