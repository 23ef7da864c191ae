"""Scheduler runs and leases in the SQLite registry: the SQL behind SqliteRegistry's run
and lease methods.

Each function runs inside a transaction the registry opened (BEGIN IMMEDIATE), so a lease
check and the write it guards commit together or not at all, and two runners asking for
one lease are served one after the other. Every lease decision uses the `now` it is given,
never the wall clock, so tests drive expiry with a controllable clock.

A lease row is kept for ever once a name was taken (release sets its expiry to the epoch):
tokens only grow, so a runner's stale lease can never match a later holder's.
"""

from __future__ import annotations

import dataclasses
import math
import sqlite3
from datetime import datetime, timedelta
from typing import Any, cast

from skewless.errors import LeaseLostError, RegistryError
from skewless.registry.base import (
    RUN_STATUSES,
    RUN_TRIGGERS,
    Lease,
    RunRecord,
    RunStatus,
    RunTrigger,
    view_lease,
)
from skewless.timeutil import EPOCH, as_utc, iso_utc

# Version 3 adds the scheduler's runs (ids in the order they started) and its leases.
# Times are ISO-8601 text at UTC, as in every other table.
DDL_V3 = """
CREATE TABLE IF NOT EXISTS runs (
    project TEXT NOT NULL, id INTEGER PRIMARY KEY AUTOINCREMENT, view TEXT NOT NULL,
    trigger TEXT NOT NULL, tick_us INTEGER, start_us INTEGER, end_us INTEGER NOT NULL,
    status TEXT NOT NULL, attempt INTEGER NOT NULL, started_at TEXT NOT NULL,
    finished_at TEXT, runner TEXT NOT NULL, lease_token INTEGER, rows_read INTEGER,
    rows_written_offline INTEGER, keys_written_online INTEGER, delta_version INTEGER,
    error TEXT NOT NULL, note TEXT NOT NULL, backfill TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS runs_by_view ON runs (project, view, status);
CREATE TABLE IF NOT EXISTS leases (
    project TEXT NOT NULL, name TEXT NOT NULL, holder TEXT NOT NULL, token INTEGER NOT NULL,
    expires_at TEXT NOT NULL, PRIMARY KEY (project, name)
);
ALTER TABLE materializations ADD COLUMN view TEXT;
UPDATE materializations SET view = json_extract(record, '$.view');
CREATE INDEX IF NOT EXISTS materializations_by_view ON materializations (project, view);
"""

_RUN_COLUMNS = (
    "id, view, trigger, tick_us, start_us, end_us, status, attempt, started_at, finished_at, "
    "runner, lease_token, rows_read, rows_written_offline, keys_written_online, delta_version, "
    "error, note, backfill"
)
_TERMINAL: tuple[RunStatus, ...] = tuple(s for s in RUN_STATUSES if s != "running")
_VIEW_PREFIX = view_lease("")


# --- leases --------------------------------------------------------------------------


def read_lease(conn: sqlite3.Connection, project: str, name: str) -> Lease | None:
    row = conn.execute(
        "SELECT holder, token, expires_at FROM leases WHERE project=? AND name=?",
        (project, name),
    ).fetchone()
    if row is None:
        return None
    holder, token, expires_at = row
    return Lease(name, holder, int(token), datetime.fromisoformat(expires_at))


def acquire(
    conn: sqlite3.Connection, project: str, name: str, holder: str, *, ttl_s: float, now: datetime
) -> Lease | None:
    """Take `name` for `holder` until `now` + `ttl_s`: when no lease of it is stored, when
    the stored one has expired or was released (token + 1), or when `holder` holds it
    (extended, same token: nobody else can have taken it in between). None while another
    holder's lease is live. Taking a view's lease anew abandons that view's runs left
    "running" under an older token: their runner can no longer record anything."""
    now = as_utc(now)
    expires_at = now + _ttl(name, ttl_s)
    stored = read_lease(conn, project, name)
    if stored is None:
        conn.execute(
            "INSERT INTO leases VALUES (?, ?, ?, 1, ?)",
            (project, name, holder, iso_utc(expires_at)),
        )
        return Lease(name, holder, 1, expires_at)
    if held_by_another(stored, holder, now):
        return None
    released = _released(stored)
    token = stored.token if stored.holder == holder and not released else stored.token + 1
    conn.execute(
        "UPDATE leases SET holder=?, token=?, expires_at=? WHERE project=? AND name=?",
        (holder, token, iso_utc(expires_at), project, name),
    )
    if token != stored.token and name.startswith(_VIEW_PREFIX):
        if released:
            note = f"runner {stored.holder} released the lease on {name} before the run finished"
        else:
            note = f"runner {stored.holder}'s lease expired; runner {holder} took over"
        conn.execute(
            "UPDATE runs SET status='abandoned', finished_at=?, note=? WHERE project=? "
            "AND view=? AND status='running' AND lease_token < ?",
            (iso_utc(now), note, project, name.removeprefix(_VIEW_PREFIX), token),
        )
    return Lease(name, holder, token, expires_at)


def busy(
    conn: sqlite3.Connection, project: str, name: str, holder: str, *, ttl_s: float, now: datetime
) -> bool:
    """Whether another holder's lease of `name` is live at `now`, read without the write
    lock: runners waiting for a busy view poll with this first, so the polls neither make
    applies and the holder's fenced writes wait nor each cost a synced commit. A False is
    only a hint; `acquire` decides inside the write transaction."""
    _ttl(name, ttl_s)  # a bad ttl is refused whether the name is free or not
    return held_by_another(read_lease(conn, project, name), holder, now)


def held_by_another(stored: Lease | None, holder: str, now: datetime) -> bool:
    """Whether `stored` is another holder's lease, live at `now`: `holder` cannot take it."""
    return stored is not None and stored.holder != holder and as_utc(now) < stored.expires_at


def renew(
    conn: sqlite3.Connection, project: str, lease: Lease, ttl_s: float, now: datetime
) -> Lease:
    """`lease` extended to `now` + `ttl_s`, if it is still the stored one (expired but not
    taken by another holder counts: nobody else can have written meanwhile)."""
    expires_at = as_utc(now) + _ttl(lease.name, ttl_s)
    check(conn, project, lease)
    conn.execute(
        "UPDATE leases SET expires_at=? WHERE project=? AND name=?",
        (iso_utc(expires_at), project, lease.name),
    )
    return Lease(lease.name, lease.holder, lease.token, expires_at)


def release(conn: sqlite3.Connection, project: str, lease: Lease) -> None:
    """Expire `lease` now, keeping its row (and so its token); a lost lease is left be."""
    conn.execute(
        "UPDATE leases SET expires_at=? WHERE project=? AND name=? AND holder=? AND token=?",
        (iso_utc(EPOCH), project, lease.name, lease.holder, lease.token),
    )


def check(conn: sqlite3.Connection, project: str, lease: Lease, view: str | None = None) -> None:
    """Raise LeaseLostError unless the stored lease of `lease.name` still has its holder
    and token (and, for a write of `view`'s, ValueError unless it is that view's lease).
    Called inside the transaction of the write it guards."""
    if view is not None:
        check_view(lease, view)
    stored = read_lease(conn, project, lease.name)
    if stored is None or (stored.holder, stored.token) != (lease.holder, lease.token):
        raise LeaseLostError(
            lease.name,
            lease.holder,
            lease.token,
            None if stored is None else stored.holder,
            None if stored is None else stored.token,
        )


def check_view(lease: Lease, view: str) -> None:
    """A view's writes are fenced by the view's own lease: abandoning runs on a takeover
    compares their tokens with that lease's, so another name's tokens would not order."""
    if lease.name != view_lease(view):
        raise ValueError(
            f"feature view '{view}': writes for it take its lease '{view_lease(view)}', "
            f"not '{lease.name}'"
        )


def _released(lease: Lease) -> bool:
    return lease.expires_at <= EPOCH


def _ttl(name: str, ttl_s: float) -> timedelta:
    if not (isinstance(ttl_s, int | float) and math.isfinite(ttl_s) and ttl_s > 0):
        raise ValueError(
            f"lease '{name}': ttl_s must be a positive number of seconds, not {ttl_s!r}"
        )
    return timedelta(seconds=ttl_s)


# --- runs ----------------------------------------------------------------------------


def start(
    conn: sqlite3.Connection,
    project: str,
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
    backfill: str,
) -> RunRecord:
    if trigger not in RUN_TRIGGERS:
        raise ValueError(
            f"run of feature view '{view}': trigger must be one of {', '.join(RUN_TRIGGERS)}, "
            f"not {trigger!r}"
        )
    if attempt < 1:
        raise ValueError(f"run of feature view '{view}': attempt must be 1 or more, not {attempt}")
    if lease is not None:
        check(conn, project, lease, view)
    record = RunRecord(
        id=0,
        view=view,
        trigger=trigger,
        tick_us=tick_us,
        start_us=start_us,
        end_us=end_us,
        status="running",
        attempt=attempt,
        started_at=as_utc(now),
        finished_at=None,
        runner=runner,
        lease_token=None if lease is None else lease.token,
        backfill=backfill,
    )
    cursor = conn.execute(
        f"INSERT INTO runs (project, {_RUN_COLUMNS}) "
        "VALUES (?, NULL, ?, ?, ?, ?, ?, ?, ?, ?, NULL, ?, ?, NULL, NULL, NULL, NULL, '', '', ?)",
        (
            project,
            view,
            trigger,
            tick_us,
            start_us,
            end_us,
            record.status,
            attempt,
            iso_utc(record.started_at),
            runner,
            record.lease_token,
            backfill,
        ),
    )
    assert cursor.lastrowid is not None  # an INSERT into a rowid table sets it
    return dataclasses.replace(record, id=cursor.lastrowid)


def finish(
    conn: sqlite3.Connection,
    project: str,
    run_id: int,
    status: RunStatus,
    *,
    lease: Lease | None,
    now: datetime,
    rows_read: int | None,
    rows_written_offline: int | None,
    keys_written_online: int | None,
    delta_version: int | None,
    error: str,
    note: str,
) -> RunRecord:
    """Give run `run_id` its terminal `status` and figures."""
    if status not in _TERMINAL:
        raise ValueError(
            f"run {run_id}: a run finishes as one of {', '.join(_TERMINAL)}, not {status!r}"
        )
    run = _run(conn, project, run_id)
    if run is None:
        raise RegistryError(f"the registry holds no run {run_id} of project '{project}'")
    if lease is not None:
        check(conn, project, lease, run.view)
    if run.status != "running":
        raise RegistryError(
            f"run {run_id} of feature view '{run.view}' already finished as {run.status} "
            f"at {run.finished_at}: a run is finished once"
        )
    finished_at = as_utc(now)
    conn.execute(
        "UPDATE runs SET status=?, finished_at=?, rows_read=?, rows_written_offline=?, "
        "keys_written_online=?, delta_version=?, error=?, note=? WHERE project=? AND id=?",
        (
            status,
            iso_utc(finished_at),
            rows_read,
            rows_written_offline,
            keys_written_online,
            delta_version,
            error,
            note,
            project,
            run_id,
        ),
    )
    return dataclasses.replace(
        run,
        status=status,
        finished_at=finished_at,
        rows_read=rows_read,
        rows_written_offline=rows_written_offline,
        keys_written_online=keys_written_online,
        delta_version=delta_version,
        error=error,
        note=note,
    )


def select_runs(
    conn: sqlite3.Connection, project: str, view: str | None, last: int | None = None
) -> list[RunRecord]:
    query = f"SELECT {_RUN_COLUMNS} FROM runs WHERE project=?"
    args: tuple[Any, ...] = (project,)
    if view is not None:
        query += " AND view=?"
        args += (view,)
    if last is not None:  # the newest `last`, by the primary key's index
        query += " ORDER BY id DESC LIMIT ?"
        args += (last,)
        return [_run_record(r) for r in conn.execute(query, args)][::-1]
    return [_run_record(r) for r in conn.execute(query + " ORDER BY id", args)]


def _run(conn: sqlite3.Connection, project: str, run_id: int) -> RunRecord | None:
    row = conn.execute(
        f"SELECT {_RUN_COLUMNS} FROM runs WHERE project=? AND id=?", (project, run_id)
    ).fetchone()
    return None if row is None else _run_record(row)


def _run_record(row: tuple[Any, ...]) -> RunRecord:
    (
        run_id,
        view,
        trigger,
        tick_us,
        start_us,
        end_us,
        status,
        attempt,
        started_at,
        finished_at,
        runner,
        lease_token,
        rows_read,
        rows_written_offline,
        keys_written_online,
        delta_version,
        error,
        note,
        backfill,
    ) = row
    return RunRecord(
        id=int(run_id),
        view=view,
        trigger=cast(RunTrigger, trigger),
        tick_us=tick_us,
        start_us=start_us,
        end_us=int(end_us),
        status=cast(RunStatus, status),
        attempt=int(attempt),
        started_at=datetime.fromisoformat(started_at),
        finished_at=None if finished_at is None else datetime.fromisoformat(finished_at),
        runner=runner,
        lease_token=lease_token,
        rows_read=rows_read,
        rows_written_offline=rows_written_offline,
        keys_written_online=keys_written_online,
        delta_version=delta_version,
        error=error,
        note=note,
        backfill=backfill,
    )
