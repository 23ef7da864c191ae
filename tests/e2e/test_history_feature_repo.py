"""`history`, `rollback` and `lineage` on the example feature_repo, through the real CLI
(a subprocess, as a user runs it)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.example import cli, example_repo


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of feature_repo/ with generated data, applied once."""
    target = example_repo(tmp_path_factory.mktemp("history"), "history_generate_data")
    assert cli(target, "apply").returncode == 0
    return target


def test_history_and_rollback_of_an_example_view(repo: Path) -> None:
    views = repo / "zone_features.py"
    original = views.read_text()
    views.write_text(original.replace("ttl=timedelta(hours=1)", "ttl=timedelta(hours=3)"))
    assert cli(repo, "apply").returncode == 0
    edited = views.read_text().replace('description="The marketplace', 'description="Now: the')
    views.write_text(edited)
    assert cli(repo, "apply").returncode == 0

    history = cli(repo, "history", "zone_demand")
    assert history.returncode == 0, history.stderr
    assert "Definition versions of 'zone_demand'" in history.stdout
    assert "ttl: 1h -> 3h" in history.stdout
    assert "metadata only" in history.stdout
    assert "No materialization of 'zone_demand' is recorded." in history.stdout
    assert max(len(line) for line in history.stdout.splitlines()) <= 100

    rolled = cli(repo, "rollback", "zone_demand", "--to", "1", "--yes")
    assert rolled.returncode == 0, rolled.stderr
    out = " ".join(rolled.stdout.split())  # as one line: rich wraps long lines
    assert "~ change feature view 'zone_demand' (v3 -> v4, data change: description, ttl)" in out
    for service in ("surge_pricing_model_v1", "trip_completion_model_v1"):
        assert f"~ change feature service '{service}'" in out
    assert "No Delta table of that data hash exists: a full materialization is needed" in out
    assert "the feature repo's files still define 'zone_demand' differently from v1" in out

    views.write_text(original)  # the file edited back to v1: the next apply changes nothing
    assert "No changes" in cli(repo, "plan").stdout
    again = cli(repo, "rollback", "zone_demand", "--to", "4", "--yes")
    assert again.returncode == 1
    assert again.stderr.startswith("Error: cannot roll feature view 'zone_demand' back to v4")


def test_lineage_of_an_example_service(repo: Path) -> None:
    result = cli(repo, "lineage", "trip_completion_model_v1")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("feature service 'trip_completion_model_v1' · v")
    for view, source in [
        ("driver_hourly_stats", "data/driver_hourly_stats.parquet"),
        ("customer_daily_profile", "data/customer_daily_profile"),
        ("zone_demand", "data/zone_demand.parquet"),
    ]:
        assert any(f"feature view '{view}' · v" in line for line in lines), result.stdout
        assert any(f"source {source}" in line for line in lines), result.stdout
    assert lines[-1] == "(current versions)"
    unknown = cli(repo, "lineage", "trip_model")
    assert unknown.returncode == 1
    assert "Known training sets: (none); feature services: surge_pricing_model_v1" in (
        unknown.stderr
    )
