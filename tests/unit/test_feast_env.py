"""feast_env's limit bookkeeping and process-group handling, with stand-in workers
(no Feast, no network, no JVM)."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import pytest
from benchmarks import feast_env


def test_limits_track_peak_and_report_which_limit() -> None:
    limits = feast_env._Limits(timeout_s=10, mem_limit_bytes=1000)
    assert limits.check(0.0, 100) is None
    assert limits.check(1.0, 700) is None
    assert limits.check(2.0, 300) is None
    assert limits.peak_rss_bytes == 700
    assert limits.check(11.0, 300) == "timeout"
    assert limits.check(3.0, 1001) == "out_of_memory"
    assert limits.peak_rss_bytes == 1001


def test_out_path_is_read_from_args() -> None:
    assert feast_env._out_path(["x", "--out", "a.json"]) == Path("a.json")
    assert feast_env._out_path(["--out=b.json"]) == Path("b.json")
    assert feast_env._out_path(["x", "--out"]) is None


def _fake_worker(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, body: str) -> None:
    script = tmp_path / "fake_worker.py"
    script.write_text(body)
    monkeypatch.setattr(feast_env, "WORKER", script)


OK_WORKER = """
import json, sys
out = sys.argv[sys.argv.index("--out") + 1]
json.dump({"command": sys.argv[1]}, open(out, "w"))
print("some log line", file=sys.stderr)
"""

# Starts a grandchild (as Spark starts its JVM), writes its pid, then sleeps.
SLEEPY_WORKER = """
import subprocess, sys, time
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
open(sys.argv[sys.argv.index("--pidfile") + 1], "w").write(str(child.pid))
time.sleep(60)
"""

GREEDY_WORKER = """
import time
hog = bytearray(300 * 1024 * 1024)
for i in range(0, len(hog), 4096):
    hog[i] = 1
time.sleep(60)
"""


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    status = Path(f"/proc/{pid}/status").read_text()
    return "State:\tZ" in status


def test_run_reads_the_result(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_worker(tmp_path, monkeypatch, OK_WORKER)
    res = feast_env.run(["setup"], timeout_s=30, mem_limit_bytes=1 << 40, py=Path(sys.executable))
    assert res.status == "ok"
    assert res.result is not None
    assert res.result["command"] == "setup"
    assert "some log line" in res.stderr_tail
    assert res.peak_rss_bytes >= 0


def test_run_times_out_and_kills_the_tree(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_worker(tmp_path, monkeypatch, SLEEPY_WORKER)
    pidfile = tmp_path / "child.pid"
    started = time.monotonic()
    res = feast_env.run(
        ["x", "--pidfile", str(pidfile)],
        timeout_s=1.5,
        mem_limit_bytes=1 << 40,
        py=Path(sys.executable),
    )
    assert res.status == "timeout"
    assert res.result is None
    assert time.monotonic() - started < 20
    assert res.peak_rss_bytes > 0
    assert _gone(int(pidfile.read_text()))


def test_run_stops_a_tree_over_the_memory_limit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _fake_worker(tmp_path, monkeypatch, GREEDY_WORKER)
    res = feast_env.run(
        ["x"], timeout_s=30, mem_limit_bytes=200 * 1024 * 1024, py=Path(sys.executable)
    )
    assert res.status == "out_of_memory"
    assert res.peak_rss_bytes > 200 * 1024 * 1024


def test_a_failing_worker_is_an_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_worker(tmp_path, monkeypatch, "import sys; sys.exit('boom')")
    res = feast_env.run(["x"], timeout_s=30, mem_limit_bytes=1 << 40, py=Path(sys.executable))
    assert res.status == "error"
    assert res.returncode == 1
    assert "boom" in res.stderr_tail
