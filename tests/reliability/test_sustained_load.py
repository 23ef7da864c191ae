"""`skewless serve` under many concurrent clients: every call answered, every answer
right, memory flat."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from benchmarks.reliability.load import request_payloads, sustained_load
from benchmarks.reliability.processes import RedisProcess, serving
from benchmarks.reliability.variants import Variant

from tests.reliability.conftest import VARIANTS, Served

# The server's RSS may grow this much under load once warm (allocator arenas, gRPC's
# buffers); a leak of even a few hundred bytes a call passes it within the long variant.
RSS_GROWTH_MAX = 48 * 2**20


@pytest.mark.parametrize("variant", VARIANTS)
def test_sustained_load_has_no_errors_and_flat_memory(
    variant: Variant,
    served: Served,
    redis_from_snapshot: Callable[[], RedisProcess],
    tmp_path: Path,
) -> None:
    redis = redis_from_snapshot()
    payloads = request_payloads(served.shape.zones_per_city, served.shape.drivers)
    with serving(served.repo, redis.url, tmp_path / "server.log") as server:
        result = sustained_load(
            server, payloads, clients=variant.load_clients, seconds=variant.load_seconds
        )
        assert server.alive
    assert len(result.calls) >= 10 * variant.load_clients
    assert result.codes() == {"OK": len(result.calls)}
    assert result.wrong_answers == 0
    assert {c.client for c in result.calls} == set(range(variant.load_clients))
    growth = result.rss_after - result.rss_before
    assert growth < RSS_GROWTH_MAX, (
        f"server RSS grew {growth / 2**20:.1f} MiB over {len(result.calls)} calls "
        f"({result.rss_before / 2**20:.1f} -> {result.rss_after / 2**20:.1f} MiB)"
    )
