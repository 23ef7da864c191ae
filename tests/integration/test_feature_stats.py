"""Spark's per-feature statistics (batch/feature_stats.py) against the numpy reference
(stats/summary.py): summarize_numeric and summarize_categorical over the same values.

Exact: counts, nulls, NaNs, min, max, the histogram over the given or derived edges, the
top values and the rest. Quantiles are exact below a few thousand values (percentile_approx
keeps every value then, and ranks as numpy's inverted_cdf does) and within the rank
guarantee n / accuracy above. Mean and stddev agree up to floating-point summation order;
distinct counts are HyperLogLog estimates.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F  # noqa: N812

from skewless.batch.feature_stats import summarize_frame
from skewless.stats.summary import (
    QUANTILE_PROBS,
    CategoricalSummary,
    NumericSummary,
    Summary,
    edge_probabilities,
    reference_edges,
    summarize_categorical,
    summarize_numeric,
    summary_kind,
)
from skewless.types import (
    Array,
    Bool,
    Bytes,
    DType,
    Float32,
    Float64,
    Int32,
    Int64,
    String,
    UnixTimestamp,
)

NAN, INF = math.nan, math.inf
# Each example costs two to three Spark jobs: 15 under the default profile, proportionally
# more under another (HYPOTHESIS_PROFILE=thorough).
EXAMPLES = max(1, 15 * settings().max_examples // 100)

# The reference's own numpy warning when +inf and -inf meet in a mean: its NaN is expected.
pytestmark = pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")


def _numeric(result: dict[str, Summary], name: str) -> NumericSummary:
    summary = result[name]
    assert isinstance(summary, NumericSummary)
    return summary


def _categorical(result: dict[str, Summary], name: str) -> CategoricalSummary:
    summary = result[name]
    assert isinstance(summary, CategoricalSummary)
    return summary


def _close(got: float | None, want: float | None, scale: float) -> bool:
    """Equal up to summation order: NaN and the infinities exactly, a finite value
    within 1e-9 relative to itself or to the values' magnitude (cancellation)."""
    if got is None or want is None:
        return got is want
    if math.isnan(want) or math.isinf(want):
        return math.isnan(got) if math.isnan(want) else got == want
    return math.isclose(got, want, rel_tol=1e-9, abs_tol=1e-9 * scale)


def _valid(values: Sequence[float | None]) -> np.ndarray[Any, np.dtype[np.float64]]:
    data = np.array([v for v in values if v is not None], dtype=np.float64)
    return data[~np.isnan(data)]


def _exact_edges(values: Sequence[float | None], bins: int) -> tuple[float, ...]:
    """The edges the reference version fixes, from the exact quantiles."""
    valid = _valid(values)
    if not valid.size:
        return reference_edges([], None, None, bins)
    cut = np.quantile(valid, edge_probabilities(bins), method="inverted_cdf")
    return reference_edges([float(c) for c in cut], float(valid.min()), float(valid.max()), bins)


def _distinct_ok(got: int, want: int) -> bool:
    """HyperLogLog++ at Spark's default 5% relative standard deviation."""
    return abs(got - want) <= max(1, math.ceil(0.1 * want))


def _check_numeric(
    got: NumericSummary, values: Sequence[float | None], edges: tuple[float, ...]
) -> None:
    assert got.edges == edges
    want = summarize_numeric(np.array(values, dtype=object), edges)
    valid = _valid(values)
    finite = valid[np.isfinite(valid)]
    scale = float(np.abs(finite).max()) if finite.size else 0.0
    assert (got.count, got.nulls, got.nans) == (want.count, want.nulls, want.nans)
    assert (got.min, got.max) == (want.min, want.max)
    assert got.counts == want.counts
    assert sum(got.counts) == got.valid
    assert got.quantiles == want.quantiles
    assert _close(got.mean, want.mean, scale), (got.mean, want.mean)
    assert _close(got.stddev, want.stddev, scale), (got.stddev, want.stddev)
    assert _distinct_ok(got.distinct, want.distinct), (got.distinct, want.distinct)


def _check_categorical(got: CategoricalSummary, values: Sequence[Any], top_k: int) -> None:
    want = summarize_categorical(list(values), top_k)
    assert list(got.top.items()) == list(want.top.items())  # the order too
    assert replace(got, distinct=want.distinct) == want
    assert _distinct_ok(got.distinct, want.distinct), (got.distinct, want.distinct)


# --- the property: random frames against the reference -----------------------------------

ints = st.one_of(
    st.none(),
    st.integers(-5, 5),
    st.integers(-(2**40), 2**40),
    st.sampled_from([-(2**62), 2**62 + 1]),  # beyond 2**53: rounded to a double alike
)
doubles = st.one_of(
    st.none(),
    st.sampled_from([NAN, INF, -INF, -0.0, 0.0, 1.5, -2.25]),
    st.integers(-3, 3).map(float),
    st.floats(-1e6, 1e6, allow_nan=False),
)
strings = st.one_of(st.none(), st.sampled_from(["", "a", "b", "ab", "B", "é", "a b", "日"]))
bools = st.one_of(st.none(), st.booleans())
row = st.tuples(ints, doubles, doubles, strings, bools)
edge_sets = st.lists(st.floats(-10, 10, allow_nan=False), max_size=5).map(
    lambda es: tuple(sorted({e + 0.0 for e in es}))  # -0.0 and 0.0 are one edge
)

SCHEMA = (
    "i BIGINT, `i.given` BIGINT, d DOUBLE, `d given` DOUBLE, f FLOAT, `f.given` FLOAT,"
    " s STRING, b BOOLEAN, t TIMESTAMP"
)
FEATURES: list[tuple[str, DType]] = [
    ("i", Int64),
    ("i.given", Int64),
    ("d", Float64),
    ("d given", Float64),
    ("f", Float32),
    ("f.given", Float32),
    ("s", String),
    ("b", Bool),
    ("t", UnixTimestamp),
]


def _frame(spark: SparkSession, rows: list[tuple[Any, ...]], parts: int) -> DataFrame:
    t = datetime(2024, 1, 1, tzinfo=UTC)
    table = [(i, i, d, d, f, f, s, b, t) for i, d, f, s, b in rows]
    # Partitioned as parallelize splits the rows, with no shuffle before each job.
    return spark.createDataFrame(spark.sparkContext.parallelize(table, parts), SCHEMA)


def _float32(values: Sequence[float | None]) -> list[float | None]:
    """The values a FLOAT column holds: rounded to single precision."""
    return [None if v is None else float(np.float32(v)) for v in values]


@settings(max_examples=EXAMPLES, deadline=None)
@given(
    rows=st.lists(row, max_size=40),
    int_edges=edge_sets,
    float_edges=edge_sets,
    bins=st.sampled_from([2, 3, 7, 20]),
    top_k=st.integers(1, 4),
    parts=st.integers(1, 3),
)
def test_summaries_match_the_reference(
    spark: SparkSession,
    rows: list[tuple[Any, ...]],
    int_edges: tuple[float, ...],
    float_edges: tuple[float, ...],
    bins: int,
    top_k: int,
    parts: int,
) -> None:
    given_edges = {"i.given": int_edges, "d given": float_edges, "f.given": float_edges}
    got = summarize_frame(_frame(spark, rows, parts), FEATURES, given_edges, bins=bins, top_k=top_k)
    assert list(got) == [name for name, _ in FEATURES if name != "t"]
    ints_, doubles_, floats_ = (
        [r[0] for r in rows],
        [r[1] for r in rows],
        _float32([r[2] for r in rows]),
    )
    columns = {"i": ints_, "d": doubles_, "f": floats_}
    for name, values in columns.items():
        _check_numeric(_numeric(got, name), values, _exact_edges(values, bins))
    _check_numeric(_numeric(got, "i.given"), ints_, int_edges)
    _check_numeric(_numeric(got, "d given"), doubles_, float_edges)
    _check_numeric(_numeric(got, "f.given"), floats_, float_edges)
    _check_categorical(_categorical(got, "s"), [r[3] for r in rows], top_k)
    _check_categorical(_categorical(got, "b"), [r[4] for r in rows], top_k)


# --- each rule pinned -------------------------------------------------------------------


def test_summary_kind_by_dtype() -> None:
    numeric: list[DType] = [Int32, Int64, Float32, Float64]
    unsupported: list[DType] = [UnixTimestamp, Bytes, Array(Int64), Array(String), Array(Bool)]
    assert [summary_kind(t) for t in numeric] == ["numeric"] * 4
    assert [summary_kind(t) for t in (String, Bool)] == ["categorical"] * 2
    assert [summary_kind(t) for t in unsupported] == [None] * 5


def test_bins_are_left_closed_and_infinities_land_at_the_ends(spark: SparkSession) -> None:
    values = [-INF, -1.0, 0.0, -0.0, 0.5, 1.0, INF, NAN, None]
    frame = spark.createDataFrame([(v,) for v in values], "x DOUBLE")
    got = _numeric(summarize_frame(frame, [("x", Float64)], {"x": (0.0, 1.0)}), "x")
    assert got.counts == (2, 3, 2)
    assert (got.nulls, got.nans, got.valid) == (1, 1, 7)
    assert (got.min, got.max) == (-INF, INF)
    assert got.stddev is not None
    assert math.isnan(got.stddev)
    _check_numeric(got, values, (0.0, 1.0))


def test_top_values_tie_by_value_and_the_rest_is_other(spark: SparkSession) -> None:
    values = ["d", "a", "c", "b", "a", "b", "c", "a", "d", "e", None, "B"]
    frame = spark.createDataFrame(
        [(v, v is not None and v < "c") for v in values], "s STRING, b BOOLEAN"
    )
    got = summarize_frame(frame, [("s", String), ("b", Bool)], {}, top_k=3)
    s = _categorical(got, "s")
    assert list(s.top.items()) == [("a", 3), ("b", 2), ("c", 2)]
    assert (s.other, s.nulls, s.count) == (4, 1, 12)
    _check_categorical(s, values, 3)
    b = _categorical(got, "b")
    assert list(b.top.items()) == [("false", 6), ("true", 6)]
    assert (b.other, b.nulls) == (0, 0)


def test_empty_frame(spark: SparkSession) -> None:
    frame = spark.createDataFrame([], "x BIGINT, y DOUBLE, s STRING, b BOOLEAN")
    features: list[tuple[str, DType]] = [("x", Int64), ("y", Float64), ("s", String), ("b", Bool)]
    got = summarize_frame(frame, features, {"y": (1.0, 2.0)})
    assert got == {
        "x": summarize_numeric(np.array([], dtype=np.float64), ()),
        "y": summarize_numeric(np.array([], dtype=np.float64), (1.0, 2.0)),
        "s": summarize_categorical([]),
        "b": summarize_categorical([]),
    }
    assert _numeric(got, "x").counts == (0,)
    assert _numeric(got, "y").counts == (0, 0, 0)


def test_all_null_columns(spark: SparkSession) -> None:
    rows = [(None, NAN, None), (None, None, None), (None, NAN, None)]
    frame = spark.createDataFrame(rows, "x INT, y FLOAT, s STRING")
    features: list[tuple[str, DType]] = [("x", Int32), ("y", Float32), ("s", String)]
    got = summarize_frame(frame, features, {"x": (0.0,)})
    x, y, s = _numeric(got, "x"), _numeric(got, "y"), _categorical(got, "s")
    assert (x.nulls, x.nans, x.counts, x.quantiles, x.mean, x.stddev) == (
        3,
        0,
        (0, 0),
        {},
        None,
        None,
    )
    assert (y.nulls, y.nans, y.edges, y.counts, y.min, y.max) == (1, 2, (), (0,), None, None)
    assert (s.nulls, s.top, s.other, s.distinct) == (3, {}, 0, 0)
    _check_numeric(x, [r[0] for r in rows], (0.0,))
    _check_numeric(y, [r[1] for r in rows], ())


def test_a_single_distinct_value(spark: SparkSession) -> None:
    frame = spark.createDataFrame([(5,), (5,), (None,), (5,)], "x BIGINT")
    x = _numeric(summarize_frame(frame, [("x", Int64)], {}), "x")
    assert x.edges == (5.0, math.nextafter(5.0, INF))
    assert x.counts == (0, 3, 0)
    assert (x.mean, x.stddev, x.distinct) == (5.0, 0.0, 1)
    assert set(x.quantiles.values()) == {5.0}
    one = _numeric(summarize_frame(frame.where("x IS NULL OR false"), [("x", Int64)], {}), "x")
    assert (one.valid, one.mean, one.stddev) == (0, None, None)
    single = spark.createDataFrame([(2.5,)], "x DOUBLE")
    s = _numeric(summarize_frame(single, [("x", Float64)], {}), "x")
    assert (s.mean, s.stddev, s.min, s.max) == (2.5, None, 2.5, 2.5)  # no NaN stddev


def test_names_that_need_quoting(spark: SparkSession) -> None:
    names = ["trip.count", "a b", "we`ird", "x-y"]
    frame = spark.createDataFrame(
        [(1, "u", 2.0, True), (2, None, 3.0, False)], "a INT, b STRING, c DOUBLE, d BOOLEAN"
    ).toDF(*names)
    features: list[tuple[str, DType]] = [
        ("trip.count", Int32),
        ("a b", String),
        ("we`ird", Float64),
        ("x-y", Bool),
    ]
    got = summarize_frame(frame, features, {"we`ird": (2.5,)})
    assert list(got) == names
    assert _numeric(got, "trip.count").max == 2.0
    assert _categorical(got, "a b").top == {"u": 1}
    assert _numeric(got, "we`ird").counts == (1, 1)
    assert _categorical(got, "x-y").top == {"false": 1, "true": 1}


def test_unsupported_types_are_skipped(spark: SparkSession) -> None:
    frame = spark.createDataFrame(
        [(datetime(2024, 1, 1, tzinfo=UTC), b"\x00", [1, 2], ["a"], 1)],
        "t TIMESTAMP, by BINARY, a ARRAY<BIGINT>, sa ARRAY<STRING>, x INT",
    )
    features: list[tuple[str, DType]] = [
        ("t", UnixTimestamp),
        ("by", Bytes),
        ("a", Array(Int64)),
        ("sa", Array(String)),
    ]
    assert summarize_frame(frame, features, {"t": (0.0,)}) == {}
    got = summarize_frame(frame, [*features, ("x", Int32)], {})
    assert list(got) == ["x"]


def test_quantiles_keep_the_rank_guarantee_on_many_values(spark: SparkSession) -> None:
    """Enough values that percentile_approx compresses: each quantile's rank is within
    n / accuracy of the exact one, the histogram over the derived edges exact."""
    n = 30_000
    frame = spark.range(n).select(
        F.when(F.col("id") % 10 == 0, None)
        .otherwise(((F.col("id") * 7919) % 4001).cast("double") / 4)
        .alias("x")
    )
    ids = np.arange(n)
    values: list[float | None] = [
        None if i % 10 == 0 else float((i * 7919) % 4001) / 4 for i in ids.tolist()
    ]
    valid = np.sort(_valid(values))
    for accuracy in (100, 10_000):
        got = _numeric(summarize_frame(frame, [("x", Float64)], {}, accuracy=accuracy), "x")
        count = valid.size
        for p, q in got.quantiles.items():
            below = int(np.searchsorted(valid, q, side="left"))  # ranks below..at are q's
            at = int(np.searchsorted(valid, q, side="right"))
            target = math.ceil(p * count)
            slack = count / accuracy
            assert below + 1 - slack <= target <= at + slack, (accuracy, p, q)
        assert set(got.quantiles) == set(QUANTILE_PROBS)
        assert got.counts == summarize_numeric(np.array(values, dtype=object), got.edges).counts
        assert len(got.edges) >= 10
        assert _distinct_ok(got.distinct, int(np.unique(valid).size))
        assert (got.min, got.max) == (float(valid[0]), float(valid[-1]))


def test_quantiles_are_exact_below_half_the_accuracy(spark: SparkSession) -> None:
    n = 4_900  # accuracy 10_000: nothing is compressed, in either partition or merged
    frame = spark.range(n).select(((F.col("id") * 7919) % 1201 - 600).cast("int").alias("x"))
    values: list[float | None] = [float((i * 7919) % 1201 - 600) for i in range(n)]
    got = _numeric(summarize_frame(frame.repartition(2), [("x", Int32)], {}), "x")
    _check_numeric(got, values, _exact_edges(values, 20))


def test_arguments_are_checked(spark: SparkSession) -> None:
    frame = spark.createDataFrame([("a",)], "s STRING")
    with pytest.raises(ValueError, match="top_k"):
        summarize_frame(frame, [("s", String)], {}, top_k=-1)


def test_top_k_zero_keeps_no_value_of_the_data(spark: SparkSession) -> None:
    frame = spark.createDataFrame([("a",), ("b",), (None,), ("a",)], "s STRING")
    got = summarize_frame(frame, [("s", String)], {}, top_k=0)["s"]
    assert isinstance(got, CategoricalSummary)
    assert (got.count, got.nulls, dict(got.top), got.other) == (4, 1, {}, 3)
    assert got.distinct == 2  # HyperLogLog++ is exact for so few values
    assert got == summarize_categorical(["a", "b", None, "a"], k=0)
    with pytest.raises(ValueError, match="bins"):
        summarize_frame(frame, [("s", String)], {}, bins=1)
