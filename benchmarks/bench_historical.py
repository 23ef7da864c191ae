"""Benchmark: get_historical_features on Spark local[2], with DuckDB's ASOF JOIN as the
floor, on the same deterministic data in the same run.

    .venv/bin/python -m benchmarks.bench_historical --scale small
    .venv/bin/python -m benchmarks.bench_historical --scale medium

Scales: small = 10k entities, 1M feature rows, 100k entity rows; medium = 100k, 10M, 1M.
10 features of mixed types with nulls; 5% of feature rows repeat an (entity, event time)
key with a later created time (a correction, which must win). The ttl is 7 days.

Each system's result is compared row by row with the DuckDB reference; the figures and
the count of differing rows go to benchmarks/results/<date>-historical-<scale>.json.
Wall-clock figures are for orientation: only same-run ratios are comparable.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import textwrap
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

HERE = Path(__file__).resolve().parent
DATA = HERE / "data"
RESULTS = HERE / "results"
ANCHOR = datetime(2026, 1, 1, tzinfo=UTC)
TTL = timedelta(days=7)
FEATURES = [
    "f_int",
    "f_int32",
    "f_float",
    "f_float32",
    "f_bool",
    "f_str",
    "f_rate",
    "f_count",
    "f_score",
    "f_flag",
]


@dataclass(frozen=True)
class Scale:
    entities: int
    feature_rows: int
    entity_rows: int
    days: int = 30


SCALES = {
    "tiny": Scale(1_000, 100_000, 10_000),
    "small": Scale(10_000, 1_000_000, 100_000),
    "medium": Scale(100_000, 10_000_000, 1_000_000),
}


def _nulls(rng: np.random.Generator, n: int, share: float) -> np.ndarray:
    return rng.random(n) < share


def generate(scale: Scale, folder: Path, seed: int = 7) -> dict[str, Any]:
    """Deterministic feature and entity tables as parquet (microsecond UTC timestamps)."""
    if (folder / "done.json").exists():
        meta: dict[str, Any] = json.loads((folder / "done.json").read_text())
        return meta
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    n = scale.feature_rows
    span_us = scale.days * 86_400 * 1_000_000
    t0 = int(ANCHOR.timestamp() * 1_000_000)
    ids = rng.integers(0, scale.entities, n, dtype=np.int64)
    ts = t0 + rng.integers(0, span_us, n, dtype=np.int64) // 1_000_000 * 1_000_000
    created = ts + rng.integers(0, 600, n, dtype=np.int64) * 1_000_000
    # Corrections: 5% of rows repeat an earlier row's (id, ts) with a later created time.
    dup = rng.choice(n, n // 20, replace=False)
    src = rng.choice(n, n // 20, replace=True)
    ids[dup] = ids[src]
    ts[dup] = ts[src]
    created[dup] = created[src] + rng.integers(1, 3600, n // 20) * 1_000_000

    def col(values: np.ndarray, typ: pa.DataType, null_share: float) -> pa.Array:
        return pa.array(values, type=typ, mask=_nulls(rng, n, null_share))

    words = np.array(["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta"])
    table = pa.table(
        {
            "entity_id": pa.array(ids, pa.int64()),
            "event_ts": pa.array(ts, pa.timestamp("us", tz="UTC")),
            "created_ts": pa.array(created, pa.timestamp("us", tz="UTC")),
            "f_int": col(rng.integers(0, 1_000_000, n), pa.int64(), 0.05),
            "f_int32": col(rng.integers(0, 1000, n).astype(np.int32), pa.int32(), 0.05),
            "f_float": col(rng.normal(0, 1, n), pa.float64(), 0.05),
            "f_float32": col(rng.random(n).astype(np.float32), pa.float32(), 0.05),
            "f_bool": col(rng.random(n) < 0.5, pa.bool_(), 0.05),
            "f_str": col(words[rng.integers(0, len(words), n)], pa.string(), 0.05),
            "f_rate": col(rng.random(n), pa.float64(), 0.02),
            "f_count": col(rng.integers(0, 100, n), pa.int64(), 0.02),
            "f_score": col(rng.normal(50, 10, n), pa.float64(), 0.02),
            "f_flag": col(rng.random(n) < 0.1, pa.bool_(), 0.02),
        }
    )
    pq.write_table(table, folder / "features.parquet", row_group_size=1_000_000)
    m = scale.entity_rows
    # Entity ids include 2% never seen; times run 3 days past the data, so ttl expiry and
    # "everything in the past" both occur.
    e_ids = rng.integers(0, int(scale.entities * 1.02), m, dtype=np.int64)
    e_ts = t0 + rng.integers(0, span_us + 3 * 86_400 * 1_000_000, m, dtype=np.int64)
    entity = pa.table(
        {
            "entity_id": pa.array(e_ids, pa.int64()),
            "event_timestamp": pa.array(e_ts, pa.timestamp("us", tz="UTC")),
            "label": pa.array(rng.integers(0, 2, m), pa.int64()),
        }
    )
    pq.write_table(entity, folder / "entity.parquet")
    meta = {"feature_rows": n, "entity_rows": m, "entities": scale.entities}
    (folder / "done.json").write_text(json.dumps(meta))
    return meta


REPO_DEFS = """
from datetime import timedelta
from skewless import *

entity = Entity("entity", join_keys=["entity_id"])
stats = FeatureView(
    "stats",
    entities=[entity],
    schema=[
        Field("entity_id", Int64),
        Field("f_int", Int64), Field("f_int32", Int32), Field("f_float", Float64),
        Field("f_float32", Float32), Field("f_bool", Bool), Field("f_str", String),
        Field("f_rate", Float64), Field("f_count", Int64), Field("f_score", Float64),
        Field("f_flag", Bool),
    ],
    source=FileSource("{path}", timestamp_field="event_ts", created_timestamp_column="created_ts"),
    ttl=timedelta(days=7),
)
"""


def make_repo(folder: Path, *, online_url: str | None = None, offline: Path | None = None) -> Path:
    """The benchmark's feature repo over `folder`'s data (online and offline stores
    optional: the historical benchmark needs neither)."""
    repo = folder / "repo"
    shutil.rmtree(repo, ignore_errors=True)
    repo.mkdir()
    (repo / "feature_store.yaml").write_text(
        textwrap.dedent(
            f"""\
            project: bench
            registry: {folder}/registry.db
            spark:
              master: local[2]
              conf_file: {HERE.parent}/spark-conf/spark-defaults.conf
              conf:
                spark.driver.memory: 12g
                spark.sql.shuffle.partitions: 16
            """
        )
    )
    if online_url:
        with (repo / "feature_store.yaml").open("a") as f:
            f.write(f"online_store:\n  type: redis\n  url: {online_url}\n")
    if offline:
        with (repo / "feature_store.yaml").open("a") as f:
            f.write(f"offline_store:\n  type: delta\n  path: {offline}\n")
    (repo / "defs.py").write_text(REPO_DEFS.format(path=folder / "features.parquet"))
    return repo


def run_skewless(folder: Path) -> tuple[pa.Table, dict[str, float]]:
    from skewless import FeatureStore  # noqa: PLC0415 - import after data generation

    repo = make_repo(folder)
    store = FeatureStore(repo)
    store.apply()
    t = time.perf_counter()
    spark = store.spark
    startup = time.perf_counter() - t
    entity = pq.read_table(folder / "entity.parquet").to_pandas()
    refs = [f"stats:{f}" for f in FEATURES]
    timings = {"spark_startup_s": startup}
    result = None
    for attempt in ("cold", "warm"):
        t = time.perf_counter()
        result = store.get_historical_features(entity, refs).to_arrow()
        timings[f"{attempt}_s"] = time.perf_counter() - t
    # The scalable path: the training set written as Delta, never collected to the driver.
    t = time.perf_counter()
    sdf = spark.read.parquet(str(folder / "entity.parquet"))
    store.get_historical_features(sdf, refs).to_delta(str(folder / "out_delta"), mode="overwrite")
    timings["spark_df_to_delta_s"] = time.perf_counter() - t
    assert result is not None
    return result, timings


def run_duckdb(folder: Path) -> tuple[pa.Table, float]:
    import duckdb  # noqa: PLC0415 - a benchmark-only dependency

    con = duckdb.connect()
    con.execute("SET threads TO 2")
    con.execute("SET TimeZone = 'UTC'")
    cols = ", ".join(f"f.{f}" for f in FEATURES)
    # skewless breaks (event, created) ties on the feature values, null lowest, NaN highest.
    order = ", ".join(f"{f} DESC NULLS LAST" for f in FEATURES)
    query = f"""
        WITH latest AS (
            SELECT * FROM read_parquet('{folder}/features.parquet')
            QUALIFY row_number() OVER (
                PARTITION BY entity_id, event_ts
                ORDER BY created_ts DESC NULLS LAST, {order}
            ) = 1
        ), entity AS (
            SELECT *, row_number() OVER () AS rid FROM read_parquet('{folder}/entity.parquet')
        )
        SELECT e.entity_id, e.event_timestamp, e.label,
               CASE WHEN f.event_ts >= e.event_timestamp - INTERVAL 7 DAY THEN 1 END AS hit,
               {cols}
        FROM entity e ASOF LEFT JOIN latest f
          ON e.entity_id = f.entity_id AND e.event_timestamp >= f.event_ts
        ORDER BY e.rid
    """
    t = time.perf_counter()
    table = con.sql(query).to_arrow_table()
    elapsed = time.perf_counter() - t
    if isinstance(table, pa.RecordBatchReader):
        table = table.read_all()
    # ttl: a match older than t - ttl is no match.
    hit = pc.is_valid(table.column("hit"))
    for f in FEATURES:
        idx = table.schema.get_field_index(f)
        table = table.set_column(
            idx,
            f,
            pc.if_else(hit, table.column(f), pa.nulls(len(table), table.schema.field(f).type)),
        )
    return table.drop_columns(["hit"]), elapsed


def compare(got: pa.Table, ref: pa.Table) -> dict[str, int]:
    """Rows missing and per-row value differences (NaN == NaN; null != NaN)."""
    diffs = {"rows_expected": ref.num_rows, "rows_got": got.num_rows, "rows_differing": 0}
    if got.num_rows != ref.num_rows:
        diffs["rows_differing"] = abs(got.num_rows - ref.num_rows)
        return diffs
    differing = np.zeros(ref.num_rows, dtype=bool)
    for f in ["entity_id", "label", *FEATURES]:
        a, b = got.column(f).combine_chunks(), ref.column(f).combine_chunks()
        if a.type != b.type:
            b = b.cast(a.type)
        both_null = pc.and_(pc.is_null(a), pc.is_null(b))
        eq = pc.fill_null(pc.equal(a, b), False)
        if pa.types.is_floating(a.type):
            eq = pc.or_(eq, pc.fill_null(pc.and_(pc.is_nan(a), pc.is_nan(b)), False))
        same = pc.or_(eq, both_null).to_numpy(zero_copy_only=False)
        differing |= ~same
    diffs["rows_differing"] = int(differing.sum())
    return diffs


def machine() -> dict[str, Any]:
    import pyspark  # noqa: PLC0415

    java = subprocess.run(["java", "-version"], capture_output=True, text=True, check=False)
    return {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "pyspark": pyspark.__version__,
        "java": (java.stderr.splitlines() or ["?"])[0],
        "platform": platform.platform(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scale", choices=sorted(SCALES), default="small")
    args = parser.parse_args()
    scale = SCALES[args.scale]
    folder = DATA / args.scale
    t = time.perf_counter()
    meta = generate(scale, folder)
    gen_s = time.perf_counter() - t
    print(f"data: {meta} ({gen_s:.1f} s)", flush=True)

    ref, duck_s = run_duckdb(folder)
    print(f"duckdb ASOF JOIN: {duck_s:.2f} s", flush=True)
    got, timings = run_skewless(folder)
    print(f"skewless: {timings}", flush=True)
    correctness = compare(got, ref)
    print(f"correctness vs DuckDB: {correctness}", flush=True)

    report = {
        "benchmark": "historical",
        "scale": args.scale,
        "date": datetime.now(UTC).strftime("%Y-%m-%d"),
        "data": meta,
        "ttl_days": TTL.days,
        "skewless": timings,
        "duckdb_asof_s": duck_s,
        "ratio_skewless_warm_over_duckdb": timings["warm_s"] / duck_s,
        "correctness_vs_duckdb": correctness,
        "machine": machine(),
        "command": f".venv/bin/python -m benchmarks.bench_historical --scale {args.scale}",
    }
    RESULTS.mkdir(exist_ok=True)
    stem = RESULTS / f"{report['date']}-historical-{args.scale}"
    stem.with_suffix(".json").write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
