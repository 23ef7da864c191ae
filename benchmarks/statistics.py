"""Feature statistics inside a materialization: what they add to a run of `stats`.

    .venv/bin/python -m benchmarks.statistics --scale small    # or --scale medium

`stats` holds the scale's 10 mixed features (benchmarks/data.py): 7 numeric (f_int,
f_int32, f_float, f_float32, f_rate, f_count, f_score), 3 categorical (f_str, and the
bools f_bool and f_flag), so both kinds of summary are computed. One process, one
SparkSession, one private redis-server. Each repeat builds two repos over copies of the
same feature rows (as benchmarks/incremental.py builds one), identical but for
feature_store.yaml's `statistics: {enabled: ...}` and their project (so their Redis keys
differ), each with a fresh registry and Delta table, and runs in both:

1. *full*: the first run of `stats`, creating its Delta table; statistics over every
   row written, bin edges derived from them;
2. *first incremental*: one file of `--new-rows` new rows lands in each source folder
   (entities drawn from the feature rows, event times past everything before, dated an
   hour after the last file); this first run after a full one also re-reads the full
   run's file (see ARRIVAL_OVERLAP_US); statistics over the rows it commits;
3. *incremental*: one more such file, the steady state: only the new file is read.

The two repos take turns within each kind of run, the first alternating from one repeat
to the next. Before the repeats, a warm-up pass of the same three runs over the first
100k feature rows (not reported) loads the JVM's classes and Spark's generated code, so
the first timed run is not the process's first Spark work.

Where the statistics' time goes: in this process only,
`skewless.batch.materialize.summarize_view_rows` is wrapped to time each call, with the
Spark jobs it ran (Spark's status store, as benchmarks/scheduled.py reads it). Each run
is checked: the statistics-on repo records a summary per committed version, the other
none, and both write the same rows and keys. Nothing asserts on time.

Writes benchmarks/results/<date>-<scale>-statistics.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from unittest import mock

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import redis
from tests.integration.redis_server import redis_server

from benchmarks import data as bench_data
from benchmarks import skewless_side
from benchmarks.incremental import HOUR_S, _new_rows, _one, _source
from benchmarks.scheduled import _jobs_since, _last_job

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

    from skewless import FeatureStore
    from skewless.batch.materialize import StatisticsRequest
    from skewless.definitions import FeatureView
    from skewless.stats.summary import Summary

# medium: one repeat, as two (about 13 minutes each with statistics' cost) would not fit
# in the 25 minutes planned for it on a 2-core machine; --repeats 2 for more
REPEATS = {"tiny": 1, "small": 3, "medium": 1}
NEW_ROWS = {"tiny": 10_000, "small": 100_000, "medium": 1_000_000}
WARMUP_ROWS = 100_000
KINDS = ("full", "first_incremental", "incremental")
KIND_LABELS = {
    "full": "full (creates the Delta table)",
    "first_incremental": "first incremental (also re-reads the full run's file)",
    "incremental": "incremental (steady state)",
}
MODES = {"off": False, "on": True}


class SummaryTimer:
    """Times every call of summarize_view_rows while installed, with its Spark jobs."""

    def __init__(self, store: FeatureStore) -> None:
        self.store = store
        self.calls: list[dict[str, Any]] = []

    @contextmanager
    def installed(self) -> Iterator[None]:
        from skewless.batch import materialize  # noqa: PLC0415 - needs pyspark

        original = materialize.summarize_view_rows

        def timed(
            rows: DataFrame, view: FeatureView, request: StatisticsRequest
        ) -> dict[str, Summary]:
            before = _last_job(self.store)
            started = time.perf_counter()
            result = original(rows, view, request)
            seconds = time.perf_counter() - started
            jobs = _jobs_since(self.store, before)
            self.calls.append(
                {
                    "seconds": seconds,
                    "edges_given": sorted(request.edges),
                    "jobs": jobs,
                    "kinds": {name: type(s).__name__ for name, s in result.items()},
                    "rows": max((s.count for s in result.values()), default=0),
                }
            )
            return result

        with mock.patch.object(materialize, "summarize_view_rows", timed):
            yield


def _repo(
    base_file: Path, work: Path, url: str, project: str, enabled: bool
) -> tuple[FeatureStore, Path]:
    """A store over a copy of `base_file` (benchmarks/incremental.py's source folder)
    under `work`, its project `project`, statistics `enabled` or not; and its folder."""
    folder = _source(base_file, work)
    repo = skewless_side.make_repo(folder.parent, work, online_url=url)
    config = repo / "feature_store.yaml"
    text = config.read_text().replace("project: bench\n", f"project: {project}\n", 1)
    switch = "true" if enabled else "false"
    config.write_text(f"{text}statistics:\n  enabled: {switch}\n")
    return skewless_side.open_store(repo), folder


def _land(table: pa.Table, folders: list[Path], round_no: int) -> None:
    """The same file in every folder, dated `round_no` hours after the copied rows."""
    dated = time.time() - (48 - round_no) * HOUR_S
    for folder in folders:
        path = folder / f"part-{round_no:04d}.parquet"
        pq.write_table(table, path)
        os.utime(path, (dated, dated))


def _timed(store: FeatureStore, timer: SummaryTimer, incremental: bool) -> dict[str, Any]:
    """One run of `stats` (benchmarks/incremental.py's `_one`), with the Spark jobs it
    ran and the summarization calls inside it."""
    timer.calls.clear()
    before = _last_job(store)
    run = _one(store, incremental=incremental)
    run["spark_jobs"] = len(_jobs_since(store, before))
    calls = list(timer.calls)
    run["statistics_calls"] = calls
    run["statistics_s"] = sum(c["seconds"] for c in calls)
    run["statistics_jobs"] = sum(len(c["jobs"]) for c in calls)
    # of statistics_s, the time inside its Spark jobs; the rest is on the driver
    # (planning, generating and compiling code, collecting the rows)
    run["statistics_jobs_s"] = sum(j["seconds"] or 0.0 for c in calls for j in c["jobs"])
    run["statistics_share"] = run["statistics_s"] / run["seconds"]
    return run


def _check(kind: str, runs: dict[str, dict[str, Any]], stores: dict[str, FeatureStore]) -> None:
    """Both repos did the same work; only the statistics-on one summarized and
    recorded it."""
    on, off = runs["on"], runs["off"]
    for field in ("rows_read", "rows_written_offline", "keys_written_online"):
        if on[field] != off[field]:
            raise SystemExit(f"{kind}: {field} {on[field]} (on) != {off[field]} (off)")
    if on["rows_written_offline"] == 0:
        raise SystemExit(f"{kind}: nothing written")
    if len(on["statistics_calls"]) != 1 or off["statistics_calls"]:
        raise SystemExit(
            f"{kind}: {len(on['statistics_calls'])} summaries (on), "
            f"{len(off['statistics_calls'])} (off)"
        )
    if on["statistics_calls"][0]["rows"] != on["rows_written_offline"]:
        raise SystemExit(f"{kind}: summarized {on['statistics_calls'][0]['rows']} rows")
    recorded = {mode: len(stores[mode].registry.statistics("stats")) for mode in MODES}
    expected = KINDS.index(kind) + 1
    if recorded != {"off": 0, "on": expected}:
        raise SystemExit(f"{kind}: statistics recorded {recorded}, expected {expected} (on)")


def _pass(
    base: pa.Table,
    base_file: Path,
    work: Path,
    url: str,
    timer_box: list[SummaryTimer],
    order: list[str],
    new_rows: int,
    label: str,
    rng: np.random.Generator,
) -> list[dict[str, Any]]:
    """Two repos (statistics off and on) over `base_file`, and the three runs in each,
    the repos taking turns in `order`."""
    stores: dict[str, FeatureStore] = {}
    folders: dict[str, Path] = {}
    for mode in order:
        stores[mode], folders[mode] = _repo(
            base_file, work / mode, url, f"stats_{label}_{mode}", MODES[mode]
        )
    if not timer_box:  # the session exists once a store has applied
        timer_box.append(SummaryTimer(stores[order[0]]))
    timer = timer_box[0]
    out: list[dict[str, Any]] = []
    with timer.installed():
        for k, kind in enumerate(KINDS):
            if k:
                _land(_new_rows(base, new_rows, k, rng), list(folders.values()), k)
            runs: dict[str, dict[str, Any]] = {}
            for position, mode in enumerate(order):
                runs[mode] = _timed(stores[mode], timer, incremental=k > 0)
                out.append({"kind": kind, "statistics": mode, "position": position, **runs[mode]})
                print(label, kind, mode, f"{runs[mode]['seconds']:.2f} s", flush=True)
            _check(kind, runs, stores)
    return out


def _summary(runs: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for kind in KINDS:
        of = {m: [r for r in runs if r["kind"] == kind and r["statistics"] == m] for m in MODES}
        off = statistics.median(r["seconds"] for r in of["off"])
        on = statistics.median(r["seconds"] for r in of["on"])
        stats_s = statistics.median(r["statistics_s"] for r in of["on"])
        pairs = [
            a["seconds"] / b["seconds"]
            for a, b in zip(of["on"], of["off"], strict=True)  # the same repeat
        ]
        out[kind] = {
            "off_s": [r["seconds"] for r in of["off"]],
            "on_s": [r["seconds"] for r in of["on"]],
            "off_median_s": off,
            "on_median_s": on,
            "ratio": on / off,
            "difference_s": on - off,
            "ratio_per_repeat": pairs,
            "statistics_s": [r["statistics_s"] for r in of["on"]],
            "statistics_median_s": stats_s,
            "statistics_share": stats_s / on,
            "statistics_jobs": [r["statistics_jobs"] for r in of["on"]],
            "statistics_jobs_median_s": statistics.median(r["statistics_jobs_s"] for r in of["on"]),
            "spark_jobs_on": [r["spark_jobs"] for r in of["on"]],
            "spark_jobs_off": [r["spark_jobs"] for r in of["off"]],
            "rows_read": of["on"][0]["rows_read"],
            "rows_summarized": of["on"][0]["rows_written_offline"],
        }
    return out


def _commit() -> str:
    def git(*args: str) -> str:
        return subprocess.run(
            ["git", *args], capture_output=True, text=True, check=False, cwd=bench_data.HERE
        ).stdout.strip()

    dirty = git("status", "--porcelain", "--untracked-files=no", "--", "../src")
    return git("rev-parse", "--short", "HEAD") + (" (src/ modified)" if dirty else "")


def run(scale: str, repeats: int, new_rows: int) -> dict[str, Any]:
    base_folder = bench_data.generate(scale)
    base_file = base_folder / "features.parquet"
    base = pq.read_table(base_file)
    rng = np.random.default_rng(11)
    timer_box: list[SummaryTimer] = []
    started = time.perf_counter()
    load = [os.getloadavg()[0]]
    runs: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="skewless-statistics-") as tmp:
        work = Path(tmp)
        with redis_server(work / "redis") as url:
            # Warm-up: the same runs over the first rows, in their own folder (beside
            # links to the data's other files, which the repo's other views read).
            warm = work / "warmup-data"
            warm.mkdir()
            warm_base = base.slice(0, WARMUP_ROWS)
            pq.write_table(warm_base, warm / "features.parquet")
            for other in ("online.parquet", "entity.parquet"):
                (warm / other).symlink_to(base_folder / other)
            _pass(
                warm_base,
                warm / "features.parquet",
                work / "warmup",
                url,
                timer_box,
                ["off", "on"],
                min(new_rows, WARMUP_ROWS // 10),
                "warmup",
                rng,
            )
            shutil.rmtree(work / "warmup")
            warmup_s = time.perf_counter() - started
            for r in range(repeats):
                order = ["off", "on"] if r % 2 == 0 else ["on", "off"]
                rows = _pass(
                    base, base_file, work / f"r{r}", url, timer_box, order, new_rows, f"r{r}", rng
                )
                runs += [{"repeat": r + 1, **x} for x in rows]
                shutil.rmtree(work / f"r{r}")
                redis.Redis.from_url(url).flushall()
                load.append(os.getloadavg()[0])
    first_on = next(r for r in runs if r["statistics"] == "on")
    summarized = first_on["statistics_calls"][0]["kinds"]
    return {
        "date": datetime.now(UTC).date().isoformat(),
        "commit": _commit(),
        "scale": bench_data.describe(scale),
        "repeats": repeats,
        "new_rows_per_file": new_rows,
        "features": {
            "numeric": sorted(n for n, k in summarized.items() if k == "NumericSummary"),
            "categorical": sorted(n for n, k in summarized.items() if k == "CategoricalSummary"),
        },
        "machine": {"cpus": os.cpu_count(), "load_average_1m": load},
        "warmup_s": warmup_s,
        "total_s": time.perf_counter() - started,
        "summary": _summary(runs),
        "runs": runs,
    }


def _pct(share: float) -> str:
    return f"{100 * share:.1f}%"


def report(result: dict[str, Any]) -> str:
    scale = result["scale"]
    feats = result["features"]
    lines = [
        f"# Feature statistics inside a materialization: {scale['scale']} scale, {result['date']}",
        "",
        f"Reproduce: `.venv/bin/python -m benchmarks.statistics --scale {scale['scale']}` "
        f"(repeats {result['repeats']}, new rows per file {result['new_rows_per_file']:,}; "
        f"see the module's docstring). Commit {result['commit']}; "
        f"{result['machine']['cpus']} CPUs, 1-minute load average "
        + " / ".join(f"{x:.1f}" for x in result["machine"]["load_average_1m"])
        + f" (start, after each repeat). Whole run {result['total_s']:.0f} s, of which "
        f"warm-up {result['warmup_s']:.0f} s.",
        "",
        f"`stats` over {scale['feature_rows']:,} feature rows of {scale['entities']:,} "
        f"entities, to Delta and Redis. Statistics over {len(feats['numeric'])} numeric "
        f"features ({', '.join(feats['numeric'])}) and {len(feats['categorical'])} "
        f"categorical ({', '.join(feats['categorical'])}). Two repos per repeat, "
        "statistics off and on, each its own fresh Delta table, one SparkSession, one "
        "Redis; medians over the repeats, in seconds of the whole `materialize` call.",
        "",
        "| run | rows read / summarized | off median s | on median s | on / off "
        "| on - off s | statistics s (median) | share of the on run |",
        "|---|---|---|---|---|---|---|---|",
    ]
    summary = result["summary"]
    for kind in KINDS:
        s = summary[kind]
        lines.append(
            f"| {KIND_LABELS[kind]} | {s['rows_read']:,} / {s['rows_summarized']:,} | "
            f"{s['off_median_s']:.2f} | {s['on_median_s']:.2f} | {s['ratio']:.3f}x | "
            f"{s['difference_s']:+.2f} | {s['statistics_median_s']:.2f} | "
            f"{_pct(s['statistics_share'])} |"
        )
    lines += [""]
    for kind in KINDS:
        s = summary[kind]
        lines.append(
            f"- {KIND_LABELS[kind]}: statistics {s['statistics_median_s']:.2f} s of a "
            f"{s['on_median_s']:.2f} s run ({_pct(s['statistics_share'])}); "
            f"{s['statistics_jobs_median_s']:.2f} s of it inside its Spark jobs (per repeat "
            f"{'/'.join(map(str, s['statistics_jobs']))} of the run's "
            f"{'/'.join(map(str, s['spark_jobs_on']))}), the rest on the driver; "
            "on / off per repeat " + ", ".join(f"{x:.3f}x" for x in s["ratio_per_repeat"]) + "."
        )
    lines += [
        "",
        "Every run (position: which of the repeat's two repos ran first):",
        "",
        "| repeat | run | statistics | position | s | rows read | rows to Delta "
        "| keys to Redis | statistics s | Spark jobs (of them statistics) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in result["runs"]:
        stats_s = f"{r['statistics_s']:.2f}" if r["statistics_calls"] else ""
        lines.append(
            f"| {r['repeat']} | {r['kind']} | {r['statistics']} | {r['position'] + 1} | "
            f"{r['seconds']:.2f} | {r['rows_read']:,} | {r['rows_written_offline']:,} | "
            f"{r['keys_written_online']:,} | {stats_s} | {r['spark_jobs']} "
            f"({r['statistics_jobs']}) |"
        )
    lines += [
        "",
        "The summarization's Spark jobs in the first repeat (the full run derives its "
        "histogram edges, so it needs a second pass; later runs bin over the edges it "
        "recorded):",
        "",
        "| run | job | call site | s |",
        "|---|---|---|---|",
    ]
    for r in result["runs"]:
        if r["repeat"] != 1 or not r["statistics_calls"]:
            continue
        for j in r["statistics_calls"][0]["jobs"]:
            sec = "" if j["seconds"] is None else f"{j['seconds']:.2f}"
            lines.append(f"| {r['kind']} | {j['id']} | {j['name']} | {sec} |")
    lines += [
        "",
        "Wall-clock figures on a shared machine are noisy: compare the ratios measured "
        "within this run, not seconds across runs.",
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", choices=sorted(bench_data.SCALES), default="small")
    parser.add_argument("--repeats", type=int, help="per mode (default: small 3, medium 1)")
    parser.add_argument("--new-rows", type=int, help="per file (small 100k, medium 1M)")
    args = parser.parse_args()
    repeats = args.repeats or REPEATS[args.scale]
    new_rows = args.new_rows or NEW_ROWS[args.scale]
    result = run(args.scale, repeats, new_rows)
    stem = bench_data.RESULTS / f"{result['date']}-{args.scale}-statistics"
    stem.with_suffix(".json").write_text(json.dumps(result, indent=2, default=str) + "\n")
    stem.with_suffix(".md").write_text(report(result))
    print(report(result))


if __name__ == "__main__":
    main()
