"""kill -9 of `skewless materialize` (its driver and Spark's JVM) at observed moments,
then a rerun: the Delta tables and Redis then hold exactly what a clean run in a
separate repo holds, and one more run changes nothing."""

from __future__ import annotations

from pathlib import Path

import pytest
from benchmarks.reliability.kills import kills_then_rerun, materialize_in_process
from benchmarks.reliability.processes import RedisProcess
from benchmarks.reliability.repo import build_repo, copy_repo
from benchmarks.reliability.variants import Variant
from pyspark.sql import SparkSession

from skewless import FeatureStore
from tests.reliability.conftest import VARIANTS


@pytest.mark.parametrize("variant", VARIANTS)
def test_materialization_killed_then_rerun_equals_a_clean_run(
    variant: Variant, spark: SparkSession, tmp_path: Path
) -> None:
    shape = variant.kill_shape
    base = build_repo(tmp_path / "base", "redis://127.0.0.1:1/0", shape)
    with RedisProcess(tmp_path / "clean-redis") as clean_redis:
        clean = copy_repo(base, tmp_path / "clean")
        FeatureStore(clean).apply()
        materialize_in_process(clean, clean_redis.url)
        for n, chain in enumerate(variant.kill_chains):
            with RedisProcess(tmp_path / f"redis-{n}") as redis:
                repo = copy_repo(base, tmp_path / f"killed-{n}")
                FeatureStore(repo).apply()
                result = kills_then_rerun(
                    spark,
                    repo,
                    redis.url,
                    clean,
                    clean_redis.url,
                    chain,
                    tmp_path / f"work-{n}",
                    first_keys=shape.drivers,
                )
            missed = [k.point for k in result.kills if not k.hit]
            assert not missed, f"the runs got past {missed} unseen: {result.kills}"
            comparison = result.comparison
            assert comparison is not None
            assert comparison.keys == comparison.clean_keys > shape.drivers
            assert comparison.equal, f"after kills at {chain}: {comparison}"
            # the rerun did the work the kills left undone, and nothing is left to do
            assert any(r["keys_written_online"] for r in result.rerun), result.rerun
            assert all(
                r["rows_written_offline"] == 0 and r["keys_written_online"] == 0
                for r in result.again
            ), result.again
