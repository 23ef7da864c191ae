"""`skewless serve` under load while its Redis is killed (SIGKILL, then restarted on the
same port) or frozen (SIGSTOP, then SIGCONT): calls fail at once with UNAVAILABLE, health
follows Redis, and the server answers again by itself when Redis is back."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from benchmarks.reliability.load import Call, LoadResult, redis_outage, request_payloads
from benchmarks.reliability.processes import RedisProcess, serving
from benchmarks.reliability.variants import Variant

from tests.reliability.conftest import VARIANTS, Served

# Calls whose Redis read began this long after the fault may not have been answered by
# Redis (a reply already on its way when SIGSTOP lands is still read).
_SETTLE_S = 0.1


def _while_down(result: LoadResult) -> list[Call]:
    ev = result.events
    return [
        c
        for c in result.calls
        if ev["fault"] + _SETTLE_S < c.started_s and c.ended_s < ev["restore"]
    ]


def _check_recovered(result: LoadResult) -> None:
    ev = result.events
    assert ev["not_serving"] >= ev["fault"]
    assert ev["serving"] >= ev["restore"]
    after = [c for c in result.calls if c.started_s > ev["all_clients_ok"]]
    assert after, "no call after the server answered every client again"
    assert {c.code for c in after} == {"OK"}
    assert result.wrong_answers == 0


@pytest.mark.parametrize("variant", VARIANTS)
def test_server_fails_fast_and_recovers_when_redis_is_killed(
    variant: Variant,
    served: Served,
    redis_from_snapshot: Callable[[], RedisProcess],
    tmp_path: Path,
) -> None:
    redis = redis_from_snapshot()
    payloads = request_payloads(served.shape.zones_per_city, served.shape.drivers)
    with serving(served.repo, redis.url, tmp_path / "server.log") as server:
        pid = server.pid
        result = redis_outage(
            server,
            redis,
            "kill",
            payloads,
            deadlines=[5.0] * variant.outage_clients,
            down_s=variant.outage_down_s,
            after_s=variant.outage_after_s,
        )
        counted = server.requests_counted()
        assert server.alive and server.pid == pid  # recovered without a restart
        assert server.health() == "SERVING"
    codes = result.codes()
    assert set(codes) <= {"OK", "UNAVAILABLE"}, codes
    down = _while_down(result)
    assert len(down) >= variant.outage_clients, "too few calls while Redis was down"
    assert {c.code for c in down} == {"UNAVAILABLE"}
    # fail fast: a refused connection is answered at once, not when the deadline nears
    assert max(c.seconds for c in down) < min(c.deadline_s for c in down) / 2
    _check_recovered(result)
    # every call is counted by the server as the client saw it (plus the references)
    assert counted.get("UNAVAILABLE", 0) == codes["UNAVAILABLE"]
    assert counted.get("OK", 0) == codes["OK"] + len(payloads)


@pytest.mark.parametrize("variant", VARIANTS)
def test_server_answers_unavailable_within_deadline_when_redis_freezes(
    variant: Variant,
    served: Served,
    redis_from_snapshot: Callable[[], RedisProcess],
    tmp_path: Path,
) -> None:
    redis = redis_from_snapshot()
    payloads = request_payloads(served.shape.zones_per_city, served.shape.drivers)
    # Deadlines within and past the server's 1 s Redis socket timeout. None under 250 ms:
    # on a busy two-core machine (the clients share it with the server) a 100 ms call is
    # sometimes late with Redis healthy too.
    deadlines = [(0.25, 0.5, 1.0, 2.0)[i % 4] for i in range(variant.outage_clients)]
    with serving(served.repo, redis.url, tmp_path / "server.log") as server:
        result = redis_outage(
            server,
            redis,
            "freeze",
            payloads,
            deadlines=deadlines,
            down_s=variant.outage_down_s,
            after_s=variant.outage_after_s,
        )
        assert server.alive
        assert server.health() == "SERVING"
    codes = result.codes()
    assert set(codes) - {"OK", "UNAVAILABLE", "DEADLINE_EXCEEDED"} == set(), codes
    down = _while_down(result)
    assert len(down) >= variant.outage_clients, "too few calls while Redis was frozen"
    assert "OK" not in {c.code for c in down}
    # The server answers a hung Redis before the caller's deadline (deadlines >= 100 ms):
    # UNAVAILABLE, which says "retry", never DEADLINE_EXCEEDED.
    assert codes.get("DEADLINE_EXCEEDED", 0) == 0, codes
    _check_recovered(result)
