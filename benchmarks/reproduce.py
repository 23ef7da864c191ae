"""The cost of reproducibility: building a training set, its manifest, saving it, and
reproducing it, in one process on the same data.

    .venv/bin/python -m benchmarks.reproduce --scale small --runs 3

One repo over the scale's data (benchmarks/data.py: `stats`, 10 features of every type,
the entity rows of the historical benchmark). Each run, in turns:
- build: get_historical_features(...).to_arrow(), the training set as a user gets it,
  pinning included (its files hashed: the process's cache of hashes is emptied first);
- manifest: the job's manifest (one more pass over the result for its digests);
- save: save_training_set (the rows written as a Delta table, digested from it);
- reproduce: reproduce(name): pinned inputs checked (files hashed again), the set rebuilt
  from the saved entity rows and compared with its digest.
The report gives each step's median and reproduce's time as a multiple of build's,
measured in the same run.

Writes benchmarks/results/<date>-<scale>-reproduce.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchmarks import data as bench_data
from benchmarks import skewless_side
from benchmarks.data import FEATURES
from skewless.batch import pins

RESULTS = Path(__file__).parent / "results"


def _timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    started = time.perf_counter()
    value = fn()
    return value, time.perf_counter() - started


def run(scale: str, runs: int) -> dict[str, Any]:
    data = bench_data.generate(scale)
    steps: dict[str, list[float]] = {"build": [], "manifest": [], "save": [], "reproduce": []}
    identical: list[bool] = []
    with tempfile.TemporaryDirectory(prefix="skewless-reproduce-") as tmp:
        work = Path(tmp)
        # No step reads or writes the online store: the URL is never connected to.
        repo = skewless_side.make_repo(data, work, online_url="redis://127.0.0.1:9")
        store = skewless_side.open_store(repo)
        entity = skewless_side.entity_table(data).to_pandas()
        refs = [f"stats:{f}" for f in FEATURES]
        store.get_historical_features(entity, refs).to_arrow()  # warm-up: JVM, caches
        rows = 0
        for i in range(runs):
            pins.forget_hashes()  # each build hashes the source files, as a first one does
            job, pinned = _timed(lambda: store.get_historical_features(entity, refs))
            table, seconds = _timed(job.to_arrow)
            seconds += pinned
            rows = table.num_rows
            steps["build"].append(seconds)
            _, seconds = _timed(lambda job=job: job.manifest)  # type: ignore[misc]
            steps["manifest"].append(seconds)
            _, seconds = _timed(lambda job=job, i=i: store.save_training_set(f"run_{i}", job))  # type: ignore[misc]
            steps["save"].append(seconds)
            report, seconds = _timed(lambda i=i: store.reproduce(f"run_{i}"))  # type: ignore[misc]
            steps["reproduce"].append(seconds)
            identical.append(report.identical)
            print(i, {k: round(v[-1], 2) for k, v in steps.items()}, report.outcome, flush=True)
        source = data / "features.parquet"
        files = sum(p.stat().st_size for p in [source, *source.rglob("*")] if p.is_file())
    medians = {k: statistics.median(v) for k, v in steps.items()}
    return {
        "date": datetime.now(UTC).date().isoformat(),
        "scale": bench_data.describe(scale),
        "runs": runs,
        "training_set_rows": rows,
        "source_bytes_hashed": files,
        "seconds": steps,
        "median_s": medians,
        "reproduce_over_build": medians["reproduce"] / medians["build"],
        "all_identical": all(identical),
    }


def report(result: dict[str, Any]) -> str:
    scale = result["scale"]
    m = result["median_s"]
    lines = [
        f"# Reproducing a training set: {scale['scale']} scale, {result['date']}",
        "",
        f"Reproduce: `.venv/bin/python -m benchmarks.reproduce --scale {scale['scale']} "
        f"--runs {result['runs']}` (see the module's docstring).",
        "",
        f"A training set of {result['training_set_rows']:,} entity rows x 10 features over "
        f"{scale['feature_rows']:,} feature rows ({result['source_bytes_hashed'] / 1e6:.1f} MB "
        "of source files, hashed by each build and again by each reproduce); Spark local[2].",
        "",
        "| step | median s | runs (s) |",
        "|---|---|---|",
    ]
    for step, values in result["seconds"].items():
        runs = ", ".join(f"{v:.2f}" for v in values)
        lines.append(f"| {step} | {m[step]:.2f} | {runs} |")
    lines += [
        "",
        f"reproduce / build: **{result['reproduce_over_build']:.2f}x** (medians of the same "
        "run). Every reproduce reported identical: "
        f"{'yes' if result['all_identical'] else 'NO'}.",
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", default="small", choices=sorted(bench_data.SCALES))
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    result = run(args.scale, args.runs)
    RESULTS.mkdir(exist_ok=True)
    stem = RESULTS / f"{result['date']}-{args.scale}-reproduce"
    stem.with_suffix(".json").write_text(json.dumps(result, indent=2) + "\n")
    stem.with_suffix(".md").write_text(report(result))
    print(report(result))


if __name__ == "__main__":
    main()
