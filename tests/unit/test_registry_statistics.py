"""Feature statistics in the SQLite registry: stored with the run that committed their
version, in one transaction fenced by the view's lease; reference edges written once per
definition; the schema version 4 migration; reading sides of a comparison."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from skewless.errors import DriftSideError, LeaseLostError, SummaryError
from skewless.offline.drift import SavedTrainingSet, WholeTable, parse_side, parse_version
from skewless.registry import MaterializationRecord, SqliteRegistry, VersionStatistics
from skewless.stats import summarize_categorical, summarize_numeric

T0 = datetime(2026, 3, 1, 12, tzinfo=UTC)
EDGES = (1.0, 2.0, 3.0)


@pytest.fixture
def reg(tmp_path: Path) -> SqliteRegistry:
    return SqliteRegistry(tmp_path / "r.db", "p")


def _run(version: int, data_hash: str = "d1") -> MaterializationRecord:
    return MaterializationRecord(
        view="v",
        data_hash=data_hash,
        kind="incremental",
        start_us=None,
        end_us=2_000 + version,
        arrival_watermark_us=900,
        delta_path="/lake/p/v/d1",
        delta_version=version,
        rows_read=4,
        rows_written_offline=4,
        keys_offered_online=2,
        keys_written_online=2,
        seconds=1.0,
        finished_at=T0 + timedelta(minutes=version),
    )


def _stats(
    version: int, edges: tuple[float, ...] = EDGES, data_hash: str = "d1"
) -> VersionStatistics:
    return VersionStatistics(
        view="v",
        data_hash=data_hash,
        delta_version=version,
        kind="incremental",
        start_us=None,
        end_us=2_000 + version,
        rows=4,
        recorded_at=T0 + timedelta(minutes=version),
        summaries={
            "x": summarize_numeric(np.array([0.5, 1.5, np.nan, 3.5]), edges),
            "s": summarize_categorical(["a", "b", None, "a"]),
        },
    )


def test_registry_statistics_round_trip_with_their_run(reg: SqliteRegistry) -> None:
    reg.record_materialization(_run(0), statistics=_stats(0))
    reg.record_materialization(_run(1))  # a run without statistics
    reg.record_materialization(_run(2), statistics=_stats(2))
    assert reg.statistics("v") == [_stats(0), _stats(2)]
    assert reg.statistics("v", "d2") == []
    assert reg.statistics("other") == []
    assert len(reg.materializations("v")) == 3


def test_registry_reference_edges_are_fixed_by_the_first_version(reg: SqliteRegistry) -> None:
    reg.record_materialization(_run(0), statistics=_stats(0))
    reg.record_materialization(_run(1), statistics=_stats(1, edges=(0.0, 10.0)))
    assert reg.statistics_edges("v", "d1") == {"x": EDGES}
    # another definition has edges of its own
    reg.record_materialization(_run(2, "d2"), statistics=_stats(2, (5.0,), "d2"))
    assert reg.statistics_edges("v", "d2") == {"x": (5.0,)}
    assert reg.statistics_edges("v", "d3") == {}


def test_registry_statistics_are_not_written_once_the_lease_is_lost(reg: SqliteRegistry) -> None:
    lease = reg.acquire_lease("view:v", "r1", 10, T0)
    assert lease is not None
    taken = reg.acquire_lease("view:v", "r2", 10, T0 + timedelta(seconds=11))
    assert taken is not None
    with pytest.raises(LeaseLostError):
        reg.record_materialization(_run(0), lease=lease, statistics=_stats(0))
    assert reg.statistics("v") == [] and reg.statistics_edges("v", "d1") == {}
    assert reg.materializations() == []


def test_registry_statistics_of_a_version_summarized_again_are_replaced(
    reg: SqliteRegistry,
) -> None:
    reg.record_materialization(_run(0), statistics=_stats(0))
    again = replace(_stats(0), rows=5)
    reg.record_materialization(_run(0), statistics=again)
    assert reg.statistics("v") == [again]


def test_registry_malformed_statistics_name_the_view_and_version(
    reg: SqliteRegistry, tmp_path: Path
) -> None:
    reg.record_materialization(_run(3), statistics=_stats(3))
    with closing(sqlite3.connect(tmp_path / "r.db")) as conn:
        conn.execute('UPDATE feature_statistics SET summaries=\'{"x": {"kind": "odd"}}\'')
        conn.commit()
    with pytest.raises(SummaryError, match="feature view 'v' version 3 .*unknown summary kind"):
        reg.statistics("v")


def test_registry_remove_project_deletes_its_statistics(
    reg: SqliteRegistry, tmp_path: Path
) -> None:
    other = SqliteRegistry(tmp_path / "r.db", "q")
    reg.record_materialization(_run(0), statistics=_stats(0))
    other.record_materialization(_run(0), statistics=_stats(0))
    reg.remove_project()
    assert reg.statistics("v") == [] and reg.statistics_edges("v", "d1") == {}
    assert other.statistics("v") == [_stats(0)]


def test_registry_of_schema_version_3_gains_the_statistics_tables(tmp_path: Path) -> None:
    path = tmp_path / "r.db"
    SqliteRegistry(path, "p").record_materialization(_run(0))
    with closing(sqlite3.connect(path)) as conn:
        conn.execute("DROP TABLE feature_statistics")
        conn.execute("DROP TABLE statistics_edges")
        conn.execute("UPDATE registry_meta SET value='3' WHERE key='schema_version'")
        conn.commit()
    reg = SqliteRegistry(path, "p")
    assert len(reg.materializations()) == 1
    reg.record_materialization(_run(1), statistics=_stats(1))
    assert [s.delta_version for s in reg.statistics("v")] == [1]
    with closing(sqlite3.connect(path)) as conn:
        (version,) = conn.execute(
            "SELECT value FROM registry_meta WHERE key='schema_version'"
        ).fetchone()
    assert version == "4"


@pytest.mark.parametrize(
    ("text", "side"),
    [
        ("latest", "latest"),
        ("7", 7),
        ("table", WholeTable()),
        ("table:3", WholeTable(3)),
        ("training-set:churn_2026", SavedTrainingSet("churn_2026")),
        ("2026-03-01T12:00", T0),
        ("2026-03-01T13:00+01:00", T0),
    ],
)
def test_parse_side_reads_every_form(text: str, side: object) -> None:
    assert parse_side(text, "--from") == side


@pytest.mark.parametrize("text", ["yesterday", "table:x", "-1", ""])
def test_parse_side_names_what_it_cannot_read(text: str) -> None:
    with pytest.raises(DriftSideError, match="--from"):
        parse_side(text, "--from")


def test_parse_version_refuses_sides_computed_on_demand() -> None:
    assert parse_version("3") == 3
    with pytest.raises(DriftSideError, match="expected latest, a version number"):
        parse_version("table")
