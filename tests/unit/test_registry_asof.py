"""The registry's history as of a version or a time, saved training sets and their
erasures, and the migration of a registry file written in schema version 1."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from contextlib import closing
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from skewless.errors import (
    RegistryError,
    RegistryLockedError,
    RegistryVersionNotFoundError,
    TrainingSetExistsError,
    TrainingSetNotFoundError,
)
from skewless.registry import (
    ErasureRecord,
    MaterializationRecord,
    ObjectKind,
    ObjectWrite,
    SqliteRegistry,
    TrainingSetRecord,
)
from skewless.registry import sqlite as registry_sqlite


def _write(
    name: str, data_hash: str = "d1", *, kind: ObjectKind = "entity", removed: bool = False
) -> ObjectWrite:
    spec = {"kind": kind, "name": name, "join_keys": [name], "description": data_hash}
    return ObjectWrite(kind, name, data_hash, "m", spec, data_changed=True, removed=removed)


def _state(reg: SqliteRegistry, version: int, kind: ObjectKind | None = None) -> list[Any]:
    return [(r.kind, r.name, r.version, r.data_hash) for r in reg.current_at(version, kind)]


# --- as of a registry version ----------------------------------------------------------


def test_registry_current_at_follows_adds_changes_removals_and_readds(tmp_path: Path) -> None:
    reg = SqliteRegistry(tmp_path / "r.db", "p")
    reg.commit(0, [_write("a"), _write("b")], "1: add a, b")
    reg.commit(1, [_write("a", "d2")], "2: change a")
    reg.commit(2, [_write("b", removed=True), _write("c", kind="feature_service")], "3")
    reg.commit(3, [_write("b", "d3")], "4: b again, with another definition")
    reg.commit(4, [_write("a", removed=True)], "5: remove a")

    assert _state(reg, 0) == []
    assert _state(reg, 1) == [("entity", "a", 1, "d1"), ("entity", "b", 1, "d1")]
    assert _state(reg, 2) == [("entity", "a", 2, "d2"), ("entity", "b", 1, "d1")]
    assert _state(reg, 3) == [("entity", "a", 2, "d2"), ("feature_service", "c", 1, "d1")]
    assert _state(reg, 4) == [
        ("entity", "a", 2, "d2"),
        ("entity", "b", 3, "d3"),  # version 2 was its removal
        ("feature_service", "c", 1, "d1"),
    ]
    assert _state(reg, 5) == [("entity", "b", 3, "d3"), ("feature_service", "c", 1, "d1")]
    assert reg.current_at(5) == reg.current()
    assert _state(reg, 3, "entity") == [("entity", "a", 2, "d2")]
    assert _state(reg, 3, "feature_service") == [("feature_service", "c", 1, "d1")]
    # each record is the one written then, spec and all
    (b_again,) = [r for r in reg.current_at(4) if r.name == "b"]
    assert b_again.registry_version == 4 and b_again.spec["description"] == "d3"
    assert b_again.data_version == 2 and not b_again.removed


def test_registry_current_at_refuses_a_version_it_has_not_reached(tmp_path: Path) -> None:
    reg = SqliteRegistry(tmp_path / "r.db", "p")
    reg.commit(0, [_write("a")], "1")
    for version in (2, -1):
        with pytest.raises(RegistryVersionNotFoundError) as info:
            reg.current_at(version)
        assert (info.value.version, info.value.latest) == (version, 1)
        assert str(info.value).startswith(
            f"registry version {version} does not exist: the registry is at version 1"
        )


def test_registry_current_at_reads_its_own_project_only(tmp_path: Path) -> None:
    a = SqliteRegistry(tmp_path / "r.db", "a")
    b = SqliteRegistry(tmp_path / "r.db", "b")
    a.commit(0, [_write("x")], "")
    b.commit(0, [_write("y")], "")
    b.commit(1, [_write("y", "d2")], "")
    assert _state(a, 1) == [("entity", "x", 1, "d1")]
    assert _state(b, 1) == [("entity", "y", 1, "d1")]
    with pytest.raises(RegistryVersionNotFoundError):
        a.current_at(2)


# --- as of a time ------------------------------------------------------------------------

T1 = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)
T2 = T1 + timedelta(hours=1)
T3 = T2 + timedelta(microseconds=1)


def _at_times(path: Path, times: list[datetime]) -> SqliteRegistry:
    """A registry whose applies were made at `times` (set in the file afterwards)."""
    reg = SqliteRegistry(path, "p")
    for i in range(len(times)):
        reg.commit(i, [_write("a", f"d{i}")], str(i + 1))
    with closing(sqlite3.connect(path)) as conn:
        for i, when in enumerate(times, start=1):
            conn.execute(
                "UPDATE applies SET applied_at=? WHERE project='p' AND registry_version=?",
                (when.isoformat(), i),
            )
        conn.commit()
    return reg


def test_registry_version_at_boundaries(tmp_path: Path) -> None:
    reg = _at_times(tmp_path / "r.db", [T1, T2, T3])
    tiny = timedelta(microseconds=1)
    assert reg.version_at(T1 - tiny) == 0  # before the first apply
    assert reg.version_at(T1) == 1  # an apply is current from its own time on
    assert reg.version_at(T2 - tiny) == 1
    assert reg.version_at(T2) == 2
    assert reg.version_at(T3) == 3  # a microsecond later
    assert reg.version_at(T3 + timedelta(days=365)) == 3


def test_registry_version_at_naive_means_utc(tmp_path: Path) -> None:
    reg = _at_times(tmp_path / "r.db", [T1, T2])
    assert reg.version_at(T2.replace(tzinfo=None)) == 2
    assert reg.version_at(T2.replace(tzinfo=None) - timedelta(microseconds=1)) == 1
    # the same instant written in another time zone
    madrid = timezone(timedelta(hours=1))
    assert reg.version_at(T2.astimezone(madrid)) == 2
    assert reg.version_at(T2.replace(tzinfo=madrid)) == 1  # an hour earlier in UTC


def test_registry_version_at_takes_the_newest_of_applies_made_at_one_instant(
    tmp_path: Path,
) -> None:
    reg = _at_times(tmp_path / "r.db", [T1, T2, T2])
    assert reg.version_at(T2) == 3
    assert reg.version_at(T1) == 1


def test_registry_version_at_of_an_empty_registry_is_zero(tmp_path: Path) -> None:
    assert SqliteRegistry(tmp_path / "r.db", "p").version_at(datetime.now(UTC)) == 0


# --- saved training sets ---------------------------------------------------------------

MANIFEST: dict[str, Any] = {
    "project": "p",
    "registry_version": 3,
    "features": ["stats:rating", "stats:trips"],
    "inputs": [{"view": "stats", "format": "delta", "delta_version": 7, "files": None}],
    "result": {"rows": 120, "digest": "abc", "columns": [["driver_id", "bigint"]]},
    "zeta": "é ✓",
}


def _set(name: str, **changes: Any) -> TrainingSetRecord:
    record = TrainingSetRecord(
        name=name,
        location=f"/lake/p/training_sets/{name}",
        delta_version=0,
        manifest=MANIFEST,
        created_at=datetime(2026, 3, 2, 9, 30, 15, 123456, tzinfo=UTC),
        description="churn model, March",
    )
    return replace(record, **changes)


def _erasure(rows: int, version: int) -> ErasureRecord:
    return ErasureRecord(
        view="stats",
        keys=2,
        rows_removed=rows,
        delta_version=version,
        erased_at=datetime(2026, 4, 1, tzinfo=UTC) + timedelta(minutes=version),
    )


def test_registry_training_set_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "r.db"
    reg = SqliteRegistry(path, "p")
    assert reg.training_sets() == [] and reg.training_set("march") is None
    record = _set("march")
    reg.record_training_set(record)
    assert reg.training_set("march") == record
    assert SqliteRegistry(path, "p").training_sets() == [record]  # another handle, same file
    # the manifest is JSON text in the file, keys sorted (never pickled)
    with closing(sqlite3.connect(path)) as conn:
        (text,) = conn.execute("SELECT manifest FROM training_sets").fetchone()
    assert json.loads(text) == MANIFEST
    assert text == json.dumps(MANIFEST, sort_keys=True)


def test_registry_training_sets_are_listed_oldest_first(tmp_path: Path) -> None:
    reg = SqliteRegistry(tmp_path / "r.db", "p")
    for name in ("zeta", "alpha", "mid"):
        reg.record_training_set(_set(name))
    assert [s.name for s in reg.training_sets()] == ["zeta", "alpha", "mid"]


def test_registry_refuses_a_taken_training_set_name(tmp_path: Path) -> None:
    reg = SqliteRegistry(tmp_path / "r.db", "p")
    first = _set("march")
    reg.record_training_set(first)
    with pytest.raises(TrainingSetExistsError) as info:
        reg.record_training_set(_set("march", delta_version=9, description="other"))
    assert info.value.name == "march"
    assert reg.training_sets() == [first]  # the saved set is unchanged
    # the name is taken in this project only
    other = SqliteRegistry(tmp_path / "r.db", "other")
    other.record_training_set(_set("march", delta_version=4))
    assert other.training_set("march") == _set("march", delta_version=4)
    assert reg.training_set("march") == first


def test_registry_erasures_are_appended_and_read_back_in_order(tmp_path: Path) -> None:
    reg = SqliteRegistry(tmp_path / "r.db", "p")
    reg.record_training_set(_set("march", erasures=(_erasure(5, 1),)))
    reg.record_training_set(_set("april"))
    reg.record_erasure("march", _erasure(3, 2))
    reg.record_erasure("march", _erasure(0, 3))
    reg.record_erasure("april", _erasure(8, 1))
    march = reg.training_set("march")
    assert march is not None
    assert march.erasures == (_erasure(5, 1), _erasure(3, 2), _erasure(0, 3))
    assert [(s.name, s.erasures) for s in reg.training_sets()] == [
        ("march", march.erasures),
        ("april", (_erasure(8, 1),)),
    ]
    assert march.manifest == MANIFEST  # an erasure changes nothing else


def test_registry_erasure_of_an_unknown_training_set_is_refused(tmp_path: Path) -> None:
    reg = SqliteRegistry(tmp_path / "r.db", "p")
    reg.record_training_set(_set("march"))
    with pytest.raises(TrainingSetNotFoundError) as info:
        reg.record_erasure("mrach", _erasure(1, 1))
    assert str(info.value) == "unknown training set 'mrach'. Did you mean 'march'?"
    assert info.value.known == ["march"]
    assert reg.training_set("march") == _set("march")


# --- materialization records -----------------------------------------------------------


def _run(**changes: Any) -> MaterializationRecord:
    record = MaterializationRecord(
        view="stats",
        data_hash="d1",
        kind="full",
        start_us=None,
        end_us=1_000,
        arrival_watermark_us=900,
        delta_path="/lake/p/stats/d1",
        delta_version=2,
        rows_read=10,
        rows_written_offline=7,
        keys_offered_online=3,
        keys_written_online=3,
        seconds=1.5,
        finished_at=datetime(2026, 3, 1, tzinfo=UTC),
    )
    return replace(record, **changes)


def test_registry_materialization_keeps_rows_inserted_and_updated(tmp_path: Path) -> None:
    reg = SqliteRegistry(tmp_path / "r.db", "p")
    run = _run(rows_inserted_offline=5, rows_updated_offline=2)
    reg.record_materialization(run)
    assert reg.materializations("stats") == [run]


# --- schema version 1 files ------------------------------------------------------------

# How a registry file of schema version 1 was laid out and filled.
V1_DDL = """
CREATE TABLE IF NOT EXISTS registry_meta (
    project TEXT NOT NULL,
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (project, key)
);
CREATE TABLE IF NOT EXISTS applies (
    project TEXT NOT NULL,
    registry_version INTEGER NOT NULL,
    applied_at TEXT NOT NULL,
    summary TEXT NOT NULL,
    PRIMARY KEY (project, registry_version)
);
CREATE TABLE IF NOT EXISTS object_versions (
    project TEXT NOT NULL,
    kind TEXT NOT NULL,
    name TEXT NOT NULL,
    version INTEGER NOT NULL,
    data_version INTEGER NOT NULL,
    data_hash TEXT NOT NULL,
    metadata_hash TEXT NOT NULL,
    spec TEXT NOT NULL,
    registry_version INTEGER NOT NULL,
    applied_at TEXT NOT NULL,
    removed INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (project, kind, name, version)
);
CREATE TABLE IF NOT EXISTS materializations (
    project TEXT NOT NULL,
    run INTEGER PRIMARY KEY AUTOINCREMENT,
    record TEXT NOT NULL
);
"""

V1_RUN = {
    "arrival_watermark_us": 900,
    "data_hash": "d1",
    "delta_path": "/lake/p/stats/d1",
    "delta_version": 2,
    "end_us": 1000,
    "finished_at": "2026-03-01T00:00:00+00:00",
    "keys_offered_online": 3,
    "keys_written_online": 3,
    "kind": "full",
    "online_seconds": 0.0,
    "rows_read": 10,
    "rows_rejected": 0,
    "rows_written_offline": 7,
    "seconds": 1.5,
    "seen_files": [],
    "start_us": None,
    "view": "stats",
}
SPEC = {"kind": "entity", "name": "a", "join_keys": ["a"], "description": "d1"}


def _v1_file(path: Path, projects: tuple[str, ...] = ("p",)) -> None:
    with closing(sqlite3.connect(path)) as conn:
        conn.executescript(V1_DDL)
        for project in projects:
            conn.executemany(
                "INSERT INTO registry_meta VALUES (?, ?, ?)",
                [(project, "schema_version", "1"), (project, "registry_version", "1")],
            )
            at = "2026-02-01T10:00:00+00:00"
            conn.execute("INSERT INTO applies VALUES (?, 1, ?, '1 added')", (project, at))
            conn.execute(
                "INSERT INTO object_versions "
                "VALUES (?, 'entity', 'a', 1, 1, 'd1', 'm', ?, 1, ?, 0)",
                (project, json.dumps(SPEC), at),
            )
            conn.execute(
                "INSERT INTO materializations (project, record) VALUES (?, ?)",
                (project, json.dumps(V1_RUN)),
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


def test_registry_of_schema_version_1_is_migrated_with_all_its_data(tmp_path: Path) -> None:
    path = tmp_path / "registry.db"
    _v1_file(path, ("p", "q"))
    reg = SqliteRegistry(path, "p")
    assert _schema_versions(path) == [("p", "4"), ("q", "4")]  # the whole file, once
    assert reg.registry_version() == 1
    (record,) = reg.current()
    assert (record.name, record.version, record.spec) == ("a", 1, SPEC)
    assert record.applied_at == datetime(2026, 2, 1, 10, tzinfo=UTC)
    assert [a.summary for a in reg.applies()] == ["1 added"]
    # a run recorded in version 1 loads, without the split of rows written
    (run,) = reg.materializations()
    assert run == _run()
    assert (run.rows_inserted_offline, run.rows_updated_offline) == (None, None)
    # and the file now holds what versions 2 and 3 add
    reg.record_training_set(_set("march"))
    assert reg.training_sets() == [_set("march")]
    assert reg.commit(1, [_write("a", "d2")], "2") == 2
    assert _state(reg, 1) == [("entity", "a", 1, "d1")]
    assert reg.runs() == [] and reg.lease("view:v") is None
    q = SqliteRegistry(path, "q")
    assert q.registry_version() == 1 and q.training_sets() == []


def test_registry_migration_that_fails_leaves_the_file_as_it_was(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "registry.db"
    _v1_file(path)
    broken = registry_sqlite._DDL_V2 + "CREATE TABLE broken (;"
    monkeypatch.setitem(registry_sqlite._MIGRATIONS, 2, broken)
    with pytest.raises(RegistryError, match="cannot use registry"):
        SqliteRegistry(path, "p")
    assert "training_sets" not in _tables(path)
    assert _schema_versions(path) == [("p", "1")]
    monkeypatch.undo()
    assert SqliteRegistry(path, "p").materializations() == [_run()]


_HOLD_LOCK = """
import sqlite3, sys
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
conn.execute("BEGIN IMMEDIATE")
print("locked", flush=True)
sys.stdin.read()
"""


def test_registry_migration_waits_for_the_write_lock(tmp_path: Path) -> None:
    path = tmp_path / "registry.db"
    _v1_file(path)
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLD_LOCK, str(path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "locked\n"
        with pytest.raises(RegistryLockedError):
            SqliteRegistry(path, "p", timeout_s=0.2)
    finally:
        holder.communicate("", timeout=30)
    assert _schema_versions(path) == [("p", "1")]  # untouched
    SqliteRegistry(path, "p")
    assert _schema_versions(path) == [("p", "4")]


def test_registry_of_a_newer_schema_is_refused_without_migrating(tmp_path: Path) -> None:
    path = tmp_path / "registry.db"
    SqliteRegistry(path, "p").commit(0, [_write("a")], "1")
    with closing(sqlite3.connect(path)) as conn:
        conn.execute("UPDATE registry_meta SET value='5' WHERE key='schema_version'")
        conn.commit()
    with pytest.raises(RegistryError) as info:
        SqliteRegistry(path, "p")
    assert str(info.value) == (
        f"registry {path} was written by a newer skewless (registry schema version 5; "
        "this skewless reads version 4): upgrade skewless to use it"
    )
    assert _schema_versions(path) == [("p", "5")]


def test_registry_new_file_is_created_at_the_current_schema(tmp_path: Path) -> None:
    path = tmp_path / "registry.db"
    SqliteRegistry(path, "p")
    assert _schema_versions(path) == [("p", str(registry_sqlite.SCHEMA_VERSION))]
    assert {"registry_meta", "applies", "object_versions", "training_sets"} <= _tables(path)
