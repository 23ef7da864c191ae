"""A repo written in Feast's style (tests/e2e/feast_port) ported by changing its import
lines only, then run as its Feast user would: apply, a training set, materialize-
incremental, online lookups in process, over gRPC and over HTTP with Feast's JSON, and
teardown; values are checked against an independent reference computed here from the
source data."""

from __future__ import annotations

import importlib.util
import json
import shutil
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pandas as pd
import pytest

from skewless import FeatureStore
from skewless.client import OnlineClient
from skewless.grpc import running_server
from tests.e2e.example import ROOT
from tests.e2e.example import cli as run_cli
from tests.integration.redis_server import redis_server

FEAST_REPO = Path(__file__).parent / "feast_port" / "feature_repo"
TTL = timedelta(days=1)
FEATURES = ["conv_rate", "acc_rate", "avg_daily_trips"]


def port_imports(text: str) -> tuple[str, int]:
    """Feast's import lines become skewless's; every other line is kept as it is.
    Returns the new text and how many lines changed."""
    lines = text.splitlines(keepends=True)
    ported = [
        line.replace("feast", "skewless", 1)
        if line.startswith(("from feast ", "from feast.", "import feast"))
        else line
        for line in lines
    ]
    return "".join(ported), sum(a != b for a, b in zip(lines, ported, strict=True))


def driver_stats(now: datetime) -> pd.DataFrame:
    """Hourly rows as a pandas user writes them: tz-aware UTC event times, naive created
    times, int32 trips. Drivers 1001-1004 up to an hour ago; 1005 stopped two days ago.
    Driver 1001's last hour was re-emitted later with other numbers (the later created
    wins), and one acc_rate of 1002 is missing."""
    rng = np.random.default_rng(7)
    hour = pd.Timestamp(now).floor("h")
    rows = []
    for driver in range(1001, 1006):
        last = hour - (pd.Timedelta(days=2) if driver == 1005 else pd.Timedelta(hours=1))
        for ts in pd.date_range(last - pd.Timedelta(days=3), last, freq="h"):
            rows.append((driver, ts, ts.tz_localize(None) + pd.Timedelta(minutes=5)))
    df = pd.DataFrame(rows, columns=["driver_id", "event_timestamp", "created"])
    df["conv_rate"] = rng.random(len(df)).astype("float32")
    df["acc_rate"] = rng.random(len(df)).astype("float32")
    df["avg_daily_trips"] = rng.integers(0, 1000, len(df)).astype("int32")
    df.loc[
        (df.driver_id == 1002) & (df.event_timestamp == hour - pd.Timedelta(hours=5)), "acc_rate"
    ] = np.nan
    redo = df[(df.driver_id == 1001) & (df.event_timestamp == hour - pd.Timedelta(hours=1))].copy()
    redo["created"] += pd.Timedelta(minutes=30)
    redo[FEATURES] = [np.float32(0.5), np.float32(0.25), np.int32(4242)]
    return pd.concat([df, redo], ignore_index=True).astype({"avg_daily_trips": "int32"})


def reference_row(stats: pd.DataFrame, driver: int, at: pd.Timestamp) -> dict[str, Any] | None:
    """The row a lookup at `at` must see: the driver's latest (event time, then created)
    row with at - ttl <= event time <= at; None if there is none."""
    rows = stats[
        (stats.driver_id == driver)
        & (stats.event_timestamp <= at)
        & (stats.event_timestamp >= at - TTL)
    ]
    if rows.empty:
        return None
    best = rows.sort_values(["event_timestamp", "created"]).iloc[-1]
    return {f: best[f] for f in FEATURES}


def post_json(url: str, body: dict[str, Any]) -> Any:
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST")
    with urllib.request.urlopen(request, timeout=30) as reply:
        assert reply.status == 200
        return json.load(reply)


def load_module(path: Path, name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with redis_server(tmp_path_factory.mktemp("feast-port-redis")) as url:
        yield url


@pytest.fixture(scope="module")
def now() -> datetime:
    return datetime.now(UTC)


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory, redis_url: str, now: datetime) -> Path:
    """The Feast repo, ported: import lines changed, skewless's feature_store.yaml."""
    base = tmp_path_factory.mktemp("feast-port")
    target = base / "feature_repo"
    shutil.copytree(FEAST_REPO, target)
    shutil.copytree(ROOT / "spark-conf", base / "spark-conf")
    for path in target.glob("*.py"):
        text, changed = port_imports(path.read_text())
        assert changed == text.count("skewless"), f"{path.name}: only import lines change"
        path.write_text(text)
    (target / "feature_store.feast.yaml").write_text((target / "feature_store.yaml").read_text())
    (target / "feature_store.yaml").write_text(
        "project: driver_stats\n"
        "registry: data/registry.db\n"
        "online_store:\n"
        "  type: redis\n"
        f"  url: {redis_url}\n"
        "spark:\n"
        "  conf_file: ../spark-conf/spark-defaults.conf\n"
    )
    (target / "data").mkdir()
    driver_stats(now).to_parquet(target / "data" / "driver_stats.parquet")
    return target


@pytest.fixture(scope="module")
def workflow(repo: Path) -> ModuleType:
    return load_module(repo / "workflow.py", "feast_port_workflow")


@pytest.fixture(scope="module")
def stats(repo: Path) -> pd.DataFrame:
    return pd.read_parquet(repo / "data" / "driver_stats.parquet")


@pytest.fixture(scope="module")
def store(repo: Path) -> FeatureStore:
    applied = run_cli(repo, "apply")
    assert applied.returncode == 0, applied.stderr
    assert "driver_hourly_stats" in applied.stdout
    return FeatureStore(repo_path=str(repo))


def test_ported_files_differ_from_feasts_in_import_lines_only() -> None:
    for path in FEAST_REPO.glob("*.py"):
        original = path.read_text()
        ported, changed = port_imports(original)
        assert changed >= 1
        imports = [
            ln for ln in original.splitlines() if ln.startswith(("from feast", "import feast"))
        ]
        assert changed == len(imports)
        assert "feast" not in ported.replace("porting-from-feast", "")


def test_training_set_is_point_in_time_correct(
    store: FeatureStore, workflow: ModuleType, stats: pd.DataFrame, now: datetime
) -> None:
    hour = pd.Timestamp(now).floor("h").tz_localize(None)  # Feast's examples use naive UTC
    entity_df = pd.DataFrame(
        {
            "driver_id": [1001, 1002, 1003, 1005, 1001, 1002, 1004],
            "event_timestamp": [
                hour - pd.Timedelta(minutes=1),  # after 1001's re-emitted hour
                hour - pd.Timedelta(hours=4, minutes=30),  # just after the missing acc_rate
                hour - pd.Timedelta(days=1, minutes=17),
                hour,  # 1005's last row is two days old: outside the ttl
                hour - pd.Timedelta(days=5),  # before any data
                hour - pd.Timedelta(hours=2, seconds=1),
                hour - pd.Timedelta(hours=1),  # exactly on an event time: included
            ],
            "label_driver_reported_satisfaction": [1, 5, 3, 2, 4, 1, 5],
        }
    )
    training_df = workflow.fetch_historical_features_entity_df(store, entity_df)
    assert len(training_df) == len(entity_df)
    assert list(training_df.columns[:3]) == list(entity_df.columns)
    labels = {
        (d, pd.Timestamp(t).tz_localize("UTC")): label
        for d, t, label in entity_df.itertuples(index=False)
    }
    for _, row in training_df.iterrows():
        at = pd.Timestamp(row["event_timestamp"])
        at = at.tz_localize("UTC") if at.tzinfo is None else at.tz_convert("UTC")
        where = f"driver {row['driver_id']} at {at}"
        assert row["label_driver_reported_satisfaction"] == labels.pop((row["driver_id"], at))
        expected = reference_row(stats, int(row["driver_id"]), at)
        for f in FEATURES:
            got = row[f]
            if expected is None or pd.isna(expected[f]):
                assert pd.isna(got), f"{where}: {f} = {got}, expected null"
            else:
                assert got == pytest.approx(float(expected[f])), f"{where}: {f}"
    assert not labels  # every entity row came back once, with its label


def expected_online(stats: pd.DataFrame, now: datetime, drivers: list[int]) -> dict[str, list[Any]]:
    rows = [reference_row(stats, d, pd.Timestamp(now)) for d in drivers]
    out: dict[str, list[Any]] = {"driver_id": drivers}
    for f in FEATURES:
        out[f] = [None if r is None else r[f].item() for r in rows]
    return out


def test_online_lookups_in_process_over_grpc_and_http(
    store: FeatureStore, workflow: ModuleType, stats: pd.DataFrame, now: datetime, repo: Path
) -> None:
    workflow.load_online_store(store)
    drivers = [1001, 1002, 1005]
    expected = expected_online(stats, now, drivers)
    assert expected["avg_daily_trips"][0] == 4242  # the re-emitted hour won
    assert expected["conv_rate"][2] is None  # 1005: outside the ttl

    by_list = workflow.fetch_online_features(store)
    assert by_list == {k: expected[k] for k in ("driver_id", "acc_rate", "conv_rate")}
    by_service = workflow.fetch_online_features(store, source="feature_service")
    assert by_service == expected

    rows = [{"driver_id": d} for d in drivers]
    with running_server(repo, http_port=0) as server, OnlineClient(server.target) as client:
        over_grpc = client.get_online_features(
            store.get_feature_service("driver_activity_v2"), rows
        )
        assert over_grpc.to_dict() == expected
        again = client.get_online_features("driver_activity_v1", rows)
        assert again.to_dict() == {k: expected[k] for k in ("driver_id", "conv_rate")}
        # A Feast HTTP client's request, unchanged but for the address.
        body = {"feature_service": "driver_activity_v2", "entities": {"driver_id": drivers}}
        answer = post_json(f"http://127.0.0.1:{server.http_port}/get-online-features", body)
    names = answer["metadata"]["feature_names"]
    assert names == ["driver_id", *FEATURES]
    assert {n: r["values"] for n, r in zip(names, answer["results"], strict=True)} == expected
    statuses = answer["results"][1]["statuses"]
    assert statuses == ["PRESENT", "PRESENT", "OUTSIDE_MAX_AGE"]


def test_a_second_incremental_run_takes_only_new_rows(
    store: FeatureStore, workflow: ModuleType, repo: Path, now: datetime
) -> None:
    workflow.load_online_store(store)  # nothing new: values unchanged
    before = workflow.fetch_online_features(store, source="feature_service")
    data = repo / "data" / "driver_stats.parquet"
    fresh = pd.read_parquet(data)
    latest = fresh[fresh.driver_id == 1002].sort_values("event_timestamp").iloc[[-1]].copy()
    latest["event_timestamp"] += pd.Timedelta(minutes=30)
    latest["created"] += pd.Timedelta(minutes=30)
    latest[FEATURES] = [np.float32(0.75), np.float32(0.125), np.int32(7)]
    pd.concat([fresh, latest], ignore_index=True).to_parquet(data)
    workflow.load_online_store(store)
    after = workflow.fetch_online_features(store, source="feature_service")
    assert after["avg_daily_trips"] == [before["avg_daily_trips"][0], 7, None]
    assert after["conv_rate"][1] == 0.75


def test_feasts_own_configuration_says_what_to_change(repo: Path, tmp_path: Path) -> None:
    feast_config = tmp_path / "feature_repo"
    shutil.copytree(repo, feast_config, ignore=shutil.ignore_patterns("data"))
    (feast_config / "feature_store.yaml").write_text(
        (repo / "feature_store.feast.yaml").read_text()
    )
    planned = run_cli(feast_config, "plan")
    assert planned.returncode == 1
    said = " ".join(planned.stderr.split())
    assert "online_store.type: a Feast store ('sqlite')" in said
    assert "`type: redis` with `url: redis://host:port`" in said
    for ignored in ("provider: ignored", "entity_key_serialization_version: ignored"):
        assert ignored in said


def test_teardown_then_apply_again(store: FeatureStore, workflow: ModuleType, repo: Path) -> None:
    torn = run_cli(repo, "teardown", "--yes")
    assert torn.returncode == 0, torn.stderr
    assert (repo / "data" / "driver_stats.parquet").is_file()  # source data is never deleted
    assert FeatureStore(repo).registry.current("feature_view") == []
    fresh = FeatureStore(repo_path=str(repo))
    assert run_cli(repo, "apply").returncode == 0
    missing = workflow.fetch_online_features(fresh, source="feature_service")
    assert missing["conv_rate"] == [None, None, None]  # online keys are gone
    workflow.load_online_store(fresh)  # everything again, from the source as it is now
    now = datetime.now(UTC)
    stats = pd.read_parquet(repo / "data" / "driver_stats.parquet")
    again = workflow.fetch_online_features(fresh, source="feature_service")
    assert again == expected_online(stats, now, [1001, 1002, 1005])
