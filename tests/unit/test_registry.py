from __future__ import annotations

import multiprocessing
import os
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Callable
from contextlib import closing
from pathlib import Path

import pytest

from skewless import FeatureStore
from skewless.errors import RegistryConflictError, RegistryError, RegistryLockedError
from skewless.registry import ObjectWrite, SqliteRegistry
from skewless.registry.sqlite import SCHEMA_VERSION
from tests.unit.repo_fixtures import write_repo


def _write(name: str, data_hash: str = "d1", meta: str = "m1") -> ObjectWrite:
    return ObjectWrite(
        "entity", name, data_hash, meta, {"kind": "entity", "name": name, "join_keys": [name]}, True
    )


def test_registry_keeps_every_version(tmp_path: Path) -> None:
    reg = SqliteRegistry(tmp_path / "r.db", "p")
    assert reg.registry_version() == 0
    reg.commit(0, [_write("a")], "1")
    reg.commit(1, [_write("a", meta="m2")], "2")
    reg.commit(2, [_write("a", data_hash="d2", meta="m2")], "3")
    history = reg.history("entity", "a")
    assert [(r.version, r.data_version) for r in history] == [(1, 1), (2, 1), (3, 2)]
    assert [a.registry_version for a in reg.applies()] == [1, 2, 3]
    assert reg.get("entity", "a") == history[-1]
    assert history[-1].definition().name == "a"


def test_registry_projects_are_separate(tmp_path: Path) -> None:
    a = SqliteRegistry(tmp_path / "r.db", "a")
    b = SqliteRegistry(tmp_path / "r.db", "b")
    a.commit(0, [_write("x")], "")
    assert b.current() == [] and b.registry_version() == 0


def test_registry_refuses_stale_base_and_writes_nothing(tmp_path: Path) -> None:
    reg = SqliteRegistry(tmp_path / "r.db", "p")
    reg.commit(0, [_write("a")], "")
    with pytest.raises(RegistryConflictError):
        reg.commit(0, [_write("b")], "")
    assert [r.name for r in reg.current()] == ["a"]


def test_registry_rolls_back_a_failed_commit(tmp_path: Path) -> None:
    reg = SqliteRegistry(tmp_path / "r.db", "p")
    bad = ObjectWrite("entity", "b", "d", "m", {"x": {1, 2}}, True)  # a set is not JSON
    with pytest.raises(TypeError):
        reg.commit(0, [_write("a"), bad], "")
    assert reg.current() == [] and reg.registry_version() == 0


def test_registry_unreadable_spec_is_a_registry_error(tmp_path: Path) -> None:
    reg = SqliteRegistry(tmp_path / "r.db", "p")
    reg.commit(0, [ObjectWrite("entity", "a", "d", "m", {"kind": "entity"}, True)], "")
    with pytest.raises(RegistryError, match="unreadable entity 'a'"):
        reg.current()[0].definition()


def _hammer(path: str, worker: int, n: int) -> None:
    reg = SqliteRegistry(path, "p")
    for i in range(n):
        while True:
            base = reg.registry_version()
            try:
                reg.commit(base, [_write(f"w{worker}_{i}")], f"worker {worker} #{i}")
                break
            except RegistryConflictError:
                continue


def test_registry_two_processes_lose_no_write(tmp_path: Path) -> None:
    path = str(tmp_path / "r.db")
    SqliteRegistry(path, "p")
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_hammer, args=(path, w, 15)) for w in (1, 2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    reg = SqliteRegistry(path, "p")
    assert reg.registry_version() == 30
    assert len(reg.current()) == 30
    assert [a.registry_version for a in reg.applies()] == list(range(1, 31))


def _apply(repo: str) -> None:
    FeatureStore(repo).apply()


def test_two_concurrent_applies_of_one_repo_record_it_once(tmp_path: Path) -> None:
    repo = write_repo(tmp_path)
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_apply, args=(str(repo),)) for _ in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    store = FeatureStore(repo)
    assert store.registry.registry_version() == 1
    assert [r.version for r in store.registry.history("feature_view", "stats")] == [1]


def test_registry_version_sees_other_writers_and_a_recreated_file(tmp_path: Path) -> None:
    # registry_version() keeps a connection per thread: it must still see commits made
    # through other connections, from other threads, and a registry file made anew.
    path = tmp_path / "r.db"
    reader = SqliteRegistry(path, "p")
    writer = SqliteRegistry(path, "p")
    assert reader.registry_version() == 0
    writer.commit(0, [_write("a")], "1")
    assert reader.registry_version() == 1
    seen: list[int] = []
    thread = threading.Thread(target=lambda: seen.append(reader.registry_version()))
    thread.start()
    thread.join()
    writer.commit(1, [_write("b")], "2")
    assert seen == [1] and reader.registry_version() == 2
    path.unlink()
    SqliteRegistry(path, "p")  # a new, empty registry at the same path
    assert reader.registry_version() == 0
    path.unlink()
    with pytest.raises(RegistryError, match="cannot open registry"):
        reader.registry_version()


# --- a registry file skewless cannot use: one RegistryError naming the path and the fix ---

# The start of a Feast registry.db: a serialized protobuf (feast.core.Registry), no SQLite.
FEAST_REGISTRY = (
    b"\n4\n\x06driver\x12*\n\x06driver\x12\tdriver_id\x1a\x0fdriver id"
    b"\x12\x0cfeast_projectR\x05INT64" * 40
)


@pytest.mark.parametrize(
    "content", [FEAST_REGISTRY, bytes(range(256)) * 8, b"x"], ids=["feast", "random", "tiny"]
)
def test_registry_of_a_file_that_is_not_sqlite_is_a_registry_error(
    tmp_path: Path, content: bytes
) -> None:
    path = tmp_path / "registry.db"
    path.write_bytes(content)
    with pytest.raises(RegistryError) as info:
        SqliteRegistry(path, "p")
    message = str(info.value)
    assert message.startswith(f"{path} is not a skewless registry: it is not a SQLite database")
    assert "point `registry` in feature_store.yaml at another file" in message
    assert path.read_bytes() == content  # left as it was


def test_registry_of_another_programs_database_is_a_registry_error(tmp_path: Path) -> None:
    path = tmp_path / "registry.db"
    with closing(sqlite3.connect(path)) as conn:
        conn.execute("CREATE TABLE feast_metadata (project_id TEXT, metadata_key TEXT)")
        conn.commit()
    with pytest.raises(RegistryError, match="a SQLite database but not a skewless registry"):
        SqliteRegistry(path, "p")
    with closing(sqlite3.connect(path)) as conn:  # nothing of skewless's was added
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
    assert tables == {"feast_metadata"}


def test_registry_of_a_newer_skewless_is_a_registry_error(tmp_path: Path) -> None:
    path = tmp_path / "registry.db"
    SqliteRegistry(path, "p").commit(0, [_write("a")], "1")
    with closing(sqlite3.connect(path)) as conn:
        conn.execute("UPDATE registry_meta SET value='99' WHERE key='schema_version'")
        conn.commit()
    for project in ("p", "another"):  # a new project in that file too
        with pytest.raises(RegistryError) as info:
            SqliteRegistry(path, project)
        assert str(info.value) == (
            f"registry {path} was written by a newer skewless (registry schema version 99; "
            f"this skewless reads version {SCHEMA_VERSION}): upgrade skewless to use it"
        )
    with closing(sqlite3.connect(path)) as conn:
        assert conn.execute("SELECT DISTINCT project FROM registry_meta").fetchall() == [("p",)]


_HOLD_LOCK = """
import sqlite3, sys
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
conn.execute("BEGIN IMMEDIATE")
print("locked", flush=True)
sys.stdin.read()
"""


def test_registry_locked_by_another_process_is_a_retryable_registry_error(
    tmp_path: Path,
) -> None:
    path = tmp_path / "registry.db"
    opened = SqliteRegistry(path, "p", timeout_s=0.2)  # before the lock is taken
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLD_LOCK, str(path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "locked\n"
        attempts: list[Callable[[], object]] = [
            lambda: SqliteRegistry(path, "p", timeout_s=0.2),  # opening writes too
            lambda: opened.commit(0, [_write("a")], "1"),
        ]
        for attempt in attempts:
            with pytest.raises(RegistryLockedError) as info:
                attempt()
            assert str(info.value) == (
                f"registry {path} is locked: another process has held its write lock for "
                "over 0.2 s (an apply or materialization still running?); retry when it is done"
            )
            assert info.value.retryable and isinstance(info.value, RegistryError)
    finally:
        holder.communicate("", timeout=30)
    assert opened.commit(0, [_write("a")], "1") == 1  # usable once the lock is gone


def test_cli_prints_a_registry_error_as_one_red_line_and_exits_1(tmp_path: Path) -> None:
    # a Feast repo's registry.db left where skewless's registry goes
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "registry.db").write_bytes(FEAST_REGISTRY)
    (tmp_path / "feature_store.yaml").write_text("project: p\nregistry: data/registry.db\n")
    result = subprocess.run(
        [sys.executable, "-m", "skewless.cli.main", "list", "--repo", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={
            **{k: v for k, v in os.environ.items() if not k.startswith("SKEWLESS_")},
            "COLUMNS": "80",  # narrower than the message: it must not be wrapped
        },
    )
    assert result.returncode == 1
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr  # no traceback, not wrapped
    assert lines[0].startswith(f"Error: {tmp_path / 'data' / 'registry.db'} is not a skewless")
