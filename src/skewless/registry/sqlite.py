"""The SQLite registry: one file, transactional, safe for concurrent applies.

`commit` takes SQLite's write lock (BEGIN IMMEDIATE) and checks the registry version the
plan was based on inside that transaction, so two applies can never both build on the
same state: the second gets a RegistryConflictError and plans again.

Every failure of the file itself is a RegistryError naming the path and what to do: a
file that is not a SQLite database (a Feast registry.db is a protobuf file) or is another
program's database, a registry written by a newer skewless, a corrupt file, and a write
lock held by another process for longer than `timeout_s` (RegistryLockedError, retryable).

The file's layout has a schema version. Opening a file of an older version migrates it
in place, in one transaction (the file is either migrated whole or left as it was), so
every registry an earlier skewless wrote keeps its history. Specs, manifests and run
records are stored as JSON text, never pickled.

The scheduler's runs and leases live here too (their SQL is in registry/runs.py): a lease
is taken, renewed and checked inside the write transaction of the write it guards.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from skewless.errors import (
    RegistryConflictError,
    RegistryError,
    RegistryLockedError,
    RegistryVersionNotFoundError,
    TrainingSetExistsError,
    TrainingSetNotFoundError,
)
from skewless.registry import runs as run_sql
from skewless.registry import statistics as stats_sql
from skewless.registry.base import (
    ApplyRecord,
    ErasureRecord,
    Lease,
    MaterializationRecord,
    MaterializedUntil,
    ObjectKind,
    ObjectRecord,
    ObjectWrite,
    RunRecord,
    RunStatus,
    RunTrigger,
    TrainingSetRecord,
    VersionStatistics,
)
from skewless.timeutil import as_utc

SCHEMA_VERSION = 4

# Version 1: definitions, applies and materialization runs.
_DDL_V1 = """
CREATE TABLE IF NOT EXISTS registry_meta (
    project TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL, PRIMARY KEY (project, key)
);
CREATE TABLE IF NOT EXISTS applies (
    project TEXT NOT NULL, registry_version INTEGER NOT NULL, applied_at TEXT NOT NULL,
    summary TEXT NOT NULL, PRIMARY KEY (project, registry_version)
);
CREATE TABLE IF NOT EXISTS object_versions (
    project TEXT NOT NULL, kind TEXT NOT NULL, name TEXT NOT NULL, version INTEGER NOT NULL,
    data_version INTEGER NOT NULL, data_hash TEXT NOT NULL, metadata_hash TEXT NOT NULL,
    spec TEXT NOT NULL, registry_version INTEGER NOT NULL, applied_at TEXT NOT NULL,
    removed INTEGER NOT NULL DEFAULT 0, PRIMARY KEY (project, kind, name, version)
);
CREATE TABLE IF NOT EXISTS materializations (
    project TEXT NOT NULL, run INTEGER PRIMARY KEY AUTOINCREMENT, record TEXT NOT NULL
);
"""

# Version 2 adds saved training sets (oldest first: rowid order); `erasures` is a JSON
# list, oldest first.
_DDL_V2 = """
CREATE TABLE IF NOT EXISTS training_sets (
    project TEXT NOT NULL, name TEXT NOT NULL, location TEXT NOT NULL,
    delta_version INTEGER NOT NULL, manifest TEXT NOT NULL, created_at TEXT NOT NULL,
    description TEXT NOT NULL, erasures TEXT NOT NULL, PRIMARY KEY (project, name)
);
"""

# The statements that bring a file of version n - 1 to version n.
_MIGRATIONS: dict[int, str] = {
    1: _DDL_V1,
    2: _DDL_V2,
    3: run_sql.DDL_V3,
    4: stats_sql.DDL_V4,
}

_COLUMNS = (
    "kind, name, version, data_version, data_hash, metadata_hash, spec, registry_version, "
    "applied_at, removed"
)
_SET_COLUMNS = "name, location, delta_version, manifest, created_at, description, erasures"


class SqliteRegistry:
    def __init__(self, path: str | Path, project: str, *, timeout_s: float = 60.0) -> None:
        self.path = Path(path)
        self.project = project
        self.timeout_s = timeout_s
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._readers = threading.local()  # see registry_version()
        if _foreign_file(self.path):  # SQLite would take a file of a few bytes for empty
            raise self._not_sqlite()
        # One write transaction: the file is checked before anything is written into it,
        # and two processes opening an old file migrate it once.
        with self._transaction() as conn:
            found = self._check_schema(conn)
            for version in range(found + 1, SCHEMA_VERSION + 1):
                for statement in _statements(_MIGRATIONS[version]):
                    _migrate(conn, statement)
            if found < SCHEMA_VERSION:  # every project of the file shares its tables
                conn.execute(
                    "UPDATE registry_meta SET value=? WHERE key='schema_version'",
                    (str(SCHEMA_VERSION),),
                )
            conn.execute(
                "INSERT OR IGNORE INTO registry_meta VALUES (?, 'schema_version', ?)",
                (project, str(SCHEMA_VERSION)),
            )
            conn.execute(
                "INSERT OR IGNORE INTO registry_meta VALUES (?, 'registry_version', '0')",
                (project,),
            )

    def _check_schema(self, conn: sqlite3.Connection) -> int:
        """The schema version of the file (0 for an empty file): a skewless registry this
        skewless can read, or migrate."""
        tables = {
            name
            for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")
            if not name.startswith("sqlite_")  # SQLite's own (sqlite_sequence, ...)
        }
        if not tables:
            return 0  # a new registry
        if "registry_meta" not in tables:
            shown = ", ".join(sorted(tables)[:3]) + (", ..." if len(tables) > 3 else "")
            raise RegistryError(
                f"{self.path} is a SQLite database but not a skewless registry (it holds "
                f"{shown}): point `registry` in feature_store.yaml at another file"
            )
        newest = conn.execute(
            "SELECT MAX(CAST(value AS INTEGER)) FROM registry_meta WHERE key='schema_version'"
        ).fetchone()[0]
        if newest is None:  # created, then interrupted before its first project was added
            return 0
        if not 1 <= int(newest) <= SCHEMA_VERSION:
            raise self._schema_error(int(newest))
        return int(newest)

    def _schema_error(self, found: int) -> RegistryError:
        if found > SCHEMA_VERSION:
            return RegistryError(
                f"registry {self.path} was written by a newer skewless (registry schema "
                f"version {found}; this skewless reads version {SCHEMA_VERSION}): upgrade "
                "skewless to use it"
            )
        return RegistryError(
            f"registry {self.path} has schema version {found}, which this skewless does not "
            f"read (it reads version {SCHEMA_VERSION})"
        )

    def _failure(self, exc: sqlite3.Error) -> RegistryError:
        """What a SQLite error on the registry file means, as a RegistryError."""
        name = getattr(exc, "sqlite_errorname", "")
        if name == "SQLITE_NOTADB":
            return self._not_sqlite()
        if name.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")):
            return RegistryLockedError(str(self.path), self.timeout_s)
        if name.startswith("SQLITE_CORRUPT"):
            return RegistryError(f"registry {self.path} is corrupt ({exc}): restore it from a copy")
        return RegistryError(f"cannot use registry {self.path}: {exc}")

    def _not_sqlite(self) -> RegistryError:
        return RegistryError(
            f"{self.path} is not a skewless registry: it is not a SQLite database (a Feast "
            "registry.db is a protobuf file, for example); point `registry` in "
            "feature_store.yaml at another file, or move this one away"
        )

    def _open(self) -> sqlite3.Connection:
        try:
            return sqlite3.connect(self.path, timeout=self.timeout_s, isolation_level=None)
        except sqlite3.Error as exc:
            raise RegistryError(f"cannot open registry {self.path}: {exc}") from exc

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        """A connection whose SQLite errors surface as RegistryErrors (see _failure)."""
        conn = self._open()
        try:
            yield conn
        except sqlite3.Error as exc:
            raise self._failure(exc) from exc
        finally:
            conn.close()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """A write transaction: SQLite's write lock is taken first (waiting up to
        timeout_s for another writer), and everything is rolled back on any error."""
        with self._connect() as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    # --- reader --------------------------------------------------------------------

    def registry_version(self) -> int:
        """The current version. Asked before every in-process lookup and every second by
        the server, so it reuses one connection per thread (opening one and reading the
        schema cost most of a call) while the file is the same: a registry file replaced
        or recreated is opened afresh. Each read sees the last committed version."""
        try:
            identity = os.stat(self.path)
        except OSError as exc:
            raise RegistryError(f"cannot open registry {self.path}: {exc}") from exc
        key = (identity.st_dev, identity.st_ino)
        held: tuple[tuple[int, int], sqlite3.Connection] | None = getattr(
            self._readers, "conn", None
        )
        if held is None or held[0] != key:
            if held is not None:
                held[1].close()
            held = (key, self._open())
            self._readers.conn = held
        try:
            return self._version(held[1])
        except sqlite3.Error as exc:
            raise self._failure(exc) from exc

    def _version(self, conn: sqlite3.Connection) -> int:
        row = conn.execute(
            "SELECT value FROM registry_meta WHERE project=? AND key='registry_version'",
            (self.project,),
        ).fetchone()
        return int(row[0])

    def current(self, kind: ObjectKind | None = None) -> list[ObjectRecord]:
        with self._connect() as conn:
            return self._live(conn, kind, None)

    def _live(
        self, conn: sqlite3.Connection, kind: ObjectKind | None, upto: int | None
    ) -> list[ObjectRecord]:
        """Per object, its highest version recorded by apply `upto` or an earlier one
        (None: by any apply), unless that version removed it."""
        query = (
            f"SELECT {_COLUMNS} FROM object_versions o WHERE project=? AND version = "
            "(SELECT MAX(version) FROM object_versions i WHERE i.project=o.project "
            "AND i.kind=o.kind AND i.name=o.name "
            "AND i.registry_version <= COALESCE(?, i.registry_version)) AND removed=0"
        )
        args: tuple[Any, ...] = (self.project, upto)
        if kind is not None:
            query += " AND kind=?"
            args += (kind,)
        return [_record(r) for r in conn.execute(query + " ORDER BY kind, name", args)]

    def get(self, kind: ObjectKind, name: str) -> ObjectRecord | None:
        history = self.history(kind, name)
        if not history or history[-1].removed:
            return None
        return history[-1]

    def history(self, kind: ObjectKind, name: str) -> list[ObjectRecord]:
        with self._connect() as conn:
            rows = conn.execute(
                f"SELECT {_COLUMNS} FROM object_versions WHERE project=? AND kind=? AND name=? "
                "ORDER BY version",
                (self.project, kind, name),
            ).fetchall()
        return [_record(r) for r in rows]

    def applies(self) -> list[ApplyRecord]:
        with self._connect() as conn:
            rows = conn.execute(
                "SELECT registry_version, applied_at, summary FROM applies WHERE project=? "
                "ORDER BY registry_version",
                (self.project,),
            ).fetchall()
        return [ApplyRecord(int(v), datetime.fromisoformat(t), s) for v, t, s in rows]

    def materializations(self, view: str | None = None) -> list[MaterializationRecord]:
        with self._connect() as conn:
            if view is None:
                rows = conn.execute(
                    "SELECT record FROM materializations WHERE project=? ORDER BY run",
                    (self.project,),
                ).fetchall()
            else:  # by the indexed column: a view's runs, not every view's
                rows = conn.execute(
                    "SELECT record FROM materializations WHERE project=? AND view=? ORDER BY run",
                    (self.project, view),
                ).fetchall()
        return [_materialization(json.loads(r[0])) for r in rows]

    def materialized_until(self) -> list[MaterializedUntil]:
        with self._connect() as conn:
            rows = conn.execute(
                "SELECT view, json_extract(record, '$.data_hash'), "
                "MAX(json_extract(record, '$.end_us')), "
                "MAX(json_extract(record, '$.finished_at')) "
                "FROM materializations WHERE project=? GROUP BY 1, 2 ORDER BY 1, 2",
                (self.project,),
            ).fetchall()
        return [
            MaterializedUntil(
                view, data_hash, int(end_us), as_utc(datetime.fromisoformat(finished))
            )
            for view, data_hash, end_us, finished in rows
        ]

    def current_at(
        self, registry_version: int, kind: ObjectKind | None = None
    ) -> list[ObjectRecord]:
        """The live objects right after apply `registry_version` (0: none). Raises
        RegistryVersionNotFoundError for a version the registry has not reached."""
        with self._connect() as conn:
            latest = self._version(conn)
            if not 0 <= registry_version <= latest:
                raise RegistryVersionNotFoundError(registry_version, latest)
            return self._live(conn, kind, registry_version)

    def version_at(self, when: datetime) -> int:
        """The newest apply at or before `when` (naive: UTC); 0 before the first."""
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        found = 0
        for apply in self.applies():
            if apply.applied_at <= when:
                found = max(found, apply.registry_version)
        return found

    def training_sets(self) -> list[TrainingSetRecord]:
        with self._connect() as conn:
            rows = conn.execute(
                f"SELECT {_SET_COLUMNS} FROM training_sets WHERE project=? ORDER BY rowid",
                (self.project,),
            ).fetchall()
        return [_training_set(r) for r in rows]

    def training_set(self, name: str) -> TrainingSetRecord | None:
        with self._connect() as conn:
            row = conn.execute(
                f"SELECT {_SET_COLUMNS} FROM training_sets WHERE project=? AND name=?",
                (self.project, name),
            ).fetchone()
        return None if row is None else _training_set(row)

    def runs(self, view: str | None = None, last: int | None = None) -> list[RunRecord]:
        with self._connect() as conn:
            return run_sql.select_runs(conn, self.project, view, last)

    def lease(self, name: str) -> Lease | None:
        with self._connect() as conn:
            return run_sql.read_lease(conn, self.project, name)

    def statistics(self, view: str, data_hash: str | None = None) -> list[VersionStatistics]:
        with self._connect() as conn:
            return stats_sql.select(conn, self.project, view, data_hash)

    def statistics_edges(self, view: str, data_hash: str) -> dict[str, tuple[float, ...]]:
        with self._connect() as conn:
            return stats_sql.edges(conn, self.project, view, data_hash)

    # --- writer --------------------------------------------------------------------

    def record_materialization(
        self,
        record: MaterializationRecord,
        lease: Lease | None = None,
        statistics: VersionStatistics | None = None,
    ) -> None:
        """Record a materialization run, and the statistics of the version it committed
        in the same transaction. Under `lease` (the view's), only while the stored lease
        is still that holder's with that token: else LeaseLostError, and nothing is
        written."""
        data = dataclasses.asdict(record)
        data["finished_at"] = record.finished_at.isoformat()
        with self._transaction() as conn:
            if lease is not None:
                run_sql.check(conn, self.project, lease, record.view)
            conn.execute(
                "INSERT INTO materializations (project, view, record) VALUES (?, ?, ?)",
                (self.project, record.view, json.dumps(data, sort_keys=True)),
            )
            if statistics is not None:
                stats_sql.insert(conn, self.project, statistics)

    def commit(self, base_version: int, writes: list[ObjectWrite], summary: str) -> int:
        now = datetime.now(UTC).isoformat()
        with self._transaction() as conn:
            found = self._version(conn)
            if found != base_version:
                raise RegistryConflictError(base_version, found)
            new_version = found + 1
            for w in writes:
                self._write(conn, w, new_version, now)
            conn.execute(
                "UPDATE registry_meta SET value=? WHERE project=? AND key='registry_version'",
                (str(new_version), self.project),
            )
            conn.execute(
                "INSERT INTO applies VALUES (?, ?, ?, ?)",
                (self.project, new_version, now, summary),
            )
        return new_version

    def record_training_set(self, record: TrainingSetRecord) -> None:
        """Record a saved training set with its manifest (JSON text) and any erasures it
        already has, in one transaction. Raises TrainingSetExistsError when the project
        already has a set of that name: saved sets never change."""
        manifest = json.dumps(record.manifest, sort_keys=True)
        erasures = json.dumps([_erasure_json(e) for e in record.erasures], sort_keys=True)
        with self._transaction() as conn:
            taken = conn.execute(
                "SELECT 1 FROM training_sets WHERE project=? AND name=?",
                (self.project, record.name),
            ).fetchone()
            if taken is not None:
                raise TrainingSetExistsError(record.name)
            conn.execute(
                "INSERT INTO training_sets VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    self.project,
                    record.name,
                    record.location,
                    record.delta_version,
                    manifest,
                    record.created_at.isoformat(),
                    record.description,
                    erasures,
                ),
            )

    def record_erasure(self, name: str, erasure: ErasureRecord) -> None:
        """Append `erasure` to the saved set `name`'s erasures, in one transaction.
        Raises TrainingSetNotFoundError when the project has no set of that name."""
        with self._transaction() as conn:
            rows = dict(
                conn.execute(
                    "SELECT name, erasures FROM training_sets WHERE project=?", (self.project,)
                ).fetchall()
            )
            if name not in rows:
                raise TrainingSetNotFoundError(name, rows)
            erasures = [*json.loads(rows[name]), _erasure_json(erasure)]
            conn.execute(
                "UPDATE training_sets SET erasures=? WHERE project=? AND name=?",
                (json.dumps(erasures, sort_keys=True), self.project, name),
            )

    def acquire_lease(self, name: str, holder: str, ttl_s: float, now: datetime) -> Lease | None:
        with self._connect() as conn:
            if run_sql.busy(conn, self.project, name, holder, ttl_s=ttl_s, now=now):
                return None
        with self._transaction() as conn:
            return run_sql.acquire(conn, self.project, name, holder, ttl_s=ttl_s, now=now)

    def renew_lease(self, lease: Lease, ttl_s: float, now: datetime) -> Lease:
        with self._transaction() as conn:
            return run_sql.renew(conn, self.project, lease, ttl_s, now)

    def release_lease(self, lease: Lease) -> None:
        with self._transaction() as conn:
            run_sql.release(conn, self.project, lease)

    def start_run(
        self,
        view: str,
        trigger: RunTrigger,
        *,
        tick_us: int | None,
        start_us: int | None,
        end_us: int,
        attempt: int,
        runner: str,
        lease: Lease | None,
        now: datetime,
        backfill: str = "",
    ) -> RunRecord:
        with self._transaction() as conn:
            return run_sql.start(
                conn,
                self.project,
                view,
                trigger,
                tick_us=tick_us,
                start_us=start_us,
                end_us=end_us,
                attempt=attempt,
                runner=runner,
                lease=lease,
                now=now,
                backfill=backfill,
            )

    def finish_run(
        self,
        run_id: int,
        status: RunStatus,
        *,
        lease: Lease | None,
        now: datetime,
        rows_read: int | None = None,
        rows_written_offline: int | None = None,
        keys_written_online: int | None = None,
        delta_version: int | None = None,
        error: str = "",
        note: str = "",
    ) -> RunRecord:
        with self._transaction() as conn:
            return run_sql.finish(
                conn,
                self.project,
                run_id,
                status,
                lease=lease,
                now=now,
                rows_read=rows_read,
                rows_written_offline=rows_written_offline,
                keys_written_online=keys_written_online,
                delta_version=delta_version,
                error=error,
                note=note,
            )

    def other_projects(self) -> list[str]:
        """The other projects this registry file holds, sorted."""
        with self._connect() as conn:
            rows = conn.execute(
                "SELECT DISTINCT project FROM registry_meta WHERE project<>? ORDER BY project",
                (self.project,),
            ).fetchall()
        return [p for (p,) in rows]

    def remove_project(self) -> list[str]:
        """Delete every record of this project (definitions, applies, runs, saved
        training sets and its registry version) in one transaction; returns the projects
        the file still holds. The project starts again at registry version 0 when this
        registry is opened anew."""
        with self._transaction() as conn:
            for table in _PROJECT_TABLES:
                conn.execute(f"DELETE FROM {table} WHERE project=?", (self.project,))
            rows = conn.execute("SELECT DISTINCT project FROM registry_meta ORDER BY project")
            return [p for (p,) in rows.fetchall()]

    def _write(self, conn: sqlite3.Connection, w: ObjectWrite, reg_version: int, now: str) -> None:
        last = conn.execute(
            "SELECT version, data_version, data_hash FROM object_versions "
            "WHERE project=? AND kind=? AND name=? ORDER BY version DESC LIMIT 1",
            (self.project, w.kind, w.name),
        ).fetchone()
        version = 1 if last is None else int(last[0]) + 1
        data_version = 1 if last is None else int(last[1]) + int(w.data_hash != last[2])
        conn.execute(
            "INSERT INTO object_versions VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                self.project,
                w.kind,
                w.name,
                version,
                data_version,
                w.data_hash,
                w.metadata_hash,
                json.dumps(w.spec, sort_keys=True),
                reg_version,
                now,
                int(w.removed),
            ),
        )


# Every table holding rows of a project: what remove_project deletes (a new table with
# a project column belongs here too).
_PROJECT_TABLES = (
    "object_versions",
    "applies",
    "materializations",
    "training_sets",
    "runs",
    "leases",
    "feature_statistics",
    "statistics_edges",
    "registry_meta",
)

_SQLITE_HEADER = b"SQLite format 3\x00"


_ADD_COLUMN = re.compile(r"ALTER TABLE (\w+) ADD COLUMN (\w+)", re.IGNORECASE)


def _migrate(conn: sqlite3.Connection, statement: str) -> None:
    """One migration statement; a column it adds that is there already is left as it is
    (the file of a project removed by teardown is migrated again when one is added, and
    its tables are all there)."""
    added = _ADD_COLUMN.match(statement)
    if added is not None:
        table, column = added.groups()
        if column in {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}:
            return
    conn.execute(statement)


def _statements(script: str) -> list[str]:
    """A DDL script's statements (executescript would commit the open transaction)."""
    return [s.strip() for s in script.split(";") if s.strip()]


def _foreign_file(path: Path) -> bool:
    """Whether `path` is a file with content that does not start as a SQLite database."""
    try:
        with path.open("rb") as f:
            start = f.read(len(_SQLITE_HEADER))
    except (FileNotFoundError, IsADirectoryError):
        return False  # a new registry, or an error SQLite names when it opens the path
    except OSError as exc:
        raise RegistryError(f"cannot open registry {path}: {exc}") from exc
    return bool(start) and start != _SQLITE_HEADER


def _record(row: tuple[Any, ...]) -> ObjectRecord:
    kind, name, version, data_version, dh, mh, spec, reg, at, removed = row
    return ObjectRecord(
        kind=kind,
        name=name,
        version=int(version),
        data_version=int(data_version),
        data_hash=dh,
        metadata_hash=mh,
        spec=json.loads(spec),
        registry_version=int(reg),
        applied_at=datetime.fromisoformat(at),
        removed=bool(removed),
    )


def _materialization(data: dict[str, Any]) -> MaterializationRecord:
    data = dict(data)
    data["finished_at"] = datetime.fromisoformat(data["finished_at"])
    data["seen_files"] = tuple((str(p), int(t), int(n)) for p, t, n in data.get("seen_files", ()))
    return MaterializationRecord(**data)


def _training_set(row: tuple[Any, ...]) -> TrainingSetRecord:
    name, location, delta_version, manifest, created_at, description, erasures = row
    return TrainingSetRecord(
        name=name,
        location=location,
        delta_version=int(delta_version),
        manifest=json.loads(manifest),
        created_at=datetime.fromisoformat(created_at),
        description=description,
        erasures=tuple(_erasure(e) for e in json.loads(erasures)),
    )


def _erasure_json(erasure: ErasureRecord) -> dict[str, Any]:
    data = dataclasses.asdict(erasure)
    data["erased_at"] = erasure.erased_at.isoformat()
    return data


def _erasure(data: dict[str, Any]) -> ErasureRecord:
    return ErasureRecord(
        view=str(data["view"]),
        keys=int(data["keys"]),
        rows_removed=int(data["rows_removed"]),
        delta_version=int(data["delta_version"]),
        erased_at=datetime.fromisoformat(data["erased_at"]),
    )
