"""Two `skewless schedule run` processes on one registry, with real time: they never
work on one view at once (checked from the run history); a runner killed with -9 in the
middle of a run leaves no advanced watermark, its lease expires and the other runner
marks the run abandoned and completes its tick; SIGTERM stops a runner cleanly.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from pathlib import Path

import pandas as pd
import pytest
from pyspark.sql import SparkSession

from skewless import FeatureStore
from skewless.registry import RunRecord
from tests.integration.test_grpc_server import wait_until

SKEWLESS = [sys.executable, "-m", "skewless.cli.main"]
VIEWS = ("alpha", "beta")

DEFS = """
from datetime import timedelta
from skewless import Entity, FeatureView, Field, FileSource, Int64, Schedule

driver = Entity("driver", join_keys=["driver_id"])
every_10s = Schedule("* * * * * */10", catch_up=timedelta(minutes=5))
alpha = FeatureView(
    "alpha", entities=[driver], schema=[Field("trips", Int64)],
    source=FileSource("data/alpha", timestamp_field="ts"), materialization=every_10s,
)
beta = FeatureView(
    "beta", entities=[driver], schema=[Field("trips", Int64)],
    source=FileSource("data/beta", timestamp_field="ts"), materialization=every_10s,
)
"""


@pytest.fixture
def repo(tmp_path: Path, redis_url: str, spark: SparkSession) -> Path:
    repo = tmp_path / "repo"
    (repo / "feature_store.yaml").parent.mkdir(parents=True)
    (repo / "feature_store.yaml").write_text(
        textwrap.dedent(
            f"""
            project: p_{uuid.uuid4().hex[:8]}
            online_store: {{type: redis, url: '{redis_url}'}}
            scheduler: {{lease_seconds: 4, poll_seconds: 1, backoff_seconds: 1, max_attempts: 2}}
            spark:
              master: local[1]
              conf: {{spark.sql.shuffle.partitions: "1", spark.ui.enabled: "false",
                      spark.ui.showConsoleProgress: "false", spark.driver.memory: 1g}}
            """
        )
    )
    (repo / "defs.py").write_text(textwrap.dedent(DEFS))
    now = datetime.now(UTC)
    for view in VIEWS:
        (repo / "data" / view).mkdir(parents=True)
        frame = pd.DataFrame(
            {
                "driver_id": [1, 2, 1, 2],
                "ts": pd.to_datetime([now - timedelta(hours=h) for h in (2, 2, 1, 1)], utc=True),
                "trips": [1, 2, 3, 4],
            }
        )
        frame.to_parquet(repo / "data" / view / "part-0.parquet")
    FeatureStore(repo).apply()
    return repo


@pytest.fixture
def runners(repo: Path) -> Iterator[list[subprocess.Popen[str]]]:
    started: list[subprocess.Popen[str]] = []
    yield started
    for p in started:
        if p.poll() is None:
            p.kill()
        p.wait(timeout=30)


def start_runner(repo: Path, log: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [*SKEWLESS, "schedule", "run", "--repo", str(repo)],
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )


def all_runs(repo: Path) -> list[RunRecord]:
    return FeatureStore(repo).registry.runs()


def runner_pid(run: RunRecord) -> int:
    return int(run.runner.split(":")[1])  # host:pid:random


def test_two_runners_never_overlap_and_a_killed_runner_is_taken_over(
    repo: Path, runners: list[subprocess.Popen[str]], tmp_path: Path
) -> None:
    a = start_runner(repo, tmp_path / "a.log")
    b = start_runner(repo, tmp_path / "b.log")
    runners.extend([a, b])

    def succeeded(view: str) -> int:
        return sum(1 for r in all_runs(repo) if r.view == view and r.status == "succeeded")

    wait_until(lambda: all(succeeded(v) >= 2 for v in VIEWS), "2 runs of each view", 240)

    # kill -9 whichever runner is in the middle of a run
    victim: list[RunRecord] = []

    def caught() -> bool:
        running = [r for r in all_runs(repo) if r.status == "running"]
        if running:
            os.kill(runner_pid(running[0]), signal.SIGKILL)
            victim.append(running[0])
        return bool(running)

    wait_until(caught, "a run under way", 120)
    killed = victim[0]
    survivor = b if runner_pid(killed) == a.pid else a
    (a if survivor is b else b).wait(timeout=30)

    def taken_over() -> bool:
        runs = {r.id: r for r in all_runs(repo)}
        done = [
            r
            for r in runs.values()
            if r.view == killed.view and r.tick_us == killed.tick_us and r.status == "succeeded"
        ]
        return runs[killed.id].status == "abandoned" and bool(done)

    wait_until(taken_over, "the other runner to finish the killed run's tick", 120)

    # SIGTERM in the middle of a run: the run finishes, then the runner exits
    under_way: list[RunRecord] = []

    def running_now() -> bool:
        under_way[:] = [r for r in all_runs(repo) if r.status == "running"]
        return bool(under_way)

    wait_until(running_now, "a run of the survivor under way", 120)
    survivor.send_signal(signal.SIGTERM)
    assert survivor.wait(timeout=120) == 0

    runs = all_runs(repo)
    assert [r for r in runs if r.status == "running"] == []
    finished = next(r for r in runs if r.id == under_way[0].id)
    assert finished.status == "succeeded"  # SIGTERM let it finish
    for view in VIEWS:
        mine = [r for r in runs if r.view == view]
        spans = sorted((r.started_at, r.finished_at or r.started_at, r.id) for r in mine)
        for (_, end, x), (start, _, y) in pairwise(spans):
            assert end <= start, f"runs {x} and {y} of {view} overlap"
        ticks = [r.tick_us for r in mine if r.status == "succeeded"]
        assert len(ticks) == len(set(ticks)), f"a tick of {view} succeeded twice"
    # the watermark: a materialization record per succeeded run, and at most one more
    # (the killed run's, had -9 landed after both its writes and its record)
    store = FeatureStore(repo)
    for view in VIEWS:
        records = store.registry.materializations(view)
        ok = [r for r in runs if r.view == view and r.status == "succeeded"]
        assert len(ok) <= len(records) <= len(ok) + (view == killed.view)
    abandoned = next(r for r in runs if r.id == killed.id)
    assert abandoned.runner != next(
        r.runner for r in runs if r.tick_us == killed.tick_us and r.status == "succeeded"
    )
    assert "lease" in abandoned.note
    response = store.get_online_features(
        ["alpha:trips", "beta:trips"],
        [{"driver_id": 1}, {"driver_id": 2}],
        full_feature_names=True,
    )
    assert response.values["alpha__trips"] == response.values["beta__trips"] == [3, 4]
