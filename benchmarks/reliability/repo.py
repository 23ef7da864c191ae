"""The feature repo every reliability scenario builds in a folder of its own.

Two views over deterministic Parquet data: `stats` (one Int64 key, a value of every
type, corrections with a later created time) and `zones` (a composite String + Int64
key), and a feature service over both. No ttl, so an answer never changes with the
clock and a scenario can compare every answer with a reference byte for byte.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

PROJECT: Final = "reliability"
START: Final = "2000-01-01"  # the materialized interval holds every row of the data
END: Final = "2026-01-01"
START_TIME: Final = datetime(2000, 1, 1, tzinfo=UTC)
END_TIME: Final = datetime(2026, 1, 1, tzinfo=UTC)
_BASE = datetime(2025, 6, 1, tzinfo=UTC)

DEFINITIONS: Final = '''\
"""The reliability suite's definitions."""

from skewless import *

driver = Entity("driver", join_keys=["driver_id"])
zone = Entity("zone", join_keys=["city", "zone_id"])

stats = FeatureView(
    "stats",
    entities=[driver],
    schema=[
        Field("driver_id", Int64),
        Field("rating", Float64),
        Field("trips", Int64),
        Field("small", Int32),
        Field("ratio", Float32),
        Field("active", Bool),
        Field("name", String),
        Field("tags", Array(String)),
        Field("blob", Bytes),
        Field("seen", UnixTimestamp),
    ],
    source=FileSource(
        "data/stats.parquet", timestamp_field="ts", created_timestamp_column="created"
    ),
    description="DESCRIPTION",
)

zones = FeatureView(
    "zones",
    entities=[zone],
    schema=[
        Field("city", String),
        Field("zone_id", Int64),
        Field("demand", Float64),
        Field("scores", Array(Float32)),
    ],
    source=FileSource("data/zones.parquet", timestamp_field="ts"),
)

svc = FeatureService("svc", features=[stats[["rating", "trips", "name"]], zones[["demand"]]])
'''

STATS_FEATURES: Final = (
    "rating",
    "trips",
    "small",
    "ratio",
    "active",
    "name",
    "tags",
    "blob",
    "seen",
)
STATS_REFS: Final = tuple(f"stats:{f}" for f in STATS_FEATURES)
ZONE_REFS: Final = ("zones:demand", "zones:scores")
CITIES: Final = ("paris", "lyon", "köln", "são paulo", "東京")
SERVICE: Final = "svc"
JOIN_KEYS: Final = ("driver_id", "city", "zone_id")

_TS = pa.timestamp("us", tz="UTC")
_STATS_SCHEMA = pa.schema(
    [
        ("driver_id", pa.int64()),
        ("ts", _TS),
        ("created", _TS),
        ("rating", pa.float64()),
        ("trips", pa.int64()),
        ("small", pa.int32()),
        ("ratio", pa.float32()),
        ("active", pa.bool_()),
        ("name", pa.string()),
        ("tags", pa.list_(pa.string())),
        ("blob", pa.binary()),
        ("seen", _TS),
    ]
)
_ZONES_SCHEMA = pa.schema(
    [
        ("city", pa.string()),
        ("zone_id", pa.int64()),
        ("ts", _TS),
        ("demand", pa.float64()),
        ("scores", pa.list_(pa.float32())),
    ]
)


@dataclass(frozen=True)
class RepoShape:
    """How much data: `drivers` x `rows_per_driver` stats rows (a tenth of them
    corrections at an existing event time), `zones_per_city` zones in each city."""

    drivers: int = 2_000
    rows_per_driver: int = 2
    zones_per_city: int = 20


def _stats_table(shape: RepoShape, rng: np.random.Generator) -> pa.Table:
    n = shape.drivers * shape.rows_per_driver
    driver = np.repeat(np.arange(1, shape.drivers + 1, dtype=np.int64), shape.rows_per_driver)
    hours = np.tile(np.arange(shape.rows_per_driver, dtype=np.int64), shape.drivers)
    corrected = rng.random(n) < 0.1  # the same event time as the row before, created later
    hours = np.where(corrected & (hours > 0), hours - 1, hours)
    ts = np.datetime64(_BASE.replace(tzinfo=None), "us") - hours * np.timedelta64(1, "h")
    created = ts + np.where(corrected, 3_600_000_000, 0).astype("timedelta64[us]")
    nulls = rng.random(n) < 0.05
    words = np.array(["ann", "bo", "çé", "δ", "🚕", ""], dtype=object)
    names: list[Any] = list(words[rng.integers(0, len(words), n)])
    tags: list[Any] = [[str(x) for x in rng.integers(0, 9, int(k))] for k in rng.integers(0, 4, n)]
    blob = rng.integers(0, 256, 4 * n, dtype=np.uint8).tobytes()
    columns: dict[str, Any] = {
        "driver_id": driver,
        "ts": ts,
        "created": created,
        "rating": np.round(rng.random(n) * 5, 3),
        "trips": rng.integers(0, 500, n),
        "small": rng.integers(-1000, 1000, n).astype(np.int32),
        "ratio": rng.random(n).astype(np.float32),
        "active": rng.random(n) < 0.5,
        "name": [None if null else v for null, v in zip(nulls, names, strict=True)],
        "tags": [None if null else v for null, v in zip(nulls, tags, strict=True)],
        "blob": [blob[4 * i : 4 * i + 4] for i in range(n)],
        "seen": ts - np.timedelta64(86_400_000_000, "us"),
    }
    arrays = [pa.array(columns[f.name], type=f.type) for f in _STATS_SCHEMA]
    return pa.Table.from_arrays(arrays, schema=_STATS_SCHEMA)


def _zones_table(shape: RepoShape, rng: np.random.Generator) -> pa.Table:
    rows = [
        {
            "city": city,
            "zone_id": zone,
            "ts": _BASE - timedelta(minutes=int(rng.integers(0, 10_000))),
            "demand": float(rng.random() * 3),
            "scores": None if zone % 7 == 0 else [float(x) for x in rng.random(zone % 4)],
        }
        for city in CITIES
        for zone in range(1, shape.zones_per_city + 1)
    ]
    return pa.Table.from_pylist(rows, schema=_ZONES_SCHEMA)


def write_config(
    repo: Path,
    redis_url: str,
    *,
    registry: Path | None = None,
    limits: dict[str, int] | None = None,
) -> None:
    """feature_store.yaml: Spark on two cores with a small driver, Redis at `redis_url`
    (servers take theirs from SKEWLESS_ONLINE_STORE_URL), the registry in the repo or at
    `registry`, and `limits` as the `serving:` section when given."""
    lines = [
        f"project: {PROJECT}",
        f"registry: '{registry or 'data/registry.db'}'",
        f"online_store: {{type: redis, url: '{redis_url}'}}",
        "spark:",
        "  master: local[2]",
        "  conf:",
        "    spark.sql.shuffle.partitions: 2",
        "    spark.default.parallelism: 2",
        "    spark.driver.memory: 1g",
        "    spark.ui.enabled: false",
        "    spark.ui.showConsoleProgress: false",
        "    spark.databricks.delta.snapshotPartitions: 2",
    ]
    if limits:
        lines.append("serving:")
        lines.extend(f"  {key}: {value}" for key, value in limits.items())
    (repo / "feature_store.yaml").write_text("\n".join(lines) + "\n")


def build_repo(
    repo: Path,
    redis_url: str,
    shape: RepoShape = RepoShape(),
    *,
    seed: int = 7,
    description: str = "the reliability suite's driver statistics",
) -> Path:
    """A repo at `repo` with its data; nothing applied."""
    (repo / "data").mkdir(parents=True, exist_ok=True)
    write_config(repo, redis_url)
    (repo / "definitions.py").write_text(DEFINITIONS.replace("DESCRIPTION", description))
    rng = np.random.default_rng(seed)
    pq.write_table(_stats_table(shape, rng), repo / "data" / "stats.parquet")
    pq.write_table(_zones_table(shape, rng), repo / "data" / "zones.parquet")
    return repo


def copy_repo(source: Path, target: Path) -> Path:
    """A copy of a built repo's definitions, config and source data, without its
    registry, tables or anything else it has made."""
    (target / "data").mkdir(parents=True, exist_ok=True)
    for name in ("feature_store.yaml", "definitions.py"):
        shutil.copy2(source / name, target / name)
    for name in ("stats.parquet", "zones.parquet"):
        shutil.copy2(source / "data" / name, target / "data" / name)
    return target


def driver_rows(ids: list[int]) -> list[dict[str, Any]]:
    return [{"driver_id": i} for i in ids]


def zone_rows(count: int, zones_per_city: int) -> list[dict[str, Any]]:
    """`count` zone rows cycling over the cities, one in five unknown."""
    return [
        {"city": CITIES[i % len(CITIES)], "zone_id": 1 + i % (zones_per_city + zones_per_city // 4)}
        for i in range(count)
    ]
