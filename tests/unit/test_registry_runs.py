"""Scheduler run history in the SQLite registry: recording runs, fencing every write by
the view's lease, and the schema version 3 migration that adds runs and leases."""

from __future__ import annotations

import json
import sqlite3
from contextlib import closing
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from skewless.errors import LeaseLostError, RegistryError
from skewless.registry import (
    Lease,
    MaterializationRecord,
    MaterializedUntil,
    RunRecord,
    RunStatus,
    SqliteRegistry,
    TrainingSetRecord,
)
from skewless.registry import sqlite as registry_sqlite

T0 = datetime(2026, 3, 1, 12, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


@pytest.fixture
def reg(tmp_path: Path) -> SqliteRegistry:
    return SqliteRegistry(tmp_path / "r.db", "p")


def _lease(reg: SqliteRegistry, holder: str = "r1", now: float = 0, view: str = "v") -> Lease:
    lease = reg.acquire_lease(f"view:{view}", holder, 10, at(now))
    assert lease is not None
    return lease


def _start(
    reg: SqliteRegistry, lease: Lease | None, now: float = 1, view: str = "v", **changes: Any
) -> RunRecord:
    args: dict[str, Any] = {
        "tick_us": 3_600_000_000,
        "start_us": 1_000,
        "end_us": 2_000,
        "attempt": 1,
        "runner": "r1" if lease is None else lease.holder,
        "backfill": "",
    }
    args.update(changes)
    trigger = args.pop("trigger", "schedule")
    return reg.start_run(view, trigger, lease=lease, now=at(now), **args)


def _materialization(view: str = "v") -> MaterializationRecord:
    return MaterializationRecord(
        view=view,
        data_hash="d1",
        kind="incremental",
        start_us=None,
        end_us=2_000,
        arrival_watermark_us=900,
        delta_path=f"/lake/p/{view}/d1",
        delta_version=3,
        rows_read=10,
        rows_written_offline=7,
        keys_offered_online=3,
        keys_written_online=3,
        seconds=1.5,
        finished_at=at(5),
    )


# --- recording runs --------------------------------------------------------------------


def test_registry_run_is_recorded_running_then_finished(reg: SqliteRegistry) -> None:
    lease = _lease(reg)
    started = _start(reg, lease, now=1, attempt=2)
    assert started == RunRecord(
        id=started.id,
        view="v",
        trigger="schedule",
        tick_us=3_600_000_000,
        start_us=1_000,
        end_us=2_000,
        status="running",
        attempt=2,
        started_at=at(1),
        finished_at=None,
        runner="r1",
        lease_token=1,
    )
    assert reg.runs() == [started]
    finished = reg.finish_run(
        started.id,
        "succeeded",
        lease=lease,
        now=at(4),
        rows_read=10,
        rows_written_offline=7,
        keys_written_online=3,
        delta_version=5,
    )
    assert finished == replace(
        started,
        status="succeeded",
        finished_at=at(4),
        rows_read=10,
        rows_written_offline=7,
        keys_written_online=3,
        delta_version=5,
    )
    assert reg.runs("v") == [finished]


def test_registry_run_failed_keeps_its_error(reg: SqliteRegistry) -> None:
    run = _start(reg, None, trigger="manual", tick_us=None, start_us=None)
    failed = reg.finish_run(run.id, "failed", lease=None, now=at(2), error="source missing")
    assert (failed.status, failed.error, failed.trigger, failed.tick_us) == (
        "failed",
        "source missing",
        "manual",
        None,
    )
    assert reg.runs() == [failed]


def test_registry_run_skipped_record_says_what_it_skipped(reg: SqliteRegistry) -> None:
    lease = _lease(reg)
    run = _start(reg, lease)
    note = "skipped 22 ticks from 2026-02-27T10:00 to 2026-02-28T07:00 (older than catch_up)"
    skipped = reg.finish_run(run.id, "skipped", lease=lease, now=at(1), note=note)
    assert reg.runs() == [skipped]
    assert (skipped.status, skipped.note, skipped.rows_read) == ("skipped", note, None)


def test_registry_backfill_chunks_carry_the_backfill_id(reg: SqliteRegistry) -> None:
    lease = _lease(reg)
    run = _start(reg, lease, trigger="backfill", tick_us=None, backfill="bf-1")
    assert reg.runs()[0].backfill == "bf-1" == run.backfill


def test_registry_runs_are_listed_oldest_first_and_by_view(reg: SqliteRegistry) -> None:
    v, w = _lease(reg), _lease(reg, view="w")
    first = _start(reg, v, now=5)
    second = _start(reg, w, now=3, view="w")
    third = _start(reg, v, now=4)
    reg.finish_run(first.id, "succeeded", lease=v, now=at(6))
    assert [r.id for r in reg.runs()] == [first.id, second.id, third.id]
    assert first.id < second.id < third.id
    assert [r.id for r in reg.runs("v")] == [first.id, third.id]
    assert [r.id for r in reg.runs("w")] == [second.id]
    assert reg.runs("x") == []


def test_registry_run_finished_twice_is_refused(reg: SqliteRegistry) -> None:
    lease = _lease(reg)
    run = _start(reg, lease)
    done = reg.finish_run(run.id, "succeeded", lease=lease, now=at(2), rows_read=1)
    again: tuple[RunStatus, ...] = ("failed", "succeeded")
    for status in again:
        with pytest.raises(RegistryError) as info:
            reg.finish_run(run.id, status, lease=lease, now=at(3), rows_read=2)
        assert str(info.value) == (
            f"run {run.id} of feature view 'v' already finished as succeeded at "
            f"{at(2)}: a run is finished once"
        )
    assert reg.runs() == [done]


def test_registry_run_unknown_is_refused(reg: SqliteRegistry) -> None:
    with pytest.raises(RegistryError, match="the registry holds no run 42 of project 'p'"):
        reg.finish_run(42, "succeeded", lease=None, now=at(1))


def test_registry_run_cannot_finish_as_running(reg: SqliteRegistry) -> None:
    run = _start(reg, None)
    with pytest.raises(ValueError, match=f"run {run.id}: a run finishes as one of succeeded"):
        reg.finish_run(run.id, "running", lease=None, now=at(2))
    assert reg.runs()[0].status == "running"


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"trigger": "cron"}, "trigger must be one of schedule, once, backfill, manual"),
        ({"attempt": 0}, "attempt must be 1 or more, not 0"),
    ],
)
def test_registry_run_with_bad_fields_is_refused(
    reg: SqliteRegistry, changes: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValueError, match=f"run of feature view 'v': {message}"):
        _start(reg, None, **changes)
    assert reg.runs() == []


def test_registry_runs_of_each_project_are_separate(tmp_path: Path) -> None:
    a = SqliteRegistry(tmp_path / "r.db", "a")
    b = SqliteRegistry(tmp_path / "r.db", "b")
    run = _start(a, None)
    assert b.runs() == []
    with pytest.raises(RegistryError, match=f"no run {run.id} of project 'b'"):
        b.finish_run(run.id, "succeeded", lease=None, now=at(2))


def test_registry_remove_project_deletes_its_runs_and_leases(tmp_path: Path) -> None:
    a = SqliteRegistry(tmp_path / "r.db", "a")
    b = SqliteRegistry(tmp_path / "r.db", "b")
    for reg in (a, b):
        _start(reg, _lease(reg))
    a.remove_project()
    assert a.runs() == [] and a.lease("view:v") is None
    assert len(b.runs()) == 1 and b.lease("view:v") is not None


# --- fencing -------------------------------------------------------------------------


def _lost(reg: SqliteRegistry) -> Lease:
    """r1's lease on view:v, after r2 took it over (token 2)."""
    lease = _lease(reg, "r1", now=0)
    assert reg.acquire_lease("view:v", "r2", 10, at(10)) is not None
    return lease


def _is_takeover(error: LeaseLostError) -> bool:
    return (error.holder, error.token, error.current_holder, error.current_token) == (
        "r1",
        1,
        "r2",
        2,
    )


def test_registry_start_run_under_a_lost_lease_records_nothing(reg: SqliteRegistry) -> None:
    lease = _lost(reg)
    with pytest.raises(LeaseLostError) as info:
        _start(reg, lease, now=11)
    assert _is_takeover(info.value)
    assert reg.runs() == []


def test_registry_finish_run_under_a_lost_lease_records_nothing(reg: SqliteRegistry) -> None:
    manual = _start(reg, None)  # a run the takeover does not abandon
    lease = _lost(reg)
    with pytest.raises(LeaseLostError) as info:
        reg.finish_run(manual.id, "succeeded", lease=lease, now=at(11), rows_read=5)
    assert _is_takeover(info.value)
    assert reg.runs() == [manual]


def test_registry_materialization_under_a_lost_lease_records_nothing(
    reg: SqliteRegistry,
) -> None:
    lease = _lost(reg)
    with pytest.raises(LeaseLostError) as info:
        reg.record_materialization(_materialization(), lease)
    assert _is_takeover(info.value)
    assert reg.materializations() == []


def test_registry_writes_under_a_live_lease_are_recorded(reg: SqliteRegistry) -> None:
    lease = _lease(reg)
    run = _start(reg, lease)
    reg.record_materialization(_materialization(), lease)
    reg.record_materialization(_materialization("w"))  # a manual run: no lease
    reg.finish_run(run.id, "succeeded", lease=lease, now=at(2))
    assert [m.view for m in reg.materializations()] == ["v", "w"]
    assert reg.runs()[0].status == "succeeded"


def test_registry_writes_under_an_expired_lease_nobody_took_are_recorded(
    reg: SqliteRegistry,
) -> None:
    lease = _lease(reg, now=0)  # expires at 10; nobody else asks
    run = _start(reg, lease, now=30)
    reg.record_materialization(_materialization(), lease)
    done = reg.finish_run(run.id, "succeeded", lease=lease, now=at(40))
    assert reg.runs() == [done] and len(reg.materializations()) == 1


def test_registry_writes_under_another_views_lease_are_refused(reg: SqliteRegistry) -> None:
    lease = _lease(reg, view="w")
    message = "feature view 'v': writes for it take its lease 'view:v', not 'view:w'"
    with pytest.raises(ValueError, match=message):
        _start(reg, lease)
    with pytest.raises(ValueError, match=message):
        reg.record_materialization(_materialization("v"), lease)
    run = _start(reg, None)
    with pytest.raises(ValueError, match=message):
        reg.finish_run(run.id, "succeeded", lease=lease, now=at(2))
    assert reg.materializations() == [] and reg.runs() == [run]


# --- schema version 2 files ----------------------------------------------------------

# How a registry file of schema version 2 was laid out.
V2_DDL = """
CREATE TABLE registry_meta (
    project TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL, PRIMARY KEY (project, key)
);
CREATE TABLE applies (
    project TEXT NOT NULL, registry_version INTEGER NOT NULL, applied_at TEXT NOT NULL,
    summary TEXT NOT NULL, PRIMARY KEY (project, registry_version)
);
CREATE TABLE object_versions (
    project TEXT NOT NULL, kind TEXT NOT NULL, name TEXT NOT NULL, version INTEGER NOT NULL,
    data_version INTEGER NOT NULL, data_hash TEXT NOT NULL, metadata_hash TEXT NOT NULL,
    spec TEXT NOT NULL, registry_version INTEGER NOT NULL, applied_at TEXT NOT NULL,
    removed INTEGER NOT NULL DEFAULT 0, PRIMARY KEY (project, kind, name, version)
);
CREATE TABLE materializations (
    project TEXT NOT NULL, run INTEGER PRIMARY KEY AUTOINCREMENT, record TEXT NOT NULL
);
CREATE TABLE training_sets (
    project TEXT NOT NULL, name TEXT NOT NULL, location TEXT NOT NULL,
    delta_version INTEGER NOT NULL, manifest TEXT NOT NULL, created_at TEXT NOT NULL,
    description TEXT NOT NULL, erasures TEXT NOT NULL, PRIMARY KEY (project, name)
);
"""

V2_RUN = {
    "arrival_watermark_us": 900,
    "data_hash": "d1",
    "delta_path": "/lake/p/v/d1",
    "delta_version": 3,
    "end_us": 2000,
    "finished_at": "2026-03-01T12:00:05+00:00",
    "keys_offered_online": 3,
    "keys_written_online": 3,
    "kind": "incremental",
    "online_seconds": 0.0,
    "rows_inserted_offline": None,
    "rows_read": 10,
    "rows_rejected": 0,
    "rows_updated_offline": None,
    "rows_written_offline": 7,
    "seconds": 1.5,
    "seen_files": [],
    "start_us": None,
    "view": "v",
}
SPEC = {"kind": "entity", "name": "a", "join_keys": ["a"]}
V2_SET = TrainingSetRecord(
    name="march",
    location="/lake/p/sets/march",
    delta_version=0,
    manifest={"features": ["v:x"]},
    created_at=datetime(2026, 3, 1, tzinfo=UTC),
)


def _v2_file(path: Path, projects: tuple[str, ...] = ("p",)) -> None:
    with closing(sqlite3.connect(path)) as conn:
        conn.executescript(V2_DDL)
        for project in projects:
            conn.executemany(
                "INSERT INTO registry_meta VALUES (?, ?, ?)",
                [(project, "schema_version", "2"), (project, "registry_version", "1")],
            )
            applied = "2026-02-01T10:00:00+00:00"
            conn.execute("INSERT INTO applies VALUES (?, 1, ?, '1 added')", (project, applied))
            conn.execute(
                "INSERT INTO object_versions "
                "VALUES (?, 'entity', 'a', 1, 1, 'd1', 'm', ?, 1, ?, 0)",
                (project, json.dumps(SPEC), applied),
            )
            for _ in range(2):
                conn.execute(
                    "INSERT INTO materializations (project, record) VALUES (?, ?)",
                    (project, json.dumps(V2_RUN)),
                )
            conn.execute(
                "INSERT INTO training_sets VALUES (?, 'march', '/lake/p/sets/march', 0, ?, "
                "'2026-03-01T00:00:00+00:00', '', '[]')",
                (project, json.dumps(V2_SET.manifest)),
            )
        conn.commit()


def _schema_versions(path: Path) -> list[tuple[str, str]]:
    with closing(sqlite3.connect(path)) as conn:
        return conn.execute(
            "SELECT project, value FROM registry_meta WHERE key='schema_version' ORDER BY project"
        ).fetchall()


def _tables(path: Path) -> set[str]:
    with closing(sqlite3.connect(path)) as conn:
        return {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}


def test_registry_of_schema_version_2_is_migrated_with_all_its_data(tmp_path: Path) -> None:
    path = tmp_path / "registry.db"
    _v2_file(path, ("p", "q"))
    reg = SqliteRegistry(path, "p")
    assert _schema_versions(path) == [("p", "4"), ("q", "4")]  # the whole file, once
    assert reg.registry_version() == 1
    assert [(r.name, r.spec) for r in reg.current()] == [("a", SPEC)]
    assert reg.materializations("v") == [_materialization(), _materialization()]
    assert reg.training_sets() == [V2_SET]
    # the tables version 3 adds are usable
    assert reg.runs() == [] and reg.lease("view:v") is None
    lease = _lease(reg)
    run = _start(reg, lease)
    reg.record_materialization(_materialization(), lease)
    assert reg.runs() == [run] and len(reg.materializations()) == 3
    q = SqliteRegistry(path, "q")
    assert q.runs() == [] and q.lease("view:v") is None and len(q.materializations()) == 2


def test_registry_migration_to_version_3_that_fails_leaves_the_file_as_it_was(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "registry.db"
    _v2_file(path)
    broken = registry_sqlite._MIGRATIONS[3] + "CREATE TABLE broken (;"
    monkeypatch.setitem(registry_sqlite._MIGRATIONS, 3, broken)
    with pytest.raises(RegistryError, match="cannot use registry"):
        SqliteRegistry(path, "p")
    assert not {"runs", "leases"} & _tables(path)
    assert _schema_versions(path) == [("p", "2")]
    monkeypatch.undo()
    assert len(SqliteRegistry(path, "p").materializations()) == 2
    assert _schema_versions(path) == [("p", "4")]


def test_registry_materialized_until_is_the_greatest_end_and_latest_finish_per_definition(
    reg: SqliteRegistry,
) -> None:
    first = _materialization()
    reg.record_materialization(first)
    reg.record_materialization(replace(first, end_us=5_000, finished_at=at(4)))
    reg.record_materialization(replace(first, end_us=3_000, finished_at=at(9)))
    reg.record_materialization(replace(first, data_hash="d2", end_us=1))
    reg.record_materialization(_materialization("w"))
    assert reg.materialized_until() == [
        MaterializedUntil("v", "d1", 5_000, at(9)),
        MaterializedUntil("v", "d2", 1, at(5)),
        MaterializedUntil("w", "d1", 2_000, at(5)),
    ]
    assert [m.view for m in reg.materializations("w")] == ["w"]


def test_registry_file_of_a_removed_project_opens_again(tmp_path: Path) -> None:
    """teardown removes a project's rows, not the tables: opening the file for a project
    again migrates an empty file whose tables are all there."""
    path = tmp_path / "registry.db"
    SqliteRegistry(path, "p").remove_project()
    again = SqliteRegistry(path, "p")
    again.record_materialization(_materialization())
    assert [m.view for m in again.materializations("v")] == ["v"]


def test_registry_runs_last_gives_the_newest_oldest_first(reg: SqliteRegistry) -> None:
    lease = _lease(reg)
    ids = [_start(reg, lease, now=n).id for n in range(5)]
    assert [r.id for r in reg.runs("v", last=2)] == ids[-2:]
    assert [r.id for r in reg.runs(last=10)] == ids
