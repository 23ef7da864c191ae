"""Thousands of hostile requests, drawn by hypothesis, against `skewless serve`: each gets
OK or a documented refusal (never UNKNOWN or INTERNAL), with bounded details; the server
counts them all, logs no traceback, stays up, healthy and right."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest
from benchmarks.reliability import fuzz
from benchmarks.reliability.load import request_payloads
from benchmarks.reliability.processes import RedisProcess, serving
from benchmarks.reliability.repo import write_config
from benchmarks.reliability.variants import Variant

from tests.reliability.conftest import VARIANTS, Served

# A quiet server logs a few lines (start, health); the refusals are summed up, at most
# one line per kind and minute.
LOG_LINES_MAX = 40


def _server_repo(served: Served, folder: Path, limits: fuzz.Limits, redis_url: str) -> Path:
    """A repo folder that serves the applied registry of `served` with `limits`."""
    folder.mkdir()
    write_config(
        folder,
        redis_url,
        registry=served.repo / "data" / "registry.db",
        limits=limits.section(),
    )
    return folder


def _answers(target: str, payloads: list[bytes]) -> list[bytes]:
    with fuzz.channel(target) as channel:
        call = fuzz.unary(channel)
        return [call(p, timeout=30) for p in payloads]


@pytest.mark.parametrize("variant", VARIANTS)
def test_fuzzed_requests_get_documented_codes_and_the_server_survives(
    variant: Variant,
    served: Served,
    redis_from_snapshot: Callable[[], RedisProcess],
    tmp_path: Path,
) -> None:
    limits = fuzz.Limits()
    redis = redis_from_snapshot()
    repo = _server_repo(served, tmp_path / "repo", limits, redis.url)
    payloads = request_payloads(served.shape.zones_per_city, served.shape.drivers)
    with serving(repo, redis.url, tmp_path / "server.log") as server:
        before = _answers(server.target, payloads)
        result = fuzz.sweep(
            server.target,
            limits,
            structured=variant.fuzz_structured,
            raw=variant.fuzz_raw,
            seed_value=22,
        )
        assert server.alive
        assert server.health() == "SERVING"
        assert _answers(server.target, payloads) == before
        counted = server.requests_counted()
        log = server.log_text()
    problems = [f"{o.kind} {o.size} bytes: {o.problem}" for o in result.problems]
    assert not problems, f"{len(problems)} wrong answers, e.g.\n" + "\n".join(problems[:10])
    codes = Counter(o.code for o in result.outcomes)
    assert not {"UNKNOWN", "INTERNAL"} & set(codes)
    assert len(result.outcomes) >= variant.fuzz_structured + variant.fuzz_raw
    # the fuzz reached every kind of answer, so it is not refused wholesale
    assert {"OK", "INVALID_ARGUMENT", "RESOURCE_EXHAUSTED"} <= set(codes), codes
    # Every call the server's code saw is counted under the code the client got; gRPC
    # itself refuses what is past its receive cap, before the server sees it.
    seen = Counter(o.code for o in result.outcomes if o.size <= limits.receive_cap)
    seen["OK"] += 2 * len(payloads)
    assert counted == dict(seen)
    assert "Traceback" not in log
    assert len(log.splitlines()) <= LOG_LINES_MAX, log[-3000:]


def test_fuzz_oracle_refuses_what_is_over_a_limit() -> None:
    """The fuzz's judge itself: RESOURCE_EXHAUSTED only over a limit, INVALID_ARGUMENT
    for what does not decode."""
    limits = fuzz.Limits()
    small = fuzz.Request(features=["stats:rating"])
    small.entity_columns["driver_id"].values.add().int64_value = 1
    assert fuzz.expected_codes(small.SerializeToString(), limits) == fuzz.OK_CODES
    many = fuzz.Request(features=["stats:rating"] * (limits.max_features + 1))
    assert "RESOURCE_EXHAUSTED" in fuzz.expected_codes(many.SerializeToString(), limits)
    huge = fuzz.Request(features=["x" * limits.max_request_bytes])
    assert fuzz.expected_codes(huge.SerializeToString(), limits) == fuzz.REFUSED
    not_utf8 = b"\x12\x02\xc3\x28"  # features[0] = b"\xc3\x28"
    assert fuzz.expected_codes(not_utf8, limits) == {"INVALID_ARGUMENT"}
