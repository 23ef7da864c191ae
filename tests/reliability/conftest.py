"""The reliability suite: real processes (redis-server, `skewless serve`, `skewless
materialize`, `skewless apply`) hurt on purpose. The scenarios live in
benchmarks/reliability, shared with `python -m benchmarks.reliability`, which runs them
long and writes a report.

Each test runs in a short variant (CI) and a long one, marked `reliability_long`. The
long ones run only when the marker expression names them:

    .venv/bin/python -m pytest tests/reliability -m reliability_long    # make reliability
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from benchmarks.reliability.kills import materialized_repo, spark_config
from benchmarks.reliability.processes import RedisProcess
from benchmarks.reliability.processes import redis_from_snapshot as from_snapshot
from benchmarks.reliability.repo import RepoShape
from benchmarks.reliability.variants import LONG, SHORT
from pyspark.sql import SparkSession

from skewless.batch.spark import get_spark

HERE = Path(__file__).resolve().parent

VARIANTS = [
    pytest.param(SHORT, id="short"),
    pytest.param(LONG, id="long", marks=pytest.mark.reliability_long),
]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark this folder's tests `reliability`; deselect the long variants unless the
    marker expression (-m) names them."""
    wants_long = "reliability_long" in (config.getoption("markexpr") or "")
    kept, dropped = [], []
    for item in items:
        if Path(str(item.fspath)).is_relative_to(HERE):
            item.add_marker(pytest.mark.reliability)
            if "spark" in getattr(item, "fixturenames", ()):
                item.add_marker(pytest.mark.spark)
            if item.get_closest_marker("reliability_long") and not wants_long:
                dropped.append(item)
                continue
        kept.append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept


@pytest.fixture(scope="session")
def spark() -> Iterator[SparkSession]:
    """The reruns' and comparisons' SparkSession (the killed runs have their own JVMs)."""
    session = get_spark(spark_config(), Path.cwd())
    yield session
    session.stop()


@dataclass(frozen=True)
class Served:
    """An applied and materialized repo, and a snapshot of its Redis to start from."""

    repo: Path
    snapshot: Path  # dump.rdb
    shape: RepoShape


@pytest.fixture(scope="session")
def served(tmp_path_factory: pytest.TempPathFactory, spark: SparkSession) -> Served:
    shape = RepoShape()
    repo, snapshot = materialized_repo(tmp_path_factory.mktemp("served"), shape)
    return Served(repo, snapshot, shape)


@pytest.fixture
def redis_from_snapshot(served: Served, tmp_path: Path) -> Iterator[Callable[[], RedisProcess]]:
    """Start redis-servers holding the served repo's materialized values; each is the
    test's own to kill, and is stopped at the end."""
    started: list[RedisProcess] = []

    def start() -> RedisProcess:
        started.append(from_snapshot(served.snapshot, tmp_path / f"redis-{len(started)}"))
        return started[-1]

    yield start
    for redis in started:
        redis.stop()
