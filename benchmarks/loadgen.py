"""A load generator shared by every system in the benchmark suite.

It sends pre-serialized request bytes to a gRPC method and does not decode the answers,
so the client costs the same whatever server it talks to (skewless, Feast or the echo
floor): the figures are the server's and the transport's. It imports only grpc, numpy
and the standard library, so it also runs inside Feast's own virtual environment.

    python benchmarks/loadgen.py interleaved --spec servers.json --calls 2000 --out lat.json
        # servers.json: [{"name", "target", "method", "payload": request bytes file}, ...]
    python benchmarks/loadgen.py throughput --target ... --concurrency 8 --seconds 10
    python benchmarks/loadgen.py echo-server --port 7000     # the bare grpc.aio floor

`echo-server` answers `/bench.Echo/Echo` with as many bytes as the decimal number in
the request asks for, so one floor server covers every response size.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any, cast

import grpc
import numpy as np

ECHO_METHOD = "/bench.Echo/Echo"
TURN_CALLS = 100  # calls per server and turn in interleaved runs (benchmarks/intervals.py)
_OPTIONS = [("grpc.max_receive_message_length", 64 * 1024 * 1024)]


def stats(samples_s: list[float]) -> dict[str, float]:
    """p50 / p99 / max / mean in milliseconds over latency samples in seconds."""
    ms = np.asarray(samples_s, dtype=np.float64) * 1000
    return {
        "calls": int(ms.size),
        "p50_ms": float(np.percentile(ms, 50)),
        "p99_ms": float(np.percentile(ms, 99)),
        "max_ms": float(ms.max()),
        "mean_ms": float(ms.mean()),
    }


def latencies(call: Callable[[], Any], calls: int, warmup: int = 200) -> list[float]:
    """Seconds per call for `calls` sequential calls, after `warmup` untimed ones."""
    for _ in range(warmup):
        call()
    out = []
    clock = time.perf_counter
    for _ in range(calls):
        started = clock()
        call()
        out.append(clock() - started)
    return out


def raw_unary(channel: grpc.Channel, method: str) -> grpc.UnaryUnaryMultiCallable[bytes, bytes]:
    """A unary method on `channel` that sends and returns raw bytes (no (de)serializers)."""
    return cast("grpc.UnaryUnaryMultiCallable[bytes, bytes]", channel.unary_unary(method))


def interleaved_latencies(
    calls_by_system: dict[str, Callable[[], Any]],
    calls: int,
    warmup: int,
    block: int = TURN_CALLS,
) -> dict[str, list[float]]:
    """latencies() of several systems taken in turns of `block` calls (the first system
    of each turn rotating), so a transient disturbance of the machine (another process,
    a page-cache flush) falls on every system alike instead of on whichever was being
    measured at the time: the same-run ratios stay comparable."""
    names = list(calls_by_system)
    for name in names:
        latencies(calls_by_system[name], 0, warmup)
    out: dict[str, list[float]] = {name: [] for name in names}
    turn = 0
    while any(len(out[n]) < calls for n in names):
        for i in range(len(names)):
            name = names[(turn + i) % len(names)]
            take = min(block, calls - len(out[name]))
            if take > 0:
                out[name].extend(latencies(calls_by_system[name], take, 0))
        turn += 1
    return out


def grpc_interleaved(spec: list[dict[str, str]], calls: int, warmup: int) -> dict[str, Any]:
    """interleaved_latencies() over gRPC servers; `spec` lists each system's name,
    target, method and request bytes file."""
    channels = [grpc.insecure_channel(s["target"], options=_OPTIONS) for s in spec]
    try:
        fns: dict[str, Callable[[], Any]] = {}
        for entry, channel in zip(spec, channels, strict=True):
            grpc.channel_ready_future(channel).result(timeout=30)
            stub = raw_unary(channel, entry["method"])
            payload = Path(entry["payload"]).read_bytes()
            fns[entry["name"]] = partial(stub, payload, timeout=30)
        samples = interleaved_latencies(fns, calls, warmup)
    finally:
        for channel in channels:
            channel.close()
    return {name: {"samples_s": s, **stats(s)} for name, s in samples.items()}


async def _throughput(
    target: str, method: str, payload: bytes, concurrency: int, seconds: float, warmup_s: float
) -> dict[str, Any]:
    # One channel per client: each concurrent client is its own connection, as separate
    # application processes would be.
    channels = [grpc.aio.insecure_channel(target, options=_OPTIONS) for _ in range(concurrency)]
    stubs = [
        cast("grpc.aio.UnaryUnaryMultiCallable[bytes, bytes]", ch.unary_unary(method))
        for ch in channels
    ]
    samples: list[float] = []
    errors = 0
    measuring = False
    stop_at = 0.0

    async def client(stub: Any) -> None:
        nonlocal errors
        clock = time.perf_counter
        while True:
            started = clock()
            if measuring and started >= stop_at:
                return
            try:
                await stub(payload, timeout=30)
            except grpc.aio.AioRpcError:
                errors += 1 if measuring else 0
                continue
            if measuring:
                samples.append(clock() - started)

    async def run() -> float:
        nonlocal measuring, stop_at
        tasks = [asyncio.create_task(client(s)) for s in stubs]
        await asyncio.sleep(warmup_s)
        began = time.perf_counter()
        stop_at = began + seconds
        measuring = True
        await asyncio.gather(*tasks)
        return time.perf_counter() - began

    try:
        elapsed = await run()
    finally:
        for ch in channels:
            await ch.close()
    lat = stats(samples) if samples else {}
    return {
        "concurrency": concurrency,
        "seconds": elapsed,
        "calls": len(samples),
        "errors": errors,
        "calls_per_s": len(samples) / elapsed,
        "latency_under_load": lat,
    }


def throughput(
    target: str,
    method: str,
    payload: bytes,
    concurrency: int,
    seconds: float,
    warmup_s: float = 1.0,
) -> dict[str, Any]:
    """Completed calls per second with `concurrency` clients each calling back to back."""
    return asyncio.run(_throughput(target, method, payload, concurrency, seconds, warmup_s))


def processes() -> dict[int, tuple[str, int, int]]:
    """Every process's (state, parent pid, process group), from Linux /proc."""
    out = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        out[int(entry)] = (fields[0], int(fields[1]), int(fields[2]))
    return out


def rss_bytes(pid: int) -> int:
    """Resident memory of a process and all its descendants (Linux /proc)."""
    children: dict[int, list[int]] = {}
    for child, (_, parent, _) in processes().items():
        children.setdefault(parent, []).append(child)
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        todo.extend(children.get(p, []))
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) * 1024
        except OSError:
            continue
    return total


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_port(host: str, port: int, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with socket.socket() as s:
            s.settimeout(0.5)
            if s.connect_ex((host, port)) == 0:
                return
        time.sleep(0.1)
    raise TimeoutError(f"nothing listens on {host}:{port} after {timeout_s:.0f} s")


async def _echo_server(port: int) -> None:
    payloads: dict[int, bytes] = {}

    async def echo(request: bytes, context: Any) -> bytes:
        size = int(request)
        if size not in payloads:
            payloads[size] = b"x" * size
        return payloads[size]

    server = grpc.aio.server(options=_OPTIONS)
    handler = grpc.method_handlers_generic_handler(
        "bench.Echo", {"Echo": grpc.unary_unary_rpc_method_handler(echo)}
    )
    server.add_generic_rpc_handlers((handler,))
    server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    await server.wait_for_termination()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("throughput")
    p.add_argument("--target", required=True)
    p.add_argument("--method", required=True)
    p.add_argument("--payload", type=Path, required=True, help="request bytes file")
    p.add_argument("--out", type=Path, required=True, help="JSON result file")
    p.add_argument("--concurrency", type=int, default=1)
    p.add_argument("--seconds", type=float, default=10.0)
    inter = sub.add_parser("interleaved")
    inter.add_argument(
        "--spec", type=Path, required=True, help="JSON: [{name, target, method, payload}]"
    )
    inter.add_argument("--out", type=Path, required=True, help="JSON result file")
    inter.add_argument("--calls", type=int, default=2000)
    inter.add_argument("--warmup", type=int, default=200)
    echo = sub.add_parser("echo-server")
    echo.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    if args.command == "echo-server":
        asyncio.run(_echo_server(args.port))
        return
    if args.command == "interleaved":
        spec = json.loads(args.spec.read_text())
        args.out.write_text(json.dumps(grpc_interleaved(spec, args.calls, args.warmup)))
        return
    payload = args.payload.read_bytes()
    result = throughput(args.target, args.method, payload, args.concurrency, args.seconds)
    args.out.write_text(json.dumps(result))


if __name__ == "__main__":
    main()
