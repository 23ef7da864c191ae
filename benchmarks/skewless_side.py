"""The skewless side of the benchmark suite: its feature repo over the shared data, and
one function per workload. The orchestrator (benchmarks/run.py) times and compares."""

from __future__ import annotations

import math
import shutil
import subprocess
import sys
import textwrap
import time
import urllib.request
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.parquet as pq

from benchmarks import jvm_profile
from benchmarks.data import FEATURES, HERE, WIDE_FEATURES
from benchmarks.floors import FLOOR_DB

if TYPE_CHECKING:
    from skewless import FeatureStore

REPO_DEFS = """
from datetime import timedelta
from skewless import *

entity = Entity("entity", join_keys=["entity_id"])
MIXED = [
    Field("f_int", Int64), Field("f_int32", Int32), Field("f_float", Float64),
    Field("f_float32", Float32), Field("f_bool", Bool), Field("f_str", String),
    Field("f_rate", Float64), Field("f_count", Int64), Field("f_score", Float64),
    Field("f_flag", Bool),
]
stats = FeatureView(
    "stats",
    entities=[entity],
    schema=[Field("entity_id", Int64), *MIXED],
    source=FileSource("{data}/features.parquet", timestamp_field="event_ts",
                      created_timestamp_column="created_ts"),
    ttl=timedelta(days=7),
)
online = FileSource("{data}/online.parquet", timestamp_field="event_ts",
                    created_timestamp_column="created_ts")
online10 = FeatureView("online10", entities=[entity], schema=MIXED, source=online)
online50 = FeatureView(
    "online50",
    entities=[entity],
    schema=[Field(f"w{{i:02d}}", Int64 if i % 2 else Float64) for i in range(50)],
    source=online,
)
"""

# Online workloads: name -> (view, features, entity count).
WORKLOADS: dict[str, tuple[str, list[str], int]] = {
    "1x10": ("online10", FEATURES, 1),
    "100x10": ("online10", FEATURES, 100),
    "1x50": ("online50", WIDE_FEATURES, 1),
    "100x50": ("online50", WIDE_FEATURES, 100),
}
GRPC_METHOD = "/skewless.serving.v1.OnlineServing/GetOnlineFeatures"
MATERIALIZE_END = datetime(2027, 1, 1, tzinfo=UTC)


def make_repo(data: Path, workdir: Path, *, online_url: str) -> Path:
    """A repo with the `stats`, `online10` and `online50` views over `data`, its registry
    and Delta tables under `workdir`, Spark local[2] and the given Redis."""
    repo = workdir / "skewless_repo"
    shutil.rmtree(repo, ignore_errors=True)
    repo.mkdir(parents=True)
    (repo / "feature_store.yaml").write_text(
        textwrap.dedent(
            f"""\
            project: bench
            registry: {workdir}/skewless_registry.db
            spark:
              master: local[2]
              conf_file: {HERE.parent}/spark-conf/spark-defaults.conf
              conf:
                spark.driver.memory: 12g
                spark.sql.shuffle.partitions: 16
            online_store:
              type: redis
              url: {online_url}
            offline_store:
              type: delta
              path: {workdir}/skewless_offline
            """
        )
    )
    (repo / "defs.py").write_text(REPO_DEFS.format(data=data))
    return repo


def open_store(repo: Path) -> FeatureStore:
    from skewless import FeatureStore  # noqa: PLC0415 - imported once the data exists

    store = FeatureStore(repo)
    store.apply()
    return store


def entity_table(data: Path) -> pa.Table:
    """entity.parquet plus `row_id` (the row's position), which every system passes
    through so results can be matched row by row."""
    table = pq.read_table(data / "entity.parquet")
    return table.append_column("row_id", pa.array(range(table.num_rows), pa.int64()))


def historical(
    store: FeatureStore, data: Path, workdir: Path, warm_runs: int
) -> tuple[pa.Table, dict[str, Any]]:
    """The training set from the cold call, with timings: `cold_s` (the first call in the
    JVM), `warm_runs_s` (each later call) and `warm_s`, the best of them; every warm result
    must equal the cold one."""
    t = time.perf_counter()
    spark = store.spark
    timings: dict[str, Any] = {"spark_startup_s": time.perf_counter() - t}
    entity = entity_table(data).to_pandas()
    refs = [f"stats:{f}" for f in FEATURES]

    def call() -> tuple[pa.Table, float, float]:
        t = time.perf_counter()
        job = store.get_historical_features(entity, refs)  # entity rows into Spark, plan
        planned = time.perf_counter()
        table = job.to_arrow()  # the join, the result back as Arrow, put in input order
        return table, time.perf_counter() - t, planned - t

    result, timings["cold_s"], timings["cold_prepare_s"] = call()
    runs: list[tuple[float, float]] = []
    timings["warm_equals_cold"] = True
    # The warm calls run under JFR, so the report can say where their time goes.
    jvm = spark.sparkContext._jvm
    assert jvm is not None
    recording = jvm_profile.Recording(
        int(jvm.java.lang.ProcessHandle.current().pid()),
        str(jvm.java.lang.System.getProperty("java.home")),
        workdir / "skewless_historical.jfr",
    )
    profiling = warm_runs > 0 and recording.try_start()
    for _ in range(warm_runs):
        table, seconds, prepare = call()
        runs.append((seconds, prepare))
        timings["warm_equals_cold"] &= table.equals(result)
    if profiling:
        timings["jvm_profile"] = recording.stop()
    timings["warm_runs_s"] = [r[0] for r in runs]
    if runs:
        timings["warm_s"], timings["warm_prepare_s"] = min(runs)
    # The path for training sets too large for the driver: a Spark entity dataframe in,
    # a Delta table out, nothing collected.
    t = time.perf_counter()
    sdf = spark.read.parquet(str(data / "entity.parquet"))
    out = workdir / "skewless_training_set"
    store.get_historical_features(sdf, refs).to_delta(str(out), mode="overwrite")
    timings["spark_df_to_delta_s"] = time.perf_counter() - t
    return result, timings


def materialize(store: FeatureStore) -> dict[str, Any]:
    """A full run of every view (rerunning one changes nothing: tests/integration pins
    that), and the online writer alone on `stats`."""
    out: dict[str, Any] = {}
    for view in ("stats", "online10", "online50"):
        t = time.perf_counter()
        (record,) = store.materialize(None, MATERIALIZE_END, views=[view])
        wall = time.perf_counter() - t
        out[view] = {
            "wall_s": wall,
            "seconds": record.seconds,
            "online_seconds": record.online_seconds,
            "rows_read": record.rows_read,
            "rows_written_offline": record.rows_written_offline,
            "keys_written_online": record.keys_written_online,
            "delta_version": record.delta_version,
        }
    out["stats"]["writer_alone"] = writer_alone(store, "stats")
    return out


def writer_alone(store: FeatureStore, view_name: str) -> dict[str, Any]:
    """The online writer by itself, in this process, on the view's latest row per entity
    (read back from its Delta table): column-wise encoding plus the ordered Lua writes,
    into the floors' own Redis database (emptied afterwards). Set against the raw
    pipeline floor, it separates the write path from the Spark job around it."""
    import redis  # noqa: PLC0415

    from skewless.batch.materialize import OnlineWriter, latest_per_entity  # noqa: PLC0415
    from skewless.batch.sources import CTS, TS  # noqa: PLC0415

    view = store.get_feature_view(view_name)
    record = store.registry.materializations(view_name)[-1]
    created = view.source.created_timestamp_column or "created_timestamp"
    table = store.spark.read.format("delta").load(record.delta_path)
    frame = table.withColumnRenamed(view.source.timestamp_field, TS)
    latest = latest_per_entity(frame.withColumnRenamed(created, CTS), view).toArrow()
    url = store.online_url().rsplit("/", 1)[0] + f"/{FLOOR_DB}"
    writer = OnlineWriter.for_view(store.project, view, url)
    started = time.perf_counter()
    (counts,) = writer(iter(latest.to_batches(max_chunksize=10_000)))
    elapsed = time.perf_counter() - started
    redis.Redis.from_url(url).flushdb()
    written = int(counts.column("written")[0].as_py())
    return {"keys_written": written, "seconds": elapsed, "keys_per_s": written / elapsed}


def _rows(n: int) -> list[dict[str, Any]]:
    return [{"entity_id": i} for i in range(n)]


def grpc_payloads() -> dict[str, bytes]:
    """Serialized GetOnlineFeatures requests per workload."""
    from skewless.grpc import convert  # noqa: PLC0415
    from skewless.serving.service import OnlineQuery  # noqa: PLC0415

    out = {}
    for name, (view, features, n) in WORKLOADS.items():
        query = OnlineQuery([f"{view}:{f}" for f in features], _rows(n), False)
        out[name] = convert.query_to_proto(query).SerializeToString()
    return out


def check_grpc_answers(target: str, payloads: dict[str, bytes]) -> dict[str, dict[str, int]]:
    """Send each payload once; the response size and how many values came back PRESENT,
    so a benchmark of empty answers cannot pass unnoticed."""
    import grpc  # noqa: PLC0415

    from skewless._proto.skewless.serving.v1 import serving_pb2 as pb  # noqa: PLC0415
    from skewless.grpc import convert  # noqa: PLC0415
    from skewless.serving.response import FeatureStatus  # noqa: PLC0415

    out = {}
    with grpc.insecure_channel(target) as channel:
        stub = convert.OnlineServingStub(channel)
        for name, payload in payloads.items():
            request = pb.GetOnlineFeaturesRequest.FromString(payload)
            reply = stub.GetOnlineFeatures(request, timeout=30)
            response = convert.response_from_proto(reply, _rows(WORKLOADS[name][2]))
            statuses = [s for column in response.statuses.values() for s in column]
            out[name] = {
                "response_bytes": reply.ByteSize(),
                "values": len(statuses),
                "present": sum(s is FeatureStatus.PRESENT for s in statuses),
            }
    return out


def in_process_calls(store: FeatureStore) -> dict[str, Any]:
    """Zero-argument callables per workload: `FeatureStore.get_online_features`."""
    calls = {}
    for name, (view, features, n) in WORKLOADS.items():
        refs, rows = [f"{view}:{f}" for f in features], _rows(n)
        calls[name] = lambda refs=refs, rows=rows: store.get_online_features(refs, rows)
    return calls


def start_server(repo: Path, port: int, metrics_port: int, log: Path) -> subprocess.Popen[bytes]:
    binary = str(Path(sys.executable).parent / "skewless")
    argv = [binary, "serve", "--repo", str(repo), "--port", str(port), "--host", "127.0.0.1"]
    with log.open("wb") as sink:
        return subprocess.Popen(
            [*argv, "--metrics-port", str(metrics_port)],
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


# The server's own view of its calls: skewless_online_request_seconds from /metrics.
HANDLER_HISTOGRAM = "skewless_online_request_seconds"


def handler_histogram(metrics_port: int) -> dict[float, float]:
    """The server's cumulative handler-time histogram, {bucket upper bound: calls}
    (+Inf included), summed over methods, with the sum under -1.0."""
    from prometheus_client.parser import text_string_to_metric_families  # noqa: PLC0415

    url = f"http://127.0.0.1:{metrics_port}/metrics"
    with urllib.request.urlopen(url, timeout=10) as reply:
        text = reply.read().decode()
    out: dict[float, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == f"{HANDLER_HISTOGRAM}_bucket":
                le = float(sample.labels["le"])
                out[le] = out.get(le, 0.0) + sample.value
            elif sample.name == f"{HANDLER_HISTOGRAM}_sum":
                out[-1.0] = out.get(-1.0, 0.0) + sample.value
    return out


def handler_stats(before: dict[float, float], after: dict[float, float]) -> dict[str, Any]:
    """Calls, mean and estimated p50/p99 of the server's handler time between two
    scrapes. A quantile is interpolated linearly inside its bucket, as Prometheus'
    histogram_quantile does, so it is only as fine as the buckets (metrics.py)."""
    bounds = sorted(b for b in after if b >= 0)
    cumulative = [after[b] - before.get(b, 0.0) for b in bounds]
    calls = cumulative[-1] if cumulative else 0.0
    if calls <= 0:
        return {"calls": 0}

    def quantile(q: float) -> float:
        rank = q * calls
        lower_bound, lower_count = 0.0, 0.0
        for bound, count in zip(bounds, cumulative, strict=True):
            if count >= rank:
                if math.isinf(bound):
                    return lower_bound  # beyond the last finite bucket: its bound
                share = (rank - lower_count) / (count - lower_count)
                return lower_bound + (bound - lower_bound) * share
            lower_bound, lower_count = bound, count
        return lower_bound

    total = after.get(-1.0, 0.0) - before.get(-1.0, 0.0)
    return {
        "calls": int(calls),
        "mean_s": total / calls,
        "p50_s": quantile(0.50),
        "p99_s": quantile(0.99),
    }
