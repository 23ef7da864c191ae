"""The benchmark report's targets table (benchmarks/report.py): pure logic, no runs."""

from __future__ import annotations

from typing import Any

from benchmarks.report import targets


def _medium(missing: int, differing: int) -> dict[str, Any]:
    correctness = {"rows_missing": missing, "rows_duplicated": 0, "rows_differing": differing}
    return {
        "scale": "medium",
        "historical": {
            "skewless": {"warm_s": 30.0, "correctness": correctness},
            "duckdb_asof": {"seconds": 10.0},
        },
    }


def test_medium_targets_count_wrong_rows_and_compare_with_duckdb() -> None:
    rows = {t["target"]: t for t in targets(_medium(0, 0))}
    wrong = next(t for name, t in rows.items() if "rows missing" in name)
    duck = next(t for name, t in rows.items() if "DuckDB" in name)
    assert (wrong["measured"], wrong["met"]) == (0.0, True)
    assert (duck["measured"], duck["met"]) == (3.0, False)  # 30 s / 10 s against 2.5x
    bad = next(t for t in targets(_medium(2, 1)) if "rows missing" in t["target"])
    assert (bad["measured"], bad["met"]) == (3.0, False)


def test_interleaved_latencies_take_turns_and_count_every_call() -> None:
    from benchmarks.loadgen import interleaved_latencies  # noqa: PLC0415

    order: list[str] = []
    calls = {name: (lambda name=name: order.append(name)) for name in ("a", "b", "c")}
    samples = interleaved_latencies(calls, calls=250, warmup=3, block=100)
    assert {name: len(s) for name, s in samples.items()} == {"a": 250, "b": 250, "c": 250}
    assert order[:9] == ["a"] * 3 + ["b"] * 3 + ["c"] * 3  # warm-up, untimed
    # Turns of 100 calls, the first system rotating: abc, bca, then the 50-call rests cab.
    assert order[9 : 9 + 300] == ["a"] * 100 + ["b"] * 100 + ["c"] * 100
    assert order[309 : 309 + 300] == ["b"] * 100 + ["c"] * 100 + ["a"] * 100
    assert order[609:] == ["c"] * 50 + ["a"] * 50 + ["b"] * 50
