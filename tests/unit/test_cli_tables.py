"""CLI tables never cut a name, a path or a hash: at 80 columns (and in a pipe, where the
width is 80) a long one folds onto the next lines of its cell; with --wide every row
stays on one line whatever the width."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from skewless import FeatureStore
from skewless.cli.main import app
from tests.unit.repo_fixtures import write_repo

LONG = "driver_hourly_statistics_for_the_pricing_model_" + "x" * 13  # 60 characters


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = write_repo(tmp_path / "repo")
    defs = root / "defs.py"
    defs.write_text(defs.read_text().replace('    "stats",', f'    "{LONG}",'))
    FeatureStore(root).apply()
    return root


def _invoke(*args: str) -> str:
    result = CliRunner().invoke(app, list(args), env={"COLUMNS": "80"})
    assert result.exit_code == 0, result.output
    return result.output


def _column(shown: str, index: int) -> str:
    """The text of one column of a rich table, its cells' lines joined in order."""
    rows = [line.split("│") for line in shown.splitlines() if line.startswith("│")]
    return "".join(cells[index].strip() for cells in rows)


def test_list_folds_long_names_and_hashes_at_80_columns(repo: Path) -> None:
    assert len(LONG) == 60
    view = FeatureStore(repo).registry.get("feature_view", LONG)
    assert view is not None
    shown = _invoke("list", "--repo", str(repo))
    assert all(len(line) <= 80 for line in shown.splitlines())
    assert "…" not in shown
    assert LONG not in shown  # it did not fit on one line ...
    assert _column(shown, 2) == "driversvc" + LONG  # ... and is whole, folded
    assert view.data_hash in _column(shown, 5)


@pytest.mark.parametrize("command", [["list"], ["describe", LONG]])
def test_wide_prints_each_row_on_one_line(repo: Path, command: list[str]) -> None:
    view = FeatureStore(repo).registry.get("feature_view", LONG)
    assert view is not None
    shown = _invoke(*command, "--wide", "--repo", str(repo))
    rows = [line for line in shown.splitlines() if line.startswith("│")]
    (row,) = [line for line in rows if LONG in line]
    assert view.data_hash in row and "feature view" in row
    assert len(row) > 80
