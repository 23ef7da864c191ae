"""What the online path's performance mechanisms earn, each against the plain way, in one
process and one run (turns interleaved, so a busy machine slows both alike):

- the server's pipelined RESP reader (online/redis_reader.py) against redis-py's asyncio
  client, for an MGET of 1 and of 100 keys;
- the vectorized column decoder and entry gatherer (online/codec.py, batches above
  codec._FEW rows) against reading the same values one by one.

    .venv/bin/python -m benchmarks.mechanisms [--calls 2000]

Writes benchmarks/results/<date>-mechanisms.md and prints it.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from functools import partial
from pathlib import Path

import numpy as np
import pyarrow as pa
import redis
import redis.asyncio as aioredis
from tests.integration.redis_server import redis_server

from benchmarks.data import RESULTS
from skewless.online import codec
from skewless.online.codec import column_decoder, encode_values, entity_key, entry_gatherer
from skewless.online.redis_reader import PipelinedReader, RedisPyReader
from skewless.online.store import OnlineReader
from skewless.types import Float64

FEATURES = 10
TURN = 100  # calls per turn; the two ways take turns


def _values(rows: int) -> list[bytes]:
    rng = np.random.default_rng(7)
    columns = [pa.array(rng.normal(size=rows)) for _ in range(FEATURES)]
    events = pa.array(np.arange(rows, dtype=np.int64) * 1_000_000)
    return encode_values(
        events,
        pa.array([None] * rows, pa.int64()),
        pa.array(rng.integers(-(2**62), 2**62, size=rows)),
        columns,
        [Float64] * FEATURES,
    )


def _percentiles(seconds: list[float]) -> tuple[float, float]:
    us = np.array(seconds) * 1e6
    return float(np.percentile(us, 50)), float(np.percentile(us, 99))


async def _reader_turns(
    readers: dict[str, OnlineReader], keys: list[bytes], calls: int
) -> dict[str, list[float]]:
    times: dict[str, list[float]] = {name: [] for name in readers}
    for _ in range(calls // TURN):
        for name, reader in readers.items():
            for _ in range(TURN):
                started = time.perf_counter()
                await reader.mget(keys, 1.0)
                times[name].append(time.perf_counter() - started)
    return times


def readers(url: str, calls: int) -> list[str]:
    port = int(url.rsplit(":", 1)[1].split("/", maxsplit=1)[0])
    sync = redis.Redis.from_url(url)
    values = _values(100)
    keys = [entity_key("bench", "v", [i]) for i in range(100)]
    sync.mset(dict(zip(keys, values, strict=True)))

    async def run() -> list[str]:
        ways: dict[str, OnlineReader] = {
            "pipelined RESP reader": PipelinedReader(host="127.0.0.1", port=port),
            "redis-py asyncio": RedisPyReader(aioredis.Redis.from_url(url)),
        }
        lines = []
        for n in (1, 100):
            await _reader_turns(ways, keys[:n], TURN)  # warm up both
            times = await _reader_turns(ways, keys[:n], calls)
            for name, seconds in times.items():
                p50, p99 = _percentiles(seconds)
                lines.append(f"| MGET of {n} | {name} | {p50:.0f} | {p99:.0f} |")
        for reader in ways.values():
            await reader.close()
        return lines

    return asyncio.run(run())


def _timed(fn: Callable[[], object], calls: int) -> list[float]:
    out = []
    for _ in range(calls):
        started = time.perf_counter()
        fn()
        out.append(time.perf_counter() - started)
    return out


def decoders(calls: int) -> list[str]:
    positions = list(range(FEATURES))
    decode = column_decoder([Float64] * FEATURES, positions)
    gather = entry_gatherer([Float64] * FEATURES, positions)
    lines = []
    few = codec._FEW
    for rows in (9, 100):
        values: list[bytes | None] = list(_values(rows))
        for name, fn in (("decode", decode), ("gather", gather)):
            vectorized: list[float] = []
            one_by_one: list[float] = []
            for _ in range(calls // TURN):
                call = partial(fn, values)
                vectorized += _timed(call, TURN)
                codec._FEW = 1 << 30  # the same values, read one by one
                try:
                    one_by_one += _timed(call, TURN)
                finally:
                    codec._FEW = few
            for way, seconds in (("numpy", vectorized), ("one by one", one_by_one)):
                p50, _ = _percentiles(seconds)
                lines.append(f"| {name} {rows} rows x {FEATURES} | {way} | {p50:.0f} |")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=2000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder, redis_server(Path(folder)) as url:
        reader_lines = readers(url, args.calls)
    decoder_lines = decoders(args.calls)
    day = datetime.now(UTC).date().isoformat()
    report = "\n".join(
        [
            f"# Online mechanisms, {day}",
            "",
            f"`python -m benchmarks.mechanisms --calls {args.calls}`: one process, the two ways",
            f"taking turns of {TURN} calls; {FEATURES} float64 features a value.",
            "",
            "| read | way | p50 us | p99 us |",
            "|---|---|---|---|",
            *reader_lines,
            "",
            "| work | way | p50 us |",
            "|---|---|---|",
            *decoder_lines,
            "",
            f"Python {sys.version.split()[0]}.",
        ]
    )
    path = RESULTS / f"{day}-mechanisms.md"
    path.write_text(report + "\n")
    print(report)


if __name__ == "__main__":
    main()
