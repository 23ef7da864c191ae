"""`history`, `rollback` and `lineage` over real materializations (Spark, Delta and
redis-server): rows inserted and updated per run, a rollback that finds the Delta table
of the restored definition and brings it up to date incrementally, and lineage naming
that table's last version."""

from __future__ import annotations

import textwrap
import uuid
from pathlib import Path
from typing import Any

from delta.tables import DeltaTable
from pyspark.sql import SparkSession
from typer.testing import CliRunner

from skewless import FeatureStore
from skewless.cli.main import app
from skewless.serving.response import FeatureStatus
from tests.integration.test_materialize import DEFS, add_file, at, make_repo, row, table_rows


def _cli(repo: Path, *args: str) -> Any:
    result = CliRunner().invoke(app, [*args, "--repo", str(repo)], env={"COLUMNS": "100"})
    assert result.exit_code == 0, result.output
    return result.output


def _run_rows(shown: str) -> list[list[str]]:
    """The first line of each row of the runs table, split into its words."""
    table = shown.split("Data versions of")[1].split("Feature tables", maxsplit=1)[0]
    rows = [line.split() for line in table.splitlines()]
    return [words for words in rows if words and words[0].isdigit()]


def _delta_history(spark: SparkSession, path: str) -> list[tuple[int, str, dict[str, str]]]:
    rows = DeltaTable.forPath(spark, path).history().collect()
    return sorted((int(r["version"]), r["operation"], dict(r["operationMetrics"])) for r in rows)


def test_history_rollback_and_lineage_over_real_runs(
    tmp_path: Path, redis_url: str, spark: SparkSession
) -> None:
    store = make_repo(tmp_path / "repo", redis_url, f"h_{uuid.uuid4().hex[:8]}")
    repo = store.repo_path

    # v1: a first run inserts; a later run with a correction and a new key updates one
    # row and inserts one, as the Delta commit's metrics say
    (first,) = store.materialize(at(0), at(3))
    assert (first.rows_inserted_offline, first.rows_updated_offline) == (4, 0)
    add_file(repo, [row(2, 2, 99, created=4), row(4, 1, 40)], "part-1")
    (fix,) = store.materialize(at(0), at(3))
    assert (fix.rows_inserted_offline, fix.rows_updated_offline) == (1, 1)
    assert fix.rows_written_offline == 2 and fix.delta_version == 1
    commits = _delta_history(spark, fix.delta_path)
    assert commits[1][1] == "MERGE"
    assert (commits[1][2]["numTargetRowsInserted"], commits[1][2]["numTargetRowsUpdated"]) == (
        "1",
        "1",
    )
    assert store.registry.materializations("stats") == [first, fix]

    # v2: a shorter ttl, a new data hash, a new table
    (repo / "defs.py").write_text(
        textwrap.dedent(DEFS).replace("timedelta(days=3650)", "timedelta(days=30)")
    )
    store.apply()
    (v2_run,) = store.materialize(at(0), at(6))
    assert v2_run.delta_path != fix.delta_path

    shown = _cli(repo, "history", "stats")
    assert "ttl: 3650d -> 30d" in shown
    runs = _run_rows(shown)
    assert runs[0][:3] == ["1", "full", "v1"]
    assert runs[1][:3] == ["2", "full", "v1"]
    assert runs[1][-5:] == ["7", "1", "1", "0", "2"]  # read, inserted, updated, rejected, online

    # roll back to v1: its table exists, and the repo's file still says v2
    rolled = _cli(repo, "rollback", "stats", "--to", "1", "--yes")
    assert "~ change feature view 'stats' (v2 -> v3, data change: ttl)" in rolled
    assert "has the definition of v1 again, recorded as v3" in rolled
    assert f"Its Delta table exists from earlier runs: {fix.delta_path}" in rolled
    assert "(last Delta version 1" in rolled
    assert "the feature repo's files still define 'stats' differently from v1" in " ".join(
        rolled.split()
    )
    current = store.registry.get("feature_view", "stats")
    assert current is not None and current.data_hash == first.data_hash
    assert "data change: ttl" in _cli(repo, "plan")  # the next apply would undo it

    # materialize-incremental brings v1's table up to date with what came since
    (caught_up,) = FeatureStore(repo).materialize_incremental(at(6))
    assert caught_up.delta_path == fix.delta_path and caught_up.delta_version == 2
    assert (caught_up.rows_inserted_offline, caught_up.rows_updated_offline) == (1, 0)
    assert [r[0] for r in table_rows(spark, fix.delta_path)] == [1, 1, 2, 2, 3, 4]
    resp = store.get_online_features(["stats:trips"], [{"driver_id": 3}], request_time=at(100))
    assert resp.statuses["trips"] == [FeatureStatus.PRESENT]

    shown = _cli(repo, "history", "stats")
    assert "data change (the definition of v1)" in shown
    assert [r[:3] for r in _run_rows(shown)][-1] == ["4", "incr.", "v3"]

    tree = _cli(repo, "lineage", "stats")
    assert tree.splitlines()[0].startswith(
        f"feature view 'stats' · v3 · data {first.data_hash[:8]}"
    )
    assert "source data/stats · parquet" in tree
    assert "└── materialized into feature table · Delta version 2 · last run" in tree
    assert fix.delta_path in "".join(line.strip() for line in tree.splitlines())
