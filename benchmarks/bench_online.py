"""Benchmark: online lookups through the gRPC server, with a bare grpc.aio echo server
(same response size) as the floor, in the same run.

    .venv/bin/python -m benchmarks.bench_online [--calls 2000]

Data: the historical benchmark's `tiny` scale (1,000 entities, 10 mixed-type features),
materialized into a private redis-server on a free loopback port. The skewless server
(`skewless serve`) and the echo server each run in their own process; the client is a
plain synchronous grpc channel sending a pre-built request (so the figures are the
server's and the transport's, not the client's conversions), plus the in-process
`FeatureStore.get_online_features` for comparison. Latencies are per call, after 200
warm-up calls; throughput is calls/s with 8 client threads. Writes
benchmarks/results/<date>-online.json.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import grpc
import numpy as np
from grpc_health.v1 import health_pb2, health_pb2_grpc
from tests.integration.redis_server import free_port, redis_server

from benchmarks.bench_historical import (
    DATA,
    FEATURES,
    RESULTS,
    SCALES,
    generate,
    machine,
    make_repo,
)

ECHO_SERVER = """
import asyncio, sys
import grpc

SIZE = int(sys.argv[2])
PAYLOAD = b"x" * SIZE

async def echo(request, context):
    return PAYLOAD

async def main():
    server = grpc.aio.server()
    handler = grpc.method_handlers_generic_handler(
        "bench.Echo", {"Echo": grpc.unary_unary_rpc_method_handler(echo)}
    )
    server.add_generic_rpc_handlers((handler,))
    server.add_insecure_port("127.0.0.1:" + sys.argv[1])
    await server.start()
    await server.wait_for_termination()

asyncio.run(main())
"""


def _stats(samples: list[float]) -> dict[str, float]:
    ms = np.array(samples) * 1000
    return {
        "calls": len(samples),
        "p50_ms": float(np.percentile(ms, 50)),
        "p99_ms": float(np.percentile(ms, 99)),
        "max_ms": float(ms.max()),
    }


def _latencies(call: Any, calls: int, warmup: int = 200) -> list[float]:
    for _ in range(warmup):
        call()
    out = []
    for _ in range(calls):
        started = time.perf_counter()
        call()
        out.append(time.perf_counter() - started)
    return out


def _throughput(make_call: Any, threads: int, calls_each: int) -> float:
    barrier = threading.Barrier(threads + 1)

    def worker() -> None:
        call = make_call()
        for _ in range(50):
            call()
        barrier.wait()
        for _ in range(calls_each):
            call()

    pool = [threading.Thread(target=worker) for _ in range(threads)]
    for t in pool:
        t.start()
    barrier.wait()
    started = time.perf_counter()
    for t in pool:
        t.join()
    return threads * calls_each / (time.perf_counter() - started)


def _wait_serving(target: str, timeout_s: float = 120) -> None:
    channel = grpc.insecure_channel(target)
    stub = health_pb2_grpc.HealthStub(channel)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            reply = stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=1)
            if reply.status == health_pb2.HealthCheckResponse.SERVING:
                return
        except grpc.RpcError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{target} never reported SERVING")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calls", type=int, default=2000)
    args = parser.parse_args()
    folder = DATA / "tiny"
    generate(SCALES["tiny"], folder)
    workdir = Path(tempfile.mkdtemp(prefix="bench-online-"))
    serve_port, echo_port = free_port(), free_port()
    procs: list[subprocess.Popen[bytes]] = []
    stack = contextlib.ExitStack()
    try:
        url = stack.enter_context(redis_server(workdir))
        from skewless import FeatureStore  # noqa: PLC0415
        from skewless.grpc import convert  # noqa: PLC0415
        from skewless.grpc.backend import OnlineQuery  # noqa: PLC0415

        repo = make_repo(folder, online_url=url, offline=workdir / "offline")
        store = FeatureStore(repo)
        store.apply()
        store.materialize(None, datetime(2027, 1, 1, tzinfo=UTC))
        store.spark.stop()

        skewless_bin = str(Path(sys.executable).parent / "skewless")
        procs.append(
            subprocess.Popen(
                [skewless_bin, "serve", "--repo", str(repo), "--port", str(serve_port)],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )
        )  # fmt: skip
        target = f"127.0.0.1:{serve_port}"
        _wait_serving(target)

        refs = [f"stats:{f}" for f in FEATURES]
        requests = {}
        for n in (1, 100):
            rows = [{"entity_id": i} for i in range(n)]
            requests[n] = convert.query_to_proto(OnlineQuery(refs, rows, False))

        channel = grpc.insecure_channel(target)
        stub = convert.OnlineServingStub(channel)
        response_sizes = {
            n: stub.GetOnlineFeatures(req, timeout=10).ByteSize() for n, req in requests.items()
        }
        procs.append(
            subprocess.Popen(
                [sys.executable, "-c", ECHO_SERVER, str(echo_port), str(response_sizes[1])],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )
        )  # fmt: skip
        echo_target = f"127.0.0.1:{echo_port}"
        echo_channel = grpc.insecure_channel(echo_target)
        grpc.channel_ready_future(echo_channel).result(timeout=30)

        def echo_call(channel: grpc.Channel = echo_channel) -> Any:
            method = channel.unary_unary("/bench.Echo/Echo")
            payload = requests[1].SerializeToString()
            return lambda: method(payload, timeout=10)

        results: dict[str, Any] = {}
        for n, req in requests.items():
            results[f"grpc_{n}_entity"] = _stats(
                _latencies(lambda req=req: stub.GetOnlineFeatures(req, timeout=10), args.calls)
            )
        results["echo_floor_1_entity"] = _stats(_latencies(echo_call(), args.calls))
        rows_1 = [{"entity_id": 1}]
        rows_100 = [{"entity_id": i} for i in range(100)]
        results["in_process_1_entity"] = _stats(
            _latencies(lambda: store.get_online_features(refs, rows_1), args.calls)
        )
        results["in_process_100_entity"] = _stats(
            _latencies(lambda: store.get_online_features(refs, rows_100), args.calls)
        )

        def grpc_call() -> Any:
            own = convert.OnlineServingStub(grpc.insecure_channel(target))
            return lambda: own.GetOnlineFeatures(requests[1], timeout=10)

        def echo_own() -> Any:
            return echo_call(grpc.insecure_channel(echo_target))

        results["throughput_8_clients_calls_per_s"] = {
            "skewless_1_entity": _throughput(grpc_call, 8, 500),
            "echo_floor": _throughput(echo_own, 8, 500),
        }
    finally:
        for p in reversed(procs):
            p.terminate()
            p.wait(20)
        stack.close()
        shutil.rmtree(workdir, ignore_errors=True)

    report = {
        "benchmark": "online",
        "date": datetime.now(UTC).strftime("%Y-%m-%d"),
        "features": 10,
        "response_bytes": response_sizes,
        **results,
        "ratio_p99_1_entity_over_echo": results["grpc_1_entity"]["p99_ms"]
        / results["echo_floor_1_entity"]["p99_ms"],
        "machine": machine(),
        "command": ".venv/bin/python -m benchmarks.bench_online",
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{report['date']}-online.json").write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
