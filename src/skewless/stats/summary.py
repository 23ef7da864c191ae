"""One feature's statistics over one data version: what they are, how they are read
and written as JSON, how they merge, and the numpy reference that computes them.
Engine-free: the Spark job computes the same fields and is tested against this module.

Numeric features. A value is *valid* when it is neither null nor NaN (infinities are
valid). Every statistic but `count`, `nulls` and `nans` is over the valid values:
- `mean`, `stddev` (sample, n - 1; None for fewer than two values), `min`, `max`
  (None when there is no valid value);
- `quantiles`: p -> value for p in QUANTILE_PROBS, each the smallest valid value v with
  at least a fraction p of the valid values <= v (numpy's "inverted_cdf", the
  definition Spark's percentile_approx approximates);
- `distinct`: the number of distinct valid values (exact here, approximate in Spark);
- the histogram: `edges` e_0 < e_1 < ... < e_{m-1} (finite) and `counts`, m + 1 bins,
  each interval *left-closed*:
      bin 0       = [-inf, e_0)
      bin i       = [e_{i-1}, e_i)      for 0 < i < m
      bin m       = [e_{m-1}, +inf]
  so the bin of x is the number of edges <= x, and sum(counts) = count - nulls - nans.

Categorical features (strings, booleans written "true" / "false", as Spark casts
them): `top` holds the K most frequent non-null values with their counts, ordered by
count descending and then by value ascending (the tie rule Spark must use too),
`other` the count of the remaining non-null values, `distinct` the number of distinct
non-null values, so sum(top) + other = count - nulls.

Edges are fixed once, by the reference version (`reference_edges`), and every later
version is summarized over the same edges: histograms over one set of edges are
comparable (drift) and mergeable (`merge`).
"""

from __future__ import annotations

import itertools
import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from skewless.types import DType, ScalarType

QUANTILE_PROBS: tuple[float, ...] = (0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99)
DEFAULT_BINS = 20
DEFAULT_TOP_K = 50

_NON_FINITE = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}


@dataclass(frozen=True)
class NumericSummary:
    """Statistics of one numeric feature over one data version (see the module doc)."""

    count: int
    nulls: int
    nans: int
    mean: float | None
    stddev: float | None
    min: float | None
    max: float | None
    quantiles: Mapping[float, float]
    distinct: int
    edges: tuple[float, ...]
    counts: tuple[int, ...]

    kind: Literal["numeric"] = field(default="numeric", init=False)

    def __post_init__(self) -> None:
        _check_edges(self.edges)
        if len(self.counts) != len(self.edges) + 1:
            raise ValueError(
                f"a histogram over {len(self.edges)} edges has {len(self.edges) + 1} bins,"
                f" not {len(self.counts)}"
            )
        _check_counts(self.count, self.nulls + self.nans, self.counts, "histogram")
        if self.valid == 0 and (self.mean, self.min, self.max) != (None, None, None):
            raise ValueError("mean, min and max are None when there is no valid value")
        if self.valid > 0 and None in (self.mean, self.min, self.max):
            raise ValueError("mean, min and max are set when there are valid values")
        if self.valid < 2 and self.stddev is not None:
            raise ValueError("stddev is None for fewer than two valid values")
        if self.valid >= 2 and self.stddev is None:
            raise ValueError("stddev is set for two or more valid values")
        expected = set(QUANTILE_PROBS) if self.valid else set()
        if set(self.quantiles) != expected:
            raise ValueError(f"quantiles must be given for {sorted(expected)}")
        # No upper bound: Spark's approximate count may exceed the exact one a little.
        if self.distinct < 0:
            raise ValueError(f"distinct {self.distinct} is negative")

    @property
    def valid(self) -> int:
        """How many values are neither null nor NaN: the histogram's total."""
        return self.count - self.nulls - self.nans

    @property
    def missing_rate(self) -> float:
        """(nulls + NaN) / rows, 0.0 for no rows: a model sees both as absent."""
        return (self.nulls + self.nans) / self.count if self.count else 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "count": self.count,
            "nulls": self.nulls,
            "nans": self.nans,
            "mean": _enc(self.mean),
            "stddev": _enc(self.stddev),
            "min": _enc(self.min),
            "max": _enc(self.max),
            "quantiles": {repr(p): _enc(v) for p, v in sorted(self.quantiles.items())},
            "distinct": self.distinct,
            "edges": list(self.edges),
            "counts": list(self.counts),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> NumericSummary:
        _check_keys(data, "numeric", _NUMERIC_KEYS)
        quantiles = _mapping(data, "quantiles")
        probs = {repr(p): p for p in QUANTILE_PROBS}
        if not set(quantiles) <= set(probs):
            raise ValueError(f"unknown quantile keys {sorted(set(quantiles) - set(probs))}")
        return cls(
            count=_int(data, "count"),
            nulls=_int(data, "nulls"),
            nans=_int(data, "nans"),
            mean=_opt_float(data["mean"], "mean"),
            stddev=_opt_float(data["stddev"], "stddev"),
            min=_opt_float(data["min"], "min"),
            max=_opt_float(data["max"], "max"),
            quantiles={probs[k]: _float(v, f"quantiles[{k}]") for k, v in quantiles.items()},
            distinct=_int(data, "distinct"),
            edges=tuple(_float(v, "edges") for v in _list(data, "edges")),
            counts=tuple(_count(v, "counts") for v in _list(data, "counts")),
        )


@dataclass(frozen=True)
class CategoricalSummary:
    """Statistics of one string or boolean feature over one data version."""

    count: int
    nulls: int
    distinct: int
    top: Mapping[str, int]
    other: int

    kind: Literal["categorical"] = field(default="categorical", init=False)

    def __post_init__(self) -> None:
        if any(not isinstance(k, str) for k in self.top):
            raise ValueError("top values are strings (booleans as 'true' / 'false')")
        if any(c <= 0 for c in self.top.values()):
            raise ValueError("a top value's count is positive")
        _check_counts(self.count, self.nulls, (*self.top.values(), self.other), "top + other")
        if self.distinct < 0:  # approximate in Spark: no bound by len(top) or valid
            raise ValueError(f"distinct {self.distinct} is negative")

    @property
    def valid(self) -> int:
        """How many values are not null."""
        return self.count - self.nulls

    @property
    def missing_rate(self) -> float:
        """nulls / rows, 0.0 for no rows."""
        return self.nulls / self.count if self.count else 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "count": self.count,
            "nulls": self.nulls,
            "distinct": self.distinct,
            "top": [[value, n] for value, n in self.top.items()],
            "other": self.other,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> CategoricalSummary:
        _check_keys(data, "categorical", _CATEGORICAL_KEYS)
        top: dict[str, int] = {}
        for pair in _list(data, "top"):
            if not (isinstance(pair, list) and len(pair) == 2 and isinstance(pair[0], str)):
                raise ValueError(f"a top entry is [value, count], not {pair!r}")
            if pair[0] in top:
                raise ValueError(f"top value {pair[0]!r} appears twice")
            top[pair[0]] = _count(pair[1], "top")
        return cls(
            count=_int(data, "count"),
            nulls=_int(data, "nulls"),
            distinct=_int(data, "distinct"),
            top=top,
            other=_int(data, "other"),
        )


Summary = NumericSummary | CategoricalSummary

_NUMERIC_KEYS = frozenset(NumericSummary.__dataclass_fields__)
_CATEGORICAL_KEYS = frozenset(CategoricalSummary.__dataclass_fields__)


_NUMERIC_TYPES = frozenset({"int32", "int64", "float32", "float64"})
_CATEGORICAL_TYPES = frozenset({"string", "bool"})


def summary_kind(dtype: DType) -> Literal["numeric", "categorical"] | None:
    """How a feature of this type is summarized; None: it is not (timestamps, bytes,
    arrays)."""
    if not isinstance(dtype, ScalarType):
        return None
    if dtype.name in _NUMERIC_TYPES:
        return "numeric"
    if dtype.name in _CATEGORICAL_TYPES:
        return "categorical"
    return None


def summary_from_json(data: Mapping[str, Any]) -> Summary:
    """Reads either kind of summary, chosen by its "kind" field."""
    match data.get("kind") if isinstance(data, Mapping) else None:
        case "numeric":
            return NumericSummary.from_json(data)
        case "categorical":
            return CategoricalSummary.from_json(data)
        case other:
            raise ValueError(f"unknown summary kind {other!r}")


def edge_probabilities(bins: int = DEFAULT_BINS) -> tuple[float, ...]:
    """The quantile levels 1/bins, ..., (bins-1)/bins whose values cut the reference into
    `bins` equal-frequency bins: the Spark job asks for these of the reference version."""
    if bins < 2:
        raise ValueError(f"bins must be at least 2, not {bins}")
    return tuple(k / bins for k in range(1, bins))


def reference_edges(
    cut_points: Sequence[float],
    minimum: float | None,
    maximum: float | None,
    bins: int = DEFAULT_BINS,
) -> tuple[float, ...]:
    """The bin edges a reference version fixes for every later version.

    `cut_points` are the reference's quantiles at `edge_probabilities(bins)`, `minimum`
    and `maximum` its least and greatest valid value (None when it has none).
    1. Equal frequency: the finite cut points, sorted, duplicates dropped.
    2. Heavy ties (fewer than bins // 2 distinct cut points survive, e.g. a column that
       is mostly zero): the equal-width edges min + k (max - min) / bins, 0 < k < bins,
       are added, so the tail keeps some resolution next to the tied value.
    3. A single value v (min == max): the edges (v, next float above v), three bins
       "below v", "exactly v" and "above v", so any later spread shows.
    4. No valid value (or no finite one): no edges, one bin.
    """
    if bins < 2:
        raise ValueError(f"bins must be at least 2, not {bins}")
    finite = sorted({float(c) for c in cut_points if math.isfinite(c)})
    low = minimum if minimum is not None and math.isfinite(minimum) else None
    high = maximum if maximum is not None and math.isfinite(maximum) else None
    if low is not None and high is not None and low == high:
        return (low, math.nextafter(low, math.inf))
    edges = set(finite)
    if len(finite) < bins // 2 and low is not None and high is not None:
        step = (high - low) / bins
        edges.update(low + k * step for k in range(1, bins))
    if not edges and low is not None:
        return (low, math.nextafter(low, math.inf))
    return tuple(sorted(edges))


def histogram(values: npt.NDArray[np.float64], edges: Sequence[float]) -> tuple[int, ...]:
    """Counts of the valid `values` over left-closed bins (see the module doc)."""
    _check_edges(tuple(edges))
    index = np.searchsorted(np.asarray(edges, dtype=np.float64), values, side="right")
    return tuple(int(c) for c in np.bincount(index, minlength=len(edges) + 1))


def summarize_numeric(values: npt.ArrayLike, edges: Sequence[float]) -> NumericSummary:
    """The numpy reference: `values` is a float or int array (no nulls), an object
    array whose None entries are nulls, or a masked array whose masked entries are."""
    raw = values if isinstance(values, np.ndarray) else np.asarray(values)
    if isinstance(raw, np.ma.MaskedArray):
        null_mask = np.ma.getmaskarray(raw)
        data = np.asarray(raw.data[~null_mask], dtype=np.float64)
    elif raw.dtype == object:
        null_mask = np.array([v is None for v in raw.ravel()], dtype=bool)
        data = np.asarray(raw.ravel()[~null_mask], dtype=np.float64)
    else:
        null_mask = np.zeros(raw.size, dtype=bool)
        data = np.asarray(raw.ravel(), dtype=np.float64)
    nan_mask = np.isnan(data)
    valid = data[~nan_mask]
    n = int(valid.size)
    quantiles: dict[float, float] = {}
    if n:
        qs = np.quantile(valid, QUANTILE_PROBS, method="inverted_cdf")
        quantiles = {p: float(q) for p, q in zip(QUANTILE_PROBS, qs, strict=True)}
    return NumericSummary(
        count=int(raw.size),
        nulls=int(null_mask.sum()),
        nans=int(nan_mask.sum()),
        mean=float(valid.mean()) if n else None,
        stddev=_sample_stddev(valid) if n >= 2 else None,
        min=float(valid.min()) if n else None,
        max=float(valid.max()) if n else None,
        quantiles=quantiles,
        distinct=int(np.unique(valid).size),
        edges=tuple(float(e) for e in edges),
        counts=histogram(valid, edges),
    )


def summarize_categorical(
    values: Sequence[str | bool | None] | npt.NDArray[Any], k: int = DEFAULT_TOP_K
) -> CategoricalSummary:
    """The numpy reference for strings and booleans; None is null."""
    if k < 0:
        raise ValueError(f"k must be at least 0, not {k}")
    items = list(values.ravel()) if isinstance(values, np.ndarray) else list(values)
    present = [_category(v) for v in items if v is not None]
    counter = Counter(present)
    ranked = sorted(counter.items(), key=lambda kv: (-kv[1], kv[0]))
    top = dict(ranked[:k])
    return CategoricalSummary(
        count=len(items),
        nulls=len(items) - len(present),
        distinct=len(counter),
        top=top,
        other=len(present) - sum(top.values()),
    )


def merge(a: NumericSummary, b: NumericSummary) -> NumericSummary:
    """The summary of the union of two disjoint sets of rows summarized over the same
    edges (e.g. two partitions, or two appended batches).

    Exact: count, nulls, nans, min, max, counts, and mean and stddev by the parallel
    formula (Chan et al.; exact up to floating-point rounding).
    Approximate: quantiles, read off the merged histogram (linear within a bin, the
    open end bins bounded by min and max), so each is off by at most its bin's width;
    distinct, the greater of the two (a lower bound: the sets may overlap).
    """
    if a.edges != b.edges:
        raise ValueError("summaries over different bin edges cannot be merged")
    n_a, n_b = a.valid, b.valid
    n = n_a + n_b
    counts = tuple(x + y for x, y in zip(a.counts, b.counts, strict=True))
    mean: float | None
    stddev: float | None
    if n_a == 0 or n_b == 0:
        only = a if n_a else b
        mean, stddev, low, high = only.mean, only.stddev, only.min, only.max
    else:
        mean_a, mean_b = _given(a.mean), _given(b.mean)
        delta = mean_b - mean_a
        mean = mean_a + delta * n_b / n
        m2 = _m2(a) + _m2(b) + delta * delta * n_a * n_b / n
        stddev = math.sqrt(max(m2, 0.0) / (n - 1))
        low = min(_given(a.min), _given(b.min))
        high = max(_given(a.max), _given(b.max))
    quantiles: dict[float, float] = {}
    if n:
        floor = -math.inf
        for p in QUANTILE_PROBS:  # non-decreasing in p, whatever the rounding
            floor = max(floor, _histogram_quantile(a.edges, counts, _given(low), _given(high), p))
            quantiles[p] = floor
    return NumericSummary(
        count=a.count + b.count,
        nulls=a.nulls + b.nulls,
        nans=a.nans + b.nans,
        mean=mean,
        stddev=stddev,
        min=low,
        max=high,
        quantiles=quantiles,
        distinct=max(a.distinct, b.distinct),
        edges=a.edges,
        counts=counts,
    )


def _sample_stddev(valid: npt.NDArray[np.float64]) -> float:
    with np.errstate(invalid="ignore"):  # an infinite value makes the stddev NaN
        return float(valid.std(ddof=1))


def _m2(s: NumericSummary) -> float:
    """The sum of squared deviations from the mean, from the sample stddev."""
    return 0.0 if s.stddev is None else s.stddev * s.stddev * (s.valid - 1)


def _histogram_quantile(
    edges: tuple[float, ...], counts: tuple[int, ...], low: float, high: float, p: float
) -> float:
    bounds = (low, *edges, high)
    target = p * sum(counts)
    seen = 0
    for i, c in enumerate(counts):
        if c and seen + c >= target:
            left, right = max(bounds[i], low), min(bounds[i + 1], high)
            at = left + (right - left) * ((target - seen) / c)
            return min(max(at, left), right)  # rounding never leaves the bin
        seen += c
    return high


def _category(value: object) -> str:
    if isinstance(value, bool | np.bool_):
        return "true" if value else "false"
    if isinstance(value, str):
        return str(value)  # a numpy string as a plain one
    raise ValueError(f"a categorical value is a string or a boolean, not {value!r}")


def _given(value: float | None) -> float:
    if value is None:
        raise ValueError("a statistic is missing")
    return value


def _check_edges(edges: tuple[float, ...]) -> None:
    if any(not math.isfinite(e) for e in edges):
        raise ValueError("bin edges are finite")
    if any(b <= a for a, b in itertools.pairwise(edges)):
        raise ValueError("bin edges are strictly ascending")


def _check_counts(count: int, missing: int, parts: Sequence[int], what: str) -> None:
    if count < 0 or missing < 0 or any(c < 0 for c in parts):
        raise ValueError("counts are not negative")
    if sum(parts) != count - missing:
        raise ValueError(f"{what} adds up to {sum(parts)}, not the {count - missing} values")


def _check_keys(data: Mapping[str, Any], kind: str, keys: frozenset[str]) -> None:
    if not isinstance(data, Mapping):
        raise ValueError(f"a summary is a JSON object, not {type(data).__name__}")
    if data.get("kind") != kind:
        raise ValueError(f"expected a {kind} summary, got kind {data.get('kind')!r}")
    if set(data) != keys:
        missing, extra = sorted(keys - set(data)), sorted(set(data) - keys)
        raise ValueError(f"{kind} summary: missing {missing}, unknown {extra}")


def _int(data: Mapping[str, Any], key: str) -> int:
    return _count(data[key], key)


def _count(value: object, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{what} is a non-negative integer, not {value!r}")
    return value


def _list(data: Mapping[str, Any], key: str) -> list[Any]:
    value = data[key]
    if not isinstance(value, list):
        raise ValueError(f"{key} is a JSON array, not {value!r}")
    return value


def _mapping(data: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = data[key]
    if not isinstance(value, Mapping):
        raise ValueError(f"{key} is a JSON object, not {value!r}")
    return value


def _enc(value: float | None) -> float | str | None:
    """Non-finite floats as the strings "NaN", "Infinity", "-Infinity": strict JSON."""
    if value is None or math.isfinite(value):
        return value
    return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")


def _float(value: object, what: str) -> float:
    if isinstance(value, str) and value in _NON_FINITE:
        return _NON_FINITE[value]
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{what} is a number, not {value!r}")
    return float(value)


def _opt_float(value: object, what: str) -> float | None:
    return None if value is None else _float(value, what)
