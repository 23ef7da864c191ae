"""Feature summaries (skewless/stats/summary.py): the numpy reference, the left-closed
histogram, the reference's bin edges, the JSON form and merging. Pure numpy."""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from skewless.stats.summary import (
    QUANTILE_PROBS,
    CategoricalSummary,
    NumericSummary,
    edge_probabilities,
    histogram,
    merge,
    reference_edges,
    summarize_categorical,
    summarize_numeric,
    summary_from_json,
)

finite = st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False)
some_edges = st.lists(finite, min_size=0, max_size=8, unique=True).map(lambda xs: tuple(sorted(xs)))


def _edges_of(values: np.ndarray) -> tuple[float, ...]:
    cuts = np.quantile(values, edge_probabilities(), method="inverted_cdf")
    return reference_edges(list(cuts), float(values.min()), float(values.max()))


def _roundtrip(data: dict[str, Any]) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(json.dumps(data, allow_nan=False))
    return loaded


def test_summary_histogram_is_left_closed() -> None:
    values = np.array([-5.0, 0.0, 0.5, 1.0, 2.0, 3.0, math.inf, -math.inf])
    # bins: [-inf, 0), [0, 1), [1, 2), [2, +inf]
    assert histogram(values, (0.0, 1.0, 2.0)) == (2, 2, 1, 3)
    assert histogram(values, ()) == (8,)


def test_summary_numeric_counts_nulls_nans_and_statistics() -> None:
    values = np.array([1.0, None, 2.0, math.nan, 3.0, 4.0, None], dtype=object)
    s = summarize_numeric(values, (2.0, 3.0))
    assert (s.count, s.nulls, s.nans, s.valid) == (7, 2, 1, 4)
    assert s.mean == 2.5
    assert s.stddev == pytest.approx(np.std([1, 2, 3, 4], ddof=1))
    assert (s.min, s.max, s.distinct) == (1.0, 4.0, 4)
    assert s.counts == (1, 1, 2)
    assert s.missing_rate == pytest.approx(3 / 7)
    # inverted_cdf: the smallest value with at least p of the values at or below it
    assert s.quantiles[0.5] == 2.0
    assert s.quantiles[0.25] == 1.0
    assert s.quantiles[0.99] == 4.0


def test_summary_numeric_masked_array_marks_nulls() -> None:
    values = np.ma.masked_array([1.0, 2.0, 3.0], mask=[False, True, False])
    s = summarize_numeric(values, (2.0,))
    assert (s.count, s.nulls, s.counts) == (3, 1, (1, 1))


def test_summary_numeric_without_values_has_no_moments() -> None:
    s = summarize_numeric(np.array([None, None], dtype=object), (0.0,))
    assert (s.mean, s.stddev, s.min, s.max, dict(s.quantiles)) == (None, None, None, None, {})
    one = summarize_numeric(np.array([5.0]), (0.0,))
    assert (one.mean, one.stddev) == (5.0, None)


def test_summary_categorical_top_ties_by_value_and_booleans() -> None:
    values = ["b", "a", "c", "a", "b", None, "d"]
    s = summarize_categorical(values, k=2)
    assert list(s.top.items()) == [("a", 2), ("b", 2)]
    assert (s.count, s.nulls, s.distinct, s.other) == (7, 1, 4, 2)
    flags = summarize_categorical(np.array([True, False, True, None], dtype=object))
    assert dict(flags.top) == {"true": 2, "false": 1}


def test_summary_reference_edges_equal_frequency() -> None:
    values = np.arange(1000, dtype=np.float64)
    edges = _edges_of(values)
    assert len(edges) == 19
    counts = histogram(values, edges)
    assert counts[0] == 49  # [0, 49): below the 5% point, which itself is a value
    assert max(counts[1:-1]) - min(counts[1:-1]) <= 1


def test_summary_reference_edges_heavy_ties_add_equal_width() -> None:
    values = np.concatenate([np.zeros(970), np.linspace(1, 100, 30)])
    edges = _edges_of(values)
    assert 0.0 in edges
    assert len(edges) > 10
    assert edges == tuple(sorted(set(edges)))
    assert all(math.isfinite(e) for e in edges)


def test_summary_reference_edges_single_value_and_empty() -> None:
    edges = reference_edges([7.0] * 19, 7.0, 7.0)
    assert edges == (7.0, math.nextafter(7.0, math.inf))
    assert histogram(np.array([6.0, 7.0, 7.0, 8.0]), edges) == (1, 2, 1)
    assert reference_edges([], None, None) == ()
    assert reference_edges([math.inf, 1.0, 2.0, 1.0], 1.0, math.inf, bins=4) == (1.0, 2.0)


@given(st.lists(finite, min_size=1, max_size=60), st.integers(0, 10), some_edges)
def test_summary_numeric_json_roundtrip(values: list[float], nulls: int, edges: Any) -> None:
    data = np.array([*values, *([None] * nulls), math.nan], dtype=object)
    s = summarize_numeric(data, edges)
    assert NumericSummary.from_json(_roundtrip(s.to_json())) == s
    assert summary_from_json(_roundtrip(s.to_json())) == s


def test_summary_numeric_json_keeps_infinities() -> None:
    s = summarize_numeric(np.array([1.0, math.inf]), (0.0,))
    back = NumericSummary.from_json(_roundtrip(s.to_json()))
    assert back.max == math.inf
    assert back.mean == math.inf


def test_summary_categorical_json_roundtrip_keeps_order() -> None:
    s = summarize_categorical(["x", "y", "y", None, "z", "z", "z"], k=2)
    back = CategoricalSummary.from_json(_roundtrip(s.to_json()))
    assert back == s
    assert list(back.top) == ["z", "y"]
    assert summary_from_json(_roundtrip(s.to_json())) == s


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"kind": "histogram"}, "expected a numeric summary"),
        ({"counts": [1, 1]}, "bins"),
        ({"counts": [1, 1, 1]}, "adds up to"),
        ({"edges": [3.0, 2.0]}, "strictly ascending"),
        ({"nulls": True}, "non-negative integer"),
        ({"mean": "1.5"}, "is a number"),
        ({"extra": 1}, "unknown"),
        ({"quantiles": {"0.3": 1.0}}, "unknown quantile keys"),
    ],
)
def test_summary_from_json_rejects(change: dict[str, Any], message: str) -> None:
    data = summarize_numeric(np.array([1.0, 2.0, 3.0, 4.0]), (2.0, 3.0)).to_json() | change
    with pytest.raises(ValueError, match=message):
        NumericSummary.from_json(data)


def test_summary_from_json_rejects_unknown_kind_and_bad_top() -> None:
    with pytest.raises(ValueError, match="unknown summary kind"):
        summary_from_json({"kind": "pickle"})
    data = summarize_categorical(["a", "a", "b"]).to_json()
    with pytest.raises(ValueError, match="appears twice"):
        CategoricalSummary.from_json(data | {"top": [["a", 2], ["a", 1]]})
    with pytest.raises(ValueError, match="adds up to"):
        CategoricalSummary.from_json(data | {"other": 5})


@given(
    st.lists(finite, min_size=0, max_size=80),
    st.lists(finite, min_size=0, max_size=80),
    some_edges,
)
def test_summary_merge_of_two_parts_equals_summary_of_all(
    a: list[float], b: list[float], edges: Any
) -> None:
    part_a = np.array([*a, None, math.nan], dtype=object)
    part_b = np.array([*b, None], dtype=object)
    whole = summarize_numeric(np.concatenate([part_a, part_b]), edges)
    merged = merge(summarize_numeric(part_a, edges), summarize_numeric(part_b, edges))
    exact = ("count", "nulls", "nans", "min", "max", "edges", "counts")
    assert {f: getattr(merged, f) for f in exact} == {f: getattr(whole, f) for f in exact}
    if whole.valid:
        assert merged.mean == pytest.approx(whole.mean, rel=1e-9, abs=1e-6)
    else:
        assert merged.mean is None
    if whole.stddev is None:
        assert merged.stddev is None
    else:
        assert merged.stddev == pytest.approx(whole.stddev, rel=1e-6, abs=1e-6)
    # approximate: the greater distinct count, quantiles within the data's range
    assert merged.distinct <= whole.distinct
    assert set(merged.quantiles) == set(whole.quantiles)
    if whole.valid:
        lo, hi = whole.min, whole.max
        assert lo is not None
        assert hi is not None
        qs = [merged.quantiles[p] for p in QUANTILE_PROBS]
        assert all(lo <= q <= hi for q in qs)
        assert qs == sorted(qs)


def test_summary_merge_quantile_is_within_its_bin() -> None:
    rng = np.random.default_rng(3)
    values = rng.normal(size=4000)
    edges = _edges_of(values)
    whole = summarize_numeric(values, edges)
    merged = merge(summarize_numeric(values[:1500], edges), summarize_numeric(values[1500:], edges))
    bounds = np.array([whole.min, *edges, whole.max])
    for p in QUANTILE_PROBS:
        i = int(np.searchsorted(bounds, whole.quantiles[p], side="right"))
        assert bounds[i - 1] <= merged.quantiles[p] <= bounds[min(i, len(bounds) - 1)]


def test_summary_merge_rejects_different_edges() -> None:
    with pytest.raises(ValueError, match="different bin edges"):
        merge(summarize_numeric(np.array([1.0]), (0.0,)), summarize_numeric(np.array([1.0]), ()))
