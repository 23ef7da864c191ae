"""Scheduled incremental materialization at steady state, against a full run.

    .venv/bin/python -m benchmarks.incremental --scale medium --new-rows 100000 --rounds 4

One repo over a copy of the scale's feature rows and a private redis-server. A full run
of `stats` first; then each round adds one file of `--new-rows` rows to the source
(entities drawn from the feature rows, event times past everything before, the file
dated an hour after the previous one, as an hourly drop would be) and runs
`materialize_incremental`. The first incremental run also re-reads the full run's file
(a run re-reads the newest file the previous one saw, see ARRIVAL_OVERLAP_US), so round
1 is reported but left out of the median.

Writes benchmarks/results/<date>-<scale>-incremental.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from tests.integration.redis_server import redis_server

from benchmarks import data as bench_data
from benchmarks import skewless_side

HOUR_S = 3600
DAY_US = 86_400 * 1_000_000


def _source(base: Path, work: Path) -> Path:
    """A source folder holding a copy of the feature rows, dated two days back (the
    hourly files then follow it), next to the other views' files."""
    folder = work / "data" / "features.parquet"  # the name the repo's views read
    folder.mkdir(parents=True)
    dated = time.time() - 48 * HOUR_S
    shutil.copyfile(base, folder / "part-0000.parquet")
    os.utime(folder / "part-0000.parquet", (dated, dated))
    for other in ("online.parquet", "entity.parquet"):  # read by the repo's other views
        (folder.parent / other).symlink_to(base.parent / other)
    return folder


def _new_rows(base: pa.Table, n: int, round_no: int, rng: np.random.Generator) -> pa.Table:
    """`n` rows of randomly drawn feature rows, moved `round_no` x 30 days past the data."""
    picked = base.take(pa.array(rng.choice(base.num_rows, n, replace=False)))
    shift = pa.scalar(round_no * 30 * DAY_US, pa.duration("us"))
    for name in ("event_ts", "created_ts"):
        i = picked.schema.get_field_index(name)
        moved = pc.add(picked.column(name), shift).cast(picked.schema.field(name).type)
        picked = picked.set_column(i, name, moved)
    return picked


def _one(store: Any, incremental: bool) -> dict[str, Any]:
    started = time.perf_counter()
    if incremental:
        (record,) = store.materialize_incremental(skewless_side.MATERIALIZE_END, views=["stats"])
    else:
        (record,) = store.materialize(None, skewless_side.MATERIALIZE_END, views=["stats"])
    return {
        "seconds": time.perf_counter() - started,
        "rows_read": record.rows_read,
        "rows_written_offline": record.rows_written_offline,
        "keys_written_online": record.keys_written_online,
        "online_seconds": record.online_seconds,
        "delta_version": record.delta_version,
    }


def run(scale: str, new_rows: int, rounds: int) -> dict[str, Any]:
    base_folder = bench_data.generate(scale)
    base = pq.read_table(base_folder / "features.parquet")
    rng = np.random.default_rng(11)
    runs: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="skewless-incremental-") as tmp:
        work = Path(tmp)
        folder = _source(base_folder / "features.parquet", work)
        with redis_server(work / "redis") as url:
            repo = skewless_side.make_repo(folder.parent, work, online_url=url)
            store = skewless_side.open_store(repo)
            full = _one(store, incremental=False)
            print("full", full, flush=True)
            for r in range(1, rounds + 1):
                path = folder / f"part-{r:04d}.parquet"
                pq.write_table(_new_rows(base, new_rows, r, rng), path)
                dated = time.time() - (48 - r) * HOUR_S
                os.utime(path, (dated, dated))
                runs.append({"round": r, **_one(store, incremental=True)})
                print("incremental", runs[-1], flush=True)
    steady = statistics.median(x["seconds"] for x in runs[1:]) if rounds > 1 else None
    return {
        "date": datetime.now(UTC).date().isoformat(),
        "scale": bench_data.describe(scale),
        "new_rows_per_round": new_rows,
        "rounds": rounds,
        "full_run": full,
        "incremental_runs": runs,
        "steady_median_s": steady,
    }


def report(result: dict[str, Any]) -> str:
    scale = result["scale"]
    lines = [
        f"# Incremental materialization at steady state: {scale['scale']} scale, {result['date']}",
        "",
        "Reproduce: `.venv/bin/python -m benchmarks.incremental --scale "
        f"{scale['scale']} --new-rows {result['new_rows_per_round']} --rounds "
        f"{result['rounds']}` (see the module's docstring).",
        "",
        f"`stats` over {scale['feature_rows']:,} feature rows of {scale['entities']:,} "
        f"entities (Delta and Redis), then one file of {result['new_rows_per_round']:,} "
        "new rows per round, each an hour after the last.",
        "",
        "| run | seconds | rows read | rows written to Delta | keys written to Redis "
        "| online phase s |",
        "|---|---|---|---|---|---|",
    ]
    for label, x in [("full", result["full_run"])] + [
        (f"incremental {x['round']}", x) for x in result["incremental_runs"]
    ]:
        lines.append(
            f"| {label} | {x['seconds']:.2f} | {x['rows_read']:,} | "
            f"{x['rows_written_offline']:,} | {x['keys_written_online']:,} | "
            f"{x['online_seconds']:.2f} |"
        )
    steady = result["steady_median_s"]
    if steady is not None:
        lines += ["", f"Median of incremental rounds 2 to {result['rounds']}: {steady:.2f} s."]
    lines += [
        "",
        "The full run is the process's first Spark work (a cold JVM); the incremental "
        "rounds follow it in the same process. A scheduled job in a fresh process also "
        "pays the JVM's warm-up (benchmarks/README.md, where materialization's time goes).",
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", choices=sorted(bench_data.SCALES), default="small")
    parser.add_argument("--new-rows", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=4)
    args = parser.parse_args()
    result = run(args.scale, args.new_rows, args.rounds)
    for x in result["incremental_runs"][1:]:
        if x["rows_written_offline"] > args.new_rows or x["rows_written_offline"] == 0:
            raise SystemExit(f"round {x['round']} wrote {x['rows_written_offline']} rows")
    stem = bench_data.RESULTS / f"{result['date']}-{args.scale}-incremental"
    stem.with_suffix(".json").write_text(json.dumps(result, indent=2) + "\n")
    stem.with_suffix(".md").write_text(report(result))
    print(report(result))


if __name__ == "__main__":
    main()
