"""Where a Spark job's time goes: JDK Flight Recorder (JFR) samples of the JVM.

With a local master the driver JVM also runs every task, so one recording of it covers
the whole join. `Recording` starts and stops JFR in a running JVM with the JDK's own
`jcmd`, and `summarise` reads the samples back with `jfr print` and puts each into one
phase of the point-in-time join: the phase of the innermost stack frame that belongs to
one (a sort inside the window operator counts as sort, a shuffle read that feeds the
sort counts as shuffle read). Sampling costs about 1% with the JDK's default settings
(one stack every 20 ms per running thread).
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

# (phase, markers): a frame belongs to the phase if its method name contains a marker.
PHASES: tuple[tuple[str, tuple[str, ...]], ...] = (
    (
        "sort by key and time within each shuffle partition",
        (
            "UnsafeExternalSorter",
            "UnsafeInMemorySorter",
            "UnsafeExternalRowSorter",
            "UnsafeSortDataFormat",
            "collection.TimSort",
            "RadixSort",
        ),
    ),
    ("window: the running maximum per key", (".execution.window.",)),
    (
        "shuffle read",
        ("UnsafeRowSerializerInstance$$anon$2", "ShuffleBlockFetcherIterator", "LZ4BlockInput"),
    ),
    (
        "Parquet scan of the source",
        (".datasources.parquet.", "org.apache.parquet.", "FileScanRDD"),
    ),
    (
        "map side: filter, build rows, shuffle write",
        ("ShuffleWriter", "DiskBlockObjectWriter", "ShuffleExchangeExec", "LZ4BlockOutput"),
    ),
    ("result: project features, convert to Arrow", ("arrow.",)),
    ("other task work", ("Executor$TaskRunner",)),
)
DRIVER = "driver: planning, scheduling, py4j"

_EVENT = "jdk.ExecutionSample {"
_FRAME = re.compile(r"^\s+([\w$.<>/]+)\(")


def phase_of(frames: list[str]) -> str:
    """The phase of one sample; `frames` innermost first, as method names."""
    for frame in frames:
        for phase, markers in PHASES:
            if any(m in frame for m in markers):
                return phase
    return DRIVER


def samples(text: str) -> list[list[str]]:
    """The stacks (innermost frame first) of `jfr print --events jdk.ExecutionSample`."""
    stacks = []
    for event in text.split(_EVENT)[1:]:
        _, _, trace = event.partition("stackTrace = [")
        frames = [m.group(1) for line in trace.splitlines() if (m := _FRAME.match(line))]
        if frames:
            stacks.append(frames)
    return stacks


def summarise(stacks: list[list[str]], top: int = 8) -> dict[str, Any]:
    """Shares of the samples by phase (largest first) and the methods seen most often
    at the top of the stack."""
    n = len(stacks)
    phases = Counter(phase_of(s) for s in stacks)
    tops = Counter(s[0] for s in stacks)
    return {
        "samples": n,
        "phases": [{"phase": p, "share": c / n} for p, c in phases.most_common()],
        "top_frames": [{"frame": f, "share": c / n} for f, c in tops.most_common(top)],
    }


class Recording:
    """A JFR recording of the JVM at `pid`, with the tools of the JDK at `java_home`."""

    def __init__(self, pid: int, java_home: str, path: Path, name: str = "skewless-bench"):
        self.pid, self.path, self.name = pid, path, name
        self._bin = Path(java_home) / "bin"

    def _jcmd(self, *args: str) -> None:
        subprocess.run(
            [str(self._bin / "jcmd"), str(self.pid), *args],
            check=True,
            capture_output=True,
            timeout=60,
        )

    def try_start(self) -> bool:
        """Start recording; False (and a line on stderr) if this JDK cannot."""
        try:
            self._jcmd("JFR.start", f"name={self.name}", "settings=default")
        except (OSError, subprocess.SubprocessError) as exc:
            print(f"no JVM profile: {exc}", file=sys.stderr)
            return False
        return True

    def stop(self) -> dict[str, Any]:
        """Stop, and summarise what was recorded (or say why not)."""
        try:
            self._jcmd("JFR.stop", f"name={self.name}", f"filename={self.path}")
            return summarise(samples(self._print()))
        except (OSError, subprocess.SubprocessError) as exc:
            return {"error": str(exc)}

    def _print(self) -> str:
        return subprocess.run(
            [
                str(self._bin / "jfr"),
                "print",
                "--events",
                "jdk.ExecutionSample",
                "--stack-depth",
                "96",
                str(self.path),
            ],
            check=True,
            capture_output=True,
            text=True,
            timeout=300,
        ).stdout
