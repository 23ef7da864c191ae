"""Run the reliability scenarios long and write a report.

    .venv/bin/python -m benchmarks.reliability            # the long variant, all scenarios
    .venv/bin/python -m benchmarks.reliability --variant short --only outage,load

Writes benchmarks/results/<date>-reliability.{md,json}: per scenario the requests, the
answers by status code, p50/p99 latency, the server's RSS before and after, and what
each fault did (when health changed, how soon the server answered again, what a killed
materialization left and whether its rerun equals a clean run), with the command, the
commit and the machine. Every process it starts is stopped, also on failure.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
import traceback
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

from benchmarks.reliability import applies, fuzz, kills, load
from benchmarks.reliability.processes import redis_from_snapshot, serving
from benchmarks.reliability.repo import RepoShape, build_repo, copy_repo, write_config
from benchmarks.reliability.variants import LONG, SHORT, Variant

RESULTS: Final = Path(__file__).resolve().parents[1] / "results"
SCENARIOS: Final = ("outage", "load", "fuzz", "kills", "applies")
ROOT: Final = Path(__file__).resolve().parents[2]


def log(message: str) -> None:
    print(f"[reliability {datetime.now(UTC):%H:%M:%S}] {message}", flush=True)


def machine() -> dict[str, Any]:
    from importlib.metadata import version  # noqa: PLC0415

    import grpc  # noqa: PLC0415

    cpu = [line for line in Path("/proc/cpuinfo").read_text().splitlines() if "model name" in line]
    mem_kib = int(Path("/proc/meminfo").read_text().splitlines()[0].split()[1])
    redis_server = subprocess.run(
        ["redis-server", "--version"], capture_output=True, text=True, check=False
    )
    return {
        "cpus": os.cpu_count(),
        "cpu_model": cpu[0].split(":", 1)[1].strip() if cpu else "?",
        "memory_gib": round(mem_kib / 2**20, 1),
        "load_average_at_start": list(os.getloadavg()),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "versions": {
            "skewless": version("skewless"),
            "grpcio": grpc.__version__,
            "pyspark": version("pyspark"),
            "delta-spark": version("delta-spark"),
            "hypothesis": version("hypothesis"),
            "redis-server": redis_server.stdout.split()[2] if redis_server.stdout else "?",
        },
    }


def commit() -> str:
    head = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    dirty = subprocess.run(
        ["git", "-C", str(ROOT), "status", "--porcelain", "--", "src"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    return f"{head} (with uncommitted changes to src/)" if dirty else head


class Run:
    """One report: the scenarios run in `work`, over one served repo."""

    def __init__(self, variant: Variant, work: Path) -> None:
        self.variant = variant
        self.work = work
        self.shape = RepoShape()
        self.repo = Path()
        self.snapshot = Path()
        self.payloads: list[bytes] = []

    def prepare(self) -> None:
        from skewless.batch.spark import get_spark  # noqa: PLC0415

        get_spark(kills.spark_config(), ROOT)
        self.repo, self.snapshot = kills.materialized_repo(self.work / "served", self.shape)
        self.payloads = load.request_payloads(self.shape.zones_per_city, self.shape.drivers)

    def _server(self, name: str, repo: Path | None = None) -> tuple[Any, Any]:
        redis = redis_from_snapshot(self.snapshot, self.work / name / "redis")
        return redis, serving(repo or self.repo, redis.url, self.work / name / "server.log")

    def outage(self) -> dict[str, Any]:
        v = self.variant
        out: dict[str, Any] = {}
        deadlines = {
            "kill": [5.0] * v.outage_clients,
            "freeze": [(0.25, 0.5, 1.0, 2.0)[i % 4] for i in range(v.outage_clients)],
        }
        faults: tuple[load.Fault, ...] = ("kill", "freeze")
        for fault in faults:
            log(f"Redis {fault} under {v.outage_clients} clients")
            redis, server_cm = self._server(f"outage-{fault}")
            try:
                with server_cm as server:
                    pid = server.pid
                    result = load.redis_outage(
                        server,
                        redis,
                        fault,
                        self.payloads,
                        deadlines=deadlines[fault],
                        down_s=v.outage_down_s,
                        after_s=v.outage_after_s,
                    )
                    figures = load.outage_figures(result)
                    figures["deadlines_s"] = sorted(set(deadlines[fault]))
                    figures["server_restarted"] = not (server.alive and server.pid == pid)
                    figures["health_after"] = server.health()
                    figures["counted_by_server"] = server.requests_counted()
            finally:
                redis.stop()
            out[fault] = figures
        return out

    def load(self) -> dict[str, Any]:
        v = self.variant
        log(f"sustained load: {v.load_clients} clients x {v.load_seconds:g} s")
        redis, server_cm = self._server("load")
        try:
            with server_cm as server:
                result = load.sustained_load(
                    server, self.payloads, clients=v.load_clients, seconds=v.load_seconds
                )
                figures = result.figures()
                figures["clients"] = v.load_clients
                figures["counted_by_server"] = server.requests_counted()
        finally:
            redis.stop()
        return figures

    def fuzz(self) -> dict[str, Any]:
        v = self.variant
        log(f"fuzz: {v.fuzz_structured} structured + {v.fuzz_raw} raw requests")
        limits = fuzz.Limits()
        repo = self.work / "fuzz" / "repo"
        repo.mkdir(parents=True)
        write_config(
            repo,
            "redis://unused",
            registry=self.repo / "data" / "registry.db",
            limits=limits.section(),
        )
        redis, server_cm = self._server("fuzz", repo)
        try:
            with server_cm as server:
                started = time.monotonic()
                result = fuzz.sweep(
                    server.target,
                    limits,
                    structured=v.fuzz_structured,
                    raw=v.fuzz_raw,
                    seed_value=22,
                )
                figures = result.figures()
                figures["seconds"] = round(time.monotonic() - started, 1)
                figures["limits"] = limits.section()
                figures["alive_after"] = server.alive
                figures["health_after"] = server.health()
                counted = server.requests_counted()
                seen = Counter(o.code for o in result.outcomes if o.size <= limits.receive_cap)
                figures["counted_by_server"] = counted
                figures["past_grpc_receive_cap"] = sum(
                    1 for o in result.outcomes if o.size > limits.receive_cap
                )
                figures["counts_match"] = counted == dict(seen)
                text = server.log_text()
                figures["server_log_lines"] = len(text.splitlines())
                figures["server_log_tracebacks"] = text.count("Traceback")
        finally:
            redis.stop()
        return figures

    def kills(self) -> dict[str, Any]:
        from benchmarks.reliability.processes import RedisProcess  # noqa: PLC0415
        from skewless import FeatureStore  # noqa: PLC0415
        from skewless.batch.spark import get_spark  # noqa: PLC0415

        v = self.variant
        spark = get_spark(kills.spark_config(), ROOT)
        base = build_repo(self.work / "kills" / "base", "redis://unused", v.kill_shape)
        chains = []
        with RedisProcess(self.work / "kills" / "clean-redis") as clean_redis:
            clean = copy_repo(base, self.work / "kills" / "clean")
            FeatureStore(clean).apply()
            started = time.monotonic()
            kills.materialize_in_process(clean, clean_redis.url)
            clean_s = time.monotonic() - started
            for n, chain in enumerate(v.kill_chains):
                log(f"kill -9 of materialization at {' then '.join(chain)}")
                with RedisProcess(self.work / "kills" / f"redis-{n}") as redis:
                    repo = copy_repo(base, self.work / "kills" / f"killed-{n}")
                    FeatureStore(repo).apply()
                    result = kills.kills_then_rerun(
                        spark,
                        repo,
                        redis.url,
                        clean,
                        clean_redis.url,
                        chain,
                        self.work / "kills" / f"work-{n}",
                        first_keys=v.kill_shape.drivers,
                    )
                chains.append(result.figures())
        return {
            "source_rows": v.kill_shape.drivers * v.kill_shape.rows_per_driver,
            "entities": v.kill_shape.drivers,
            "clean_run_s": round(clean_s, 1),
            "chains": chains,
        }

    def applies(self) -> dict[str, Any]:
        v = self.variant
        log(f"concurrent applies: {v.apply_rounds} rounds of {v.apply_processes}")
        base = build_repo(self.work / "applies" / "base", "redis://unused", RepoShape(drivers=10))
        result = applies.concurrent_applies(
            base,
            self.work / "applies" / "work",
            "redis://unused",
            processes=v.apply_processes,
            rounds=v.apply_rounds,
        )
        figures = result.figures()
        figures["last_plan_no_changes"] = all("No changes" in r.last_plan for r in result.rounds)
        figures["errors"] = sorted(
            {a.message for r in result.rounds for a in r.applies if a.returncode}
        )
        return figures


# --- the report -------------------------------------------------------------------------


_FAULTS: Final = {"kill": "SIGKILL, restarted on the same port", "freeze": "SIGSTOP, then SIGCONT"}


def _codes(codes: dict[str, int]) -> str:
    return ", ".join(f"{code} {n:,}" for code, n in codes.items()) or "none"


def _latency(figures: dict[str, Any]) -> str:
    lat = figures.get("latency") or {}
    return f"{lat['p50_ms']:.2f} / {lat['p99_ms']:.2f}" if lat else ""


def _rss(figures: dict[str, Any]) -> str:
    if not figures.get("rss_before_mib"):
        return ""
    return f"{figures['rss_before_mib']:.0f} / {figures['rss_after_mib']:.0f}"


def markdown(report: dict[str, Any]) -> str:
    s = report["scenarios"]
    m = report["machine"]
    lines = [
        f"# Reliability, {report['date']}",
        "",
        f"`{report['command']}` ({report['variant']} variant), commit {report['commit']}, "
        f"{report['seconds']:.0f} s.",
        "",
        f"Machine: {m['cpus']} CPUs ({m['cpu_model']}), {m['memory_gib']} GiB, "
        f"{m['platform']}, Python {m['python']}, redis-server {m['versions']['redis-server']}; "
        f"load average {m['load_average_at_start'][0]:.1f} at the start. Clients, servers and "
        "Redis share the machine, over loopback.",
        "",
        "| scenario | requests | answers by status code | p50 / p99 ms "
        "| server RSS before / after MiB |",
        "|---|---|---|---|---|",
    ]
    rows: list[tuple[str, dict[str, Any]]] = []
    if "outage" in s:
        rows += [(f"Redis {k} under load", s["outage"][k]) for k in ("kill", "freeze")]
    if "load" in s:
        rows.append((f"sustained load, {s['load']['clients']} clients", s["load"]))
    if "fuzz" in s:
        rows.append(("fuzzed requests", s["fuzz"]))
    for name, f in rows:
        lines.append(
            f"| {name} | {f['requests']:,} | {_codes(f['codes'])} | {_latency(f)} | {_rss(f)} |"
        )
    lines.append("")
    lines += _details(s)
    failed = report.get("failed", {})
    if failed:
        lines += ["## Scenarios that failed to run", ""]
        lines += [f"- {name}: `{error}`" for name, error in failed.items()]
    return "\n".join(lines) + "\n"


def _details(s: dict[str, Any]) -> list[str]:
    lines: list[str] = []
    if "outage" in s:
        lines += ["## Redis killed and frozen under load", ""]
        for fault, f in s["outage"].items():
            down = f["while_down"]
            lines.append(
                f"- **{fault}** ({_FAULTS[fault]}; "
                f"deadlines {', '.join(f'{d:g}' for d in f['deadlines_s'])} s): "
                f"{down['requests']:,} calls while Redis was away ended {_codes(down['codes'])}"
                + (f", p50 / p99 {_latency(down)} ms" if down["latency"] else "")
                + f". Health NOT_SERVING {f['not_serving_after_fault_s']:.2f} s after the fault; "
                f"first OK answer {f['first_ok_after_restore_ms']:.0f} ms after Redis was back, "
                f"SERVING again after {f['serving_after_restore_s']:.2f} s; "
                f"{f['wrong_answers']} wrong answers; server restarted: "
                f"{'yes' if f['server_restarted'] else 'no'}."
            )
        lines.append("")
    if "load" in s:
        f = s["load"]
        lines += [
            "## Sustained load",
            "",
            f"{f['clients']} clients (one connection each) for {f['seconds']:.0f} s: "
            f"{f['requests']:,} calls ({f['calls_per_s']:,.0f}/s), {f['errors']} errors, "
            f"{f['wrong_answers']} answers differing from the reference; server RSS "
            f"{f['rss_before_mib']:.1f} MiB after the warm-up, {f['rss_after_mib']:.1f} MiB at "
            "the end.",
            "",
        ]
    if "fuzz" in s:
        f = s["fuzz"]
        kinds = f["by_kind"]
        lines += [
            "## Fuzzed requests",
            "",
            f"Limits `serving: {json.dumps(f['limits'])}`. Structured: "
            f"{kinds['structured']['requests']:,} ({_codes(kinds['structured']['codes'])}); raw "
            f"bytes: {kinds['raw']['requests']:,} ({_codes(kinds['raw']['codes'])}). "
            f"Answers not allowed for their input: {f['problems']}. Longest details "
            f"{f['max_details_chars']} characters; largest request {f['max_request_bytes']:,} "
            "bytes. Counted by the server as the clients saw them: "
            f"{'yes' if f['counts_match'] else 'no'} "
            f"({f['past_grpc_receive_cap']} requests past gRPC's receive cap are refused by gRPC "
            f"itself, uncounted). Server afterwards: alive {f['alive_after']}, health "
            f"{f['health_after']}; its log: {f['server_log_lines']} lines, "
            f"{f['server_log_tracebacks']} tracebacks.",
            "",
        ]
        if f["problem_examples"]:
            lines += [f"  - {p}" for p in f["problem_examples"]] + [""]
    if "kills" in s:
        f = s["kills"]
        lines += [
            "## kill -9 of a materialization, then a rerun",
            "",
            f"{f['source_rows']:,} source rows, {f['entities']:,} entities, two views; a clean "
            f"run in process took {f['clean_run_s']:.1f} s.",
            "",
            "| kills (seconds into the run) | rerun equals the clean run | Delta rows "
            "| Redis keys | written by one more run |",
            "|---|---|---|---|---|",
        ]
        for chain in f["chains"]:
            killed = ", ".join(
                f"{k['point']} ({k['after_s']:.1f} s{'' if k['hit'] else ', missed'})"
                for k in chain["kills"]
            )
            rows = ", ".join(f"{t['view']} {t['rows']:,}" for t in chain["tables"])
            again = sum(
                r["rows_written_offline"] + r["keys_written_online"]
                for r in chain["written_by_a_further_run"]
            )
            lines.append(
                f"| {killed} | {'yes' if chain['equal_to_clean_run'] else 'NO'} | {rows} | "
                f"{chain['keys']:,} ({chain['differing_keys']} differ) | {again} |"
            )
        lines.append("")
    if "applies" in s:
        f = s["applies"]
        lines += [
            "## Concurrent applies",
            "",
            f"{f['rounds']} rounds of {f['processes'] // max(f['rounds'], 1)} `skewless apply` at "
            f"once: {_codes(f['outcomes'])}; every failed one applied when run again "
            f"({f['retries_applied']}); {f['tracebacks']} tracebacks; registry at "
            f"v{f['registry_version']}, {f['history_gaps']} gaps in any object's history; "
            "the last applied copy plans no changes: "
            f"{'yes' if f['last_plan_no_changes'] else 'no'}.",
            "",
        ]
        if f["errors"]:
            lines += [f"  - `{e}`" for e in f["errors"][:3]] + [""]
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.reliability")
    parser.add_argument("--variant", choices=["long", "short"], default="long")
    parser.add_argument("--only", default=",".join(SCENARIOS), help="comma-separated scenarios")
    parser.add_argument("--out", type=Path, default=None, help="report path without suffix")
    args = parser.parse_args(argv)
    chosen = [s for s in args.only.split(",") if s]
    unknown = set(chosen) - set(SCENARIOS)
    if unknown:
        parser.error(f"unknown scenarios {sorted(unknown)}; known: {', '.join(SCENARIOS)}")
    variant = LONG if args.variant == "long" else SHORT
    date = datetime.now(UTC).strftime("%Y-%m-%d")
    out = args.out or RESULTS / f"{date}-reliability"
    command = "python -m benchmarks.reliability" + (
        " " + " ".join(argv if argv is not None else sys.argv[1:]) if (argv or sys.argv[1:]) else ""
    )
    report: dict[str, Any] = {
        "date": date,
        "command": command,
        "variant": variant.name,
        "commit": commit(),
        "machine": machine(),
        "scenarios": {},
        "failed": {},
    }
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="skewless-reliability-") as folder:
        run = Run(variant, Path(folder))
        log("preparing the served repo")
        run.prepare()
        steps: dict[str, Callable[[], dict[str, Any]]] = {
            "outage": run.outage,
            "load": run.load,
            "fuzz": run.fuzz,
            "kills": run.kills,
            "applies": run.applies,
        }
        for name in chosen:
            try:
                report["scenarios"][name] = steps[name]()
            except Exception as exc:  # the report says which scenario could not run, and why
                traceback.print_exc()
                report["failed"][name] = f"{type(exc).__name__}: {exc}"[:500]
    report["seconds"] = time.monotonic() - started
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(report, indent=2, default=str) + "\n")
    out.with_suffix(".md").write_text(markdown(report))
    log(f"wrote {out.with_suffix('.md')} and .json in {report['seconds']:.0f} s")
    return 1 if report["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
