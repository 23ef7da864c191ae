"""Online latency over HTTP/JSON next to gRPC: one `skewless serve --http-port` process,
the same materialized data, the same lookups, measured in the same run.

    .venv/bin/python -m benchmarks.http_latency --scale small --calls 2000

One repo over the scale's data (benchmarks/data.py), `online10` and `online50`
materialized into a private redis-server on loopback, and one server process serving
both transports. The workloads are the main benchmark's online shapes (1 and 100
entities x 10 mixed features, x 50 numeric ones). Each client sends pre-serialized
requests one at a time and reads the whole answer without decoding it: gRPC with
benchmarks/loadgen.py's raw unary call, HTTP with one httpx.Client (keep-alive, one
connection). The two take turns of 100 calls (loadgen.interleaved_latencies), so a
passing disturbance of the machine falls on both alike. Before timing, each workload's
HTTP answer is checked against the gRPC answer: the same values and statuses.

Writes benchmarks/results/<date>-<scale>-http.{json,md}.
"""

from __future__ import annotations

import argparse
import base64
import json
import math
import platform
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

import grpc
import httpx
from tests.integration.redis_server import redis_server

from benchmarks import data as bench_data
from benchmarks import loadgen, skewless_side
from skewless.grpc import convert
from skewless.serving.response import OnlineResponse

RESULTS = Path(__file__).parent / "results"
LOOKUP = "/get-online-features"


def http_payloads() -> dict[str, bytes]:
    """Feast's request JSON per workload, for the same rows as grpc_payloads()."""
    out = {}
    for name, (view, features, n) in skewless_side.WORKLOADS.items():
        body = {
            "features": [f"{view}:{f}" for f in features],
            "entities": {"entity_id": list(range(n))},
        }
        out[name] = json.dumps(body).encode()
    return out


def _as_json(value: Any) -> Any:
    if isinstance(value, list):
        return [_as_json(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    return value


def check_same_answers(
    channel: grpc.Channel,
    http: httpx.Client,
    grpc_bodies: dict[str, bytes],
    http_bodies: dict[str, bytes],
) -> dict[str, dict[str, int]]:
    """Each workload once over both: the HTTP answer must hold the gRPC answer's values
    and statuses (raises otherwise); returns sizes and values present."""
    stub = loadgen.raw_unary(channel, skewless_side.GRPC_METHOD)
    out = {}
    for name, payload in grpc_bodies.items():
        n = skewless_side.WORKLOADS[name][2]
        reply = stub(payload, timeout=30)
        response: OnlineResponse = convert.response_from_proto(
            convert.GetOnlineFeaturesResponse.FromString(reply),
            [{"entity_id": i} for i in range(n)],
        )
        answer = http.post(LOOKUP, content=http_bodies[name])
        answer.raise_for_status()
        document = answer.json()
        names = document["metadata"]["feature_names"]
        for feature in response.features:
            got = document["results"][names.index(feature)]
            want_values = _as_json(response.values[feature])
            want_statuses = [s.value for s in response.statuses[feature]]
            if got["values"] != want_values or got["statuses"] != want_statuses:
                raise AssertionError(f"{name}: HTTP and gRPC answers differ for {feature}")
        statuses = [s for column in response.statuses.values() for s in column]
        out[name] = {
            "grpc_response_bytes": len(reply),
            "http_response_bytes": len(answer.content),
            "values": len(statuses),
            "present": sum(s.value == "PRESENT" for s in statuses),
        }
    return out


def _wait_healthy(url: str, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise TimeoutError(f"{url}/health did not say SERVING within {timeout_s:.0f} s")


def run(scale: str, calls: int, warmup: int) -> dict[str, Any]:
    data = bench_data.generate(scale)
    with tempfile.TemporaryDirectory(prefix="skewless-http-") as tmp:
        work = Path(tmp)
        (work / "redis").mkdir()
        with redis_server(work / "redis") as redis_url:
            repo = skewless_side.make_repo(data, work, online_url=redis_url)
            store = skewless_side.open_store(repo)
            for view in ("online10", "online50"):
                store.materialize(None, skewless_side.MATERIALIZE_END, views=[view])
            port, http_port = loadgen.free_port(), loadgen.free_port()
            binary = str(Path(sys.executable).parent / "skewless")
            argv = [binary, "serve", "--repo", str(repo), "--host", "127.0.0.1"]
            argv += ["--port", str(port), "--http-port", str(http_port)]
            log = work / "server.log"
            with log.open("wb") as sink:
                server = subprocess.Popen(
                    argv, stdout=sink, stderr=subprocess.STDOUT, start_new_session=True
                )
            url = f"http://127.0.0.1:{http_port}"
            try:
                _wait_healthy(url, 120)
                result = _measure(f"127.0.0.1:{port}", url, calls, warmup)
            finally:
                server.send_signal(signal.SIGINT)
                server.wait(60)
    return {
        "date": datetime.now(UTC).date().isoformat(),
        "scale": bench_data.describe(scale),
        "calls": calls,
        "warmup": warmup,
        "machine": {"python": platform.python_version(), "cpus": _cpus()},
        "versions": _versions(),
        **result,
    }


def _measure(target: str, url: str, calls: int, warmup: int) -> dict[str, Any]:
    grpc_bodies, http_bodies = skewless_side.grpc_payloads(), http_payloads()
    latency: dict[str, dict[str, Any]] = {}
    with (
        grpc.insecure_channel(target) as channel,
        httpx.Client(
            base_url=url, timeout=30, headers={"content-type": "application/json"}
        ) as http,
    ):
        grpc.channel_ready_future(channel).result(timeout=30)
        answers = check_same_answers(channel, http, grpc_bodies, http_bodies)
        stub = loadgen.raw_unary(channel, skewless_side.GRPC_METHOD)
        for name in skewless_side.WORKLOADS:
            fns: dict[str, Callable[[], Any]] = {
                "grpc": partial(stub, grpc_bodies[name], timeout=30),
                "http": partial(http.post, LOOKUP, content=http_bodies[name]),
            }
            samples = loadgen.interleaved_latencies(fns, calls, warmup)
            latency[name] = {k: loadgen.stats(v) for k, v in samples.items()}
            print(name, {k: round(v["p50_ms"], 3) for k, v in latency[name].items()}, flush=True)
    return {"answers": answers, "latency": latency}


def _cpus() -> int:
    import os  # noqa: PLC0415

    return len(os.sched_getaffinity(0))


def _versions() -> dict[str, str]:
    from importlib.metadata import version  # noqa: PLC0415

    packages = ("skewless", "grpcio", "starlette", "uvicorn", "httpx", "h11", "httptools")
    out = {}
    for package in packages:
        try:
            out[package] = version(package)
        except Exception:  # not installed
            out[package] = "-"
    return out


def report(result: dict[str, Any]) -> str:
    scale = result["scale"]
    lines = [
        f"# Online latency, HTTP/JSON next to gRPC: {scale['scale']} scale, {result['date']}",
        "",
        f"Reproduce: `.venv/bin/python -m benchmarks.http_latency --scale {scale['scale']} "
        f"--calls {result['calls']}` (see the module's docstring).",
        "",
        f"One `skewless serve --http-port` process over {scale['entities']:,} materialized "
        f"entities; {result['calls']:,} calls per transport and workload after "
        f"{result['warmup']} warm-up calls, one at a time, in turns of 100; the client's time "
        "included (sending, receiving the whole answer, not decoding it). "
        f"{result['machine']['cpus']} CPUs, Python {result['machine']['python']}; "
        + ", ".join(f"{k} {v}" for k, v in result["versions"].items())
        + ".",
        "",
        "| workload | gRPC p50 / p99 ms | HTTP p50 / p99 ms | HTTP / gRPC p50, p99 "
        "| answer bytes gRPC / HTTP | values present |",
        "|---|---|---|---|---|---|",
    ]
    for name, by in result["latency"].items():
        g, h = by["grpc"], by["http"]
        answer = result["answers"][name]
        lines.append(
            f"| {name} | {g['p50_ms']:.2f} / {g['p99_ms']:.2f} | {h['p50_ms']:.2f} / "
            f"{h['p99_ms']:.2f} | {h['p50_ms'] / g['p50_ms']:.2f}x, "
            f"{h['p99_ms'] / g['p99_ms']:.2f}x | {answer['grpc_response_bytes']:,} / "
            f"{answer['http_response_bytes']:,} | {answer['present']:,} of {answer['values']:,} |"
        )
    lines += [
        "",
        "Every workload's HTTP answer held the gRPC answer's values and statuses.",
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
    stem = RESULTS / f"{result['date']}-{args.scale}-http"
    stem.with_suffix(".json").write_text(json.dumps(result, indent=2) + "\n")
    stem.with_suffix(".md").write_text(report(result))
    print(report(result))


if __name__ == "__main__":
    main()
