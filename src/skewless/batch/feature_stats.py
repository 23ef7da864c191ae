"""Per-feature statistics of a Spark frame: the fields of stats/summary.py's
NumericSummary and CategoricalSummary, computed the way its numpy reference defines them
and tested against it (tests/integration/test_feature_stats.py).

Numeric features (int32, int64, float32, float64, all read as doubles): count, nulls,
NaNs, and over the valid values (neither null nor NaN; infinities are valid) the mean,
sample stddev, min, max, the quantiles at QUANTILE_PROBS (percentile_approx: numpy's
inverted_cdf exactly below accuracy / 2 values, whose summaries it never compresses;
above, a rank off by at most n / accuracy; for a frame of more than QUANTILE_ROWS rows,
over a uniform sample of about that many), an approximate distinct count (HyperLogLog++,
5% relative standard deviation) and the histogram over left-closed bins. The bin edges
are those given (a reference version's), else this frame's own: `reference_edges` over
its quantiles at `edge_probabilities(bins)`. Categorical features (string, and bool as
"true" / "false"): count, nulls, an approximate distinct count, the `top_k` most frequent
values (count descending, then value ascending) and the count of the rest. Other types
(timestamps, bytes, arrays) are not summarized.

Cost, over a frame the caller already holds in memory, whatever the number of features
(each a pass over the frame; no raw value is collected to the driver):
1. counts, nulls, NaN, means, spreads, extremes: one aggregation Spark compiles to code;
2. the sketches, apart because Spark cannot compile them and would otherwise run the
   first aggregation interpreted: distinct counts, and quantiles (over a uniform sample
   of about QUANTILE_ROWS rows when there are more);
3. the histograms of every numeric feature: bins by Spark ML's Bucketizer, (feature,
   bin) pairs counted in one grouped aggregation;
4. only when some categorical feature has a non-null value: the top values of all of
   them together (pairs (feature, value), counted, ranked per feature).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F  # noqa: N812

from skewless.stats.summary import (
    DEFAULT_BINS,
    DEFAULT_TOP_K,
    QUANTILE_PROBS,
    CategoricalSummary,
    NumericSummary,
    Summary,
    edge_probabilities,
    reference_edges,
    summary_kind,
)
from skewless.types import DType

# Quantiles of a version with more rows than this are computed over a uniform sample of
# about this many (see _sketches).
QUANTILE_ROWS = 100_000
_SAMPLE_SEED = 20_261_204


@dataclass(frozen=True)
class _Feature:
    name: str
    kind: Literal["numeric", "categorical"]
    key: str  # the projected column's name: any feature name, backticks and dots included
    edges: tuple[float, ...] | None  # given bin edges of a numeric feature


def summarize_frame(
    frame: DataFrame,
    features: Sequence[tuple[str, DType]],
    edges: Mapping[str, tuple[float, ...]],
    *,
    bins: int = DEFAULT_BINS,
    top_k: int = DEFAULT_TOP_K,
    accuracy: int = 10_000,
) -> dict[str, Summary]:
    """Each summarized feature's statistics over `frame` (see the module doc), by name.

    `edges` gives the bin edges of numeric features summarized against a reference;
    a numeric feature without gets `bins` equal-frequency bins of its own values.
    `accuracy` is percentile_approx's: a quantile's rank is off by at most n / accuracy.
    """
    if top_k < 0:
        raise ValueError(f"top_k must be at least 0, not {top_k}")
    edge_probs = edge_probabilities(bins)
    chosen: list[_Feature] = []
    for i, (name, dtype) in enumerate(features):
        kind = summary_kind(dtype)
        if kind is not None:
            given = tuple(float(e) for e in edges[name]) if name in edges else None
            chosen.append(_Feature(name, kind, f"_s{i}", given if kind == "numeric" else None))
    if not chosen:
        return {}

    projected = frame.select(*[c for f in chosen for c in _project(f)])
    # Counts and moments are declarative aggregates Spark compiles to code; the sketches
    # (quantiles, distinct counts) are not, and in the same aggregation would make Spark
    # run every aggregate interpreted, several times slower.
    moments = projected.agg(
        F.count(F.lit(1)).alias("_count"), *[a for f in chosen for a in _moments(f)]
    ).collect()[0]
    count = int(moments["_count"])
    first: dict[str, Any] = {
        **moments.asDict(),
        **_sketches(projected, chosen, count, edge_probs, accuracy),
    }

    derived = {
        f.key: _derived_edges(first, f, edge_probs, bins)
        for f in chosen
        if f.kind == "numeric" and f.edges is None
    }
    all_edges = {f.key: f.edges for f in chosen if f.edges is not None} | derived
    histograms = _histograms(projected, first, all_edges)
    tops = _top_values(
        projected, [f for f in chosen if f.kind == "categorical" and _valid(first, f) > 0], top_k
    )

    result: dict[str, Summary] = {}
    for f in chosen:
        if f.kind == "numeric":
            bin_edges = f.edges if f.edges is not None else derived[f.key]
            quantiles = _quantiles(first, f.key, _probs(f, edge_probs))
            result[f.name] = _numeric(
                first,
                f.key,
                count=count,
                quantiles=quantiles,
                edges=bin_edges,
                counts=histograms[f.key],
            )
        else:
            top = tops.get(f.key, {})
            result[f.name] = CategoricalSummary(
                count=count,
                nulls=int(first[f"{f.key}_nulls"]),
                distinct=int(first[f"{f.key}_distinct"]),
                top=top,
                other=_valid(first, f) - sum(top.values()),
            )
    return result


# --- the projection: one column per feature, and a bin index per numeric one with edges --


def _source(name: str) -> Column:
    return F.col(f"`{name.replace('`', '``')}`")


def _project(f: _Feature) -> list[Column]:
    if f.kind == "categorical":
        # A boolean casts to "true" / "false", the reference's spelling.
        return [_source(f.name).cast("string").alias(f.key)]
    x = _source(f.name).cast("double")
    # The valid value (null for null and NaN): Spark orders NaN above every number, so it
    # is removed before min, max and the quantiles see it.
    return [x.alias(f.key), F.when(~F.isnan(x), x).alias(f"{f.key}_v")]


# --- the first aggregation ---------------------------------------------------------------


def _probs(f: _Feature, edge_probs: tuple[float, ...]) -> list[float]:
    """The quantile levels asked of a numeric feature: QUANTILE_PROBS, and the edge
    levels when its edges are to be derived (those shared asked once)."""
    wanted = set(QUANTILE_PROBS) | (set(edge_probs) if f.edges is None else set())
    return sorted(wanted)


def _moments(f: _Feature) -> list[Column]:
    x = F.col(f.key)
    if f.kind == "categorical":
        return [F.count_if(x.isNull()).alias(f"{f.key}_nulls"), F.count(x).alias(f"{f.key}_valid")]
    v = F.col(f"{f.key}_v")
    return [
        F.count_if(x.isNull()).alias(f"{f.key}_nulls"),
        F.count_if(F.isnan(x)).alias(f"{f.key}_nans"),
        F.count(v).alias(f"{f.key}_valid"),
        F.avg(v).alias(f"{f.key}_mean"),
        F.stddev_samp(v).alias(f"{f.key}_stddev"),
        F.min(v).alias(f"{f.key}_min"),
        F.max(v).alias(f"{f.key}_max"),
    ]


def _sketches(
    projected: DataFrame,
    chosen: Sequence[_Feature],
    count: int,
    edge_probs: tuple[float, ...],
    accuracy: int,
) -> dict[str, Any]:
    """Distinct counts over every row; quantiles over every row up to QUANTILE_ROWS rows,
    else over a uniform sample of about that many (a quantile's rank then off by about
    0.3%, within the histograms' 5% bins), which keeps the costliest aggregate's time
    bounded whatever the version's size."""
    distinct = []
    for f in chosen:
        x = F.col(f.key) if f.kind == "categorical" else F.col(f"{f.key}_v")
        if f.kind == "numeric":
            # -0.0 and 0.0 are one value (numpy's unique) but hash apart in the sketch
            x = F.when(x == F.lit(0.0), F.lit(0.0)).otherwise(x)
        distinct.append(F.approx_count_distinct(x).alias(f"{f.key}_distinct"))
    quantiles = [
        F.percentile_approx(F.col(f"{f.key}_v"), _probs(f, edge_probs), accuracy).alias(
            f"{f.key}_quantiles"
        )
        for f in chosen
        if f.kind == "numeric"
    ]
    if count <= QUANTILE_ROWS or not quantiles:
        return projected.agg(*distinct, *quantiles).collect()[0].asDict()
    sample = projected.sample(fraction=QUANTILE_ROWS / count, seed=_SAMPLE_SEED)
    return {
        **projected.agg(*distinct).collect()[0].asDict(),
        **sample.agg(*quantiles).collect()[0].asDict(),
    }


def _valid(row: Mapping[str, Any], f: _Feature) -> int:
    return int(row[f"{f.key}_valid"])


def _quantiles(row: Mapping[str, Any], key: str, probs: list[float]) -> dict[float, float]:
    values = row[f"{key}_quantiles"]
    if values is None:  # no valid value
        return {}
    return {p: float(q) for p, q in zip(probs, values, strict=True)}


def _derived_edges(
    row: Mapping[str, Any], f: _Feature, edge_probs: tuple[float, ...], bins: int
) -> tuple[float, ...]:
    at = _quantiles(row, f.key, _probs(f, edge_probs))
    cut_points = [at[p] for p in edge_probs] if at else []
    return reference_edges(cut_points, _opt(row[f"{f.key}_min"]), _opt(row[f"{f.key}_max"]), bins)


def _opt(value: Any) -> float | None:
    return None if value is None else float(value)


def _numeric(
    row: Mapping[str, Any],
    key: str,
    *,
    count: int,
    quantiles: Mapping[float, float],
    edges: tuple[float, ...],
    counts: tuple[int, ...],
) -> NumericSummary:
    valid = int(row[f"{key}_valid"])
    # Spark's stddev_samp of one value is null (NaN under the legacy setting): None, as
    # the reference says; from two values on it is a number, NaN when an infinity is in.
    stddev: float | None = None
    if valid >= 2:
        raw = row[f"{key}_stddev"]
        stddev = math.nan if raw is None else float(raw)
    return NumericSummary(
        count=count,
        nulls=int(row[f"{key}_nulls"]),
        nans=int(row[f"{key}_nans"]),
        mean=_opt(row[f"{key}_mean"]) if valid else None,
        stddev=stddev,
        min=_opt(row[f"{key}_min"]) if valid else None,
        max=_opt(row[f"{key}_max"]) if valid else None,
        quantiles={p: quantiles[p] for p in QUANTILE_PROBS} if valid else {},
        distinct=int(row[f"{key}_distinct"]),
        edges=edges,
        counts=counts,
    )


# --- the second aggregation and the top values --------------------------------------------


def _histograms(
    projected: DataFrame, first: Mapping[str, Any], edges: Mapping[str, tuple[float, ...]]
) -> dict[str, tuple[int, ...]]:
    """Every numeric feature's counts per bin in one job: Spark ML's Bucketizer (a binary
    search over [-inf, e0, ..., e_last, +inf]: left-closed bins, the last one holding
    +inf, a null left null) gives each valid value its bin, and (feature, bin) pairs are
    counted by one grouped aggregation. One aggregate per bin of every feature in a
    single aggregation, or the search written as nested conditions, is several times
    slower. A feature without a valid value needs no pass: all its bins are empty."""
    from pyspark.ml.feature import Bucketizer  # noqa: PLC0415 - Spark ML on demand

    # no valid value: every bin empty; no edges (no finite value): one bin of them all
    histograms = {
        key: (0,) * (len(e) + 1) if e else (int(first[f"{key}_valid"]),)
        for key, e in edges.items()
        if not e or int(first[f"{key}_valid"]) == 0
    }
    pending = {key: e for key, e in edges.items() if key not in histograms}
    if not pending:
        return histograms
    keys = list(pending)
    # Its search orders -0.0 below 0.0, where a comparison (and numpy) has them equal:
    # both sides as 0.0 (adding 0.0 turns -0.0 into 0.0).
    bucketed = Bucketizer(
        splitsArray=[[-math.inf, *(e + 0.0 for e in pending[k]), math.inf] for k in keys],
        inputCols=[f"{k}_z" for k in keys],
        outputCols=[f"{k}_b" for k in keys],
    ).transform(projected.select(*[(F.col(f"{k}_v") + F.lit(0.0)).alias(f"{k}_z") for k in keys]))
    pairs = bucketed.select(
        F.inline(
            F.array(
                *[
                    F.struct(F.lit(k).alias("feature"), F.col(f"{k}_b").cast("int").alias("bin"))
                    for k in keys
                ]
            )
        )
    ).where(F.col("bin").isNotNull())
    counts = {k: [0] * (len(pending[k]) + 1) for k in keys}
    for r in pairs.groupBy("feature", "bin").count().collect():
        counts[r["feature"]][int(r["bin"])] = int(r["count"])
    histograms.update({k: tuple(c) for k, c in counts.items()})
    return histograms


def _top_values(
    projected: DataFrame, categorical: Sequence[_Feature], top_k: int
) -> dict[str, dict[str, int]]:
    """The `top_k` most frequent non-null values of every categorical feature, in one
    job: (feature, value) pairs counted, then ranked within each feature by count
    descending and value ascending (Spark orders strings by their UTF-8 bytes, which is
    Python's code-point order)."""
    if not categorical or top_k == 0:
        return {}
    pairs = projected.select(
        F.inline(
            F.array(
                *[
                    F.struct(F.lit(f.key).alias("feature"), F.col(f.key).alias("value"))
                    for f in categorical
                ]
            )
        )
    ).where(F.col("value").isNotNull())
    ranking = Window.partitionBy("feature").orderBy(F.desc("n"), F.asc("value"))
    rows = (
        pairs.groupBy("feature", "value")
        .agg(F.count(F.lit(1)).alias("n"))
        .withColumn("rank", F.row_number().over(ranking))
        .where(F.col("rank") <= top_k)
        .collect()
    )
    tops: dict[str, dict[str, int]] = {f.key: {} for f in categorical}
    for r in sorted(rows, key=lambda r: (r["feature"], r["rank"])):
        tops[r["feature"]][r["value"]] = int(r["n"])
    return tops
