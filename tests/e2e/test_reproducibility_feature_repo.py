"""Reproducible training sets on the example feature_repo: a set built from its service
and saved in process, then `training-sets`, `reproduce`, `lineage` and `forget` through
the real CLI (a subprocess, as a user runs it)."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from skewless import FeatureStore
from skewless.offline.manifest import Manifest
from tests.e2e.example import cli as run_cli
from tests.e2e.example import example_repo
from tests.integration.redis_server import redis_server

SET = "trip_completion_2026_11"


@pytest.fixture(scope="module")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with redis_server(tmp_path_factory.mktemp("repro-redis")) as url:
        yield url


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory, redis_url: str) -> Path:
    """A copy of feature_repo/ with generated data, applied, materialized, and a saved
    training set of its model's service over the first 400 trips."""
    target = example_repo(tmp_path_factory.mktemp("repro"), "repro_generate_data")
    config = target / "feature_store.yaml"
    text = config.read_text().replace(
        "online_store:\n  type: redis\n", f"online_store:\n  type: redis\n  url: {redis_url}\n"
    )
    assert redis_url in text
    config.write_text(text)
    store = FeatureStore(target)
    store.apply()
    store.materialize(None, pd.Timestamp.now(tz="UTC").to_pydatetime(), ["driver_profile"])
    trips = pd.read_parquet(target / "data" / "trips.parquet").iloc[:400]
    job = store.get_historical_features(trips, "trip_completion_model_v1")
    store.save_training_set(SET, job, description="model v1")
    return target


def cli(repo: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return run_cli(repo, *args, columns=120)


def test_training_sets_list_and_show(repo: Path, tmp_path: Path) -> None:
    listed = cli(repo, "training-sets", "list")
    assert listed.returncode == 0, listed.stderr
    assert SET in listed.stdout and "trip_completion_model_v1" in listed.stdout
    shown = cli(repo, "training-sets", "show", SET)
    assert shown.returncode == 0, shown.stderr
    for part in ("rows: 400", "driver_profile", "data/driver_profile.parquet", "Delta version"):
        assert part in shown.stdout, shown.stdout
    as_json = cli(repo, "training-sets", "show", SET, "--json")
    manifest = Manifest.from_json(as_json.stdout)
    assert manifest.saved_as is not None and manifest.saved_as.name == SET
    assert manifest.result.rows == 400
    assert json.loads(as_json.stdout)["feature_service"] == "trip_completion_model_v1"
    missing = cli(repo, "training-sets", "show", "trip_completion")
    assert missing.returncode == 1
    assert missing.stderr.startswith("Error: unknown training set 'trip_completion'")


def test_reproduce_after_changes_then_a_changed_pinned_file(repo: Path, tmp_path: Path) -> None:
    # Later: the ttl of a view changes and is applied, a view is materialized again.
    views = repo / "zone_features.py"
    views.write_text(views.read_text().replace("timedelta(hours=1)", "timedelta(hours=5)"))
    assert cli(repo, "apply").returncode == 0
    assert cli(repo, "materialize-incremental", "--views", "driver_profile").returncode == 0

    same = cli(repo, "reproduce", SET)
    assert same.returncode == 0, same.stdout + same.stderr
    assert f"{SET}: identical (400 rows" in same.stdout
    manifest_file = tmp_path / "manifest.json"
    manifest_file.write_text(cli(repo, "training-sets", "show", SET, "--json").stdout)
    assert cli(repo, "reproduce", str(manifest_file)).returncode == 0

    lineage = cli(repo, "lineage", SET)
    assert lineage.returncode == 0, lineage.stderr
    assert f"training set '{SET}'" in lineage.stdout
    assert "data/customer_daily_profile.parquet" in lineage.stdout

    # A pinned file rewritten with other values: reproduce exits 1 naming it.
    zones = pq.read_table(repo / "data" / "zone_demand.parquet")
    later = zones.set_column(
        zones.schema.get_field_index("surge_multiplier"),
        "surge_multiplier",
        pa.array([9.9] * zones.num_rows, zones.schema.field("surge_multiplier").type),
    )
    original = (repo / "data" / "zone_demand.parquet").read_bytes()
    pq.write_table(later, repo / "data" / "zone_demand.parquet")
    try:
        changed = cli(repo, "reproduce", SET)
    finally:
        (repo / "data" / "zone_demand.parquet").write_bytes(original)
    assert changed.returncode == 1
    text = " ".join(changed.stdout.split())
    assert f"{SET}: different" in text
    assert "data/zone_demand.parquet (feature view 'zone_demand'): pinned file" in text
    assert "surge_multiplier" in text


def test_forget_marks_the_saved_set_erased(repo: Path, tmp_path: Path) -> None:
    trips = pd.read_parquet(repo / "data" / "trips.parquet").iloc[:400]
    drivers = sorted(set(trips["driver_id"].tolist()))[:2]
    keys = tmp_path / "erase.csv"
    keys.write_text("driver_id\n" + "".join(f"{d}\n" for d in drivers))
    forgot = cli(repo, "forget", "driver_profile", "--keys", str(keys), "--yes")
    assert forgot.returncode == 0, forgot.stdout + forgot.stderr
    assert SET in forgot.stdout
    erased = cli(repo, "reproduce", SET)
    assert erased.returncode == 1
    text = " ".join(erased.stdout.split())
    assert f"{SET}: not reproducible" in text
    assert "erased:" in text and "feature view 'driver_profile'" in text
    rows = FeatureStore(repo).get_training_set(SET).to_pandas()
    assert not rows["driver_id"].isin(drivers).any()
    assert len(rows) == 400 - int(trips["driver_id"].isin(drivers).sum())
