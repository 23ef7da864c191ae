"""The physical floors the suite compares against, and the historical reference.

- DuckDB's ASOF JOIN (2 threads) for the point-in-time join; its result is also the
  reference every system's training set is compared with, row by row.
- redis-benchmark (pipelined SETs, 1 client) and a raw redis-py pipeline of plain SETs
  for writes into Redis; GET and MGET round trips for reads.
- A bare grpc.aio echo server (benchmarks/loadgen.py) for the gRPC transport.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import redis

from benchmarks import loadgen
from benchmarks.data import FEATURES, TTL


def duckdb_asof(data: Path, entity: pa.Table, warm_runs: int) -> tuple[pa.Table, dict[str, Any]]:
    """The point-in-time join as one ASOF JOIN, after keeping one row per
    (entity, event time): the latest created, then skewless's documented tie-break on the
    feature values (null lowest, NaN highest). A match older than the ttl is no match.
    Timed like skewless: `cold_s` for the first query, `seconds` the best of `warm_runs`
    more (each listed in `warm_runs_s`)."""
    import duckdb  # noqa: PLC0415 - a benchmark-only dependency

    con = duckdb.connect()
    con.execute("SET threads TO 2")
    con.execute("SET TimeZone = 'UTC'")
    con.register("entity_rows", entity)
    cols = ", ".join(f"f.{f}" for f in FEATURES)
    order = ", ".join(f"{f} DESC NULLS LAST" for f in FEATURES)
    query = f"""
        WITH latest AS (
            SELECT * FROM read_parquet('{data}/features.parquet')
            QUALIFY row_number() OVER (
                PARTITION BY entity_id, event_ts
                ORDER BY created_ts DESC NULLS LAST, {order}
            ) = 1
        )
        SELECT e.row_id, e.entity_id, e.event_timestamp, e.label,
               CASE WHEN f.event_ts >= e.event_timestamp - INTERVAL {TTL.days} DAY
                    THEN 1 END AS hit,
               {cols}
        FROM entity_rows e ASOF LEFT JOIN latest f
          ON e.entity_id = f.entity_id AND e.event_timestamp >= f.event_ts
        ORDER BY e.row_id
    """

    def run() -> tuple[pa.Table, float]:
        t = time.perf_counter()
        result = con.sql(query).to_arrow_table()
        elapsed = time.perf_counter() - t
        table = result.read_all() if isinstance(result, pa.RecordBatchReader) else result
        return table, elapsed

    table, cold_s = run()
    warm = [run()[1] for _ in range(warm_runs)]
    timing = {"cold_s": cold_s, "warm_runs_s": warm, "seconds": min(warm, default=cold_s)}
    hit = pc.is_valid(table.column("hit"))
    for f in FEATURES:
        idx = table.schema.get_field_index(f)
        typ = table.schema.field(f).type
        table = table.set_column(
            idx, f, pc.if_else(hit, table.column(f), pa.nulls(len(table), typ))
        )
    return table.drop_columns(["hit"]), timing


# The floors write into their own database of the shared server and empty it afterwards.
FLOOR_DB = 9


def redis_pipeline_writes(port: int, keys: int, value_size: int, batch: int = 1000) -> float:
    """Keys/s for plain pipelined SETs from one redis-py client (no ordering check)."""
    client = redis.Redis(port=port, db=FLOOR_DB)
    value = b"x" * value_size
    started = time.perf_counter()
    pipe = client.pipeline(transaction=False)
    for i in range(keys):
        pipe.set(b"floor|%d" % i, value)
        if (i + 1) % batch == 0:
            pipe.execute()
    pipe.execute()
    elapsed = time.perf_counter() - started
    client.flushdb()
    return keys / elapsed


def redis_benchmark_writes(port: int, value_size: int, requests: int = 500_000) -> dict[str, Any]:
    """redis-benchmark's pipelined SET rate (1 client, pipeline 64), if it is installed."""
    binary = shutil.which("redis-benchmark")
    if binary is None:
        return {"status": "redis-benchmark not installed"}
    command = [binary, "-h", "127.0.0.1", "-p", str(port), "--dbnum", str(FLOOR_DB)]
    command += ["-c", "1", "-P", "64"]
    command += ["-n", str(requests), "-d", str(value_size), "-t", "set", "-r", "100000", "--csv"]
    out = subprocess.run(command, capture_output=True, text=True, check=True, timeout=300)
    # CSV: "test","rps",...; the line after the header holds the SET figures.
    lines = [line for line in out.stdout.splitlines() if line.startswith('"SET"')]
    rps = float(lines[0].split(",")[1].strip('"'))
    redis.Redis(port=port, db=FLOOR_DB).flushdb()
    return {"keys_per_s": rps, "command": " ".join(command[1:])}


def redis_read_calls(port: int, value_size: int) -> dict[str, Any]:
    """Zero-argument callables for a GET of one key and an MGET of 100 keys, values of
    the online values' size (redis-py with hiredis, one connection)."""
    client = redis.Redis(port=port, db=FLOOR_DB)
    names = [b"floor-read|%d" % i for i in range(100)]
    client.mset(dict.fromkeys(names, b"x" * value_size))
    return {
        "get_1": lambda: client.get(names[0]),
        "mget_100": lambda: client.mget(names[:100]),
    }


def start_echo(python: str, port: int) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        [python, str(Path(loadgen.__file__)), "echo-server", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    loadgen.wait_for_port("127.0.0.1", port, 30)
    return proc
