"""Feast's side of the benchmark suite, seen from skewless's virtual environment.

Feast runs in a virtual environment of its own (`~/.cache/skewless/bench/feast-0.67.0/`),
never in skewless's: this module only creates that environment, runs
`benchmarks/feast_worker.py` in it under a time and memory limit, and starts and stops
Feast's feature servers. It imports nothing but the standard library and `loadgen`.

    py = ensure_venv()                      # first call installs Feast (minutes), then instant
    res = run(["setup", "--data", d, "--workdir", w, "--redis", "127.0.0.1:6379",
               "--offline", "local", "--out", "setup.json"],
              timeout_s=600, mem_limit_bytes=8 << 30)
    proc = start_grpc_server(w / "local", port)   # `feast listen`, gRPC
    ...
    stop(proc)
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc

from benchmarks import loadgen

FEAST_VERSION = "0.67.0"
# The grpcio extra brings grpcio, grpcio-reflection and grpcio-health-checking, which
# `feast listen` (the gRPC feature server) imports; the HTTP server's fastapi, uvicorn,
# gunicorn (via uvicorn-worker) are core requirements of Feast. pyspark is pinned to
# the version skewless uses, so both sides run the same Spark.
REQUIREMENTS = [f"feast[redis,spark,grpcio]=={FEAST_VERSION}", "pyspark==4.2.0"]
VENV = Path.home() / ".cache" / "skewless" / "bench" / f"feast-{FEAST_VERSION}"
WORKER = Path(__file__).resolve().parent / "feast_worker.py"
POLL_S = 0.25
_STAMP = ".skewless-installed.json"
# Variables of skewless's environment that must not leak into Feast's.
_SCRUB = ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME", "PYSPARK_PYTHON", "PYSPARK_DRIVER_PYTHON")


def _log(msg: str) -> None:
    print(f"[feast-env] {msg}", file=sys.stderr, flush=True)


def venv_python(venv: Path = VENV) -> Path:
    return venv / "bin" / "python"


def _stamp_matches(venv: Path) -> bool:
    try:
        stamp = json.loads((venv / _STAMP).read_text())
    except (OSError, ValueError):
        return False
    return bool(stamp.get("requirements") == REQUIREMENTS and venv_python(venv).exists())


def ensure_venv(venv: Path = VENV) -> Path:
    """Create Feast's virtual environment if needed; return its python.

    Idempotent: a stamp file written after a successful install (naming the exact
    requirements) makes later calls instant; a half-made environment is rebuilt.
    """
    if _stamp_matches(venv):
        return venv_python(venv)
    started = time.monotonic()
    if venv.exists():
        _log(f"removing incomplete or outdated {venv}")
        shutil.rmtree(venv)
    venv.parent.mkdir(parents=True, exist_ok=True)
    base = getattr(sys, "_base_executable", sys.executable)
    _log(f"creating {venv} with {base}")
    subprocess.run([base, "-m", "venv", str(venv)], check=True)
    py = venv_python(venv)
    pip = [str(py), "-m", "pip", "--disable-pip-version-check"]
    subprocess.run([*pip, "install", "--quiet", "--upgrade", "pip"], check=True, env=_env())
    _log(f"installing {' '.join(REQUIREMENTS)} (takes a few minutes)")
    subprocess.run([*pip, "install", *REQUIREMENTS], check=True, env=_env())
    seconds = time.monotonic() - started
    stamp = {"requirements": REQUIREMENTS, "install_s": round(seconds, 1), "python": str(py)}
    (venv / _STAMP).write_text(json.dumps(stamp, indent=1))
    _log(f"Feast {FEAST_VERSION} installed in {seconds:.0f} s")
    return py


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _SCRUB}
    env["PYTHONUNBUFFERED"] = "1"
    return env


def _worker_env(py: Path) -> dict[str, str]:
    env = _env()
    env["PATH"] = f"{py.parent}{os.pathsep}{env.get('PATH', '')}"
    # Spark's Python workers must be this venv's python, not whatever is on PATH.
    env["PYSPARK_PYTHON"] = str(py)
    env["PYSPARK_DRIVER_PYTHON"] = str(py)
    return env


_VERSIONS_SCRIPT = """
import json, importlib.metadata as m
out = {}
for name in ("feast", "pyspark", "pandas", "pyarrow", "redis", "grpcio", "numpy"):
    try:
        out[name] = m.version(name)
    except m.PackageNotFoundError:
        out[name] = None
print(json.dumps(out))
"""


def versions(py: Path) -> dict[str, str | None]:
    """Versions of Feast and its main dependencies inside the venv of `py`."""
    done = subprocess.run(
        [str(py), "-c", _VERSIONS_SCRIPT],
        check=True,
        capture_output=True,
        text=True,
        env=_env(),
        timeout=60,
    )
    result: dict[str, str | None] = json.loads(done.stdout)
    return result


@dataclass
class WorkerResult:
    status: str  # "ok" | "timeout" | "out_of_memory" | "error"
    seconds: float
    peak_rss_bytes: int
    result: dict[str, Any] | None
    stderr_tail: str
    returncode: int | None = None
    log: Path | None = field(default=None)


class _Limits:
    """Peak-RSS and limit bookkeeping for one process tree (pure: fed samples)."""

    def __init__(self, timeout_s: float, mem_limit_bytes: int) -> None:
        self.timeout_s = timeout_s
        self.mem_limit_bytes = mem_limit_bytes
        self.peak_rss_bytes = 0

    def check(self, elapsed_s: float, rss_bytes: int) -> str | None:
        """Record a sample; return "timeout" / "out_of_memory" when a limit is crossed."""
        self.peak_rss_bytes = max(self.peak_rss_bytes, rss_bytes)
        if rss_bytes > self.mem_limit_bytes:
            return "out_of_memory"
        if elapsed_s > self.timeout_s:
            return "timeout"
        return None


def _out_path(args: list[str]) -> Path | None:
    for i, arg in enumerate(args):
        if arg == "--out" and i + 1 < len(args):
            return Path(args[i + 1])
        if arg.startswith("--out="):
            return Path(arg.split("=", 1)[1])
    return None


def _kill_group(proc: subprocess.Popen[Any], grace_s: float = 3.0) -> None:
    """SIGTERM then SIGKILL the process group `proc` leads, and reap `proc`."""
    pgid = proc.pid
    for sig, wait_s in ((signal.SIGTERM, grace_s), (signal.SIGKILL, 10.0)):
        try:
            os.killpg(pgid, sig)
        except ProcessLookupError:
            break
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline:
            proc.poll()
            if not _group_alive(pgid):
                break
            time.sleep(0.05)
        else:
            continue
        break
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=10)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # Zombies still count for killpg(0); ignore those that are only waiting to be reaped.
    return any(group == pgid and state != "Z" for state, _, group in loadgen.processes().values())


def _tail(path: Path, chars: int = 4000) -> str:
    try:
        with path.open("rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - chars))
            return f.read().decode("utf-8", "replace")
    except OSError:
        return ""


def run(
    args: list[str],
    *,
    timeout_s: float,
    mem_limit_bytes: int,
    py: Path | None = None,
    log_path: Path | None = None,
) -> WorkerResult:
    """Run `feast_worker.py <args>` in Feast's venv under a time and memory limit.

    The worker runs in its own process group; the RSS of its whole process tree (Spark's
    JVM included) is polled every 0.25 s. On timeout or when the tree's RSS exceeds
    `mem_limit_bytes`, the whole group is killed and the status says which. The group is
    also killed after a normal exit, so nothing it started outlives it. `result` is the
    JSON the worker wrote to its `--out` file (a temporary one is added when args have
    none). The worker's stdout and stderr go to `log_path` (a temporary file if None).
    """
    py = py or venv_python()
    args = [str(a) for a in args]
    tmp = Path(tempfile.mkdtemp(prefix="feast-run-"))
    out = _out_path(args)
    if out is None:
        out = tmp / "result.json"
        args = [*args, "--out", str(out)]
    out.unlink(missing_ok=True)
    log_path = log_path or tmp / "worker.log"
    status = "ok"
    with log_path.open("wb") as log:
        started = time.monotonic()
        proc = subprocess.Popen(
            [str(py), str(WORKER), *args],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=_worker_env(py),
            start_new_session=True,
        )
        limits = _Limits(timeout_s, mem_limit_bytes)
        try:
            while proc.poll() is None:
                crossed = limits.check(time.monotonic() - started, loadgen.rss_bytes(proc.pid))
                if crossed is not None:
                    status = crossed
                    break
                time.sleep(POLL_S)
        finally:
            seconds = time.monotonic() - started
            _kill_group(proc)
    if status == "ok" and proc.returncode != 0:
        status = "error"
    result = None
    if status == "ok" or out.exists():
        try:
            result = json.loads(out.read_text())
        except (OSError, ValueError):
            status = "error" if status == "ok" else status
    return WorkerResult(
        status=status,
        seconds=seconds,
        peak_rss_bytes=limits.peak_rss_bytes,
        result=result,
        stderr_tail=_tail(log_path),
        returncode=proc.returncode,
        log=log_path,
    )


def _start(cmd: list[str], repo: Path, log_path: Path | None) -> subprocess.Popen[Any]:
    py = venv_python()
    log = open(log_path, "ab") if log_path else subprocess.DEVNULL  # noqa: SIM115
    try:
        return subprocess.Popen(
            [str(py.parent / "feast"), "--chdir", str(repo), *cmd],
            cwd=repo,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=_worker_env(py),
            start_new_session=True,
        )
    finally:
        if log_path:
            log.close()  # type: ignore[union-attr]


def _wait_grpc(proc: subprocess.Popen[Any], port: int, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"feast gRPC server exited with {proc.returncode}")
        try:
            loadgen.wait_for_port("127.0.0.1", port, 0.5)
        except TimeoutError:
            continue
        # The server answers the standard gRPC health check once it is serving.
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            check = loadgen.raw_unary(channel, "/grpc.health.v1.Health/Check")
            try:
                check(b"", timeout=5)  # an empty HealthCheckRequest
                return
            except grpc.RpcError:
                time.sleep(0.2)
    raise TimeoutError(f"feast gRPC server on port {port} not ready after {timeout_s:.0f} s")


def _wait_http(proc: subprocess.Popen[Any], port: int, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"feast HTTP server exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as r:
                if r.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.2)
    raise TimeoutError(f"feast HTTP server on port {port} not ready after {timeout_s:.0f} s")


def start_grpc_server(
    repo: Path,
    port: int,
    *,
    max_workers: int = 10,
    timeout_s: float = 120,
    log_path: Path | None = None,
) -> subprocess.Popen[Any]:
    """Start Feast's gRPC feature server (`feast listen`) for `repo` on 127.0.0.1:port.

    Its method is GRPC_METHOD. The server is the group leader of its own process group
    (`proc.pid` is the pid to read RSS from); `stop(proc)` kills the group.
    """
    cmd = ["listen", "--address", f"127.0.0.1:{port}", "--max_workers", str(max_workers)]
    proc = _start(cmd, repo, log_path)
    try:
        _wait_grpc(proc, port, timeout_s)
    except BaseException:
        stop(proc)
        raise
    return proc


def start_http_server(
    repo: Path,
    port: int,
    *,
    workers: int = 1,
    timeout_s: float = 120,
    log_path: Path | None = None,
) -> subprocess.Popen[Any]:
    """Start Feast's Python HTTP feature server (`feast serve`, gunicorn + uvicorn).

    Gunicorn's default recycling of a worker every ~1000 requests is switched off
    (`--max-requests 0`), so a latency run is not cut by a worker restart.
    """
    cmd = [
        "serve",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--type",
        "http",
        "--no-access-log",
        "--workers",
        str(workers),
        "--max-requests",
        "0",
        "--max-requests-jitter",
        "0",
    ]
    proc = _start(cmd, repo, log_path)
    try:
        _wait_http(proc, port, timeout_s)
    except BaseException:
        stop(proc)
        raise
    return proc


def stop(proc: subprocess.Popen[Any]) -> None:
    """Kill the process group of a server started here, and reap it."""
    _kill_group(proc)


GRPC_METHOD = "/GrpcFeatureServer/GetOnlineFeatures"
HTTP_PATH = "/get-online-features"
