"""Feature statistics in the SQLite registry: the SQL behind SqliteRegistry's
statistics methods.

A version's statistics are one JSON document (feature -> summary, stats/summary.py),
keyed by view, definition (data hash) and Delta version. The reference edges of a
definition are kept apart, one row per numeric feature, written once by the first
version that summarizes the feature and never changed: every later version is binned
over them, so any two versions' histograms are comparable.
"""

from __future__ import annotations

import json
import sqlite3
from datetime import datetime

from skewless.errors import SummaryError
from skewless.registry.base import VersionStatistics
from skewless.stats.summary import NumericSummary, summary_from_json
from skewless.timeutil import as_utc

# Version 4 adds per-version feature statistics and each definition's reference edges.
DDL_V4 = """
CREATE TABLE IF NOT EXISTS feature_statistics (
    project TEXT NOT NULL, view TEXT NOT NULL, data_hash TEXT NOT NULL,
    delta_version INTEGER NOT NULL, kind TEXT NOT NULL, start_us INTEGER,
    end_us INTEGER NOT NULL, rows INTEGER NOT NULL, recorded_at TEXT NOT NULL,
    summaries TEXT NOT NULL, PRIMARY KEY (project, view, data_hash, delta_version)
);
CREATE TABLE IF NOT EXISTS statistics_edges (
    project TEXT NOT NULL, view TEXT NOT NULL, data_hash TEXT NOT NULL,
    feature TEXT NOT NULL, edges TEXT NOT NULL,
    PRIMARY KEY (project, view, data_hash, feature)
);
"""

_COLUMNS = "view, data_hash, delta_version, kind, start_us, end_us, rows, recorded_at, summaries"


def insert(conn: sqlite3.Connection, project: str, stats: VersionStatistics) -> None:
    """Store a version's statistics (a version summarized again is replaced: the same
        version holds the same rows) and the edges of its numeric features that have none
    yet, from a version with valid values."""
    summaries = {name: s.to_json() for name, s in stats.summaries.items()}
    conn.execute(
        f"INSERT OR REPLACE INTO feature_statistics (project, {_COLUMNS}) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            project,
            stats.view,
            stats.data_hash,
            stats.delta_version,
            stats.kind,
            stats.start_us,
            stats.end_us,
            stats.rows,
            as_utc(stats.recorded_at).isoformat(),
            json.dumps(summaries),
        ),
    )
    for name, summary in stats.summaries.items():
        # edges of a version without a valid value are none: the first version that has
        # values fixes them
        if isinstance(summary, NumericSummary) and summary.valid and summary.edges:
            conn.execute(
                "INSERT OR IGNORE INTO statistics_edges VALUES (?, ?, ?, ?, ?)",
                (project, stats.view, stats.data_hash, name, json.dumps(list(summary.edges))),
            )


def select(
    conn: sqlite3.Connection, project: str, view: str, data_hash: str | None
) -> list[VersionStatistics]:
    query = f"SELECT {_COLUMNS} FROM feature_statistics WHERE project=? AND view=?"
    args: tuple[object, ...] = (project, view)
    if data_hash is not None:
        query += " AND data_hash=?"
        args += (data_hash,)
    rows = conn.execute(query + " ORDER BY recorded_at, delta_version", args).fetchall()
    return [_record(row) for row in rows]


def edges(
    conn: sqlite3.Connection, project: str, view: str, data_hash: str
) -> dict[str, tuple[float, ...]]:
    rows = conn.execute(
        "SELECT feature, edges FROM statistics_edges WHERE project=? AND view=? AND data_hash=?",
        (project, view, data_hash),
    ).fetchall()
    return {feature: tuple(float(e) for e in json.loads(text)) for feature, text in rows}


def _record(row: tuple[object, ...]) -> VersionStatistics:
    view, data_hash, version, kind, start_us, end_us, rows, recorded_at, summaries = row
    assert kind in ("full", "incremental")
    try:
        data = json.loads(str(summaries))
        parsed = {name: summary_from_json(s) for name, s in data.items()}
    except (ValueError, AttributeError, TypeError) as exc:
        raise SummaryError(
            f"the statistics of feature view '{view}' version {version} in the registry",
            f"cannot be read ({exc})",
        ) from None
    return VersionStatistics(
        view=str(view),
        data_hash=str(data_hash),
        delta_version=int(str(version)),
        kind=kind,
        start_us=None if start_us is None else int(str(start_us)),
        end_us=int(str(end_us)),
        rows=int(str(rows)),
        recorded_at=as_utc(datetime.fromisoformat(str(recorded_at))),
        summaries=parsed,
    )
