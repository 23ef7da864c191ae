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
