"""Small feature repos on disk for the unit tests (no Spark needed)."""

from __future__ import annotations

import textwrap
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

DEFS = """
from datetime import timedelta
from skewless import *

driver = Entity("driver", join_keys=["driver_id"], description="{entity_description}")
stats = FeatureView(
    "stats",
    entities=[driver],
    schema=[Field("driver_id", Int64), Field("rating", Float64), Field("trips", Int64)],
    source=FileSource("data/stats.parquet", timestamp_field="ts"),
    ttl=timedelta(hours={ttl_hours}),
    description="{description}",
)
svc = FeatureService("svc", features=[stats[["rating"]]])
"""


def write_repo(
    root: Path,
    *,
    description: str = "hourly stats",
    ttl_hours: int = 2,
    entity_description: str = "a driver",
) -> Path:
    (root / "data").mkdir(parents=True, exist_ok=True)
    (root / "feature_store.yaml").write_text("project: unit\n")
    (root / "defs.py").write_text(
        textwrap.dedent(
            DEFS.format(
                description=description, ttl_hours=ttl_hours, entity_description=entity_description
            )
        )
    )
    data = root / "data/stats.parquet"
    if not data.exists():
        table = pa.table(
            {
                "driver_id": pa.array([1], pa.int64()),
                "ts": pa.array([datetime(2024, 1, 1, tzinfo=UTC)], pa.timestamp("us", tz="UTC")),
                "rating": pa.array([4.5], pa.float64()),
                "trips": pa.array([3], pa.int64()),
            }
        )
        pq.write_table(table, data)
    return root
