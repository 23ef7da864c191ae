"""Feast's side of the benchmark suite; runs inside Feast's own virtual environment.

    python feast_worker.py setup --data DIR --workdir DIR --redis HOST:PORT \
        --offline local|spark --out setup.json
    python feast_worker.py historical --repo DIR --data DIR --result OUT.parquet --out h.json
    python feast_worker.py materialize --repo DIR --end ISO --out m.json
    python feast_worker.py requests --repo DIR --out-dir DIR [--target 127.0.0.1:PORT]
        [--http-target 127.0.0.1:PORT] --out r.json
    python feast_worker.py online-sdk --repo DIR --calls 2000 --out o.json

Every command writes its JSON result to --out and exits non-zero with a message on
stderr when it fails. Feast's own logs and warnings go to stderr, never into the JSON.
Feast is imported inside the functions: skewless's venv (where ruff runs) has no Feast.
"""

# Feast (and pyarrow, grpc) live only in Feast's venv: imported inside the functions.
# ruff: noqa: PLC0415

from __future__ import annotations

import argparse
import contextlib
import http.client
import io
import json
import logging
import re
import subprocess
import sys
import time
import traceback
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

# Run as a script by Feast's venv, which has no skewless: the repository's root makes the
# benchmarks package importable (loadgen and data need only grpcio, numpy and pyarrow).
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks import loadgen
from benchmarks.data import FEATURES, WIDE_FEATURES

# Feast type names for FEATURES, as skewless declares them.
FEATURE_TYPES = {
    "f_int": "Int64",
    "f_int32": "Int32",
    "f_float": "Float64",
    "f_float32": "Float32",
    "f_bool": "Bool",
    "f_str": "String",
    "f_rate": "Float64",
    "f_count": "Int64",
    "f_score": "Float64",
    "f_flag": "Bool",
}
WIDE_TYPES = {f: ("Float64" if i % 2 == 0 else "Int64") for i, f in enumerate(WIDE_FEATURES)}
MATERIALIZE_START = datetime(2025, 12, 1, tzinfo=UTC)
VIEWS = ("stats", "online10", "online50")
GRPC_METHOD = "/GrpcFeatureServer/GetOnlineFeatures"
HTTP_PATH = "/get-online-features"
# (entities, view): entity ids 0..n-1, every feature of the view.
WORKLOADS = [(1, "online10"), (1, "online50"), (100, "online10"), (100, "online50")]
SPARK_CONF = {
    "spark.master": "local[2]",
    "spark.driver.memory": "8g",
    "spark.sql.shuffle.partitions": "16",
    # skewless pins its sessions to UTC too; without it Spark uses the machine's zone.
    "spark.sql.session.timeZone": "UTC",
}

log = logging.getLogger("feast_worker")


class WorkerError(Exception):
    """A failure with a message clear enough to stand alone."""


# ---------------------------------------------------------------- setup


def _feature_store_yaml(offline: str, redis: str) -> str:
    lines = [
        f"project: feast_bench_{offline}",
        "provider: local",
        "registry: registry.db",
        "entity_key_serialization_version: 3",
        "online_store:",
        "  type: redis",
        f'  connection_string: "{redis}"',
        "offline_store:",
    ]
    if offline == "local":
        lines.append("  type: file")
    else:
        lines += ["  type: spark", "  spark_conf:"]
        lines += [f'    {k}: "{v}"' for k, v in SPARK_CONF.items()]
    return "\n".join(lines) + "\n"


def _definitions_py(offline: str, data: Path) -> str:
    features_path = str((data / "features.parquet").resolve())
    online_path = str((data / "online.parquet").resolve())
    if offline == "local":
        source_import = "from feast import FileSource"

        def source(name: str, path: str) -> str:
            return (
                f"FileSource(name={name!r}, path={path!r}, timestamp_field='event_ts', "
                "created_timestamp_column='created_ts')"
            )
    else:
        source_import = (
            "from feast.infra.offline_stores.contrib.spark_offline_store.spark_source "
            "import SparkSource"
        )

        def source(name: str, path: str) -> str:
            return (
                f"SparkSource(name={name!r}, path={path!r}, file_format='parquet', "
                "timestamp_field='event_ts', created_timestamp_column='created_ts')"
            )

    def fields(types: dict[str, str]) -> str:
        return ",\n".join(f"        Field(name={n!r}, dtype={t})" for n, t in types.items())

    return f'''"""Benchmark definitions mirroring skewless's (written by feast_worker.py)."""

from datetime import timedelta

from feast import Entity, FeatureView, Field, ValueType
from feast.types import Bool, Float32, Float64, Int32, Int64, String
{source_import}

entity = Entity(name="entity", join_keys=["entity_id"], value_type=ValueType.INT64)

stats_source = {source("stats_source", features_path)}
online_source = {source("online_source", online_path)}

stats = FeatureView(
    name="stats",
    entities=[entity],
    ttl=timedelta(days=7),
    schema=[
        Field(name="entity_id", dtype=Int64),
{fields(FEATURE_TYPES)},
    ],
    source=stats_source,
    online=True,
)

# No ttl (timedelta(0) is Feast's "never expires").
online10 = FeatureView(
    name="online10",
    entities=[entity],
    ttl=timedelta(0),
    schema=[
        Field(name="entity_id", dtype=Int64),
{fields(FEATURE_TYPES)},
    ],
    source=online_source,
    online=True,
)

online50 = FeatureView(
    name="online50",
    entities=[entity],
    ttl=timedelta(0),
    schema=[
        Field(name="entity_id", dtype=Int64),
{fields(WIDE_TYPES)},
    ],
    source=online_source,
    online=True,
)
'''


def cmd_setup(args: argparse.Namespace) -> dict[str, Any]:
    data = Path(args.data).resolve()
    for name in ("features.parquet", "entity.parquet", "online.parquet"):
        if not (data / name).exists():
            raise WorkerError(f"{data / name} does not exist (run benchmarks/data.py first)")
    repo = Path(args.workdir).resolve() / args.offline
    repo.mkdir(parents=True, exist_ok=True)
    (repo / "registry.db").unlink(missing_ok=True)
    (repo / "feature_store.yaml").write_text(_feature_store_yaml(args.offline, args.redis))
    (repo / "definitions.py").write_text(_definitions_py(args.offline, data))
    feast_cli = Path(sys.executable).parent / "feast"
    started = time.perf_counter()
    # `feast apply` as a user would run it; its output goes to our stderr.
    done = subprocess.run(
        [str(feast_cli), "apply"], check=False, cwd=repo, stdout=sys.stderr, stderr=sys.stderr
    )
    apply_s = time.perf_counter() - started
    if done.returncode != 0:
        raise WorkerError(f"`feast apply` in {repo} failed with exit code {done.returncode}")
    from feast import FeatureStore

    store = FeatureStore(repo_path=str(repo))
    views = sorted(v.name for v in store.list_feature_views())
    if views != sorted(VIEWS):
        raise WorkerError(f"registry holds views {views}, expected {sorted(VIEWS)}")
    return {
        "repo": str(repo),
        "offline": args.offline,
        "project": store.project,
        "redis": args.redis,
        "apply_s": apply_s,
        "views": views,
    }


# ---------------------------------------------------------------- historical


def cmd_historical(args: argparse.Namespace) -> dict[str, Any]:
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq
    from feast import FeatureStore

    store = FeatureStore(repo_path=str(Path(args.repo).resolve()))
    entity_df = pq.read_table(Path(args.data) / "entity.parquet").to_pandas()
    entity_df["row_id"] = np.arange(len(entity_df), dtype=np.int64)
    features = [f"stats:{f}" for f in FEATURES]

    def call() -> Any:
        job = store.get_historical_features(entity_df=entity_df.copy(), features=features)
        return job.to_df()

    started = time.perf_counter()
    cold = call()
    cold_s = time.perf_counter() - started
    warm_results, warm_runs_s = [], []
    for _ in range(args.warm_runs):
        started = time.perf_counter()
        warm_results.append(call())
        warm_runs_s.append(time.perf_counter() - started)

    columns = ["row_id", "entity_id", "event_timestamp", "label", *FEATURES]
    missing_cols = [c for c in columns if c not in cold.columns]
    if missing_cols:
        raise WorkerError(f"Feast's result lacks columns {missing_cols}: {list(cold.columns)}")
    out = cold[columns].sort_values("row_id", kind="stable").reset_index(drop=True)
    result_path = Path(args.result)
    result_path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pandas(out, preserve_index=False), result_path)

    row_ids = out["row_id"].to_numpy()
    return {
        "cold_s": cold_s,
        "warm_runs_s": warm_runs_s,
        "warm_s": min(warm_runs_s, default=None),
        "rows": len(cold),
        "warm_equals_cold": all(
            w[columns].sort_values("row_id", kind="stable").reset_index(drop=True).equals(out)
            for w in warm_results
        ),
        "entity_rows": len(entity_df),
        "distinct_row_ids": int(np.unique(row_ids).size),
        "missing_row_ids": int(len(entity_df) - np.intersect1d(row_ids, entity_df["row_id"]).size),
        "result": str(result_path),
        "feast_columns": list(cold.columns),
        "dtypes": {c: str(cold[c].dtype) for c in columns},
    }


# ---------------------------------------------------------------- materialize


def _distinct_entities(path: Path, start: datetime, end: datetime) -> int:
    """Distinct entity_id with start <= event_ts <= end: the rows Feast's file (dask) and
    spark stores pull for materialize (both filter inclusively at both ends)."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    table = pq.read_table(path, columns=["entity_id", "event_ts"])
    ts = table["event_ts"]
    mask = pc.and_(
        pc.greater_equal(ts, pa_scalar(start, ts.type)),
        pc.less_equal(ts, pa_scalar(end, ts.type)),
    )
    return len(pc.unique(table.filter(mask)["entity_id"]))


def pa_scalar(value: datetime, typ: Any) -> Any:
    import pyarrow as pa

    return pa.scalar(value, type=typ)


class _Tee(io.TextIOBase):
    """Write to the real stderr and keep a copy (to read tqdm's 'N/M' counts)."""

    def __init__(self, target: Any) -> None:
        self.target = target
        self.copy = io.StringIO()

    def write(self, s: str) -> int:
        self.target.write(s)
        self.copy.write(s)
        return len(s)

    def flush(self) -> None:
        self.target.flush()


_TQDM = re.compile(r"(\d+)/(\d+) \[")


def _logged_rows(text: str) -> int | None:
    """The total of the last tqdm progress bar in `text`, if any (Feast 0.67's local
    materialization engine prints none; older engines did)."""
    found = _TQDM.findall(text)
    return int(found[-1][1]) if found else None


def _redis_keys_per_view(store: Any) -> dict[str, int]:
    """Redis hashes of this project holding each view's `_ts:<view>` field: the entity
    rows Feast's redis store actually holds for the view (one hash per entity key)."""
    import redis
    from feast.infra.key_encoding_utils import serialize_entity_key_prefix

    host_port = store.config.online_store.connection_string.split(",")[0]
    host, port = host_port.rsplit(":", 1)
    client = redis.Redis(host=host, port=int(port))
    prefix = serialize_entity_key_prefix(["entity_id"])
    pattern = prefix + b"*" + store.project.encode()
    counts = dict.fromkeys(VIEWS, 0)
    try:
        keys = list(client.scan_iter(match=pattern, count=1000))
        for start in range(0, len(keys), 1000):
            chunk = keys[start : start + 1000]
            with client.pipeline(transaction=False) as pipe:
                for key in chunk:
                    for name in VIEWS:
                        pipe.hexists(key, f"_ts:{name}")
                flags = pipe.execute()
            for i, flag in enumerate(flags):
                counts[VIEWS[i % len(VIEWS)]] += int(bool(flag))
    finally:
        client.close()
    return counts


def cmd_materialize(args: argparse.Namespace) -> dict[str, Any]:
    from feast import FeatureStore

    repo = Path(args.repo).resolve()
    store = FeatureStore(repo_path=str(repo))
    end = datetime.fromisoformat(args.end)
    if end.tzinfo is None:
        end = end.replace(tzinfo=UTC)
    start = MATERIALIZE_START
    # Outside any timed region: the expected entity rows per view.
    expected = {}
    for name in VIEWS:
        view = store.get_feature_view(name)
        path = Path(view.batch_source.path)
        if not path.is_absolute():
            path = repo / path
        expected[name] = _distinct_entities(path, start, end)

    per_view: dict[str, Any] = {}
    loop_started = time.perf_counter()
    for name in VIEWS:
        tee = _Tee(sys.stderr)
        started = time.perf_counter()
        with contextlib.redirect_stderr(tee):
            store.materialize(start_date=start, end_date=end, feature_views=[name])
        seconds = time.perf_counter() - started
        per_view[name] = {
            "seconds": seconds,
            "entity_rows": expected[name],
            "feast_logged_rows": _logged_rows(tee.copy.getvalue()),
        }
    per_view_total_s = time.perf_counter() - loop_started
    # Outside the timed region: what the online store now holds (keys of earlier runs
    # of the same project count too, so a fresh redis gives the exact figure).
    held = _redis_keys_per_view(store)
    for name in VIEWS:
        per_view[name]["redis_keys_with_view"] = held[name]

    whole: dict[str, Any] = {}
    if args.whole:
        # One call over every view, as `feast materialize START END` does; it rewrites
        # the same values, with Feast (and Spark) already warm from the calls above.
        tee = _Tee(sys.stderr)
        started = time.perf_counter()
        with contextlib.redirect_stderr(tee):
            store.materialize(start_date=start, end_date=end)
        whole = {
            "whole_call_s": time.perf_counter() - started,
            "whole_call_logged_rows": [int(m[1]) for m in _TQDM.findall(tee.copy.getvalue())],
        }
    return {
        "start": start.isoformat(),
        "end": end.isoformat(),
        "views": per_view,
        "per_view_total_s": per_view_total_s,
        **whole,
    }


# ---------------------------------------------------------------- online requests


def _workload_features(view: str) -> list[str]:
    names = FEATURES if view == "online10" else WIDE_FEATURES
    return [f"{view}:{f}" for f in names]


def _workload_name(n: int, view: str) -> str:
    return f"{n}x{10 if view == 'online10' else 50}"


def _grpc_request(n: int, view: str) -> bytes:
    from feast.protos.feast.serving.ServingService_pb2 import (
        FeatureList,
        GetOnlineFeaturesRequest,
    )
    from feast.protos.feast.types.Value_pb2 import RepeatedValue, Value

    request = GetOnlineFeaturesRequest(
        features=FeatureList(val=_workload_features(view)),
        full_feature_names=False,
    )
    request.entities["entity_id"].CopyFrom(
        RepeatedValue(val=[Value(int64_val=i) for i in range(n)])
    )
    return bytes(request.SerializeToString())


def _count_grpc_response(raw: bytes) -> dict[str, Any]:
    from feast.protos.feast.serving.ServingService_pb2 import (
        FieldStatus,
        GetOnlineFeaturesResponse,
    )

    response = GetOnlineFeaturesResponse.FromString(raw)
    names = list(response.metadata.feature_names.val)
    values = present = 0
    for name, vector in zip(names, response.results, strict=True):
        if name == "entity_id":
            continue
        for value, status in zip(vector.values, vector.statuses, strict=True):
            values += 1
            kind = value.WhichOneof("val")
            if status == FieldStatus.PRESENT and kind not in (None, "null_val"):
                present += 1
    return {
        "response_bytes": len(raw),
        "feature_names": len([n for n in names if n != "entity_id"]),
        "values": values,
        "present_values": present,
    }


def _count_http_response(body: bytes) -> dict[str, Any]:
    doc = json.loads(body)
    names = doc["metadata"]["feature_names"]
    values = present = 0
    for name, result in zip(names, doc["results"], strict=True):
        if name == "entity_id":
            continue
        for value, status in zip(result["values"], result["statuses"], strict=True):
            values += 1
            if status == "PRESENT" and value is not None:
                present += 1
    return {
        "response_bytes": len(body),
        "feature_names": len([n for n in names if n != "entity_id"]),
        "values": values,
        "present_values": present,
    }


def _http_body(n: int, view: str) -> bytes:
    body = {"features": _workload_features(view), "entities": {"entity_id": list(range(n))}}
    return json.dumps(body).encode()


def _http_measure(target: str, body: bytes, calls: int, warmup: int) -> dict[str, Any]:
    host, port = target.rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    headers = {"Content-Type": "application/json", "Connection": "keep-alive"}
    last: list[bytes] = []

    def call() -> None:
        conn.request("POST", HTTP_PATH, body=body, headers=headers)
        response = conn.getresponse()
        data = response.read()
        if response.status != 200:
            raise WorkerError(f"HTTP {response.status} from {target}: {data[:500]!r}")
        last[:] = [data]

    try:
        call()
        answer = _count_http_response(last[0])
        samples = loadgen.latencies(call, calls, warmup)
    finally:
        conn.close()
    return {"answer": answer, "samples_s": samples, **loadgen.stats(samples)}


def cmd_requests(args: argparse.Namespace) -> dict[str, Any]:
    import grpc

    out_dir = Path(args.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    workloads: dict[str, Any] = {}
    payloads: dict[str, bytes] = {}
    for n, view in WORKLOADS:
        name = _workload_name(n, view)
        payloads[name] = _grpc_request(n, view)
        path = out_dir / f"feast_grpc_{name}.bin"
        path.write_bytes(payloads[name])
        workloads[name] = {
            "entities": n,
            "view": view,
            "features": len(_workload_features(view)),
            "payload": str(path),
            "request_bytes": len(payloads[name]),
        }
    if args.target:
        with grpc.insecure_channel(args.target) as channel:
            grpc.channel_ready_future(channel).result(timeout=30)
            stub = loadgen.raw_unary(channel, GRPC_METHOD)
            for name, payload in payloads.items():
                workloads[name]["answer"] = _count_grpc_response(stub(payload, timeout=30))
    result: dict[str, Any] = {
        "grpc_method": GRPC_METHOD,
        "grpc_target": args.target,
        "workloads": workloads,
    }
    body = _http_body(1, "online10")
    body_path = out_dir / "feast_http_1x10.json"
    body_path.write_bytes(body)
    http_result: dict[str, Any] = {
        "path": HTTP_PATH,
        "method": "POST",
        "body_file": str(body_path),
        "target": args.http_target,
    }
    if args.http_target:
        http_result.update(_http_measure(args.http_target, body, args.calls, args.warmup))
    result["http"] = http_result
    return result


# ---------------------------------------------------------------- in-process SDK


def cmd_online_sdk(args: argparse.Namespace) -> dict[str, Any]:
    from feast import FeatureStore

    store = FeatureStore(repo_path=str(Path(args.repo).resolve()))
    workloads: dict[str, Any] = {}
    for n, view in WORKLOADS:
        features = _workload_features(view)
        rows = [{"entity_id": i} for i in range(n)]

        def call(features: list[str] = features, rows: list[dict[str, int]] = rows) -> Any:
            return store.get_online_features(features=features, entity_rows=rows).to_dict()

        answer = call()
        names = [f.split(":", 1)[1] for f in features]
        values = sum(len(answer[f]) for f in names)
        present = sum(v is not None for f in names for v in answer[f])
        samples = loadgen.latencies(call, args.calls, args.warmup)
        workloads[_workload_name(n, view)] = {
            "entities": n,
            "view": view,
            "features": len(features),
            "values": values,
            "present_values": present,
            "samples_s": samples,
            **loadgen.stats(samples),
        }
    return {"workloads": workloads}


# ---------------------------------------------------------------- main


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("setup")
    p.add_argument("--data", required=True)
    p.add_argument("--workdir", required=True)
    p.add_argument("--redis", required=True, help="HOST:PORT")
    p.add_argument("--offline", choices=["local", "spark"], required=True)

    p = sub.add_parser("historical")
    p.add_argument("--repo", required=True)
    p.add_argument("--data", required=True)
    p.add_argument("--result", required=True, help="parquet file for Feast's answer")
    p.add_argument(
        "--warm-runs", type=int, default=3, help="calls after the cold one ('warm' is the best)"
    )

    p = sub.add_parser("materialize")
    p.add_argument("--repo", required=True)
    p.add_argument("--end", required=True, help="ISO timestamp (UTC when naive)")
    p.add_argument(
        "--whole",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also time one materialize() over every view (default: yes)",
    )

    p = sub.add_parser("requests")
    p.add_argument("--repo", required=True)
    p.add_argument("--out-dir", required=True)
    p.add_argument("--target", help="Feast gRPC server HOST:PORT to check answers against")
    p.add_argument("--http-target", help="Feast HTTP server HOST:PORT to measure")
    p.add_argument("--calls", type=int, default=2000)
    p.add_argument("--warmup", type=int, default=200)

    p = sub.add_parser("online-sdk")
    p.add_argument("--repo", required=True)
    p.add_argument("--calls", type=int, default=2000)
    p.add_argument("--warmup", type=int, default=200)

    for p in sub.choices.values():
        p.add_argument("--out", required=True, help="JSON result file")
    return parser


COMMANDS = {
    "setup": cmd_setup,
    "historical": cmd_historical,
    "materialize": cmd_materialize,
    "requests": cmd_requests,
    "online-sdk": cmd_online_sdk,
}


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(
        stream=sys.stderr, level=logging.WARNING, format="%(asctime)s %(name)s %(message)s"
    )
    logging.captureWarnings(True)
    started = time.perf_counter()
    try:
        result = COMMANDS[args.command](args)
    except Exception as exc:  # reported, then a non-zero exit
        traceback.print_exc(file=sys.stderr)
        print(f"feast_worker {args.command} failed: {exc}", file=sys.stderr, flush=True)
        return 1
    result["command"] = args.command
    result["command_s"] = time.perf_counter() - started
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
