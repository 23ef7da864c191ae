"""Several `skewless apply` at once, each from its own copy of the repo with different
definitions, against one registry.

Each process either applies its plan or fails with the retryable error of a registry
that moved on under it (or stayed locked too long), in one line. Afterwards the registry
must read back: one registry version per successful apply, numbered without gaps, each
object's history numbered without gaps, the current definitions those of the apply that
came last (`plan` in its copy says "No changes"), and every failed apply succeeds when
simply run again.
"""

from __future__ import annotations

import re
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from benchmarks.reliability.processes import SKEWLESS
from benchmarks.reliability.repo import DEFINITIONS, PROJECT, copy_repo, write_config

RETRYABLE: Final = {
    "conflict": "the registry changed since this plan was made",
    "locked": "is locked: another process has held its write lock",
}
_APPLIED = re.compile(r"registry is now at v(\d+)")

EXTRA_VIEW: Final = """
extra_{tag} = FeatureView(
    "extra_{tag}",
    entities=[driver],
    schema=[Field("trips", Int64)],
    source=FileSource("data/stats.parquet", timestamp_field="ts"),
)
"""


@dataclass(frozen=True)
class Apply:
    variant: str
    returncode: int
    version: int | None  # the registry version it made, if it applied
    outcome: str  # "applied", "no changes", one of RETRYABLE's keys, or "other"
    message: str  # its error line, or the last line of its output
    traceback: bool


def _variant(base: Path, target: Path, registry: Path, redis_url: str, tag: str) -> Path:
    copy_repo(base, target)
    write_config(target, redis_url, registry=registry)
    definitions = DEFINITIONS.replace("DESCRIPTION", f"variant {tag}")
    (target / "definitions.py").write_text(definitions + EXTRA_VIEW.format(tag=tag))
    return target


def _cli(*args: str) -> list[str]:
    return [*SKEWLESS, *args]


def _outcome(variant: str, proc: subprocess.CompletedProcess[str]) -> Apply:
    found = _APPLIED.search(proc.stdout)
    errors = [line for line in proc.stderr.splitlines() if line.startswith("Error:")]
    message = errors[0] if errors else (proc.stdout.strip().splitlines() or [""])[-1]
    if proc.returncode == 0:
        outcome = "applied" if found else "no changes"
    else:
        outcome = next((k for k, text in RETRYABLE.items() if text in message), "other")
    return Apply(
        variant,
        proc.returncode,
        int(found.group(1)) if found and proc.returncode == 0 else None,
        outcome,
        message[:500],
        "Traceback" in proc.stderr,
    )


def _apply_all(repos: dict[str, Path], timeout_s: float) -> list[Apply]:
    procs = {
        name: subprocess.Popen(
            _cli("apply", "--repo", str(repo)),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={"COLUMNS": "200", "PATH": "/usr/bin:/bin"},
        )
        for name, repo in repos.items()
    }
    results = []
    for name, proc in procs.items():
        out, err = proc.communicate(timeout=timeout_s)
        results.append(
            _outcome(name, subprocess.CompletedProcess(proc.args, proc.returncode, out, err))
        )
    return results


def _run(args: list[str], timeout_s: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        args,
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
        env={"COLUMNS": "200", "PATH": "/usr/bin:/bin"},
    )


@dataclass(frozen=True)
class RegistryCheck:
    """What the registry reads back as after a round."""

    version: int
    apply_versions: list[int]  # of every recorded apply, in order
    gaps: list[str]  # objects whose history is not numbered 1..n
    current_views: list[str]


def check_registry(registry: Path, extra_views: list[str]) -> RegistryCheck:
    """Read the registry back; `extra_views` are the variants' views (some removed)."""
    from skewless.registry.sqlite import SqliteRegistry  # noqa: PLC0415

    reader = SqliteRegistry(registry, PROJECT)
    gaps = []
    objects = [("entity", "driver"), ("entity", "zone"), ("feature_service", "svc")]
    objects += [("feature_view", name) for name in ("stats", "zones", *extra_views)]
    for kind, name in objects:
        history = reader.history(kind, name)  # type: ignore[arg-type]
        versions = [r.version for r in history]
        applied_in = [r.registry_version for r in history]
        if versions != list(range(1, len(versions) + 1)) or applied_in != sorted(set(applied_in)):
            gaps.append(f"{kind} {name}: versions {versions} in registry versions {applied_in}")
    return RegistryCheck(
        reader.registry_version(),
        [a.registry_version for a in reader.applies()],
        gaps,
        sorted(r.name for r in reader.current("feature_view")),
    )


@dataclass
class Round:
    applies: list[Apply]
    retries: list[Apply]  # the failed ones, run again one after another
    version_before: int
    after_concurrent: RegistryCheck
    after_retries: RegistryCheck
    last_plan: str  # `plan` in the copy applied last, once everything is applied
    seconds: float


@dataclass
class AppliesResult:
    rounds: list[Round] = field(default_factory=list)

    def figures(self) -> dict[str, Any]:
        applies = [a for r in self.rounds for a in r.applies]
        outcomes: dict[str, int] = {}
        for a in applies:
            outcomes[a.outcome] = outcomes.get(a.outcome, 0) + 1
        return {
            "rounds": len(self.rounds),
            "processes": len(applies),
            "outcomes": dict(sorted(outcomes.items())),
            "retries_applied": sum(
                1 for r in self.rounds for a in r.retries if a.outcome == "applied"
            ),
            "tracebacks": sum(1 for a in applies if a.traceback),
            "registry_version": self.rounds[-1].after_retries.version if self.rounds else 0,
            "history_gaps": sum(len(r.after_retries.gaps) for r in self.rounds),
            "seconds": round(sum(r.seconds for r in self.rounds), 1),
        }


def concurrent_applies(
    base: Path, work: Path, redis_url: str, *, processes: int, rounds: int, timeout_s: float = 300
) -> AppliesResult:
    """`rounds` rounds of `processes` applies started at once, each from a copy of the
    built repo `base` with its own description of `stats` and its own extra view."""
    registry = work / "registry.db"
    result = AppliesResult()
    extra: list[str] = []
    for r in range(rounds):
        started = time.monotonic()
        version_before = check_registry(registry, extra).version if registry.exists() else 0
        repos = {
            f"r{r}v{i}": _variant(base, work / f"r{r}v{i}", registry, redis_url, f"r{r}v{i}")
            for i in range(processes)
        }
        extra += [f"extra_{tag}" for tag in repos]
        applies = _apply_all(repos, timeout_s)
        after = check_registry(registry, extra)
        failed = [a for a in applies if a.returncode != 0]
        retries = [
            _outcome(a.variant, _run(_cli("apply", "--repo", str(repos[a.variant])), timeout_s))
            for a in failed
        ]
        done = [a for a in applies + retries if a.version is not None]
        last = max(done, key=lambda a: a.version or 0).variant if done else next(iter(repos))
        plan = _run(_cli("plan", "--repo", str(repos[last])), timeout_s)
        result.rounds.append(
            Round(
                applies,
                retries,
                version_before,
                after,
                check_registry(registry, extra),
                plan.stdout + plan.stderr,
                time.monotonic() - started,
            )
        )
    return result
