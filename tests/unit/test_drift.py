"""Drift between two summaries (skewless/stats/drift.py): PSI, KS and JS against
independent numpy computations, the empty-bin rule, the thresholds and the verdict.
Pure numpy (no scipy in the environment)."""

from __future__ import annotations

import itertools
import math
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from skewless.stats.drift import (
    FeatureDrift,
    Thresholds,
    by_severity,
    compare,
    js_distance,
    ks_statistic,
    psi,
)
from skewless.stats.summary import (
    NumericSummary,
    edge_probabilities,
    reference_edges,
    summarize_categorical,
    summarize_numeric,
)

counts = st.lists(st.integers(0, 1000), min_size=1, max_size=12)
finite = st.floats(-1e3, 1e3, allow_nan=False, allow_infinity=False)
some_edges = st.lists(finite, min_size=0, max_size=8, unique=True).map(lambda xs: tuple(sorted(xs)))


def _psi_by_hand(ref: list[int], cur: list[int], eps: float = 1e-4) -> float:
    """PSI written out term by term, without the module's helpers."""
    total_p, total_q = sum(ref), sum(cur)
    p = [c / total_p if c else eps for c in ref]
    q = [c / total_q if c else eps for c in cur]
    p = [x / sum(p) for x in p]
    q = [x / sum(q) for x in q]
    return sum((qi - pi) * math.log(qi / pi) for pi, qi in zip(p, q, strict=True))


def _raw_ks(a: np.ndarray, b: np.ndarray) -> float:
    """The two-sample KS statistic by brute force: sup |F_a(x) - F_b(x)| over all points."""
    points = np.concatenate([a, b])
    fa = (a[None, :] <= points[:, None]).mean(axis=1)
    fb = (b[None, :] <= points[:, None]).mean(axis=1)
    return float(np.abs(fa - fb).max())


def _bin_counts(values: np.ndarray, edges: tuple[float, ...]) -> list[int]:
    """Left-closed bins, computed independently of summary.histogram."""
    bounds = [-math.inf, *edges, math.inf]
    out = [int(((values >= lo) & (values < hi)).sum()) for lo, hi in itertools.pairwise(bounds)]
    out[-1] += int((values == math.inf).sum())
    return out


def _numeric(values: Any, edges: tuple[float, ...]) -> NumericSummary:
    return summarize_numeric(np.asarray(values, dtype=object), edges)


def _edges_of(values: np.ndarray) -> tuple[float, ...]:
    cuts = np.quantile(values, edge_probabilities(), method="inverted_cdf")
    return reference_edges(list(cuts), float(values.min()), float(values.max()))


# --- PSI ---------------------------------------------------------------------------


def test_psi_known_value() -> None:
    # p = (0.5, 0.5), q = (0.25, 0.75): 0.25 ln 2 + 0.25 ln 1.5 ... written out:
    expected = (0.25 - 0.5) * math.log(0.25 / 0.5) + (0.75 - 0.5) * math.log(0.75 / 0.5)
    assert psi([50, 50], [25, 75]) == pytest.approx(expected)
    assert psi([50, 50], [25, 75]) == pytest.approx(0.2747, abs=1e-4)


def test_psi_of_equal_distributions_is_zero() -> None:
    assert psi([10, 0, 30], [20, 0, 60]) == 0.0


def test_psi_empty_bin_rule_replaces_zero_by_epsilon_and_renormalizes() -> None:
    ref, cur = [100, 0], [90, 10]
    p = np.array([1.0, 1e-4]) / (1.0 + 1e-4)
    q = np.array([0.9, 0.1])
    assert psi(ref, cur) == pytest.approx(float(np.sum((q - p) * np.log(q / p))))
    assert math.isfinite(psi([100, 0], [0, 100]))
    assert psi([100, 0], [90, 10], epsilon=1e-2) < psi([100, 0], [90, 10])


@given(
    counts.flatmap(
        lambda c: st.tuples(
            st.just(c), st.lists(st.integers(0, 1000), min_size=len(c), max_size=len(c))
        )
    )
)
def test_psi_matches_independent_computation(pair: tuple[list[int], list[int]]) -> None:
    ref, cur = pair
    if sum(ref) == 0 or sum(cur) == 0:
        with pytest.raises(ValueError, match="no values"):
            psi(ref, cur)
        return
    assert psi(ref, cur) == pytest.approx(_psi_by_hand(ref, cur), rel=1e-9, abs=1e-12)
    assert psi(ref, cur) >= -1e-12


def test_psi_on_random_data_matches_numpy() -> None:
    rng = np.random.default_rng(7)
    ref, cur = rng.normal(size=5000), rng.normal(0.3, 1.2, size=4000)
    edges = _edges_of(ref)
    r, c = _numeric(ref, edges), _numeric(cur, edges)
    p = np.histogram(ref, bins=[-np.inf, *edges, np.inf])[0] / ref.size
    q = np.histogram(cur, bins=[-np.inf, *edges, np.inf])[0] / cur.size
    assert (p > 0).all()
    assert (q > 0).all()
    assert psi(r.counts, c.counts) == pytest.approx(float(np.sum((q - p) * np.log(q / p))))


def test_psi_rejects_mismatched_bins() -> None:
    with pytest.raises(ValueError, match="equally long"):
        psi([1, 2], [1, 2, 3])


# --- KS ----------------------------------------------------------------------------


@given(
    st.lists(finite, min_size=1, max_size=40),
    st.lists(finite, min_size=1, max_size=40),
    some_edges,
)
def test_ks_binned_is_below_raw_by_at_most_the_largest_bin(
    a: list[float], b: list[float], edges: tuple[float, ...]
) -> None:
    x, y = np.array(a), np.array(b)
    ca, cb = _bin_counts(x, edges), _bin_counts(y, edges)
    binned = ks_statistic(edges, ca, cb)
    raw = _raw_ks(x, y)
    largest = max(max(ca) / x.size, max(cb) / y.size)
    assert binned <= raw + 1e-12
    assert raw - binned <= largest + 1e-12


@given(
    st.lists(finite, min_size=1, max_size=8, unique=True).map(lambda xs: tuple(sorted(xs))),
    st.data(),
)
def test_ks_equals_raw_when_values_lie_on_edges(edges: tuple[float, ...], data: Any) -> None:
    on_edges = st.lists(st.sampled_from(edges), min_size=1, max_size=40)
    x, y = np.array(data.draw(on_edges)), np.array(data.draw(on_edges))
    binned = ks_statistic(edges, _bin_counts(x, edges), _bin_counts(y, edges))
    assert binned == pytest.approx(_raw_ks(x, y), abs=1e-12)


def test_ks_on_random_data_is_close_to_raw() -> None:
    rng = np.random.default_rng(11)
    ref, cur = rng.normal(size=3000), rng.normal(0.2, 1.0, size=3000)
    edges = _edges_of(ref)
    binned = ks_statistic(edges, _numeric(ref, edges).counts, _numeric(cur, edges).counts)
    raw = _raw_ks(ref, cur)
    assert raw - 0.06 <= binned <= raw


def test_ks_rejects_wrong_bin_count() -> None:
    with pytest.raises(ValueError, match="bins"):
        ks_statistic((0.0,), [1, 2, 3], [1, 2, 3])


# --- JS ----------------------------------------------------------------------------


@given(
    counts.flatmap(
        lambda c: st.tuples(
            st.just(c), st.lists(st.integers(0, 1000), min_size=len(c), max_size=len(c))
        )
    )
)
def test_js_is_symmetric_and_bounded(pair: tuple[list[int], list[int]]) -> None:
    p, q = pair
    if sum(p) == 0 or sum(q) == 0:
        return
    d = js_distance(p, q)
    assert 0.0 <= d <= 1.0
    assert d == pytest.approx(js_distance(q, p), abs=1e-12)


def test_js_of_equal_is_zero_and_of_disjoint_is_one() -> None:
    assert js_distance([1, 2, 3], [2, 4, 6]) == pytest.approx(0.0, abs=1e-7)
    assert js_distance([5, 0, 0], [0, 3, 4]) == 1.0


def test_js_known_value() -> None:
    # p = (1, 0), q = (1/2, 1/2): m = (3/4, 1/4)
    kl_p = math.log2(1 / 0.75)
    kl_q = 0.5 * math.log2(0.5 / 0.75) + 0.5 * math.log2(0.5 / 0.25)
    assert js_distance([2, 0], [1, 1]) == pytest.approx(math.sqrt((kl_p + kl_q) / 2))


# --- compare -----------------------------------------------------------------------


def test_compare_mean_shift_of_one_sd_is_drifted() -> None:
    rng = np.random.default_rng(1)
    ref = rng.normal(size=5000)
    edges = _edges_of(ref)
    d = compare("x", _numeric(ref, edges), _numeric(rng.normal(1.0, size=5000), edges))
    assert d.verdict == "drifted"
    assert d.psi is not None
    assert d.psi > 0.25
    assert d.ks is not None
    assert d.ks > 0.2
    assert any(r.startswith("psi") and r.endswith("(drifted)") for r in d.reasons)


def test_compare_same_sample_is_stable_with_zero_psi() -> None:
    rng = np.random.default_rng(2)
    ref = rng.normal(size=2000)
    edges = _edges_of(ref)
    d = compare("x", _numeric(ref, edges), _numeric(ref.copy(), edges))
    assert (d.verdict, d.psi, d.ks, d.reasons) == ("stable", 0.0, 0.0, ())
    assert d.js == pytest.approx(0.0, abs=1e-7)


def test_compare_fresh_sample_of_same_distribution_is_stable() -> None:
    rng = np.random.default_rng(4)
    ref = rng.normal(size=20000)
    edges = _edges_of(ref)
    assert compare("x", _numeric(ref, edges), _numeric(rng.normal(size=20000), edges)).verdict == (
        "stable"
    )


def test_compare_null_rate_jump_is_drifted_on_null_rate_only() -> None:
    rng = np.random.default_rng(5)
    values = list(rng.normal(size=9800))
    ref = _numeric(values + [None] * 200, _edges_of(np.array(values)))  # 2% null
    cur = _numeric(values + [None] * 2450, ref.edges)  # 20% null
    d = compare("x", ref, cur)
    assert d.verdict == "drifted"
    assert d.null_rate_ref == pytest.approx(0.02)
    assert d.null_rate_cur == pytest.approx(0.2)
    assert d.null_rate_change == pytest.approx(0.18)
    assert d.reasons == ("null rate change +0.18 >= 0.1 (drifted)",)


def test_compare_nan_counts_as_missing() -> None:
    ref = _numeric([1.0] * 99 + [None], (0.0,))
    cur = _numeric([1.0] * 90 + [math.nan] * 10, (0.0,))
    d = compare("x", ref, cur)
    assert (d.null_rate_ref, d.null_rate_cur) == (0.01, 0.1)
    assert d.verdict == "warn"


def test_compare_new_category_is_drifted_and_named() -> None:
    ref = summarize_categorical(["a"] * 500 + ["b"] * 500)
    cur = summarize_categorical(["a"] * 475 + ["b"] * 475 + ["c"] * 50)
    d = compare("colour", ref, cur)
    assert d.verdict == "drifted"
    assert d.new_categories == ("c",)
    assert d.vanished_categories == ()
    assert "new category 'c' at 5.0%" in d.reasons
    assert d.ks is None


def test_compare_vanished_and_rare_categories() -> None:
    ref = summarize_categorical(["a"] * 970 + ["b"] * 27 + ["z"] * 3)
    cur = summarize_categorical(["a"] * 990 + ["y"] * 7 + ["x"] * 3)
    d = compare("c", ref, cur)
    assert d.vanished_categories == ("b",)  # z at 0.3% is under the 0.5% floor
    assert d.new_categories == ("y",)  # x at 0.3% is not named
    assert "vanished category 'b' at 2.7%" in d.reasons
    assert "new category 'y' at 0.7%" in d.reasons
    assert d.verdict == "drifted"


def test_compare_category_hidden_in_other_is_not_named() -> None:
    # With top lists cut at 2, "k" (20%) hides in the reference's other and "b" (19%)
    # in the current's: neither is new nor vanished; the shift shows in PSI instead.
    ref = summarize_categorical(["a"] * 40 + ["b"] * 40 + ["k"] * 20, k=2)
    cur = summarize_categorical(["a"] * 61 + ["k"] * 20 + ["b"] * 19, k=2)
    assert (list(ref.top), list(cur.top)) == (["a", "b"], ["a", "k"])
    d = compare("c", ref, cur)
    assert (d.new_categories, d.vanished_categories) == ((), ())
    assert d.verdict == "drifted"


def test_compare_new_category_in_a_long_tail_is_named() -> None:
    # The reference's list is cut short, but what it hides is under 0.5% per value.
    tail = [f"v{i:03d}" for i in range(300)]
    ref = summarize_categorical(["a"] * 5000 + tail * 10, k=50)
    cur = summarize_categorical(["a"] * 4500 + tail * 10 + ["new"] * 500, k=50)
    assert ref.other > 0
    d = compare("c", ref, cur)
    assert d.new_categories == ("new",)


def test_compare_rejects_different_kinds_and_edges() -> None:
    num = _numeric([1.0, 2.0], (1.5,))
    with pytest.raises(ValueError, match="numeric summary with a categorical"):
        compare("f", num, summarize_categorical(["a"]))
    with pytest.raises(ValueError, match="different bin edges"):
        compare("f", num, _numeric([1.0, 2.0], (1.0,)))


def test_compare_empty_side() -> None:
    ref = _numeric([1.0, 2.0], (1.5,))
    d = compare("f", ref, _numeric([None, None], (1.5,)))
    assert (d.psi, d.ks, d.js) == (None, None, None)
    assert d.verdict == "drifted"
    assert "no valid values in the current version" in d.reasons
    both = compare("f", _numeric([None], (1.5,)), _numeric([None], (1.5,)))
    assert both.verdict == "stable"


def test_compare_custom_thresholds() -> None:
    ref = summarize_categorical(["a"] * 50 + ["b"] * 50)
    cur = summarize_categorical(["a"] * 60 + ["b"] * 40)
    assert compare("c", ref, cur).verdict == "stable"
    strict = Thresholds(psi_warn=0.01, psi_drifted=0.5, js_warn=0.5, js_drifted=0.6)
    assert compare("c", ref, cur, strict).verdict == "warn"
    with pytest.raises(ValueError, match="warn"):
        Thresholds(psi_warn=0.3, psi_drifted=0.2)


def test_drift_severity_orders_verdict_then_psi() -> None:
    def fd(name: str, verdict: Any, value: float | None) -> FeatureDrift:
        return FeatureDrift(name, "numeric", value, None, None, 0.0, 0.0, verdict=verdict)

    drifts = [
        fd("s", "stable", 0.01),
        fd("w", "warn", 0.12),
        fd("d1", "drifted", 0.3),
        fd("none", "drifted", None),
        fd("d2", "drifted", 0.9),
    ]
    assert [d.feature for d in by_severity(drifts)] == ["d2", "d1", "none", "w", "s"]


def test_drift_to_json_is_plain() -> None:
    d = compare("c", summarize_categorical(["a"]), summarize_categorical(["a"]))
    assert d.to_json()["verdict"] == "stable"
    assert d.to_json()["new_categories"] == []


def test_compare_a_statistic_equal_to_its_threshold_crosses_it() -> None:
    # 10 of 100 values move one bin: KS is 0.1 (0.09999999999999998 in floating point)
    edges = (1.0, 2.0)
    ref = summarize_numeric(np.array([0.5] * 50 + [1.5] * 50), edges)
    cur = summarize_numeric(np.array([0.5] * 40 + [1.5] * 60), edges)
    drift = compare("x", ref, cur)
    assert drift.ks == pytest.approx(0.1)
    assert "ks 0.1 >= 0.1 (warn)" in drift.reasons


def test_summarize_categorical_keeps_numpy_strings_as_plain_strings() -> None:
    summary = summarize_categorical(np.array(["a", "b", "a"]))
    assert all(type(v) is str for v in summary.top)
    drift = compare("s", summarize_categorical(["a"] * 99), summary)
    assert drift.new_categories == ("b",) and "'b'" in " ".join(drift.reasons)
