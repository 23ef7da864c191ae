"""The benchmark's intervals for same-run latency ratios (benchmarks/intervals.py) and the
verdicts the report draws from them (benchmarks/report.py): pure logic, no runs."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from benchmarks.intervals import percentile_ratio_interval
from benchmarks.report import _targets_md, targets, verdict
from hypothesis import given, settings
from hypothesis import strategies as st


def _latencies(calls: int, seed: int, turn_calls: int = 100) -> list[float]:
    """Latencies with a disturbance that changes from turn to turn, as on a shared
    machine: a lognormal base times a factor per turn."""
    rng = np.random.default_rng(seed)
    base = rng.lognormal(mean=-7.0, sigma=0.4, size=calls)
    per_turn = rng.uniform(1.0, 3.0, size=-(-calls // turn_calls))
    return list(base * np.repeat(per_turn, turn_calls)[:calls])


@settings(max_examples=40, deadline=None)
@given(
    calls=st.integers(1, 700),
    turn_calls=st.integers(1, 150),
    factor=st.floats(0.1, 10.0),
    seed=st.integers(0, 2**16),
)
def test_interval_of_a_constant_multiple_is_that_multiple(
    calls: int, turn_calls: int, factor: float, seed: int
) -> None:
    # Every draw takes the same turns of both servers, so when one server is always
    # `factor` times the other, every replicate is exactly `factor`: the resampling is
    # paired. Resampling each server on its own would spread the replicates.
    b = _latencies(calls, seed, turn_calls)
    a = [factor * x for x in b]
    got = percentile_ratio_interval(a, b, turn_calls=turn_calls, draws=200, seed=seed)
    assert got.turns == -(-calls // turn_calls)
    for value in (got.ratio, got.low, got.high):
        assert value == pytest.approx(factor, rel=1e-9)


def _reference(
    a: list[float], b: list[float], turn_calls: int, draws: int, seed: int, level: float
) -> tuple[float, float]:
    """The bootstrap one draw and one turn at a time, with the same random turns."""
    turns_a = [a[i : i + turn_calls] for i in range(0, len(a), turn_calls)]
    turns_b = [b[i : i + turn_calls] for i in range(0, len(b), turn_calls)]
    picks = np.random.default_rng(seed).integers(0, len(turns_a), size=(draws, len(turns_a)))
    replicates = []
    for row in picks:
        drawn_a = [x for t in row for x in turns_a[t]]
        drawn_b = [x for t in row for x in turns_b[t]]
        replicates.append(np.percentile(drawn_a, 99) / np.percentile(drawn_b, 99))
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(replicates, [tail, 100 - tail])
    return float(low), float(high)


@pytest.mark.parametrize(("calls", "turn_calls"), [(2000, 100), (250, 100), (37, 5)])
def test_interval_equals_the_draw_by_draw_reference(calls: int, turn_calls: int) -> None:
    a, b = _latencies(calls, 1, turn_calls), _latencies(calls, 2, turn_calls)
    got = percentile_ratio_interval(a, b, turn_calls=turn_calls, draws=300, seed=5, level=0.9)
    low, high = _reference(a, b, turn_calls, 300, 5, 0.9)
    assert (got.low, got.high) == pytest.approx((low, high), rel=1e-12)
    assert got.ratio == pytest.approx(np.percentile(a, 99) / np.percentile(b, 99), rel=1e-12)
    assert got.low <= got.high
    again = percentile_ratio_interval(a, b, turn_calls=turn_calls, draws=300, seed=5, level=0.9)
    assert again == got  # deterministic for a seed


def test_interval_covers_the_true_ratio_and_narrows_with_more_turns() -> None:
    # Two servers whose p99s truly differ by 1.5x, measured under the same per-turn
    # disturbance: the interval holds 1.5, and 10x the turns give a narrower one.
    def pair(calls: int) -> tuple[list[float], list[float]]:
        rng = np.random.default_rng(calls)
        turn = np.repeat(rng.uniform(1.0, 3.0, size=calls // 100), 100)
        a = rng.exponential(1.5, size=calls) * turn
        b = rng.exponential(1.0, size=calls) * turn
        return list(a), list(b)

    few = percentile_ratio_interval(*pair(2_000), draws=500)
    many = percentile_ratio_interval(*pair(20_000), draws=500)
    assert few.low < 1.5 < few.high
    assert many.low < 1.5 < many.high
    assert many.high - many.low < few.high - few.low


def test_interval_refuses_unpaired_or_empty_samples() -> None:
    with pytest.raises(ValueError, match="200 calls against 199"):
        percentile_ratio_interval([1.0] * 200, [1.0] * 199)
    with pytest.raises(ValueError, match="no samples"):
        percentile_ratio_interval([], [])
    with pytest.raises(ValueError, match="level"):
        percentile_ratio_interval([1.0], [1.0], level=1.0)
    with pytest.raises(ValueError, match="turn_calls"):
        percentile_ratio_interval([1.0], [1.0], turn_calls=0)


@pytest.mark.parametrize(
    ("interval", "expected"),
    [
        (None, "met"),  # no interval: the point estimate decides
        ((1.1, 1.4), "met"),
        ((1.6, 2.0), "missed"),
        ((1.3, 1.7), "undecided"),
        ((1.5, 1.5), "met"),  # on the limit is within it
    ],
)
def test_verdict_needs_the_whole_interval_on_one_side(
    interval: tuple[float, float] | None, expected: str
) -> None:
    assert verdict(True, interval, 1.5, higher_is_better=False) == expected


def test_verdict_without_a_measurement_is_not_applicable() -> None:
    assert verdict(None, None, 1.5, higher_is_better=False) == "n/a"
    assert verdict(False, None, 5.0, higher_is_better=True) == "missed"
    assert verdict(True, (5.5, 4.5), 5.0, higher_is_better=True) == "undecided"


def test_online_targets_carry_their_intervals_into_the_report() -> None:
    def lat(p99: float) -> dict[str, float]:
        return {"p50_ms": p99 / 2, "p99_ms": p99}

    results: dict[str, Any] = {
        "scale": "small",
        "online": {
            "latency": {
                "1x10": {"skewless_grpc": lat(1.6), "echo_floor": lat(1.0), "feast_grpc": lat(4.0)},
                "100x10": {"skewless_grpc": lat(3.0), "feast_grpc": lat(14.0)},
            },
            "p99_intervals": {
                "1x10": {
                    "skewless_grpc/echo_floor": {"ratio": 1.6, "low": 1.3, "high": 1.9},
                    "skewless_grpc/feast_grpc": {"ratio": 0.4, "low": 0.35, "high": 0.45},
                },
                # no interval for 100x10: its verdict is the point estimate's
            },
        },
    }
    rows = {t["target"]: t for t in targets(results)}
    echo = rows["online 1x10: p99 / bare gRPC echo p99"]
    assert (echo["met"], echo["interval"], echo["verdict"]) == (False, (1.3, 1.9), "undecided")
    feast = rows["online 1x10: p99 / Feast gRPC server p99"]
    assert (feast["interval"], feast["verdict"]) == ((0.35, 0.45), "missed")
    wide = rows["online 100x10: p99 / Feast gRPC server p99"]
    assert (wide["interval"], wide["verdict"]) == (None, "missed")  # 3 / 14 > 1/5
    text = "\n".join(_targets_md(results))
    row = "| online 1x10: p99 / bare gRPC echo p99 | 1.60 | 1.30 - 1.90 | <= 1.50 | undecided |"
    assert row in text
