"""Benchmark: materialization into Delta and Redis, with a raw redis-py pipeline of the
same number of keys and value sizes as the same-run floor.

    .venv/bin/python -m benchmarks.bench_materialize --scale small    # 10k entities, 1M rows
    .venv/bin/python -m benchmarks.bench_materialize --scale medium   # 100k entities, 10M rows

Uses the historical benchmark's deterministic data (benchmarks/data/<scale>/, generated
if missing) and a private redis-server on a free loopback port (the tests' helper).
Reports entity rows/s into Redis for the whole run (read, dedupe, Delta MERGE, reduce,
write) and for the online phase alone; writes
benchmarks/results/<date>-materialize-<scale>.json.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import redis
from tests.integration.redis_server import redis_server

from benchmarks.bench_historical import DATA, RESULTS, SCALES, generate, machine, make_repo


def raw_pipeline_floor(url: str, keys: int, value_size: int, batch: int = 1000) -> float:
    """Keys/s for plain pipelined SETs from one client (no ordering check)."""
    client = redis.Redis.from_url(url)
    client.flushdb()
    value = b"x" * value_size
    started = time.perf_counter()
    pipe = client.pipeline(transaction=False)
    for i in range(keys):
        pipe.set(f"floor|{i}".encode(), value)
        if (i + 1) % batch == 0:
            pipe.execute()
    pipe.execute()
    elapsed = time.perf_counter() - started
    client.flushdb()
    return keys / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scale", choices=sorted(SCALES), default="small")
    args = parser.parse_args()
    folder = DATA / args.scale
    meta = generate(SCALES[args.scale], folder)
    with (
        tempfile.TemporaryDirectory(prefix="bench-redis-") as workdir,
        redis_server(Path(workdir)) as url,
    ):
        from skewless import FeatureStore  # noqa: PLC0415

        shutil.rmtree(folder / "offline", ignore_errors=True)
        repo = make_repo(folder, online_url=url, offline=folder / "offline")
        store = FeatureStore(repo)
        store.apply()
        store.spark  # noqa: B018 - start the JVM outside the timings
        runs = {}
        for label in ("first", "rerun"):
            (record,) = store.materialize(None, datetime(2027, 1, 1, tzinfo=UTC))
            runs[label] = record
            print(label, record, flush=True)
        client = redis.Redis.from_url(url)
        sample = client.get(next(client.scan_iter(match=b"sk1|*", count=1000)))
        value_size = len(sample or b"")
        keys = runs["first"].keys_offered_online
        floor = raw_pipeline_floor(url, keys, value_size)

    first = runs["first"]
    report = {
        "benchmark": "materialize",
        "scale": args.scale,
        "date": datetime.now(UTC).strftime("%Y-%m-%d"),
        "data": meta,
        "value_bytes": value_size,
        "first_run": {
            "rows_read": first.rows_read,
            "rows_written_offline": first.rows_written_offline,
            "keys_written_online": first.keys_written_online,
            "seconds": first.seconds,
            "online_seconds": first.online_seconds,
            "entity_rows_per_s_whole_run": first.keys_written_online / first.seconds,
            "entity_rows_per_s_online_phase": first.keys_written_online / first.online_seconds,
        },
        "rerun": {
            "rows_written_offline": runs["rerun"].rows_written_offline,
            "keys_written_online": runs["rerun"].keys_written_online,
            "seconds": runs["rerun"].seconds,
        },
        "floor_raw_pipeline_keys_per_s": floor,
        "ratio_online_phase_over_floor": (first.keys_written_online / first.online_seconds) / floor,
        "machine": machine(),
        "command": f".venv/bin/python -m benchmarks.bench_materialize --scale {args.scale}",
    }
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"{report['date']}-materialize-{args.scale}.json"
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
