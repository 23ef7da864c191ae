from __future__ import annotations

import multiprocessing
import threading
from pathlib import Path

import pytest

from skewless import FeatureStore
from skewless.errors import RegistryConflictError, RegistryError
from skewless.registry import ObjectWrite, SqliteRegistry
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
