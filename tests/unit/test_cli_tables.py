"""CLI tables never cut a name, a path, a hash or a count: at 80 columns (and in a pipe,
where the width is 80) a long one folds onto the next lines of its cell; with --wide
every row stays on one line whatever the width."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from skewless import FeatureStore
from skewless.cli.main import app
from skewless.registry import MaterializationRecord
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


COUNTS = ("1,234,567,890", "1,000,000,000", "234,567,890", "987,654,321")


def _record_big_run(repo: Path) -> str:
    """Record a run of the LONG view with counts too wide for 80 columns, as a
    materialization records it; returns the view's data hash."""
    store = FeatureStore(repo)
    view = store.registry.get("feature_view", LONG)
    assert view is not None
    store.registry.record_materialization(
        MaterializationRecord(
            view=LONG,
            data_hash=view.data_hash,
            kind="incremental",
            start_us=1_704_067_200_000_000,  # 2024-01-01
            end_us=1_767_225_600_000_000,  # 2026-01-01
            arrival_watermark_us=None,
            delta_path=f"{repo}/data/offline/unit/{LONG}/{view.data_hash}",
            delta_version=12,
            rows_read=1_234_567_890,
            rows_written_offline=1_234_567_890,
            keys_offered_online=987_654_321,
            keys_written_online=987_654_321,
            seconds=1.0,
            finished_at=datetime.now(UTC),
            rows_inserted_offline=1_000_000_000,
            rows_updated_offline=234_567_890,
        )
    )
    return view.data_hash


def _body_columns(shown: str, title: str) -> list[str]:
    """The cells of the one body row of the borderless table titled `title`, each cell's
    lines joined: columns are told apart by the blank character columns between them."""
    lines = shown.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(title))
    rule = next(i for i in range(start, len(lines)) if lines[i].strip().startswith("─"))
    end = next(i for i in range(rule + 1, len(lines)) if not lines[i].strip())
    body = lines[rule + 1 : end]
    width = max(len(line) for line in body)
    body = [line.ljust(width) for line in body]
    filled = [any(line[i] != " " for line in body) for i in range(width)]
    cells: list[str] = []
    i = 0
    while i < width:
        if not filled[i]:
            i += 1
            continue
        j = i
        while j < width and filled[j]:
            j += 1
        cells.append("".join(line[i:j].strip() for line in body))
        i = j
    return cells


def test_history_folds_counts_and_keeps_every_column_at_80_columns(repo: Path) -> None:
    data_hash = _record_big_run(repo)
    shown = _invoke("history", LONG, "--repo", str(repo))
    table_lines = [line for line in shown.splitlines() if not line.startswith("    /")]
    assert all(len(line) <= 80 for line in table_lines)  # the path line is never broken
    assert "…" not in shown
    runs = _body_columns(shown, "Data versions of")
    assert runs[1:2] == ["v1"] and runs[4:] == ["v12", *COUNTS[:3], "0", COUNTS[3]]
    # hashes are shown by their first 8 characters on purpose, as git shows commits
    assert data_hash[:8] in _body_columns(shown, "Definition versions of")


def test_history_wide_prints_each_run_on_one_line(repo: Path) -> None:
    _record_big_run(repo)
    shown = _invoke("history", LONG, "--wide", "--repo", str(repo))
    (row,) = [line for line in shown.splitlines() if all(c in line for c in COUNTS)]
    assert "v12" in row and "incr." in row and len(row) > 80
