"""The example feature_repo end to end: generate data, plan, apply, list, describe, edit,
and build training sets, through the real CLI and the real Spark."""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pandas as pd
import pytest

from skewless import FeatureStore

ROOT = Path(__file__).resolve().parents[2]
SKEWLESS = [sys.executable, "-m", "skewless.cli.main"]


def _module(path: Path, name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    sys.path.insert(0, str(path.parent))
    try:
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(path.parent))
    return module


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of feature_repo/ (so edits never touch the real one) with generated data;
    spark-conf/ is copied beside it, where feature_store.yaml expects it."""
    base = tmp_path_factory.mktemp("e2e")
    target = base / "feature_repo"
    shutil.copytree(
        ROOT / "feature_repo",
        target,
        ignore=shutil.ignore_patterns("data", "__pycache__", ".*cache"),
    )
    shutil.copytree(ROOT / "spark-conf", base / "spark-conf")
    generator = _module(target / "demo" / "generate_data.py", "e2e_generate_data")
    counts = generator.generate(target)
    assert all(n > 0 for n in counts.values())
    return target


def cli(repo: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*SKEWLESS, *args, "--repo", str(repo)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env={"COLUMNS": "200", "PATH": "/usr/bin:/bin", "HOME": str(Path.home())},
    )


def test_cli_plan_apply_list_describe(repo: Path) -> None:
    plan = cli(repo, "plan")
    assert plan.returncode == 0, plan.stderr
    assert "+ add feature view 'driver_hourly_stats'" in plan.stdout
    assert "+ add feature service 'trip_completion_model_v1'" in plan.stdout
    applied = cli(repo, "apply")
    assert applied.returncode == 0, applied.stderr
    assert "registry is now at v1" in applied.stdout
    again = cli(repo, "plan")
    assert "No changes" in again.stdout
    listed = cli(repo, "list")
    assert listed.returncode == 0
    for name in ("driver", "pickup_zone", "zone_demand", "customer_daily_profile"):
        assert name in listed.stdout
    described = cli(repo, "describe", "zone_demand")
    assert described.returncode == 0
    assert '"join_keys"' in described.stdout and '"zone_id"' in described.stdout


def test_cli_description_edit_is_metadata_only_and_ttl_edit_is_data(repo: Path) -> None:
    cli(repo, "apply")
    view_file = repo / "zone_features.py"
    original = view_file.read_text()
    try:
        view_file.write_text(
            original.replace('description="The marketplace', 'description="Edited: the')
        )
        plan = cli(repo, "plan")
        assert "zone_demand' (v1 -> v2, metadata only: description)" in plan.stdout, plan.stdout
        assert "Needs (re-)materialization" not in plan.stdout
        view_file.write_text(original.replace("ttl=timedelta(hours=1)", "ttl=timedelta(hours=3)"))
        assert view_file.read_text() != original
        plan = cli(repo, "plan")
        assert "~ change feature view 'zone_demand'" in plan.stdout
        assert "(v1 -> v2, data change: ttl)" in plan.stdout
        assert "Needs (re-)materialization: zone_demand" in plan.stdout
    finally:
        view_file.write_text(original)


def test_cli_errors_are_one_red_line_and_exit_1(repo: Path, tmp_path: Path) -> None:
    missing = cli(repo, "describe", "zone_demnd")
    assert missing.returncode == 1
    assert "Did you mean 'zone_demand'" in missing.stderr
    assert "Traceback" not in missing.stderr
    broken = tmp_path / "broken"
    shutil.copytree(repo, broken, ignore=shutil.ignore_patterns("data"))
    (broken / "oops.py").write_text(
        "from skewless import *\nv = FeatureView('v', entities=[], schema=[], source=None)\n"
    )
    result = cli(broken, "plan")
    assert result.returncode == 1
    assert "oops.py" in result.stderr and "feature view 'v'" in result.stderr
    debug = subprocess.run(
        [*SKEWLESS, "--debug", "plan", "--repo", str(broken)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert "Traceback" in debug.stderr


def test_training_set_from_the_service(repo: Path) -> None:
    store = FeatureStore(repo)
    store.apply()
    trips = pd.read_parquet(repo / "data" / "trips.parquet")
    training = store.get_historical_features(trips, "trip_completion_model_v1").to_pandas()
    assert len(training) == len(trips)
    assert training["trip_id"].tolist() == trips["trip_id"].tolist()
    service = store.get_feature_service("trip_completion_model_v1")
    assert list(training.columns) == [*trips.columns, *[r.split(":")[1] for r in service.refs]]
    assert training["conv_rate"].notna().mean() > 0.8
    assert str(training["trips_last_hour"].dtype) == "Int32"


def test_demo_script_runs(repo: Path) -> None:
    demo = _module(repo / "demo" / "run_demo.py", "e2e_run_demo")
    demo.main(repo)
