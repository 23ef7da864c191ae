"""kill -9 of `skewless materialize` at observed moments, then a rerun.

The materialization runs as a subprocess in a session of its own, so the kill takes its
whole process group: the Python driver and Spark's JVM at once, as the OOM killer or a
lost machine would. The moment is chosen by polling what the run leaves behind:

    reading         Spark has been up for READING_AFTER_S and the first view's table has
                    no new data file: its job is reading and deduplicating the source
    delta-files     the first view's Delta table has new data files, no new commit
    delta-commit    that table has a new commit and no key of the view is in Redis yet
    redis-partial   some but not all of the first view's keys are in Redis
    second-view     the first view is in Redis, the second view's table not committed

Kills can be chained in one repo (each run starts from what the killed ones left). The
rerun then runs to the end, in process; the repo's Delta tables and Redis must then hold
exactly what a clean run in a separate repo holds (values compared, not counts), and one
more run must change nothing.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import redis

from benchmarks.reliability.processes import SKEWLESS, RedisProcess, redis_contents
from benchmarks.reliability.repo import (
    END,
    END_TIME,
    PROJECT,
    START,
    START_TIME,
    RepoShape,
    build_repo,
)

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

    from skewless.config import SparkConfig

URL_VARIABLE: Final = "SKEWLESS_ONLINE_STORE_URL"
VIEWS: Final = ("stats", "zones")  # the order a run materializes them in (by name)
# The first view's job takes over 10 s on two cores however small the source (a new JVM's
# first job); two seconds in, it is surely reading or deduplicating.
READING_AFTER_S: Final = 2.0
POINTS: Final = (
    "reading",
    "delta-files",
    "delta-commit",
    "redis-partial",
    "second-view",
)


def spark_config() -> SparkConfig:
    """The in-process session of the reruns and comparisons: two cores, small."""
    from skewless.config import SparkConfig  # noqa: PLC0415

    return SparkConfig(
        master="local[2]",
        app_name="skewless-reliability",
        conf={
            "spark.sql.shuffle.partitions": "2",
            "spark.default.parallelism": "2",
            "spark.ui.enabled": "false",
            "spark.ui.showConsoleProgress": "false",
            "spark.databricks.delta.snapshotPartitions": "2",
            "spark.driver.memory": "2g",
        },
    )


@dataclass(frozen=True)
class State:
    """What a run has left behind so far."""

    spark_up_s: float | None  # how long Spark has been up (None: not yet)
    files: dict[str, int]  # view -> data files in its Delta table
    commits: dict[str, int]  # view -> commits of its Delta table
    keys: int  # keys in Redis


def _table_dir(repo: Path, view: str) -> Path | None:
    found = sorted((repo / "data" / "offline" / PROJECT / view).glob("*"))
    return found[0] if found else None


def _observe(repo: Path, local_dir: Path, client: redis.Redis, spark_up_at: float | None) -> State:
    files, commits = {}, {}
    for view in VIEWS:
        table = _table_dir(repo, view)
        files[view] = len(list(table.glob("*.parquet"))) if table else 0
        commits[view] = len(list(table.glob("_delta_log/*.json"))) if table else 0
    return State(
        spark_up_s=None if spark_up_at is None else time.monotonic() - spark_up_at,
        files=files,
        commits=commits,
        keys=int(client.dbsize()),
    )


def _reached(point: str, before: State, now: State, first_keys: int) -> bool:
    first, second = VIEWS
    match point:
        case "reading":
            return (
                now.spark_up_s is not None
                and now.spark_up_s >= READING_AFTER_S
                and now.files[first] == before.files[first]
            )
        case "delta-files":
            return (
                now.files[first] > before.files[first]
                and now.commits[first] == before.commits[first]
            )
        case "delta-commit":
            return now.commits[first] > before.commits[first] and now.keys == before.keys
        case "redis-partial":
            return before.keys < now.keys < first_keys
        case "second-view":
            return now.keys >= first_keys and now.commits[second] == before.commits[second]
    raise ValueError(f"unknown kill point {point!r}; known: {', '.join(POINTS)}")


@dataclass(frozen=True)
class Kill:
    point: str
    hit: bool  # False: the run got past the point unseen (or ended) before the kill
    seconds: float  # from the start of the run to the kill (or its end)
    state: State  # what the run had left at the kill


def kill_materialization(
    repo: Path,
    redis_url: str,
    point: str,
    work: Path,
    *,
    first_keys: int,
    timeout_s: float = 600,
) -> Kill:
    """Run `skewless materialize` over the repo's interval and SIGKILL its process group
    as soon as `point` is observed (polled every few milliseconds)."""
    local_dir = work / f"spark-local-{time.monotonic_ns()}"
    local_dir.mkdir(parents=True)
    client = redis.Redis.from_url(redis_url, socket_timeout=10)
    before = _observe(repo, local_dir, client, None)
    env = {
        **os.environ,
        "SPARK_LOCAL_DIRS": str(local_dir),
        URL_VARIABLE: redis_url,
        "COLUMNS": "200",
    }
    log = work / "materialize.log"
    started = time.monotonic()
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [*SKEWLESS, "materialize", START, END, "--repo", str(repo)],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,  # its own process group: the driver and Spark's JVM
        )
    spark_up_at: float | None = None
    try:
        while True:
            if spark_up_at is None and any(local_dir.glob("blockmgr-*")):
                spark_up_at = time.monotonic()  # the driver's block manager: Spark is up
            now = _observe(repo, local_dir, client, spark_up_at)
            if _reached(point, before, now, first_keys):
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(30)
                return Kill(point, True, time.monotonic() - started, now)
            if proc.poll() is not None:
                return Kill(point, False, time.monotonic() - started, now)
            if time.monotonic() - started > timeout_s:
                raise TimeoutError(f"materialization never reached {point!r} in {timeout_s:g} s")
            time.sleep(0.003)
    finally:
        if proc.poll() is None:  # a failure of the scenario itself: leave nothing running
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(30)


# --- comparing with a clean run ---------------------------------------------------------


@dataclass(frozen=True)
class TableDiff:
    view: str
    rows: int  # in the killed-then-rerun repo
    clean_rows: int
    only_here: int  # rows (all columns) the clean table lacks
    only_clean: int


@dataclass(frozen=True)
class Comparison:
    tables: list[TableDiff]
    keys: int
    clean_keys: int
    differing_keys: int  # present in one store only, or with another value

    @property
    def equal(self) -> bool:
        return self.differing_keys == 0 and all(
            t.only_here == 0 and t.only_clean == 0 and t.rows == t.clean_rows for t in self.tables
        )


def compare_repos(
    spark: SparkSession, repo: Path, redis_url: str, clean: Path, clean_url: str
) -> Comparison:
    """Every Delta feature table and every Redis value of `repo` against `clean`'s."""
    tables = []
    for view in VIEWS:
        here, there = _table_dir(repo, view), _table_dir(clean, view)
        assert there is not None, f"the clean run made no table for {view}"
        if here is None:
            tables.append(TableDiff(view, 0, -1, 0, -1))
            continue
        mine = spark.read.format("delta").load(str(here))
        theirs = spark.read.format("delta").load(str(there))
        tables.append(
            TableDiff(
                view,
                mine.count(),
                theirs.count(),
                mine.exceptAll(theirs).count(),
                theirs.exceptAll(mine).count(),
            )
        )
    values, clean_values = redis_contents(redis_url), redis_contents(clean_url)
    differing = sum(
        1 for k in values.keys() | clean_values.keys() if values.get(k) != clean_values.get(k)
    )
    return Comparison(tables, len(values), len(clean_values), differing)


def materialize_in_process(repo: Path, redis_url: str) -> list[dict[str, Any]]:
    """One full run of the repo's interval in this process (its SparkSession); per view,
    what it wrote."""
    from skewless import FeatureStore  # noqa: PLC0415
    from skewless.config import load_config  # noqa: PLC0415

    config = load_config(repo)
    online = config.online_store.model_copy(update={"url": redis_url})
    store = FeatureStore(repo, config.model_copy(update={"online_store": online}))
    records = store.materialize(START_TIME, END_TIME)
    return [
        {
            "view": r.view,
            "rows_written_offline": r.rows_written_offline,
            "keys_written_online": r.keys_written_online,
        }
        for r in records
    ]


def materialized_repo(work: Path, shape: RepoShape) -> tuple[Path, Path]:
    """A repo built, applied and materialized in this process, and a snapshot of its
    Redis (dump.rdb) to start other redis-servers from."""
    from skewless import FeatureStore  # noqa: PLC0415

    with RedisProcess(work / "redis") as redis:
        repo = build_repo(work / "repo", redis.url, shape)
        FeatureStore(repo).apply()
        materialize_in_process(repo, redis.url)
        redis.client().save()
    return repo, work / "redis" / "dump.rdb"


@dataclass
class KillResult:
    kills: list[Kill] = field(default_factory=list)
    rerun: list[dict[str, Any]] = field(default_factory=list)
    comparison: Comparison | None = None
    again: list[dict[str, Any]] = field(default_factory=list)  # one more run after the rerun
    seconds: float = 0.0

    def figures(self) -> dict[str, Any]:
        assert self.comparison is not None
        return {
            "kills": [
                {
                    "point": k.point,
                    "hit": k.hit,
                    "after_s": round(k.seconds, 1),
                    "left": {  # what the killed run left behind
                        "data_files": k.state.files,
                        "commits": k.state.commits,
                        "redis_keys": k.state.keys,
                    },
                }
                for k in self.kills
            ],
            "equal_to_clean_run": self.comparison.equal,
            "tables": [t.__dict__ for t in self.comparison.tables],
            "keys": self.comparison.keys,
            "clean_keys": self.comparison.clean_keys,
            "differing_keys": self.comparison.differing_keys,
            "written_by_a_further_run": self.again,
            "seconds": round(self.seconds, 1),
        }


def kills_then_rerun(
    spark: SparkSession,
    repo: Path,
    redis_url: str,
    clean: Path,
    clean_url: str,
    points: Sequence[str],
    work: Path,
    *,
    first_keys: int,
    on_kill: Callable[[Kill], None] | None = None,
) -> KillResult:
    """Kill a materialization of `repo` at each of `points` in turn, rerun it to the
    end, compare with the clean repo, and run once more. `clean` must have been
    materialized already (materialize_in_process) into `clean_url`."""
    started = time.monotonic()
    result = KillResult()
    for point in points:
        kill = kill_materialization(repo, redis_url, point, work, first_keys=first_keys)
        result.kills.append(kill)
        if on_kill is not None:
            on_kill(kill)
    result.rerun = materialize_in_process(repo, redis_url)
    result.comparison = compare_repos(spark, repo, redis_url, clean, clean_url)
    result.again = materialize_in_process(repo, redis_url)
    result.seconds = time.monotonic() - started
    return result
