"""redis-server and `skewless serve` as subprocesses the scenarios can hurt.

Each process is started by its own object, which alone signals it (by pid, never by
name) and stops it on exit, also when a scenario fails half-way.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import Final, cast

import grpc
import redis
from grpc_health.v1 import health_pb2
from prometheus_client.parser import text_string_to_metric_families

from benchmarks.loadgen import free_port

SKEWLESS: Final = [sys.executable, "-m", "skewless.cli.main"]
GET_ONLINE_FEATURES: Final = "/skewless.serving.v1.OnlineServing/GetOnlineFeatures"
HEALTH_CHECK: Final = "/grpc.health.v1.Health/Check"


def wait_until(condition: Callable[[], bool], timeout_s: float, what: str) -> float:
    """Poll `condition` until it holds; returns the seconds it took. Raises TimeoutError
    naming `what` after `timeout_s`."""
    started = time.monotonic()
    while not condition():
        if time.monotonic() - started > timeout_s:
            raise TimeoutError(f"{what}: not after {timeout_s:g} s")
        time.sleep(0.02)
    return time.monotonic() - started


def rss_of(pid: int) -> int:
    """Resident bytes of one process (Linux /proc)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"/proc/{pid}/status has no VmRSS line")


class RedisProcess:
    """A private redis-server on a loopback port of its own. A restart reuses the port
    and the folder, so clients reconnect to the same address and find the last SAVE."""

    def __init__(self, workdir: Path, *, port: int | None = None) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server is not installed: run scripts/setup.sh")
        self.binary = binary
        self.workdir = workdir
        self.port = port or free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.frozen = False

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def client(self) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=10)

    def start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        # `--save ""`: never snapshots by itself; a scenario SAVEs when it wants the data
        # back after a kill (the RDB file is loaded at start).
        self.proc = subprocess.Popen(
            [
                self.binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.workdir),
                "--dbfilename",
                "dump.rdb",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.frozen = False
        client = self.client()
        proc = self.proc

        def answers() -> bool:
            if proc.poll() is not None:
                raise RuntimeError(f"redis-server on port {self.port} exited ({proc.returncode})")
            try:
                return bool(client.ping())
            except (redis.ConnectionError, redis.BusyLoadingError):
                return False

        wait_until(answers, 30, f"redis-server on port {self.port} answering PING")

    def kill(self) -> None:
        """SIGKILL: no shutdown, connections reset."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)
        self.proc = None
        self.frozen = False

    def freeze(self) -> None:
        """SIGSTOP: connections stay open (the kernel still accepts new ones) and nothing
        answers."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGSTOP)
        self.frozen = True

    def thaw(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGCONT)
        self.frozen = False

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.frozen:
            self.thaw()
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
        self.proc = None

    def __enter__(self) -> RedisProcess:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def redis_from_snapshot(snapshot: Path, folder: Path) -> RedisProcess:
    """A started redis-server holding what `snapshot` (a dump.rdb) holds."""
    folder.mkdir(parents=True)
    shutil.copy2(snapshot, folder / "dump.rdb")
    redis = RedisProcess(folder)
    try:
        redis.start()
    except BaseException:
        redis.stop()
        raise
    return redis


def redis_contents(url: str) -> dict[bytes, bytes]:
    """Every key and its value."""
    client = redis.Redis.from_url(url, socket_timeout=30)
    keys = list(client.scan_iter(count=10_000))
    values = cast("list[bytes | None]", client.mget(keys) if keys else [])
    return {k: v for k, v in zip(keys, values, strict=True) if v is not None}


def health(target: str, timeout_s: float = 2.0) -> str:
    """The whole server's health status name, or the gRPC code that answered instead."""
    with grpc.insecure_channel(target) as channel:
        check = channel.unary_unary(
            HEALTH_CHECK,
            request_serializer=health_pb2.HealthCheckRequest.SerializeToString,
            response_deserializer=health_pb2.HealthCheckResponse.FromString,
        )
        try:
            reply = check(health_pb2.HealthCheckRequest(service=""), timeout=timeout_s)
        except grpc.RpcError as exc:
            return cast("grpc.Call", exc).code().name
        return health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)


class ServerProcess:
    """`skewless serve` over a repo, its Redis given by SKEWLESS_ONLINE_STORE_URL, with
    /metrics; its output goes to `log`."""

    def __init__(
        self, repo: Path, redis_url: str, log: Path, env: Mapping[str, str] | None = None
    ) -> None:
        self.repo = repo
        self.redis_url = redis_url
        self.log = log
        self.env = dict(env or {})
        self.port = 0
        self.metrics_port = 0
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self, timeout_s: float = 90) -> None:
        self.port, self.metrics_port = free_port(), free_port()
        env = {**os.environ, "SKEWLESS_ONLINE_STORE_URL": self.redis_url, **self.env}
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [
                    *SKEWLESS,
                    "serve",
                    "--repo",
                    str(self.repo),
                    "--port",
                    str(self.port),
                    "--metrics-port",
                    str(self.metrics_port),
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env,
            )

        def serving() -> bool:
            if not self.alive:
                raise RuntimeError(f"skewless serve exited: {self.log_tail()}")
            return health(self.target, 1.0) == "SERVING"

        wait_until(serving, timeout_s, f"skewless serve on {self.target} SERVING")

    def health(self) -> str:
        return health(self.target)

    def rss(self) -> int:
        return rss_of(self.pid)

    def requests_counted(self, method: str = GET_ONLINE_FEATURES) -> dict[str, int]:
        """skewless_online_requests_total of `method`, by status code name."""
        url = f"http://127.0.0.1:{self.metrics_port}/metrics"
        with urllib.request.urlopen(url, timeout=10) as reply:
            text = reply.read().decode()
        counted: dict[str, int] = {}
        for family in text_string_to_metric_families(text):
            if family.name != "skewless_online_requests":
                continue
            for sample in family.samples:
                ours = sample.name.endswith("_total") and sample.labels.get("method") == method
                if ours and sample.value:
                    counted[sample.labels["code"]] = int(sample.value)
        return counted

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def log_tail(self, chars: int = 3000) -> str:
        return self.log_text()[-chars:]

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self.proc = None


@contextmanager
def serving(
    repo: Path, redis_url: str, log: Path, env: Mapping[str, str] | None = None
) -> Iterator[ServerProcess]:
    server = ServerProcess(repo, redis_url, log, env)
    try:
        server.start()
        yield server
    finally:
        server.stop()
