"""`skewless teardown` over real Redis, Spark and Delta: the project's online keys go and
no other key; offline data (Delta tables, saved training sets, registry records) goes
only when confirmed, and not at all when some of it would be kept; source data never
goes; the registry file stays; apply and materialize work again after."""

from __future__ import annotations

import hashlib
import sqlite3
import textwrap
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import redis
from pyspark.sql import SparkSession
from typer.testing import CliRunner

from skewless import FeatureStore
from skewless.cli import teardown as teardown_cli
from skewless.cli.main import app
from skewless.errors import OnlineStoreUnavailableError, TeardownRefusedError
from skewless.online.embedded import EmbeddedServer
from skewless.online.redis import RedisOnlineStore
from skewless.registry import MaterializationRecord, SqliteRegistry
from skewless.registry.sqlite import _PROJECT_TABLES
from skewless.serving.response import FeatureStatus
from tests.integration.test_materialize import BASE_ROWS, DEFS, SCHEMA, at, make_repo


def _cli(repo: Path, *args: str, code: int = 0, stdin: str | None = None) -> str:
    result = CliRunner().invoke(
        app, ["teardown", *args, "--repo", str(repo)], input=stdin, env={"COLUMNS": "80"}
    )
    assert result.exit_code == code, result.output
    return result.output


def _files(folder: Path) -> dict[str, str]:
    """Every file under `folder` with the digest of its bytes."""
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def _keys(client: redis.Redis, project: str) -> list[bytes]:
    return sorted(client.scan_iter(match=f"sk1|{project}|*"))


def test_redis_delete_prefix_matches_glob_characters_literally(redis_url: str) -> None:
    store = RedisOnlineStore.from_url(redis_url)
    tag = uuid.uuid4().hex[:8]
    mine = [f"t{tag}|p*|v{i % 3}|{i}".encode() for i in range(1200)]
    # what an unescaped pattern `t<tag>|p*|*` would match too
    others = [f"t{tag}|px|v0|1".encode(), f"t{tag}|p*x|v0|1".encode(), f"t{tag}|p[*]|v|1".encode()]
    for key in mine + others:
        store.client.set(key, b"x")
    removed = store.delete_prefix(
        f"t{tag}|p*|".encode(), lambda key: key.split(b"|")[2].decode(), scan_count=100
    )
    assert removed == {"v0": 400, "v1": 400, "v2": 400}
    assert sorted(store.client.scan_iter(match=f"t{tag}|*")) == sorted(others)


def test_registry_remove_project_covers_every_table_with_a_project(tmp_path: Path) -> None:
    path = tmp_path / "registry.db"
    SqliteRegistry(path, "a")
    with sqlite3.connect(path) as conn:
        tables = [n for (n,) in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        with_project = {
            t
            for t in tables
            if "project" in {c[1] for c in conn.execute(f"PRAGMA table_info({t})")}
        }
    assert with_project == set(_PROJECT_TABLES)
    other = SqliteRegistry(path, "b")
    assert other.other_projects() == ["a"]
    assert other.remove_project() == ["a"]
    assert SqliteRegistry(path, "a").remove_project() == []


def test_teardown_removes_only_the_project_and_asks_before_offline_data(
    tmp_path: Path, redis_url: str, spark: SparkSession
) -> None:
    project = f"td_{uuid.uuid4().hex[:8]}"
    store = make_repo(tmp_path / "repo", redis_url, project)
    other = make_repo(tmp_path / "other", redis_url, f"{project}_2")  # its name starts alike
    repo = store.repo_path
    (run,) = store.materialize(at(0), at(6))
    (other_run,) = other.materialize(at(0), at(6))
    entities = pd.DataFrame({"driver_id": [1, 2], "event_timestamp": [at(10), at(10)]})
    saved = store.save_training_set(
        "before", store.get_historical_features(entities, ["stats:trips"])
    )
    client = redis.Redis.from_url(redis_url)
    client.set(b"unrelated", b"kept")
    assert len(_keys(client, project)) == 3
    sources = _files(repo / "data" / "stats")
    port = redis_url.rsplit(":", 1)[1].split("/", 1)[0]

    # not a terminal and no --yes: the online keys go, the offline data stays
    shown = _cli(repo)
    assert f"Online: removed 3 keys from Redis at 127.0.0.1:{port}/0 (stats: 3)." in shown
    assert "Offline data kept: no terminal to ask" in shown
    assert f"Offline data of project '{project}' (2 Delta tables" in shown
    assert _keys(client, project) == []
    assert len(_keys(client, f"{project}_2")) == 3 and client.get(b"unrelated") == b"kept"
    assert Path(run.delta_path).is_dir() and Path(saved.location).is_dir()
    assert FeatureStore(repo).registry.materializations() == [run]

    # --yes: every table listed in full, then deleted with the registry
    shown = _cli(repo, "--yes", "--wide")
    lines = shown.splitlines()
    assert any(run.delta_path in line and "feature table" in line for line in lines)
    assert any(saved.location in line and "before" in line for line in lines)
    assert "(the file stays, an empty registry then)" in shown
    assert "Online: removed 0 keys" in shown
    assert f"Deleted the offline data of project '{project}': 2 Delta tables" in shown
    assert not (repo / "data" / "offline" / project).exists()
    assert (repo / "data" / "registry.db").is_file()  # another project may share it
    with sqlite3.connect(repo / "data" / "registry.db") as conn:
        for table in _PROJECT_TABLES:
            assert conn.execute(f"SELECT count(*) FROM {table}").fetchone() == (0,), table
    assert _files(repo / "data" / "stats") == sources  # the source is untouched
    assert Path(other_run.delta_path).is_dir() and len(_keys(client, f"{project}_2")) == 3
    assert client.get(b"unrelated") == b"kept"

    # from scratch again: the first incremental run takes all history
    again = FeatureStore(repo)
    assert again.registry.registry_version() == 0 and again.plan().has_changes
    again.apply()
    (fresh,) = again.materialize_incremental(at(6))
    assert (fresh.start_us, fresh.rows_read, fresh.keys_written_online) == (None, 6, 3)
    resp = again.get_online_features(["stats:trips"], [{"driver_id": 1}], request_time=at(100))
    assert resp.values["trips"] == [12] and resp.statuses["trips"] == [FeatureStatus.PRESENT]


def test_teardown_refuses_offline_deletion_that_would_keep_source_data(
    tmp_path: Path, redis_url: str, spark: SparkSession
) -> None:
    project = f"tds_{uuid.uuid4().hex[:8]}"
    shared = tmp_path / "shared" / "registry.db"
    # the source sits inside the project's folder of the offline store, next to the
    # view's Delta tables
    raw = f"data/offline/{project}/stats/raw"
    root = tmp_path / "repo"
    store = make_repo(root, redis_url, project, online_extra=f"registry: {shared}\n")
    (root / raw).mkdir(parents=True)
    pq.write_table(pa.Table.from_pylist(BASE_ROWS, schema=SCHEMA), root / raw / "part-0.parquet")
    (root / "defs.py").write_text(textwrap.dedent(DEFS).replace('"data/stats"', f'"{raw}"'))
    store.apply()
    neighbour = make_repo(tmp_path / "n", redis_url, f"n_{project}", f"registry: {shared}\n")
    (run,) = store.materialize(at(0), at(6))
    assert run.rows_read == 6
    sources = _files(root / raw)
    client = redis.Redis.from_url(redis_url)
    assert len(_keys(client, project)) == 3

    # --yes: refused before anything is removed, online keys included
    shown = " ".join(_cli(root, "--yes", "--wide", code=1).split())
    kept = f"{(root / raw).resolve()} (it holds source data of feature view 'stats'"
    assert f"Error: refusing to delete the offline data of project '{project}'" in shown
    assert kept in shown and "move that data elsewhere" in shown
    assert "Nothing was removed (the online keys neither)" in shown
    assert len(_keys(client, project)) == 3
    assert Path(run.delta_path).is_dir() and _files(root / raw) == sources
    assert FeatureStore(root).registry.materializations() == [run]
    with pytest.raises(TeardownRefusedError) as refused:
        FeatureStore(root).teardown(offline=True)
    (location, why), *_ = refused.value.kept
    assert location == str((root / raw).resolve()) and "source data" in why
    assert len(_keys(client, project)) == 3

    # without --yes: the online keys go, the offline data stays and nobody is asked
    shown = _cli(root)
    assert "Online: removed 3 keys" in shown
    assert "Offline data kept: teardown deletes it only when it can delete all" in shown
    assert _keys(client, project) == [] and Path(run.delta_path).is_dir()

    # the source moved out: everything of the project goes, the neighbour's records stay
    (root / raw).rename(root / "data" / "moved")
    (root / "defs.py").write_text(textwrap.dedent(DEFS).replace('"data/stats"', '"data/moved"'))
    shown = _cli(root, "--yes", "--wide")
    assert f"(the file stays, with the records of n_{project})" in shown
    assert f"Deleted the offline data of project '{project}': 1 Delta tables" in shown
    assert _files(root / "data" / "moved") == sources
    assert not (root / "data" / "offline" / project).exists()
    assert shared.exists() and FeatureStore(root).registry.current() == []
    assert [v.name for v in FeatureStore(neighbour.repo_path).list_feature_views()] == ["stats"]


def test_teardown_refuses_offline_deletion_that_would_keep_a_remote_table(
    tmp_path: Path, redis_url: str
) -> None:
    project = f"tdr_{uuid.uuid4().hex[:8]}"
    store = make_repo(tmp_path / "repo", redis_url, project)
    view = store.registry.get("feature_view", "stats")
    assert view is not None
    remote = f"s3a://bucket/offline/{project}/stats/{view.data_hash}"
    store.registry.record_materialization(_run_record(remote, view.data_hash))
    client = redis.Redis.from_url(redis_url)
    key = f"sk1|{project}|stats|1".encode()
    client.set(key, b"x")

    with pytest.raises(TeardownRefusedError) as refused:
        FeatureStore(store.repo_path).teardown(offline=lambda data: True)
    assert refused.value.kept == (
        (
            remote,
            "not a local path, which teardown leaves alone: delete it with its storage's tools",
        ),
    )
    assert remote in str(refused.value) and client.get(key) == b"x"
    assert [r.delta_path for r in FeatureStore(store.repo_path).registry.materializations()] == [
        remote
    ]

    report = FeatureStore(store.repo_path).teardown()  # online only: nothing is kept there
    assert report.online.keys == {"stats": 1} and not report.offline_deleted
    assert client.get(key) is None


def _run_record(delta_path: str, data_hash: str) -> MaterializationRecord:
    """A run of view 'stats' as a materialization records it."""
    return MaterializationRecord(
        view="stats",
        data_hash=data_hash,
        kind="full",
        start_us=None,
        end_us=1_767_225_600_000_000,
        arrival_watermark_us=None,
        delta_path=delta_path,
        delta_version=0,
        rows_read=6,
        rows_written_offline=6,
        keys_offered_online=3,
        keys_written_online=3,
        seconds=1.0,
        finished_at=datetime.now(UTC),
    )


def test_teardown_asks_in_a_terminal_and_an_abort_changes_nothing(
    tmp_path: Path, redis_url: str, spark: SparkSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = f"tdi_{uuid.uuid4().hex[:8]}"
    store = make_repo(tmp_path / "repo", redis_url, project)
    repo = store.repo_path
    (run,) = store.materialize(at(0), at(6))
    client = redis.Redis.from_url(redis_url)
    monkeypatch.setattr(teardown_cli, "stdin_is_terminal", lambda: True)
    question = "Delete this offline data? It cannot be undone"

    # Ctrl-C or end of input at the question (click turns both into Abort): the question
    # comes before anything is removed, so everything stays, online keys included
    shown = _cli(repo, stdin="", code=1)
    assert question in shown and "Aborted" in shown
    assert len(_keys(client, project)) == 3
    assert Path(run.delta_path).is_dir()
    assert FeatureStore(repo).registry.materializations() == [run]

    # no: the online keys go (they are removed either way), the offline data stays
    shown = _cli(repo, stdin="n\n")
    assert question in shown and "Online: removed 3 keys" in shown
    assert f"The offline data of project '{project}' and its registry are kept." in shown
    assert _keys(client, project) == [] and Path(run.delta_path).is_dir()
    assert FeatureStore(repo).registry.materializations() == [run]

    # yes: deleted
    shown = _cli(repo, stdin="y\n")
    assert question in shown
    assert f"Deleted the offline data of project '{project}': 1 Delta tables" in shown
    assert not Path(run.delta_path).exists()
    assert FeatureStore(repo).registry.materializations() == []


def test_teardown_closes_the_online_client_of_the_store(tmp_path: Path, redis_url: str) -> None:
    store = make_repo(tmp_path / "repo", redis_url, f"tdc_{uuid.uuid4().hex[:8]}")
    store.get_online_features(["stats:trips"], [{"driver_id": 1}])
    # what a caller or a traceback could still hold: the connection must close anyway
    held = store._online
    assert isinstance(held, RedisOnlineStore)
    connection = str(held.client.client_id())
    admin = redis.Redis.from_url(redis_url)
    assert connection in {c["id"] for c in admin.client_list()}
    store.teardown()
    deadline = time.monotonic() + 5
    while connection in {c["id"] for c in admin.client_list()}:
        assert time.monotonic() < deadline, "the store's Redis connection is still open"
        time.sleep(0.02)


def test_teardown_empties_and_stops_the_embedded_server(
    tmp_path: Path, spark: SparkSession
) -> None:
    root = tmp_path / "repo"
    (root / "data" / "stats").mkdir(parents=True)
    (root / "feature_store.yaml").write_text("project: emb_td\n")  # no online_store.url
    (root / "defs.py").write_text(textwrap.dedent(DEFS))
    pq.write_table(
        pa.Table.from_pylist(BASE_ROWS, schema=SCHEMA), root / "data" / "stats" / "p.parquet"
    )
    store = FeatureStore(root)
    store.apply()
    server = EmbeddedServer(store.embedded_dir)
    try:
        (run,) = store.materialize(at(0), at(6))
        assert run.keys_written_online == 3 and server.running()

        report = FeatureStore(root).teardown()
        assert (report.online.keys, report.online.server_stopped) == ({"stats": 3}, True)
        assert not report.offline_deleted and not server.running()

        # stopped, its data still on disk: started to look, found empty, stopped again
        report = FeatureStore(root).teardown(offline=lambda data: len(data.tables) == 1)
        assert (report.online.total, report.online.server_stopped) == (0, False)
        assert report.offline_deleted and not server.running()
        assert not Path(run.delta_path).exists()
        assert (root / "data" / "stats" / "p.parquet").exists()
    finally:
        server.stop()


def test_teardown_stops_the_embedded_server_when_removing_keys_fails(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    (root / "data" / "stats").mkdir(parents=True)
    (root / "feature_store.yaml").write_text("project: emb_fail\n")  # no online_store.url
    (root / "defs.py").write_text(textwrap.dedent(DEFS))
    server = EmbeddedServer(FeatureStore(root).embedded_dir)
    try:
        client = redis.Redis.from_url(server.ensure_running())
        client.set(b"sk1|emb_fail|stats|1", b"x")
        # a replica of a master that is not there: it answers, but refuses every write
        client.replicaof("127.0.0.1", "1")
        with pytest.raises(OnlineStoreUnavailableError, match="Redis refused to delete keys"):
            FeatureStore(root).teardown()
        assert not server.running()

        # started again from its own config (no replica), its key still on disk: removed
        report = FeatureStore(root).teardown()
        assert report.online.keys == {"stats": 1} and not server.running()
    finally:
        server.stop()
