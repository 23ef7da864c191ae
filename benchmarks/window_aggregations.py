"""Windowed aggregations: historical retrieval next to DuckDB's window functions on the
same data, and the online cost of aggregated features, in one run.

    .venv/bin/python -m benchmarks.window_aggregations       # 1M events, 100k entity rows
    .venv/bin/python -m benchmarks.window_aggregations --events 100000 --entity-rows 10000

Data (numpy, seed 11, under benchmarks/data/): events of drivers (events / 100 of them)
at microsecond times over 60 days, a float64 `fare` (2% null) and an int64 `trip_id`; 1%
of the rows deliver another row again (one event by the rule), 0.5% share another row's
driver and time with their own values (two events); no created-timestamp column. Entity
rows: 2% of unknown drivers, 60% at random times, the others exactly on an event's time
or exactly 1 h, 1 d or 7 d after one (a window's open lower edge). The view `trips`
counts trip_id over 1 h, 1 d and 7 d and sums and averages fare over 7 d.

1. Historical: `get_historical_features(entity_df, ...).to_arrow()` against DuckDB (2
   threads): distinct events and entity rows (null inputs) in one relation, partitioned
   by driver, ordered by time in microseconds, `RANGE BETWEEN w - 1 PRECEDING AND CURRENT
   ROW` (CURRENT ROW of a RANGE frame takes the peers: an event at t counts; in whole
   microseconds, w - 1 PRECEDING is the open edge t - w). Cold, then `--warm-runs` turns
   of each, alternating; the ratio is of the warm medians. Compared row by row: counts
   equal, floats within a relative 1e-12 (DuckDB adds in another order than the rule's
   fold); a sample bit for bit against tests/window_reference.py.
2. Online: the events shifted to end a minute ago, materialized into a private
   redis-server as `trips_now` (aggregated) and `latest` (plain, the same columns); one
   `skewless serve` process answers gRPC lookups of 1 and 100 drivers, latest's 2
   features and trips_now's 5, in turns of 100 calls (loadgen.interleaved_latencies);
   Redis MEMORY USAGE over a sample of each view's keys, with the events per list.

Writes benchmarks/results/<date>-window-aggregations[-<events>-<entity rows>].{json,md}.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any, cast

import grpc
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import redis
from tests import window_reference as ref
from tests.integration.redis_server import redis_server

from benchmarks import loadgen, skewless_side
from benchmarks.data import ANCHOR, DATA
from benchmarks.on_demand_latency import _wait_serving

RESULTS = Path(__file__).parent / "results"
SEED = 11
DAYS = 60
HOUR_US, DAY_US = 3_600_000_000, 86_400_000_000
# name -> (column, function, window in microseconds); the view's aggregations.
AGGREGATIONS: dict[str, tuple[str, str, int]] = {
    "trips_1h": ("trip_id", "count", HOUR_US),
    "trips_1d": ("trip_id", "count", DAY_US),
    "trips_7d": ("trip_id", "count", 7 * DAY_US),
    "fare_sum_7d": ("fare", "sum", 7 * DAY_US),
    "fare_mean_7d": ("fare", "mean", 7 * DAY_US),
}
COUNTS = [n for n, (_, f, _) in AGGREGATIONS.items() if f == "count"]
PLAIN = ["fare", "trip_id"]
REL_TOLERANCE = 1e-12
REFERENCE_ROWS = 1000

DEFS = """
from datetime import timedelta
from skewless import *

driver = Entity("driver", join_keys=["driver_id"])
SCHEMA = [Field("driver_id", Int64), Field("fare", Float64), Field("trip_id", Int64)]
WINDOWS = [
    Aggregation(column=c, function=f, time_window=timedelta(microseconds=w), name=n)
    for n, (c, f, w) in {aggregations!r}.items()
]
events = FileSource("{data}/events.parquet", timestamp_field="event_ts")
trips = FeatureView("trips", entities=[driver], schema=SCHEMA, source=events, aggregations=WINDOWS)
now = FileSource("{online}", timestamp_field="event_ts")
trips_now = FeatureView(
    "trips_now", entities=[driver], schema=SCHEMA, source=now, aggregations=WINDOWS
)
latest = FeatureView("latest", entities=[driver], schema=SCHEMA, source=now)
"""


def _ts(values: np.ndarray) -> pa.Array:
    return pa.array(values, pa.timestamp("us", tz="UTC"))


def generate(events: int, entity_rows: int, entities: int) -> Path:
    """The data folder (events.parquet, entity.parquet), generated once per size."""
    folder = DATA / f"windows-{events}-{entity_rows}-{entities}"
    if (folder / "done").exists():
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(SEED)
    t0 = int(ANCHOR.timestamp() * 1_000_000)
    n = events
    driver = rng.integers(0, entities, n, dtype=np.int64)
    ts = t0 + rng.integers(0, DAYS * DAY_US, n, dtype=np.int64)
    trip = rng.permutation(n).astype(np.int64) + 1_000_000_000
    fare = np.round(rng.gamma(2.0, 9.0, n), 2)
    fare_null = rng.random(n) < 0.02
    # Second deliveries (the whole row again: one event), then rows at another row's
    # driver and time with their own values (two events).
    again = rng.choice(n, n // 100, replace=False)
    source = rng.choice(n, n // 100)
    driver[again], ts[again], trip[again] = driver[source], ts[source], trip[source]
    fare[again], fare_null[again] = fare[source], fare_null[source]
    tied = rng.choice(n, n // 200, replace=False)
    source = rng.choice(n, n // 200)
    driver[tied], ts[tied] = driver[source], ts[source]
    table = pa.table(
        {
            "driver_id": pa.array(driver),
            "event_ts": _ts(ts),
            "fare": pa.array(fare, mask=fare_null),
            "trip_id": pa.array(trip),
        }
    )
    pq.write_table(table, folder / "events.parquet")
    m = entity_rows
    kind = rng.choice(5, m, p=[0.6, 0.1, 0.1, 0.1, 0.1])
    picked = rng.integers(0, n, m)
    offsets = np.array([0, 0, HOUR_US, DAY_US, 7 * DAY_US], dtype=np.int64)
    e_ts = np.where(
        kind == 0, t0 + rng.integers(0, (DAYS + 1) * DAY_US, m), ts[picked] + offsets[kind]
    )
    e_driver = np.where(kind == 0, rng.integers(0, entities, m), driver[picked])
    unknown = rng.random(m) < 0.02
    e_driver[unknown] = entities + rng.integers(0, entities, int(unknown.sum()))
    entity = pa.table(
        {
            "driver_id": pa.array(e_driver.astype(np.int64)),
            "event_timestamp": _ts(e_ts),
            "row_id": pa.array(np.arange(m, dtype=np.int64)),
        }
    )
    pq.write_table(entity, folder / "entity.parquet")
    (folder / "done").write_text("")
    return folder


def shifted_events(data: Path, out: Path, end_us: int) -> int:
    """The events moved so the latest is 60 s before `end_us`, for the online part
    (served at the wall clock's time); returns the shift in microseconds."""
    table = pq.read_table(data / "events.parquet")
    ts = table.column("event_ts").cast(pa.int64()).to_numpy()
    shift = end_us - 60_000_000 - int(ts.max())
    column = _ts(ts + shift)
    pq.write_table(table.set_column(1, "event_ts", column), out)
    return shift


def duckdb_windows(con: Any, events: str, entity: str) -> pa.Table:
    """The aggregations at each entity row by DuckDB's window functions, by row_id."""
    frames: list[str] = []
    selected: list[str] = []
    for name, (column, function, window_us) in AGGREGATIONS.items():
        frame = f"w{window_us}"
        if frame not in {f.split()[0] for f in frames}:
            frames.append(
                f"{frame} AS (PARTITION BY driver_id ORDER BY t "
                f"RANGE BETWEEN {window_us - 1} PRECEDING AND CURRENT ROW)"
            )
        sql_function = {"count": "count", "sum": "sum", "mean": "avg"}[function]
        selected.append(f"{sql_function}({column}) OVER {frame} AS {name}")
    query = f"""
        WITH ev AS (
            SELECT DISTINCT driver_id, epoch_us(event_ts) AS t, fare, trip_id FROM {events}
            WHERE driver_id IS NOT NULL AND event_ts IS NOT NULL
        ), u AS (
            SELECT driver_id, t, fare, trip_id, NULL::BIGINT AS row_id FROM ev
            UNION ALL
            SELECT driver_id, epoch_us(event_timestamp), NULL::DOUBLE, NULL::BIGINT, row_id
            FROM {entity}
        )
        SELECT row_id, {", ".join(selected)} FROM u
        WINDOW {", ".join(frames)}
        QUALIFY row_id IS NOT NULL
        ORDER BY row_id
    """
    result = con.sql(query).to_arrow_table()
    return result.read_all() if isinstance(result, pa.RecordBatchReader) else result


def compare(got: pa.Table, want: pa.Table, names: list[str]) -> dict[str, Any]:
    """Row by row on row_id: counts equal, floats both null or within REL_TOLERANCE."""
    got, want = got.sort_by("row_id"), want.sort_by("row_id")
    if got.num_rows != want.num_rows or not got.column("row_id").equals(want.column("row_id")):
        return {"rows": got.num_rows, "want_rows": want.num_rows, "differing_rows": got.num_rows}
    bad = np.zeros(got.num_rows, dtype=bool)
    max_rel = 0.0
    for name in names:
        a, b = got.column(name), want.column(name)
        a_null = pc.is_null(a).to_numpy(zero_copy_only=False)
        b_null = pc.is_null(b).to_numpy(zero_copy_only=False)
        x = a.cast(pa.float64()).fill_null(0).to_numpy()
        y = b.cast(pa.float64()).fill_null(0).to_numpy()
        if name in COUNTS:
            wrong = (a_null != b_null) | (x != y)
        else:
            scale = np.maximum(np.abs(x), np.abs(y))
            rel = np.divide(np.abs(x - y), scale, out=np.zeros_like(x), where=scale > 0)
            max_rel = max(max_rel, float(rel.max(initial=0.0)))
            wrong = (a_null != b_null) | (rel > REL_TOLERANCE)
        bad |= wrong
    return {"rows": got.num_rows, "differing_rows": int(bad.sum()), "max_rel_diff": max_rel}


def reference_sample(data: Path, got: pa.Table) -> dict[str, Any]:
    """REFERENCE_ROWS entity rows (and every event of their drivers) through the brute
    force reference: every value must be equal, floats to the last bit."""
    entity = pq.read_table(data / "entity.parquet").slice(0, REFERENCE_ROWS)
    entity = entity.set_column(1, "t", entity.column(1).cast(pa.int64()))
    events = pq.read_table(data / "events.parquet")
    events = events.filter(pc.is_in(events.column("driver_id"), pc.unique(entity.column(0))))
    events = events.set_column(1, "ts", events.column(1).cast(pa.int64()))
    rows = [{"cts": None, **e} for e in events.to_pylist()]
    aggs = [ref.RefAggregation(n, c, f, w) for n, (c, f, w) in AGGREGATIONS.items()]
    inputs = {"fare": "float64", "trip_id": "int64"}
    want = ref.historical(rows, ["driver_id"], inputs, False, aggs, entity.to_pylist())
    mine = got.sort_by("row_id").slice(0, REFERENCE_ROWS).select(list(AGGREGATIONS)).to_pylist()
    differing = sum(a != b for a, b in zip(mine, want, strict=True))
    return {"rows": len(want), "differing_rows": differing, "events": len(rows)}


def historical(store: Any, data: Path, warm_runs: int) -> tuple[dict[str, Any], pa.Table]:
    """skewless and DuckDB, cold then `warm_runs` more calls each, alternating."""
    import duckdb  # noqa: PLC0415 - a benchmark-only dependency

    entity = pq.read_table(data / "entity.parquet")
    entity_df = entity.to_pandas()
    refs = [f"trips:{name}" for name in AGGREGATIONS]
    con = duckdb.connect()
    con.execute("SET threads TO 2")
    con.execute("SET TimeZone = 'UTC'")
    con.register("lookups", entity)

    calls: dict[str, Callable[[], pa.Table]] = {
        "skewless": lambda: store.get_historical_features(entity_df, refs).to_arrow(),
        "duckdb": lambda: duckdb_windows(con, f"read_parquet('{data}/events.parquet')", "lookups"),
    }
    out: dict[str, Any] = {name: {"warm_runs_s": []} for name in calls}
    first: dict[str, pa.Table] = {}
    for turn in range(warm_runs + 1):  # cold, then the warm turns, alternating
        for name, call in calls.items():
            t = time.perf_counter()
            table = call()
            seconds, o = time.perf_counter() - t, out[name]
            if turn == 0:
                first[name], o["cold_s"], o["warm_equals_cold"] = table, seconds, True
            else:
                o["warm_runs_s"].append(seconds)
                o["warm_equals_cold"] &= table.equals(first[name])
    for o in out.values():
        o["warm_s"] = statistics.median(o["warm_runs_s"] or [o["cold_s"]])
    out["duckdb"]["version"] = duckdb.__version__
    got, want = first["skewless"], first["duckdb"]
    s_cold, d_cold = out["skewless"]["cold_s"], out["duckdb"]["cold_s"]
    s_median, d_median = out["skewless"]["warm_s"], out["duckdb"]["warm_s"]
    out["ratio_warm"] = s_median / d_median
    out["ratio_cold"] = s_cold / d_cold
    out["comparison"] = compare(got, want, list(AGGREGATIONS))
    out["result_rows"] = got.num_rows
    out["nonzero_7d"] = int(pc.sum(pc.greater(got.column("trips_7d"), 0)).as_py())
    return out, got


def breakdown(store: Any, data: Path) -> dict[str, Any]:
    """Where skewless's retrieval spends its time, one run of each step, each forced by a
    Spark `noop` write (nothing collected): the call that takes the entity rows into
    Spark, reading the source, keeping its distinct events, the window job for the three
    counts alone and for all five aggregations (the float sum and mean collect and sort
    each frame's values); and the operators of that job's physical plan."""
    from skewless.batch.aggregation import window_events  # noqa: PLC0415
    from skewless.batch.sources import read_source  # noqa: PLC0415

    view = store.get_feature_view("trips")
    entity_df = pq.read_table(data / "entity.parquet").to_pandas()

    def timed(frame: Any) -> float:
        t = time.perf_counter()
        frame.write.format("noop").mode("overwrite").save()
        return time.perf_counter() - t

    source = read_source(store.spark, view, store.repo_path)
    out: dict[str, Any] = {"read_source_s": timed(source)}
    out["distinct_events_s"] = timed(window_events(source, view))
    t = time.perf_counter()
    job = store.get_historical_features(entity_df, [f"trips:{n}" for n in COUNTS])
    out["entity_rows_in_s"] = time.perf_counter() - t
    # The job's own result (row ids and features), which to_arrow() collects.
    out["counts_job_s"] = timed(job._features)
    job = store.get_historical_features(entity_df, [f"trips:{n}" for n in AGGREGATIONS])
    frame = job._features
    out["window_job_s"] = timed(frame)
    plan = frame._jdf.queryExecution().executedPlan().toString()
    out["operators"] = {
        op: sum(line.lstrip(" :+-*()0123456789").startswith(op) for line in plan.splitlines())
        for op in ("Exchange", "Sort", "Window", "HashAggregate", "FileScan")
    }
    return out


def online_payloads() -> dict[str, dict[str, bytes]]:
    from skewless.grpc import convert  # noqa: PLC0415
    from skewless.serving.service import OnlineQuery  # noqa: PLC0415

    out = {}
    for n in (1, 100):
        rows = [{"driver_id": i} for i in range(n)]
        out[f"{n} driver{'s' if n > 1 else ''}"] = {
            "plain": OnlineQuery([f"latest:{f}" for f in PLAIN], rows),
            "aggregated": OnlineQuery([f"trips_now:{a}" for a in AGGREGATIONS], rows),
        }
    return {
        name: {k: convert.query_to_proto(q).SerializeToString() for k, q in pair.items()}
        for name, pair in out.items()
    }


def memory(store: Any, url: str, entities: int, sample: int = 1000) -> dict[str, Any]:
    """MEMORY USAGE of a sample of each view's keys, and the events per stored list."""
    from skewless.online import codec  # noqa: PLC0415
    from skewless.online.event_lists import list_fields  # noqa: PLC0415

    client = redis.Redis.from_url(url)
    dtypes = [dtype for _, dtype in list_fields(store.get_feature_view("trips_now"))]
    ids = np.random.default_rng(SEED).choice(entities, min(sample, entities), replace=False)
    out: dict[str, Any] = {}
    for name in ("latest", "trips_now"):
        keys = [codec.entity_key(store.project, name, [int(i)]) for i in ids]
        stored = [(k, cast("bytes | None", client.get(k))) for k in keys]
        found = [(k, v) for k, v in stored if v is not None]
        used = np.array([client.memory_usage(k, samples=0) for k, _ in found], dtype=np.float64)
        out[name] = {"keys": len(found), "memory_usage_mean_bytes": float(used.mean())}
        out[name]["value_mean_bytes"] = float(np.mean([len(v) for _, v in found]))
        if name == "trips_now":
            lists = [codec.decode_value(v, dtypes).values[0] or () for _, v in found]
            events = np.array([len(times) for times in lists], dtype=np.float64)
            slope, intercept = np.polyfit(events, used, 1)
            out[name] |= {"events_mean": float(events.mean()), "events_max": int(events.max())}
            out[name] |= {"bytes_per_event_fit": float(slope), "bytes_fixed_fit": float(intercept)}
    return out


def online(
    store: Any, repo: Path, work: Path, url: str, calls: int, entities: int
) -> dict[str, Any]:
    """Materialize both online views to now, check the aggregated answers against
    DuckDB at the materialization's end, then time gRPC lookups of one server."""
    import duckdb  # noqa: PLC0415

    end = datetime.now(UTC).replace(microsecond=0)
    out: dict[str, Any] = {"materialize": {}}
    for name in ("latest", "trips_now"):
        t = time.perf_counter()
        (record,) = store.materialize(None, end, views=[name])
        out["materialize"][name] = {
            "wall_s": time.perf_counter() - t,
            "keys_written_online": record.keys_written_online,
            "rows_read": record.rows_read,
        }
    # In process at the end: the values must be DuckDB's (the online path's parity with
    # the offline one is tests/integration's; this guards the benchmark's own data).
    rows = [{"driver_id": i} for i in range(100)]
    answer = store.get_online_features(
        [f"trips_now:{a}" for a in AGGREGATIONS], rows, request_time=end
    )
    got = pa.table({"row_id": list(range(100)), **{a: answer.values[a] for a in AGGREGATIONS}})
    con = duckdb.connect()
    con.execute(
        "CREATE VIEW lookups AS SELECT range AS driver_id, range AS row_id, "
        f"TIMESTAMPTZ '{end.isoformat()}' AS event_timestamp FROM range(100)"
    )
    events = f"read_parquet('{work}/online_events.parquet')"
    out["check"] = compare(got, duckdb_windows(con, events, "lookups"), list(AGGREGATIONS))
    out["check"]["nonzero_7d"] = sum(v > 0 for v in answer.values["trips_7d"])
    out["memory"] = memory(store, url, entities)
    port, metrics = loadgen.free_port(), loadgen.free_port()
    server = skewless_side.start_server(repo, port, metrics, work / "server.log")
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            _wait_serving(channel, 120)
            stub = loadgen.raw_unary(channel, skewless_side.GRPC_METHOD)
            out["latency"], out["response_bytes"] = {}, {}
            for name, pair in online_payloads().items():
                fns: dict[str, Callable[[], Any]] = {
                    k: partial(stub, body, timeout=30) for k, body in pair.items()
                }
                out["response_bytes"][name] = {k: len(f()) for k, f in fns.items()}
                samples = loadgen.interleaved_latencies(fns, calls, 100)
                out["latency"][name] = {k: loadgen.stats(v) for k, v in samples.items()}
                print(name, {k: round(v["p50_ms"], 3) for k, v in out["latency"][name].items()})
    finally:
        server.send_signal(signal.SIGINT)
        server.wait(60)
    return out


def machine() -> dict[str, Any]:
    cpuinfo = Path("/proc/cpuinfo").read_text().splitlines()
    models = [line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name")]
    memory_bytes = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    cpus, python = len(os.sched_getaffinity(0)), platform.python_version()
    gib, load = round(memory_bytes / 2**30, 1), os.getloadavg()[0]
    return {
        "cpus": cpus,
        "cpu": models[:1],
        "memory_gib": gib,
        "load_at_start": load,
        "python": python,
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    entities = args.entities or max(1, args.events // 100)
    result: dict[str, Any] = {
        "date": datetime.now(UTC).date().isoformat(),
        "events": args.events,
        "entity_rows": args.entity_rows,
        "entities": entities,
        "machine": machine(),
        "calls": args.calls,
        "aggregations": {n: list(a) for n, a in AGGREGATIONS.items()},
    }
    data = generate(args.events, args.entity_rows, entities)
    with tempfile.TemporaryDirectory(prefix="skewless-windows-") as tmp:
        work = Path(tmp)
        with redis_server(work / "redis") as url:
            # make_repo's configuration (Spark local[2], Redis); this workload's views.
            repo = skewless_side.make_repo(data, work, online_url=url)
            online_file = work / "online_events.parquet"
            now_us = int(datetime.now(UTC).timestamp() * 1_000_000)
            result["online_shift_us"] = shifted_events(data, online_file, now_us)
            defs = DEFS.format(data=data, online=online_file, aggregations=AGGREGATIONS)
            (repo / "defs.py").write_text(defs)
            store = skewless_side.open_store(repo)
            historical_result, got = historical(store, data, args.warm_runs)
            result["historical"] = historical_result
            result["historical"]["reference"] = reference_sample(data, got)
            result["historical"]["breakdown"] = breakdown(store, data)
            if not args.skip_online:
                result["online"] = online(store, repo, work, url, args.calls, entities)
    result["machine"]["load_at_end"] = os.getloadavg()[0]
    return result


def _span(us: int) -> str:
    return f"{us // DAY_US} d" if us % DAY_US == 0 else f"{us // HOUR_US} h"


def report(result: dict[str, Any]) -> str:
    h, m = result["historical"], result["machine"]
    small = (result["events"], result["entity_rows"]) != (1_000_000, 100_000)
    s, d, c, r, b = (h[k] for k in ("skewless", "duckdb", "comparison", "reference", "breakdown"))
    sizes = f" --events {result['events']} --entity-rows {result['entity_rows']}" * small
    aggregations = ", ".join(
        f"`{n}` ({f} of {col}, {_span(w)})" for n, (col, f, w) in AGGREGATIONS.items()
    )
    lines = [
        f"# Windowed aggregations: {result['events']:,} events, "
        f"{result['entity_rows']:,} entity rows, {result['date']}",
        "",
        f"Reproduce: `.venv/bin/python -m benchmarks.window_aggregations{sizes}` (see the "
        f"module's docstring). {result['entities']:,} drivers; {aggregations}. "
        f"{m['cpus']} CPUs ({', '.join(m['cpu'])}), {m['memory_gib']} GiB, 1-minute load "
        f"average {m['load_at_start']:.2f} at the start, {m['load_at_end']:.2f} at the end; "
        f"Python {m['python']}, DuckDB {d['version']}.",
        "",
        "## Historical retrieval",
        "",
        "| | cold | warm runs | warm median |",
        "|---|---|---|---|",
    ]
    for name, side in (("skewless, Spark local[2]", s), ("DuckDB window functions, 2 threads", d)):
        runs = " / ".join(f"{x:.2f}" for x in side["warm_runs_s"])
        lines.append(f"| {name} | {side['cold_s']:.2f} s | {runs} s | {side['warm_s']:.2f} s |")
    ops = ", ".join(f"{n} {op}" for op, n in b["operators"].items())
    lines += [
        "",
        f"skewless / DuckDB: {h['ratio_warm']:.2f}x warm, {h['ratio_cold']:.2f}x cold. Of "
        f"{c['rows']:,} rows, {c['differing_rows']} differ (counts equal, floats within a "
        f"relative {REL_TOLERANCE:g}; largest relative difference {c['max_rel_diff']:.1e}); "
        f"every warm result equals the cold one: {s['warm_equals_cold']}; "
        f"{h['nonzero_7d']:,} rows have a trip in their 7 days. Against "
        f"tests/window_reference.py, bit for bit: {r['rows']:,} rows ({r['events']:,} "
        f"events), {r['differing_rows']} differ.",
        "",
        "Where skewless's time goes (one run of each step, forced by a Spark noop write):",
        "",
        f"- `get_historical_features()`, the entity rows into Spark: {b['entity_rows_in_s']:.2f} s",
        f"- reading the source: {b['read_source_s']:.2f} s; with the distinct events: "
        f"{b['distinct_events_s']:.2f} s",
        f"- the window job for the 3 counts alone: {b['counts_job_s']:.2f} s; for all 5 "
        f"aggregations: {b['window_job_s']:.2f} s (its plan: {ops})",
        "",
    ]
    if "online" not in result:
        return "\n".join(lines)
    o = result["online"]
    agg, plain, check = o["memory"]["trips_now"], o["memory"]["latest"], o["check"]
    lines += [
        "## Online",
        "",
        "Materialized to the run's time (the events shifted to end a minute before): "
        + "; ".join(
            f"`{n}` {v['wall_s']:.1f} s, {v['keys_written_online']:,} keys"
            for n, v in o["materialize"].items()
        )
        + ". In process at that time, 100 drivers' aggregated values against DuckDB: "
        f"{check['differing_rows']} rows differ ({check['nonzero_7d']} with trips in 7 d).",
        "",
        f"gRPC lookups from one `skewless serve` process, {result['calls']:,} calls each "
        "after 100 warm-up calls, one at a time, plain and aggregated in turns of 100; the "
        "client's time included.",
        "",
        f"| drivers | `latest` ({len(PLAIN)} plain features) p50 / p99 | `trips_now` "
        f"({len(AGGREGATIONS)} aggregations) p50 / p99 | aggregated / plain, p50 "
        "| answer bytes plain / aggregated |",
        "|---|---|---|---|---|",
    ]
    for name, by in o["latency"].items():
        p, a, size = by["plain"], by["aggregated"], o["response_bytes"][name]
        lines.append(
            f"| {name} | {p['p50_ms']:.2f} / {p['p99_ms']:.2f} ms | {a['p50_ms']:.2f} / "
            f"{a['p99_ms']:.2f} ms | {a['p50_ms'] / p['p50_ms']:.2f}x | {size['plain']:,} / "
            f"{size['aggregated']:,} |"
        )
    lines += [
        "",
        f"Redis MEMORY USAGE over {agg['keys']:,} sampled keys per view: "
        f"`trips_now` {agg['memory_usage_mean_bytes']:.0f} bytes per driver holding "
        f"{agg['events_mean']:.1f} events on average (at most {agg['events_max']}; the value "
        f"{agg['value_mean_bytes']:.0f} bytes), a linear fit {agg['bytes_fixed_fit']:.0f} + "
        f"{agg['bytes_per_event_fit']:.1f} bytes per event; `latest` "
        f"{plain['memory_usage_mean_bytes']:.0f} bytes per driver (the value "
        f"{plain['value_mean_bytes']:.0f} bytes).",
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--entity-rows", type=int, default=100_000)
    parser.add_argument("--entities", type=int, default=0, help="default: events / 100")
    parser.add_argument("--warm-runs", type=int, default=3)
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--skip-online", action="store_true")
    args = parser.parse_args()
    result = run(args)
    RESULTS.mkdir(exist_ok=True)
    stem = f"{result['date']}-window-aggregations"
    if (args.events, args.entity_rows) != (1_000_000, 100_000):
        stem += f"-{args.events}-{args.entity_rows}"
    (RESULTS / f"{stem}.json").write_text(json.dumps(result, indent=2) + "\n")
    (RESULTS / f"{stem}.md").write_text(report(result))
    print(report(result))


if __name__ == "__main__":
    main()
