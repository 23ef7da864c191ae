"""Scheduled materialization: a scheduled incremental run next to Feast's
`materialize_incremental` on the same data, the freshness lag, and where a run's time goes.

    .venv/bin/python -m benchmarks.scheduled --scale small --new-rows 100000 --rounds 5

One repo over a copy of the scale's feature rows (as benchmarks/incremental.py builds it)
whose `stats` view has `materialization=Schedule("* * * * * */5", catch_up=timedelta(0))`
(a tick every 5 seconds; a tick missed while a run lasts is skipped, not run later),
one private redis-server, and Feast 0.67 in its own environment (benchmarks/feast_env.py)
over the same source folder with its file offline store and the same Redis.

1. *Run time.* A full run of each first (skewless: the runner's first tick; Feast:
   `materialize`). Then each round lands one file of `--new-rows` rows (entities drawn from
   the feature rows, event times between the previous round and now) in the source folder,
   and runs skewless's runner (`run_due`, in this process, which keeps its Spark session
   as `skewless schedule run` does) and then Feast's `materialize_incremental` (in one
   Feast process kept alive across rounds). skewless's time is the run's record in the run
   history (started_at to finished_at) and the wall time of `run_due`. One more round runs
   Feast's command line, `feast materialize-incremental`, as a cron job would (a new
   process per run).
2. *Freshness lag.* The runner runs on its schedule in a thread (`run_forever`). Each drop
   lands a file giving `--probe` entities a new value, and the main thread looks them up
   (`FeatureStore.get_online_features`, every 20 ms) until every one returns it. The lag
   is split into the wait for the next tick (the drop to the start of the run that served
   it) and the run up to the values being served.
3. *Where the time goes.* One more steady-state round under cProfile, with the Spark jobs
   it ran (from Spark's status store: each job's call site and duration).

Writes benchmarks/results/<date>-<scale>-scheduled.{json,md}.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import json
import os
import pstats
import random
import statistics
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any
from urllib.parse import urlparse

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from tests.integration.redis_server import redis_server

from benchmarks import data as bench_data
from benchmarks import feast_env, skewless_side
from benchmarks.incremental import _source

if TYPE_CHECKING:
    from skewless import FeatureStore
    from skewless.registry import RunRecord
    from skewless.scheduler.runner import Runner

CRON = "* * * * * */5"
SCHEDULED_STATS = (
    '    ttl=timedelta(days=7),\n    materialization=Schedule("{cron}", catch_up=timedelta(0)),\n)'
)
FEAST_START = datetime(2025, 12, 1, tzinfo=UTC)
# A file's first run, when it landed this close to the run's start, leaves it to be read
# again by the next (SEEN_SETTLE_US): the timed runs start later, as an hourly job's would.
SETTLE_S = 2.5
MARKER = 2_000_000_000  # f_int of a freshness drop d is MARKER + d: never in the data
# Run in Feast's environment: one FeatureStore, kept across rounds, reading commands from
# stdin and answering one line each. Feast prints progress on stdout: sent to stderr.
FEAST_LOOP = """
import contextlib, json, sys, time
from datetime import datetime
from feast import FeatureStore

store = FeatureStore(repo_path=sys.argv[1])
for line in sys.stdin:
    cmd, *args = line.split()
    started = time.perf_counter()
    with contextlib.redirect_stdout(sys.stderr):
        if cmd == "check":
            ids = [{"entity_id": int(e)} for e in args[0].split(",")]
            got = store.get_online_features(features=["stats:f_int"], entity_rows=ids)
            print("RESULT " + json.dumps(got.to_dict()["f_int"]), file=sys.__stdout__, flush=True)
            continue
        if cmd == "full":
            start, end = (datetime.fromisoformat(a) for a in args)
            store.materialize(start_date=start, end_date=end, feature_views=["stats"])
        else:
            end = datetime.fromisoformat(args[0])
            store.materialize_incremental(end_date=end, feature_views=["stats"])
    print("RESULT " + json.dumps({"seconds": time.perf_counter() - started}), flush=True)
"""


def _now_us() -> int:
    return int(time.time() * 1_000_000)


def _with_times(table: pa.Table, times_us: np.ndarray) -> pa.Table:
    for name in ("event_ts", "created_ts"):
        i = table.schema.get_field_index(name)
        typ = table.schema.field(name).type
        table = table.set_column(i, name, pa.array(times_us, pa.timestamp("us", "UTC")).cast(typ))
    return table


def _land(table: pa.Table, folder: Path, name: str, staging: Path) -> float:
    """Write `table` beside the folder, then move it in whole: a run never lists a file
    half written. Returns the moment it landed (epoch seconds)."""
    tmp = staging / name
    pq.write_table(table, tmp)
    os.replace(tmp, folder / name)
    return time.time()


def _round_rows(base: pa.Table, n: int, since_us: int, rng: np.random.Generator) -> pa.Table:
    """`n` randomly drawn feature rows, their event times between `since_us` and now."""
    picked = base.take(pa.array(rng.choice(base.num_rows, n, replace=False)))
    now = _now_us()
    return _with_times(picked, rng.integers(since_us, now, n))


def _probe_rows(base: pa.Table, entities: np.ndarray, marker: int) -> pa.Table:
    """One row per entity of `entities`, f_int = `marker`, event time now."""
    ids = base.column("entity_id").to_numpy()
    _, first = np.unique(ids, return_index=True)
    by_id = dict(zip(ids[first].tolist(), first.tolist(), strict=True))
    picked = base.take(pa.array([by_id[int(e)] for e in entities]))
    picked = _with_times(picked, np.full(len(entities), _now_us() - 1000))
    i = picked.schema.get_field_index("f_int")
    typ = picked.schema.field("f_int").type
    return picked.set_column(i, "f_int", pa.array([marker] * len(entities), typ))


class Feast:
    """Feast's FeatureStore in its own environment, kept alive across calls."""

    def __init__(self, repo: Path, log: IO[bytes]) -> None:
        py = feast_env.venv_python()
        self.repo = repo
        self.proc = subprocess.Popen(
            [str(py), "-c", FEAST_LOOP, str(repo)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=log,
            env=feast_env._worker_env(py),
            start_new_session=True,
            text=True,
        )

    def call(self, line: str) -> Any:
        assert self.proc.stdin is not None
        assert self.proc.stdout is not None
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()
        for out in self.proc.stdout:
            if out.startswith("RESULT "):
                answer = json.loads(out[len("RESULT ") :])
                return answer["seconds"] if isinstance(answer, dict) else answer
        raise RuntimeError(f"Feast's process ended (exit {self.proc.wait()}): see its log")

    def cli_incremental(self, end: datetime, log: IO[bytes]) -> float:
        """`feast materialize-incremental END --views stats` in a new process."""
        py = feast_env.venv_python()
        started = time.perf_counter()
        subprocess.run(
            [
                str(py.parent / "feast"),
                *("--chdir", str(self.repo), "materialize-incremental"),
                *(end.isoformat(), "--views", "stats"),
            ],
            check=True,
            stdout=log,
            stderr=log,
            env=feast_env._worker_env(py),
        )
        return time.perf_counter() - started

    def close(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, 9)
            self.proc.wait()


def _record_s(run: RunRecord) -> float:
    assert run.finished_at is not None
    return (run.finished_at - run.started_at).total_seconds()


def _next_tick(settle_s: float = SETTLE_S) -> None:
    """Sleep until just past the first tick at least `settle_s` from now."""
    time.sleep(settle_s + 5.05 - (time.time() + settle_s) % 5)


def _scheduled_run(runner: Runner) -> dict[str, Any]:
    """Wait for a tick, then run what is due; the succeeded run."""
    _next_tick()
    started = time.perf_counter()
    done = runner.run_due("once")
    wall = time.perf_counter() - started
    (run,) = [r for r in done if r.status == "succeeded"]
    return {
        "seconds": _record_s(run),
        "wall_s": wall,
        "rows_read": run.rows_read,
        "rows_written_offline": run.rows_written_offline,
        "keys_written_online": run.keys_written_online,
        "delta_version": run.delta_version,
        "records": len(done),
    }


def _check_feast(feast: Feast, store: FeatureStore, last: pa.Table) -> dict[str, Any]:
    """Both systems serve the last round's latest f_int for 20 of its entities (so an
    empty run cannot pass for a fast one)."""
    latest: dict[int, tuple[int, Any]] = {}
    for e, ts, v in zip(
        last.column("entity_id").to_pylist(),
        last.column("event_ts").to_pylist(),
        last.column("f_int").to_pylist(),
        strict=True,
    ):
        if e not in latest or ts > latest[e][0]:
            latest[e] = (ts, v)
    ids = sorted(latest)[:20]
    expected = [latest[e][1] for e in ids]
    got_feast = feast.call("check " + ",".join(map(str, ids)))
    rows = [{"entity_id": e} for e in ids]
    got_skewless = store.get_online_features(["stats:f_int"], rows).to_dict()["f_int"]
    if got_feast != expected or got_skewless != expected:
        raise SystemExit(f"served {got_feast} (Feast), {got_skewless} (skewless): {expected}")
    return {"entities": len(ids), "feast_equal": True, "skewless_equal": True}


# --- where the time goes ------------------------------------------------------------------


def _jobs_since(store: FeatureStore, after: int) -> list[dict[str, Any]]:
    """Spark's jobs with an id above `after`: call site, duration, stages (the status
    store keeps them whether or not the UI runs)."""
    jsc = store.spark.sparkContext._jsc
    assert jsc is not None
    out = []
    jobs = jsc.sc().statusStore().jobsList(None)  # a Scala Seq
    for i in range(jobs.length()):
        job = jobs.apply(i)
        if job.jobId() <= after:
            continue
        sub, end = job.submissionTime(), job.completionTime()
        seconds = (
            (end.get().getTime() - sub.get().getTime()) / 1000
            if sub.isDefined() and end.isDefined()
            else None
        )
        out.append(
            {
                "id": job.jobId(),
                "name": str(job.name()).split("/src/")[-1],  # the call site, from src/
                "seconds": seconds,
                "stages": job.stageIds().size(),
                "tasks": job.numTasks(),
            }
        )
    return sorted(out, key=lambda j: j["id"])


def _last_job(store: FeatureStore) -> int:
    jsc = store.spark.sparkContext._jsc
    assert jsc is not None
    jobs = jsc.sc().statusStore().jobsList(None)  # a Scala Seq
    return max((jobs.apply(i).jobId() for i in range(jobs.length())), default=-1)


def _profile_round(store: FeatureStore, runner: Runner) -> dict[str, Any]:
    _next_tick()
    before = _last_job(store)
    profile = cProfile.Profile()
    started = time.perf_counter()
    profile.enable()
    done = runner.run_due("once")
    profile.disable()
    wall = time.perf_counter() - started
    stats = pstats.Stats(profile)
    functions = []
    for (path, line, name), row in stats.stats.items():  # type: ignore[attr-defined]
        if "skewless" in path or "delta" in path or "pyspark/sql/dataframe" in path:
            functions.append(
                {
                    "function": f"{path.split('site-packages/')[-1].split('src/')[-1]}:{line}"
                    f"({name})",
                    "cumulative_s": row[3],
                    "calls": row[1],
                }
            )
    functions.sort(key=lambda f: -f["cumulative_s"])
    (run,) = [r for r in done if r.status == "succeeded"]
    return {
        "wall_s": wall,
        "seconds": _record_s(run),
        "rows_read": run.rows_read,
        "jobs": _jobs_since(store, before),
        "functions": functions[:60],
    }


# --- freshness ----------------------------------------------------------------------------


@contextlib.contextmanager
def _running(runner: Runner) -> Iterator[None]:
    thread = threading.Thread(target=runner.run_forever, name="runner", daemon=True)
    thread.start()
    try:
        yield
    finally:
        runner.stop.set()
        thread.join()


def _freshness(
    store: FeatureStore,
    runner: Runner,
    base: pa.Table,
    folder: Path,
    staging: Path,
    drops: int,
    probe: int,
    rng: np.random.Generator,
) -> tuple[list[dict[str, Any]], list[float]]:
    """The drops' lags, and the durations of the runs that found nothing new."""
    ids = np.unique(base.column("entity_id").to_numpy())
    pace = random.Random(5)  # when to drop: no secret
    out: list[dict[str, Any]] = []
    with _running(runner):
        time.sleep(6)
        for d in range(1, drops + 1):
            time.sleep(pace.uniform(0, 5))  # a random moment between two ticks
            entities = rng.choice(ids, probe, replace=False)
            rows = [{"entity_id": int(e)} for e in entities]
            marker = MARKER + d
            landed = _land(
                _probe_rows(base, entities, marker), folder, f"drop-{d:04d}.parquet", staging
            )
            while True:
                got = store.get_online_features(["stats:f_int"], rows).to_dict()["f_int"]
                if all(v == marker for v in got):
                    seen = time.time()
                    break
                if time.time() - landed > 120:
                    raise RuntimeError(f"drop {d} not served after 120 s: {got[:5]}")
                time.sleep(0.02)
            out.append({"drop": d, "landed": landed, "seen": seen})
            time.sleep(1)
    runs = [r for r in store.registry.runs("stats") if r.status == "succeeded"]
    idle = [
        _record_s(r)
        for r in runs
        if r.rows_read == 0 and r.started_at.timestamp() >= out[0]["landed"] - 60
    ]
    for x in out:
        serving = [r for r in runs if r.started_at.timestamp() <= x["seen"]][-1]
        start = serving.started_at.timestamp()
        x["lag_s"] = x["seen"] - x["landed"]
        x["tick_wait_s"] = max(0.0, start - x["landed"])
        x["run_until_served_s"] = x["seen"] - max(start, x["landed"])
        x["serving_run_s"] = _record_s(serving)
        x["serving_rows_read"] = serving.rows_read
    return out, idle


# --- the benchmark ------------------------------------------------------------------------


def run(scale: str, new_rows: int, rounds: int, drops: int, probe: int) -> dict[str, Any]:
    from skewless.scheduler.repo import repo_runner  # noqa: PLC0415 - after the data exists

    base_folder = bench_data.generate(scale)
    base = pq.read_table(base_folder / "features.parquet")
    rng = np.random.default_rng(11)
    feast_env.ensure_venv()
    result: dict[str, Any] = {
        "date": datetime.now(UTC).date().isoformat(),
        "scale": bench_data.describe(scale),
        "new_rows_per_round": new_rows,
        "rounds": rounds,
        "cron": CRON,
    }
    with tempfile.TemporaryDirectory(prefix="skewless-scheduled-") as tmp:
        work = Path(tmp)
        staging = work / "staging"
        staging.mkdir()
        folder = _source(base_folder / "features.parquet", work)
        log_path = Path(tempfile.mkstemp(prefix="skewless-scheduled-feast-", suffix=".log")[1])
        print(f"Feast's log: {log_path}", flush=True)
        log = log_path.open("wb")
        with redis_server(work / "redis") as url:
            setup = feast_env.run(
                [
                    *("setup", "--data", str(folder.parent), "--workdir", str(work / "feast")),
                    *("--redis", urlparse(url).netloc, "--offline", "local"),
                ],
                timeout_s=600,
                mem_limit_bytes=8 << 30,
            )
            if setup.status != "ok" or setup.result is None:
                raise SystemExit(f"Feast's setup failed:\n{setup.stderr_tail}")
            feast = Feast(Path(setup.result["repo"]), log)
            repo = skewless_side.make_repo(folder.parent, work, online_url=url)
            defs = repo / "defs.py"
            text = defs.read_text()
            plain = "    ttl=timedelta(days=7),\n)"
            defs.write_text(text.replace(plain, SCHEDULED_STATS.format(cron=CRON), 1))
            store = skewless_side.open_store(repo)
            runner = repo_runner(store)
            try:
                full_end = datetime.now(UTC)
                result["full_run"] = {
                    "skewless": _scheduled_run(runner),
                    "feast_s": feast.call(f"full {FEAST_START.isoformat()} {full_end.isoformat()}"),
                }
                print("full", result["full_run"], flush=True)
                since = int(full_end.timestamp() * 1_000_000)
                rows: list[dict[str, Any]] = []
                for r in range(1, rounds + 2):
                    table = _round_rows(base, new_rows, since, rng)
                    _land(table, folder, f"part-{r:04d}.parquet", staging)
                    sk = _scheduled_run(runner)
                    end = datetime.now(UTC)
                    if r <= rounds:
                        fe = {"feast_s": feast.call(f"inc {end.isoformat()}")}
                    else:
                        fe = {"feast_cli_s": feast.cli_incremental(end, log)}
                    since = int(end.timestamp() * 1_000_000)  # Feast's next run starts here
                    rows.append({"round": r, "skewless": sk, **fe})
                    # a drawn entity can get one event time twice: one row then
                    if not 0.99 * new_rows <= sk["rows_written_offline"] <= new_rows:
                        raise SystemExit(f"round {r}: skewless wrote {sk['rows_written_offline']}")
                    print("round", rows[-1], flush=True)
                result["feast_check"] = _check_feast(feast, store, table)
                result["incremental_runs"] = rows[:rounds]
                result["cli_round"] = rows[rounds]
                table = _round_rows(base, new_rows, since, rng)
                _land(table, folder, "part-profiled.parquet", staging)
                result["profile"] = _profile_round(store, runner)
                print("profile", json.dumps(result["profile"], indent=1), flush=True)
                result["freshness"], result["idle_runs_s"] = _freshness(
                    store, runner, base, folder, staging, drops, probe, rng
                )
                print("freshness", result["freshness"], flush=True)
            finally:
                feast.close()
                log.close()
    steady = result["incremental_runs"][1:]
    if steady:
        sk_med = statistics.median(x["skewless"]["seconds"] for x in steady)
        fe_med = statistics.median(x["feast_s"] for x in steady)
        result["steady"] = {
            "skewless_median_s": sk_med,
            "skewless_wall_median_s": statistics.median(x["skewless"]["wall_s"] for x in steady),
            "feast_median_s": fe_med,
            "ratio_median": sk_med / fe_med,
            "ratio_per_round": [x["skewless"]["seconds"] / x["feast_s"] for x in steady],
            "feast_cli_s": result["cli_round"]["feast_cli_s"],
        }
    return result


def _dist(values: list[float]) -> str:
    values = sorted(values)
    return f"median {statistics.median(values):.2f} s, min {values[0]:.2f}, max {values[-1]:.2f}"


def report(result: dict[str, Any]) -> str:
    scale = result["scale"]
    full = result["full_run"]
    lines = [
        f"# Scheduled materialization: {scale['scale']} scale, {result['date']}",
        "",
        "Reproduce: `.venv/bin/python -m benchmarks.scheduled --scale "
        f"{scale['scale']} --new-rows {result['new_rows_per_round']} --rounds "
        f"{result['rounds']}` (see the module's docstring).",
        "",
        f"`stats` over {scale['feature_rows']:,} feature rows of {scale['entities']:,} "
        f"entities, scheduled `{result['cron']}`. Full run: skewless "
        f"{full['skewless']['seconds']:.2f} s (Delta and Redis), Feast "
        f"{full['feast_s']:.2f} s (Redis only).",
        "",
        f"## Incremental run, {result['new_rows_per_round']:,} new rows a round",
        "",
        "| round | skewless run (history) s | skewless run_due wall s | rows read | rows to "
        "Delta | keys to Redis | Feast materialize_incremental s | skewless / Feast |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for x in result["incremental_runs"]:
        s = x["skewless"]
        lines.append(
            f"| {x['round']} | {s['seconds']:.2f} | {s['wall_s']:.2f} | {s['rows_read']:,} | "
            f"{s['rows_written_offline']:,} | {s['keys_written_online']:,} | "
            f"{x['feast_s']:.2f} | {s['seconds'] / x['feast_s']:.2f}x |"
        )
    st = result.get("steady")
    if st:
        lines += [
            "",
            f"Median of rounds 2 to {result['rounds']}: skewless {st['skewless_median_s']:.2f} s "
            f"(wall {st['skewless_wall_median_s']:.2f} s), Feast {st['feast_median_s']:.2f} s: "
            f"**{st['ratio_median']:.2f}x** Feast's time.",
        ]
    cli = result["cli_round"]
    lines += [
        "",
        f"One more round with Feast's command line (`feast materialize-incremental`, a new "
        f"process, as from cron): Feast {cli['feast_cli_s']:.2f} s, skewless's kept runner "
        f"{cli['skewless']['seconds']:.2f} s.",
        "",
        "## Freshness lag",
        "",
    ]
    fr = result["freshness"]
    lines += [
        f"{len(fr)} drops of {result.get('probe', 0)} entities' new values; the runner on "
        f"`{result['cron']}` in the same process as the lookups.",
        "",
        "| drop | lag s | waiting for the tick s | run until served s | serving run s "
        "| its rows read |",
        "|---|---|---|---|---|---|",
    ]
    for x in fr:
        lines.append(
            f"| {x['drop']} | {x['lag_s']:.2f} | {x['tick_wait_s']:.2f} | "
            f"{x['run_until_served_s']:.2f} | {x['serving_run_s']:.2f} | "
            f"{x['serving_rows_read']:,} |"
        )
    lines += [
        "",
        f"Lag: {_dist([x['lag_s'] for x in fr])}; waiting for the tick: "
        f"{_dist([x['tick_wait_s'] for x in fr])}; the run until served: "
        f"{_dist([x['run_until_served_s'] for x in fr])}.",
        "",
        f"The runner's {len(result['idle_runs_s'])} runs in between that found no new file: "
        + (_dist(result["idle_runs_s"]) if result["idle_runs_s"] else "none")
        + " each.",
        "",
        "## Where a steady-state run's time goes",
        "",
        f"One more round under cProfile: run {result['profile']['seconds']:.2f} s "
        f"(wall {result['profile']['wall_s']:.2f} s). Spark jobs:",
        "",
        "| job | call site | s | stages | tasks |",
        "|---|---|---|---|---|",
    ]
    for j in result["profile"]["jobs"]:
        sec = "" if j["seconds"] is None else f"{j['seconds']:.2f}"
        lines.append(f"| {j['id']} | {j['name']} | {sec} | {j['stages']} | {j['tasks']} |")
    lines += ["", "| function (cumulative) | s | calls |", "|---|---|---|"]
    for f in result["profile"]["functions"][:30]:
        lines.append(f"| `{f['function']}` | {f['cumulative_s']:.2f} | {f['calls']} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", choices=sorted(bench_data.SCALES), default="small")
    parser.add_argument("--new-rows", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--drops", type=int, default=8)
    parser.add_argument("--probe", type=int, default=100)
    args = parser.parse_args()
    result = run(args.scale, args.new_rows, args.rounds, args.drops, args.probe)
    result["probe"] = args.probe
    stem = bench_data.RESULTS / f"{result['date']}-{args.scale}-scheduled"
    stem.with_suffix(".json").write_text(json.dumps(result, indent=2, default=str) + "\n")
    stem.with_suffix(".md").write_text(report(result))
    print(report(result))


if __name__ == "__main__":
    main()
