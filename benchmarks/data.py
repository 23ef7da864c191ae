"""Deterministic benchmark data, shared by every system in the suite.

Scales: tiny = 1k entities, 100k feature rows, 10k entity rows; small = 10k, 1M, 100k;
medium = 100k, 10M, 1M. Files under benchmarks/data/<scale>/ (seed 7):

- features.parquet: entity_id (int64), event_ts, created_ts (timestamp[us, UTC]) and 10
  features of mixed types (int64, int32, float64, float32, bool, string) with 2-5% nulls
  each; 5% of rows repeat an earlier row's (entity_id, event_ts) with a later created_ts
  (a correction, which must win). Read through the `stats` view (ttl 7 days).
- entity.parquet: entity_id, event_timestamp, label. 2% of ids are never seen in the
  features and times run 3 days past the data, so ttl expiry and misses both occur.
- online.parquet: two rows per entity (the later one wins) with the same 10 features
  plus 50 numeric features w00..w49 (even: float64, odd: int64, 2% nulls), read through
  the ttl-less `online10` and `online50` views for the online lookups (the feature rows
  are months old by the time anyone runs the benchmark, so a ttl would expire them all).
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
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
WIDE_FEATURES = [f"w{i:02d}" for i in range(50)]
# Bump when the generated files change, so stale data folders are rebuilt.
FORMAT = 2


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


def _mixed_features(
    rng: np.random.Generator, n: int, shares: tuple[float, float]
) -> dict[str, pa.Array]:
    hi, lo = shares

    def col(values: np.ndarray, typ: pa.DataType, null_share: float) -> pa.Array:
        return pa.array(values, type=typ, mask=rng.random(n) < null_share)

    words = np.array(["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta"])
    return {
        "f_int": col(rng.integers(0, 1_000_000, n), pa.int64(), hi),
        "f_int32": col(rng.integers(0, 1000, n).astype(np.int32), pa.int32(), hi),
        "f_float": col(rng.normal(0, 1, n), pa.float64(), hi),
        "f_float32": col(rng.random(n).astype(np.float32), pa.float32(), hi),
        "f_bool": col(rng.random(n) < 0.5, pa.bool_(), hi),
        "f_str": col(words[rng.integers(0, len(words), n)], pa.string(), hi),
        "f_rate": col(rng.random(n), pa.float64(), lo),
        "f_count": col(rng.integers(0, 100, n), pa.int64(), lo),
        "f_score": col(rng.normal(50, 10, n), pa.float64(), lo),
        "f_flag": col(rng.random(n) < 0.1, pa.bool_(), lo),
    }


def _ts(values: np.ndarray) -> pa.Array:
    return pa.array(values, pa.timestamp("us", tz="UTC"))


def _features(scale: Scale, rng: np.random.Generator) -> pa.Table:
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
    columns = {
        "entity_id": pa.array(ids, pa.int64()),
        "event_ts": _ts(ts),
        "created_ts": _ts(created),
    }
    return pa.table({**columns, **_mixed_features(rng, n, (0.05, 0.02))})


def _entity(scale: Scale, rng: np.random.Generator) -> pa.Table:
    m = scale.entity_rows
    span_us = (scale.days + 3) * 86_400 * 1_000_000
    t0 = int(ANCHOR.timestamp() * 1_000_000)
    e_ids = rng.integers(0, int(scale.entities * 1.02), m, dtype=np.int64)
    e_ts = t0 + rng.integers(0, span_us, m, dtype=np.int64)
    return pa.table(
        {
            "entity_id": pa.array(e_ids, pa.int64()),
            "event_timestamp": _ts(e_ts),
            "label": pa.array(rng.integers(0, 2, m), pa.int64()),
        }
    )


def _online(scale: Scale, rng: np.random.Generator) -> pa.Table:
    n = scale.entities * 2
    t0 = int(ANCHOR.timestamp() * 1_000_000)
    ids = np.tile(np.arange(scale.entities, dtype=np.int64), 2)
    ts = t0 + np.repeat(np.array([0, 86_400], dtype=np.int64), scale.entities) * 1_000_000
    columns: dict[str, pa.Array] = {
        "entity_id": pa.array(ids, pa.int64()),
        "event_ts": _ts(ts),
        "created_ts": _ts(ts),
        **_mixed_features(rng, n, (0.02, 0.02)),
    }
    for i, name in enumerate(WIDE_FEATURES):
        mask = rng.random(n) < 0.02
        if i % 2:
            columns[name] = pa.array(rng.integers(0, 1_000_000, n), pa.int64(), mask=mask)
        else:
            columns[name] = pa.array(rng.normal(0, 1, n), pa.float64(), mask=mask)
    return pa.table(columns)


def generate(scale_name: str, seed: int = 7) -> Path:
    """The scale's data folder, generated once (deterministic for a seed)."""
    scale = SCALES[scale_name]
    folder = DATA / scale_name
    done = folder / "done.json"
    if done.exists() and json.loads(done.read_text()).get("format") == FORMAT:
        return folder
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    pq.write_table(_features(scale, rng), folder / "features.parquet", row_group_size=1_000_000)
    pq.write_table(_entity(scale, rng), folder / "entity.parquet")
    pq.write_table(_online(scale, rng), folder / "online.parquet")
    meta = describe(scale_name)
    done.write_text(json.dumps({**meta, "format": FORMAT}))
    return folder


def describe(scale_name: str) -> dict[str, Any]:
    scale = SCALES[scale_name]
    return {
        "scale": scale_name,
        "entities": scale.entities,
        "feature_rows": scale.feature_rows,
        "entity_rows": scale.entity_rows,
        "online_rows": scale.entities * 2,
        "features": len(FEATURES),
        "wide_features": len(WIDE_FEATURES),
        "ttl_days": TTL.days,
        "seed": 7,
    }
