"""What an on-demand feature costs online: a gRPC lookup of 10 stored features next to
the same lookup with one on-demand feature added, on one server, in the same run.

    .venv/bin/python -m benchmarks.on_demand_latency --scale small --calls 2000

One repo over the scale's data (benchmarks/data.py): `online10` materialized into a
private redis-server on loopback, and an on-demand view `priced` that reads two of
online10's features and a request field (`f_float * f_rate / amount`, a division that
meets zeros). One `skewless serve` process answers both workloads, for 1 and 100
entities: `plain` asks for online10's 10 features; `on_demand` asks for the same 10 and
`priced:price_per_amount`, sending `amount` as a request column. Each client sends
pre-serialized requests one at a time and reads the whole answer without decoding it
(benchmarks/loadgen.py's raw unary call); the two workloads take turns of 100 calls
(loadgen.interleaved_latencies), so a passing disturbance of the machine falls on both.
Before timing, each answer is decoded once and its on-demand values are checked
against the stored features and request values they are computed from.

Writes benchmarks/results/<date>-<scale>-on-demand.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import signal
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

import grpc
from grpc_health.v1 import health_pb2
from tests.integration.redis_server import redis_server

from benchmarks import data as bench_data
from benchmarks import loadgen, skewless_side
from skewless.grpc import convert
from skewless.serving.service import OnlineQuery

RESULTS = Path(__file__).parent / "results"

ON_DEMAND_DEFS = """
from defs import online10

from skewless import Field, Float64, OnDemandFeatureView, RequestSource
from skewless.expr import col

order = RequestSource("order", schema=[Field("amount", Float64)])
priced = OnDemandFeatureView(
    "priced",
    sources=[online10[["f_float", "f_rate"]], order],
    schema=[
        Field("price_per_amount", Float64, expr=col("f_float") * col("f_rate") / col("amount"))
    ],
)
"""
ON_DEMAND_REF = "priced:price_per_amount"
ENTITIES = (1, 100)


def amounts(n: int) -> list[float]:
    """Request values 1.0 to 9.0 with a zero every 10th row (division by zero: None); the
    first row's is 1.0, so the 1-entity lookup computes a value."""
    return [float((i + 1) % 10) for i in range(n)]


def payloads() -> dict[str, dict[str, bytes]]:
    """Per entity count, the serialized plain and on-demand requests."""
    _, features, _ = skewless_side.WORKLOADS["1x10"]
    plain_refs = [f"online10:{f}" for f in features]
    out: dict[str, dict[str, bytes]] = {}
    for n in ENTITIES:
        rows = [{"entity_id": i} for i in range(n)]
        plain = OnlineQuery(plain_refs, rows)
        on_demand = OnlineQuery(
            [*plain_refs, ON_DEMAND_REF], rows, request_data={"amount": amounts(n)}
        )
        out[f"{n}x10"] = {
            "plain": convert.query_to_proto(plain).SerializeToString(),
            "on_demand": convert.query_to_proto(on_demand).SerializeToString(),
        }
    return out


def check_answers(channel: grpc.Channel, bodies: dict[str, dict[str, bytes]]) -> dict[str, Any]:
    """Each on-demand request once: its stored features equal the plain answer's, and
    each on-demand value is f_float * f_rate / amount as docs/expressions.md defines it
    (raises otherwise)."""
    stub = loadgen.raw_unary(channel, skewless_side.GRPC_METHOD)
    out: dict[str, Any] = {}
    for name, pair in bodies.items():
        n = int(name.split("x")[0])
        rows = [{"entity_id": i} for i in range(n)]
        replies = {kind: stub(body, timeout=30) for kind, body in pair.items()}
        answers = {
            kind: convert.response_from_proto(
                convert.GetOnlineFeaturesResponse.FromString(reply), rows
            )
            for kind, reply in replies.items()
        }
        plain, with_odfv = answers["plain"], answers["on_demand"]
        for feature in plain.features:
            if plain.values[feature] != with_odfv.values[feature]:
                raise AssertionError(f"{name}: {feature} differs with an on-demand feature")
        computed = with_odfv.values["price_per_amount"]
        for i, value in enumerate(computed):
            f, r, a = plain.values["f_float"][i], plain.values["f_rate"][i], amounts(n)[i]
            want = None if f is None or r is None or a == 0 else f * r / a
            same = value == want or (
                isinstance(value, float)
                and isinstance(want, float)
                and math.isnan(value)
                and math.isnan(want)
            )
            if not same:
                raise AssertionError(f"{name}: row {i}: {value!r}, want {want!r}")
        out[name] = {
            "request_bytes": {k: len(v) for k, v in pair.items()},
            "response_bytes": {k: len(v) for k, v in replies.items()},
            "on_demand_values": len(computed),
            "on_demand_nulls": sum(v is None for v in computed),
        }
    return out


def run(scale: str, calls: int, warmup: int) -> dict[str, Any]:
    data = bench_data.generate(scale)
    with tempfile.TemporaryDirectory(prefix="skewless-odfv-") as tmp:
        work = Path(tmp)
        (work / "redis").mkdir()
        with redis_server(work / "redis") as redis_url:
            repo = skewless_side.make_repo(data, work, online_url=redis_url)
            (repo / "on_demand.py").write_text(ON_DEMAND_DEFS)
            store = skewless_side.open_store(repo)
            store.materialize(None, skewless_side.MATERIALIZE_END, views=["online10"])
            port, metrics = loadgen.free_port(), loadgen.free_port()
            server = skewless_side.start_server(repo, port, metrics, work / "server.log")
            try:
                with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
                    _wait_serving(channel, 120)
                    result = _measure(channel, calls, warmup)
            finally:
                server.send_signal(signal.SIGINT)
                server.wait(60)
    return {
        "date": datetime.now(UTC).date().isoformat(),
        "scale": bench_data.describe(scale),
        "calls": calls,
        "warmup": warmup,
        "machine": {"python": platform.python_version(), "cpus": len(_affinity())},
        **result,
    }


def _wait_serving(channel: grpc.Channel, timeout_s: float) -> None:
    """Until the standard health service says SERVING (the registry is loaded)."""
    check = channel.unary_unary(
        "/grpc.health.v1.Health/Check",
        request_serializer=health_pb2.HealthCheckRequest.SerializeToString,
        response_deserializer=health_pb2.HealthCheckResponse.FromString,
    )
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            reply = check(health_pb2.HealthCheckRequest(), timeout=2)
            if reply.status == health_pb2.HealthCheckResponse.SERVING:
                return
        except grpc.RpcError:
            pass
        time.sleep(0.2)
    raise TimeoutError(f"the server was not SERVING within {timeout_s:.0f} s")


def _affinity() -> set[int]:
    import os  # noqa: PLC0415

    return os.sched_getaffinity(0)


def _measure(channel: grpc.Channel, calls: int, warmup: int) -> dict[str, Any]:
    bodies = payloads()
    answers = check_answers(channel, bodies)
    stub = loadgen.raw_unary(channel, skewless_side.GRPC_METHOD)
    latency: dict[str, dict[str, Any]] = {}
    for name, pair in bodies.items():
        fns: dict[str, Callable[[], Any]] = {
            kind: partial(stub, body, timeout=30) for kind, body in pair.items()
        }
        samples = loadgen.interleaved_latencies(fns, calls, warmup)
        latency[name] = {k: loadgen.stats(v) for k, v in samples.items()}
        print(name, {k: round(v["p50_ms"], 3) for k, v in latency[name].items()}, flush=True)
    return {"answers": answers, "latency": latency}


def report(result: dict[str, Any]) -> str:
    scale = result["scale"]
    lines = [
        f"# Online cost of an on-demand feature: {scale['scale']} scale, {result['date']}",
        "",
        f"Reproduce: `.venv/bin/python -m benchmarks.on_demand_latency --scale {scale['scale']} "
        f"--calls {result['calls']}` (see the module's docstring).",
        "",
        f"One `skewless serve` process over {scale['entities']:,} materialized entities; "
        f"{result['calls']:,} gRPC calls per workload after {result['warmup']} warm-up calls, "
        "one at a time, the plain and on-demand lookups in turns of 100; the client's time "
        f"included. {result['machine']['cpus']} CPUs, Python {result['machine']['python']}.",
        "",
        "| entities x features | plain p50 / p99 ms | + 1 on-demand p50 / p99 ms "
        "| cost p50, p99 | answer bytes plain / on-demand |",
        "|---|---|---|---|---|",
    ]
    for name, by in result["latency"].items():
        p, o = by["plain"], by["on_demand"]
        size = result["answers"][name]["response_bytes"]
        lines.append(
            f"| {name} | {p['p50_ms']:.2f} / {p['p99_ms']:.2f} | {o['p50_ms']:.2f} / "
            f"{o['p99_ms']:.2f} | +{o['p50_ms'] - p['p50_ms']:.2f} ms "
            f"({o['p50_ms'] / p['p50_ms']:.2f}x), +{o['p99_ms'] - p['p99_ms']:.2f} ms "
            f"({o['p99_ms'] / p['p99_ms']:.2f}x) | {size['plain']:,} / {size['on_demand']:,} |"
        )
    lines += [
        "",
        "Every on-demand answer held the plain answer's stored values, and on-demand values "
        "equal to f_float * f_rate / amount (None where amount is 0).",
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", default="small", choices=sorted(bench_data.SCALES))
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--warmup", type=int, default=100)
    args = parser.parse_args()
    result = run(args.scale, args.calls, args.warmup)
    RESULTS.mkdir(exist_ok=True)
    stem = RESULTS / f"{result['date']}-{args.scale}-on-demand"
    stem.with_suffix(".json").write_text(json.dumps(result, indent=2) + "\n")
    stem.with_suffix(".md").write_text(report(result))
    print(report(result))


if __name__ == "__main__":
    main()
