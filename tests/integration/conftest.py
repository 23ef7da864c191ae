from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from pyspark.sql import SparkSession

from skewless.batch.spark import get_spark
from skewless.config import SparkConfig
from tests.integration.redis_server import redis_server

TEST_SPARK = SparkConfig(
    master="local[2]",
    app_name="skewless-tests",
    conf={
        "spark.sql.shuffle.partitions": "2",
        "spark.default.parallelism": "2",
        "spark.ui.enabled": "false",
        "spark.ui.showConsoleProgress": "false",
        "spark.databricks.delta.snapshotPartitions": "2",
        "spark.sql.adaptive.enabled": "true",
        "spark.driver.memory": "2g",
    },
)


@pytest.fixture(scope="session")
def spark() -> Iterator[SparkSession]:
    """The one SparkSession of the test run (start-up costs 5-20 s on 2 cores)."""
    session = get_spark(TEST_SPARK, Path.cwd())
    yield session
    session.stop()


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One real redis-server for the test run, on a free loopback port."""
    with redis_server(tmp_path_factory.mktemp("redis")) as url:
        yield url
