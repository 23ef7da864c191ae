"""`skewless init`: a small, working feature repo to start from."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from skewless.errors import ConfigError

CONFIG = """\
project: {project}
registry: data/registry.db
offline_store:
  type: delta
  path: data/offline
online_store:
  type: redis
  # url: redis://localhost:6379/0   # or set SKEWLESS_ONLINE_STORE_URL
spark:
  master: local[*]
  conf:
    spark.sql.shuffle.partitions: 8
    spark.ui.enabled: false
"""

DEFINITIONS = '''\
"""Definitions of the {project} feature repo."""

from datetime import timedelta

from skewless import Entity, FeatureService, FeatureView, Field, FileSource
from skewless.types import Float64, Int64

driver = Entity("driver", join_keys=["driver_id"], description="A driver")

driver_stats = FeatureView(
    "driver_stats",
    entities=[driver],
    schema=[
        Field("driver_id", Int64),
        Field("conv_rate", Float64),
        Field("trips_today", Int64),
    ],
    source=FileSource(
        "data/driver_stats.parquet",
        timestamp_field="event_timestamp",
        created_timestamp_column="created",
    ),
    ttl=timedelta(days=1),
    description="Hourly driver statistics",
)

driver_model = FeatureService("driver_model", features=[driver_stats])
'''


def _example_data(now: datetime) -> pa.Table:
    rows = []
    for hour in range(48):
        ts = now - timedelta(hours=hour)
        for driver_id in (1001, 1002, 1003):
            rows.append(
                {
                    "driver_id": driver_id,
                    "event_timestamp": ts,
                    "created": ts + timedelta(minutes=5),
                    "conv_rate": round(((driver_id * 7 + hour * 13) % 100) / 100, 2),
                    "trips_today": (driver_id + hour) % 20,
                }
            )
    schema = pa.schema(
        [
            ("driver_id", pa.int64()),
            ("event_timestamp", pa.timestamp("us", tz="UTC")),
            ("created", pa.timestamp("us", tz="UTC")),
            ("conv_rate", pa.float64()),
            ("trips_today", pa.int64()),
        ]
    )
    return pa.Table.from_pylist(rows, schema=schema)


def scaffold(path: Path, project: str) -> list[Path]:
    if (path / "feature_store.yaml").exists():
        raise ConfigError(str(path / "feature_store.yaml"), "already exists; not overwriting")
    (path / "data").mkdir(parents=True, exist_ok=True)
    files = {
        path / "feature_store.yaml": CONFIG.format(project=project),
        path / "definitions.py": DEFINITIONS.format(project=project),
    }
    for file, text in files.items():
        file.write_text(text)
    now = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    data = path / "data" / "driver_stats.parquet"
    pq.write_table(_example_data(now), data)
    return [*files, data]
