"""The example feature_repo end to end: generate data, plan, apply, list, describe, edit,
and build training sets, through the real CLI and the real Spark."""

from __future__ import annotations

import importlib.util
import json
import math
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import ModuleType

import numpy as np
import pandas as pd
import pyspark
import pytest

from skewless import FeatureStore
from skewless.batch.jars import ensure_delta_jars
from skewless.cli import job
from skewless.client import OnlineClient
from skewless.grpc import running_server
from skewless.online.embedded import EmbeddedServer
from skewless.repo import load_repo
from skewless.serving.response import FeatureStatus
from skewless.timeutil import utc_micros
from tests.integration.redis_server import redis_server

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


def cli(
    repo: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*SKEWLESS, *args, "--repo", str(repo)],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
        env={"COLUMNS": "200", "PATH": "/usr/bin:/bin", "HOME": str(Path.home()), **(env or {})},
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


@pytest.fixture(scope="module")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with redis_server(tmp_path_factory.mktemp("e2e-redis")) as url:
        yield url


def test_cli_materialize_and_online_values_match_offline(repo: Path, redis_url: str) -> None:
    env = {"SKEWLESS_ONLINE_STORE_URL": redis_url}
    result = cli(repo, "materialize", "2025-12-31", "2026-01-04", env=env)
    assert result.returncode == 0, result.stderr[-2000:]
    for view in ("driver_hourly_stats", "zone_demand", "customer_daily_profile"):
        assert view in result.stdout
    assert "keys written online" in result.stdout
    again = cli(repo, "materialize-incremental", "2026-01-04", env=env)
    assert again.returncode == 0, again.stderr[-2000:]
    assert "(incremental)" in again.stdout


def test_spark_submit_runs_the_materialization_job(repo: Path, redis_url: str) -> None:
    submit = Path(pyspark.__file__).parent / "bin" / "spark-submit"
    result = subprocess.run(
        [
            str(submit),
            "--master",
            "local[1]",
            "--properties-file",
            str(repo.parent / "spark-conf" / "spark-defaults.conf"),
            "--conf",
            "spark.driver.memory=1g",
            "--jars",
            ",".join(str(p) for p in ensure_delta_jars()),
            job.__file__,
            "--repo",
            str(repo),
            "materialize",
            "2026-01-01",
            "2026-01-02",
            "--views",
            "zone_demand",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
        env={
            "PATH": "/usr/bin:/bin",
            "HOME": str(Path.home()),
            "PYSPARK_PYTHON": sys.executable,
            "PYSPARK_DRIVER_PYTHON": sys.executable,
            "SKEWLESS_ONLINE_STORE_URL": redis_url,
        },
    )
    assert result.returncode == 0, result.stderr[-3000:]
    (line,) = [ln for ln in result.stdout.splitlines() if ln.startswith("{")]
    record = json.loads(line)
    assert record["view"] == "zone_demand"
    assert record["rows_read"] > 0


def test_grpc_serves_every_example_entity_as_the_offline_join_sees_it(
    tmp_path: Path, redis_url: str
) -> None:
    """Parity on the example repo: for every (driver, customer, zone) of the trips, every
    feature of the service and every view, gRPC's value and status at time T agree with
    the offline point-in-time join at T."""
    target = tmp_path / "feature_repo"
    shutil.copytree(
        ROOT / "feature_repo", target, ignore=shutil.ignore_patterns("data", "__pycache__")
    )
    shutil.copytree(ROOT / "spark-conf", tmp_path / "spark-conf")
    (target / "feature_store.yaml").write_text(
        (target / "feature_store.yaml")
        .read_text()
        .replace("  type: redis\n", f"  type: redis\n  url: {redis_url}\n", 1)
    )
    generator = _module(target / "demo" / "generate_data.py", "parity_generate_data")
    now = datetime.now(UTC).replace(microsecond=0)
    generator.generate(target, anchor=now - timedelta(days=3))  # data ends now, as the demo's
    store = FeatureStore(target)
    store.apply()
    store.materialize(None, datetime.now(UTC))
    trips = pd.read_parquet(target / "data" / "trips.parquet")
    keys = ["driver_id", "customer_id", "city", "zone_id"]
    entities = trips[keys].drop_duplicates().reset_index(drop=True)
    rows = [
        {k: (v.item() if hasattr(v, "item") else v) for k, v in r.items()}
        for r in entities.to_dict("records")
    ]
    refs = [f"{v.name}:{f}" for v in store.list_feature_views() for f in v.feature_names]
    with running_server(target) as server, OnlineClient(server.target) as client:
        online = client.get_online_features(refs, rows, full_feature_names=True)
        at = datetime.now(UTC)
    offline = (
        store.get_historical_features(
            entities.assign(event_timestamp=pd.Timestamp(at)), refs, full_feature_names=True
        )
        .to_arrow()
        .to_pylist()
    )
    assert len(rows) > 100
    checked = 0
    for i, row in enumerate(rows):
        for name in online.features:
            got, want = online.values[name][i], offline[i][name]
            status = online.statuses[name][i]
            if want is None:  # no row, expired, or a stored null: nothing served
                assert got is None, (row, name, got, status)
            elif isinstance(want, float) and math.isnan(want):
                assert isinstance(got, float) and math.isnan(got), (row, name, got)
            elif isinstance(want, datetime):
                assert got == utc_micros(want), (row, name, got, want)
            elif isinstance(want, float) and isinstance(got, float):
                assert np.float32(got) == np.float32(want), (row, name, got, want)
            else:
                assert got == want, (row, name, got, want)
            if want is not None:
                assert status is FeatureStatus.PRESENT, (row, name, status)
            checked += 1
    present = sum(s is FeatureStatus.PRESENT for col in online.statuses.values() for s in col)
    assert present > checked // 2  # most values are fresh: the comparison is not vacuous


def test_demo_data_is_fresh_for_every_ttl_whenever_the_demo_runs(tmp_path: Path) -> None:
    """The demo anchors its data to end when it runs: at any minute of the hour, the
    newest row of every view stays within the view's ttl for at least 30 minutes, so the
    online half of the demo serves values (and a ttl boundary cannot fall between its
    gRPC lookup and its offline lookup). Anchoring to the hour failed in the last quarter
    of every hour (zone_demand's ttl is one hour, its snapshots every 15 minutes)."""
    target = tmp_path / "feature_repo"
    shutil.copytree(
        ROOT / "feature_repo", target, ignore=shutil.ignore_patterns("data", "__pycache__")
    )
    generator = _module(target / "demo" / "generate_data.py", "fresh_generate_data")
    days = int(_module(target / "demo" / "run_demo.py", "days_run_demo").DAYS)
    contents = load_repo(target)
    for minute in (0, 14, 46, 59):
        ran_at = datetime(2026, 11, 22, 14, minute, 31, tzinfo=UTC)
        anchor = ran_at - timedelta(days=days)
        generator.generate(target, anchor=anchor)
        for view in contents.feature_views.values():
            source = pd.read_parquet(view.source.resolve(target))
            newest = source[view.source.timestamp_field].max().to_pydatetime()
            assert newest <= ran_at, (minute, view.name, newest)  # nothing from the future
            if view.aggregations:  # no ttl: its windows hold the latest events
                assert newest >= ran_at - timedelta(hours=1), (minute, view.name)
                continue
            assert view.ttl is not None, view.name
            assert newest + view.ttl >= ran_at + timedelta(minutes=30), (minute, view.name)


def test_demo_comparison_treats_every_kind_of_missing_value_alike(repo: Path) -> None:
    """The demo's online/offline check: a float32 column's NaN is a np.float32 (not a
    Python float), and must count as missing like None, pd.NA and NaT."""
    demo = _module(repo / "demo" / "run_demo.py", "same_run_demo")
    missing = [None, pd.NA, pd.NaT, float("nan"), np.float32("nan"), np.float64("nan")]
    for online in missing:
        for offline in missing:
            assert demo._same(online, offline), (online, offline)
        assert not demo._same(online, np.float32(1.5))
        assert not demo._same(np.float32(1.5), online)
    assert demo._same(0.1, np.float32(0.1))  # float32 features compare at float32
    assert not demo._same(0.1, np.float32(0.2))
    assert demo._same(["es", "en"], ["es", "en"])
    assert not demo._same(0, None)


def test_demo_script_runs(
    repo: Path, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    """The README demo: generate, apply, train, materialize, serve over gRPC, compare."""
    demo = _module(repo / "demo" / "run_demo.py", "e2e_run_demo")
    server = EmbeddedServer(repo / "data" / "online")
    try:
        demo.main(repo)  # exits non-zero if online and offline values differ
        assert server.running()  # no URL configured: it used the embedded server
        secret = (repo / "data" / "online" / "secret").read_text().strip()
        shown = capsys.readouterr()
        assert "online store: embedded server" in shown.out  # the demo's output is here
        # the last day's storm: zone_demand drifted from the days before, in a report
        assert re.search(r"Delta v\d+ -> v\d+: drifted", shown.out)
        page = (repo / "data" / "drift_zone_demand.html").read_text()
        assert "is_raining" in page and "https://" not in page
        assert secret not in shown.out + shown.err + caplog.text  # its password stays private
    finally:
        server.stop()
