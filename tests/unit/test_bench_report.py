"""The benchmark report's targets table (benchmarks/report.py): pure logic, no runs."""

from __future__ import annotations

from typing import Any

from benchmarks.report import _online_md, system_colors, targets


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


def test_handler_stats_take_the_difference_of_two_scrapes_and_interpolate() -> None:
    from benchmarks.skewless_side import handler_stats  # noqa: PLC0415

    inf = float("inf")
    before = {0.001: 10.0, 0.002: 10.0, inf: 10.0, -1.0: 0.005}
    # 100 calls between the scrapes: 50 under 1 ms, 40 in (1, 2] ms, 10 above 2 ms.
    after = {0.001: 60.0, 0.002: 100.0, inf: 110.0, -1.0: 0.005 + 0.150}
    got = handler_stats(before, after)
    assert got["calls"] == 100
    assert abs(got["mean_s"] - 0.0015) < 1e-12
    assert abs(got["p50_s"] - 0.001) < 1e-12  # the 50th call closes the first bucket
    assert got["p99_s"] == 0.002  # in the +Inf bucket: the last finite bound
    assert handler_stats(after, after) == {"calls": 0}
    # From nothing: 50 calls under 1 ms, 50 in (1, 2] ms; the 99th call lies 49/50 of
    # the way into the second bucket.
    three = {0.001: 50.0, 0.002: 100.0, inf: 100.0, -1.0: 0.1}
    assert abs(handler_stats({}, three)["p50_s"] - 0.001) < 1e-12
    assert abs(handler_stats({}, three)["p99_s"] - (0.001 + 0.001 * 49 / 50)) < 1e-12


def test_memory_table_names_each_servers_load() -> None:
    """skewless's row says its load ended with the sustained run, Feast's that its load
    was the throughput runs; a report from before (sustained_seconds) still renders."""
    mib = 2**20
    memory = {
        "skewless_grpc": {
            "rss_before_bytes": 160 * mib,
            "rss_after_bytes": 170 * mib,
            "load": "throughput runs, then 60 s at 8 clients",
            "loaded_seconds": 78.2,
            "calls": 90_000,
            "errors": 0,
        },
        "feast_grpc": {
            "rss_before_bytes": 210 * mib,
            "rss_after_bytes": 219 * mib,
            "sustained_seconds": 60.0,
            "calls": 21_144,
            "errors": 1,
        },
    }
    text = "\n".join(_online_md({"online": {"calls": 2000, "warmup": 100, "memory": memory}}))
    skewless = next(line for line in text.splitlines() if "160 MiB" in line)
    assert "| 170 MiB | throughput runs, then 60 s at 8 clients | 78 | 90,000 | 0 |" in skewless
    feast = next(line for line in text.splitlines() if "210 MiB" in line)
    assert "| 219 MiB | 8 clients | 60 | 21,144 | 1 |" in feast


def test_system_colors_keep_one_colour_per_system_across_panels() -> None:
    samples = {
        "1x10": {"feast_http": [0.1], "skewless_grpc": [0.1], "echo_floor": [0.1]},
        "100x10": {"skewless_grpc": [0.1], "echo_floor": [0.1], "feast_grpc": [0.1]},
    }
    colors = system_colors(samples)
    assert set(colors) == {"feast_http", "skewless_grpc", "echo_floor", "feast_grpc"}
    assert len(set(colors.values())) == 4  # distinct, and one per system whatever the panel
