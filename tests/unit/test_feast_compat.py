"""What a Feast user types works where the meaning is the same: the CLI's --version and
-c, `init NAME` naming the project, Feast's keyword names for materialization."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from skewless import __version__
from skewless.cli.commands import project_name
from skewless.cli.main import app
from skewless.feature_store import _either

runner = CliRunner()


def test_cli_version() -> None:
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.stdout.strip() == f"skewless {__version__}"


def test_cli_init_names_the_project_after_the_folder_and_c_is_repo(tmp_path: Path) -> None:
    repo = tmp_path / "Rides Team-2"
    assert runner.invoke(app, ["init", str(repo)]).exit_code == 0
    assert (repo / "feature_store.yaml").read_text().startswith("project: rides_team_2\n")
    for flag in ("-c", "--chdir", "--repo", "-r"):
        listed = runner.invoke(app, ["list", flag, str(repo)])
        assert listed.exit_code == 0, listed.stdout
        assert "Nothing applied yet" in listed.stdout
    named = tmp_path / "other"
    assert runner.invoke(app, ["init", str(named), "--project", "mine"]).exit_code == 0
    assert (named / "feature_store.yaml").read_text().startswith("project: mine\n")


@pytest.mark.parametrize(
    ("folder", "project"),
    [("feature_repo", "feature_repo"), ("2024 Models", "p_2024_models"), ("é", "my_project")],
)
def test_project_name_is_an_identifier(folder: str, project: str) -> None:
    assert project_name(Path("/tmp") / folder) == project


def test_feast_keyword_names_are_aliases_never_both() -> None:
    t = datetime(2026, 1, 1, tzinfo=UTC)
    assert _either("end", None, "end_date", t) == t
    assert _either("end", t, "end_date", None) == t
    assert _either("end", None, "end_date", None) is None
    with pytest.raises(TypeError, match="give end or end_date, not both"):
        _either("end", t, "end_date", t)
