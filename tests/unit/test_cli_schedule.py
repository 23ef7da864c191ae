"""`skewless status` and `skewless runs` over a real registry (no Spark: the runs and
materializations are recorded directly): a view behind its expected freshness is
flagged, and `--fail-if-stale` exits with 2; a fresh one is not."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from skewless import FeatureStore
from skewless.cli.main import app
from skewless.fingerprint import feature_view_fingerprint
from skewless.registry import MaterializationRecord
from tests.unit.repo_fixtures import write_repo


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = write_repo(tmp_path / "repo")
    (root / "feature_store.yaml").write_text(
        "project: unit\nmaterialization: {cron: '0 * * * *', delay: 10m}\n"
    )
    FeatureStore(root).apply()
    return root


def invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, [*args, "--wide"], env={"COLUMNS": "200"})
    return result.exit_code, result.output


def record(repo: Path, end: datetime) -> None:
    store = FeatureStore(repo)
    view = store.get_feature_view("stats")
    store.registry.record_materialization(
        MaterializationRecord(
            view="stats",
            data_hash=feature_view_fingerprint(view).data_hash,
            kind="incremental",
            start_us=None,
            end_us=int(end.timestamp() * 1_000_000),
            arrival_watermark_us=None,
            delta_path="/lake/stats",
            delta_version=1,
            rows_read=1,
            rows_written_offline=1,
            keys_offered_online=1,
            keys_written_online=1,
            seconds=1.0,
            finished_at=end,
        )
    )


def row_of(output: str, view: str) -> str:
    return next(line for line in output.splitlines() if f" {view} " in line)


def test_status_flags_a_view_never_materialized_and_fails_if_asked(repo: Path) -> None:
    code, shown = invoke("status", "--repo", str(repo))
    assert code == 0
    assert "never run" in row_of(shown, "stats") and "stale: stats" in shown
    code, _ = invoke("status", "--repo", str(repo), "--fail-if-stale")
    assert code == 2


def test_status_flags_a_view_older_than_its_expected_freshness(repo: Path) -> None:
    now = datetime.now(UTC)
    record(repo, now - timedelta(hours=3))  # hourly, 10 min delay: 1 h 10 to 2 h 10 allowed
    code, shown = invoke("status", "--repo", str(repo), "--fail-if-stale")
    assert code == 2
    assert "STALE" in row_of(shown, "stats")
    record(repo, now - timedelta(minutes=20))
    code, shown = invoke("status", "--repo", str(repo), "--fail-if-stale")
    assert code == 0, shown
    assert "fresh" in row_of(shown, "stats") and "STALE" not in shown


def test_runs_lists_the_recorded_runs_newest_last(repo: Path) -> None:
    code, shown = invoke("runs", "--repo", str(repo))
    assert (code, shown.strip()) == (0, "No run recorded yet.")
    registry = FeatureStore(repo).registry
    lease = registry.acquire_lease("view:stats", "r1", 30, datetime.now(UTC))
    assert lease is not None
    for tick in (1, 2):
        run = registry.start_run(
            "stats",
            "schedule",
            tick_us=tick * 3_600_000_000,
            start_us=None,
            end_us=tick * 3_600_000_000,
            attempt=1,
            runner="r1",
            lease=lease,
            now=datetime.now(UTC),
        )
        registry.finish_run(
            run.id, "failed", lease=lease, now=datetime.now(UTC), error=f"boom {tick}"
        )
    code, shown = invoke("runs", "stats", "--repo", str(repo), "--limit", "1")
    assert code == 0
    assert "boom 2" in shown and "boom 1" not in shown
