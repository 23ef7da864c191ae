"""Many grpc.aio clients against `skewless serve`; Redis killed or frozen under them.

Every client has its own channel (its own connection, as separate application processes
would) and sends pre-serialized requests in a loop, each with a deadline. Each answer is
compared byte for byte with the reference answer fetched before the load (the repo has
no ttl, so answers do not change with the clock), so a wrong answer counts as surely as
a failed call. Every call is kept: when it started, how long it took, its status code.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, cast

import grpc
import grpc.aio
from grpc_health.v1 import health_pb2

from benchmarks.loadgen import stats
from benchmarks.reliability.processes import (
    GET_ONLINE_FEATURES,
    HEALTH_CHECK,
    RedisProcess,
    ServerProcess,
)
from benchmarks.reliability.repo import (
    SERVICE,
    STATS_REFS,
    ZONE_REFS,
    driver_rows,
    zone_rows,
)

Stub = grpc.aio.UnaryUnaryMultiCallable[bytes, bytes]
_OPTIONS = [("grpc.max_receive_message_length", 64 * 1024 * 1024)]


@dataclass(frozen=True)
class Call:
    client: int
    started_s: float  # since the load began
    seconds: float
    code: str  # grpc.StatusCode name
    deadline_s: float

    @property
    def ended_s(self) -> float:
        return self.started_s + self.seconds


@dataclass
class LoadResult:
    calls: list[Call] = field(default_factory=list)
    wrong_answers: int = 0  # OK, but not the reference answer
    seconds: float = 0.0
    events: dict[str, float] = field(default_factory=dict)  # what happened when (s)
    health: list[tuple[float, str]] = field(default_factory=list)  # (s, status) changes
    rss_before: int = 0
    rss_after: int = 0

    def codes(self) -> Counter[str]:
        return Counter(c.code for c in self.calls)

    def figures(self) -> dict[str, Any]:
        """The report's figures: calls, errors by code, latency, memory."""
        latencies = [c.seconds for c in self.calls]
        codes = self.codes()
        return {
            "requests": len(self.calls),
            "codes": dict(sorted(codes.items())),
            "errors": len(self.calls) - codes.get("OK", 0),
            "wrong_answers": self.wrong_answers,
            "seconds": round(self.seconds, 2),
            "calls_per_s": round(len(self.calls) / self.seconds, 1) if self.seconds else 0.0,
            "latency": {k: round(v, 3) for k, v in stats(latencies).items()} if latencies else {},
            "rss_before_mib": round(self.rss_before / 2**20, 1),
            "rss_after_mib": round(self.rss_after / 2**20, 1),
            "events_s": {k: round(v, 3) for k, v in self.events.items()},
            "health": [(round(t, 3), s) for t, s in self.health],
        }


def request_payloads(zones_per_city: int, drivers: int) -> list[bytes]:
    """A mix of lookups: one driver's every stats feature, the feature service for 20
    rows (known and unknown drivers and zones), and 20 zones with full feature names;
    each within the fuzz's small limits too."""
    from skewless.grpc import convert  # noqa: PLC0415
    from skewless.serving.service import OnlineQuery  # noqa: PLC0415

    ids = [1 + (i * 37) % (drivers + drivers // 10) for i in range(20)]
    service_rows = [
        {**d, **z} for d, z in zip(driver_rows(ids), zone_rows(20, zones_per_city), strict=True)
    ]
    queries = [
        OnlineQuery(list(STATS_REFS), driver_rows([1])),
        OnlineQuery(SERVICE, service_rows),
        OnlineQuery(list(ZONE_REFS), zone_rows(20, zones_per_city), full_feature_names=True),
    ]
    return [convert.query_to_proto(q).SerializeToString() for q in queries]


def _stub(channel: grpc.aio.Channel) -> Stub:
    return cast("Stub", channel.unary_unary(GET_ONLINE_FEATURES))


async def _references(target: str, payloads: Sequence[bytes]) -> list[bytes]:
    async with grpc.aio.insecure_channel(target, options=_OPTIONS) as channel:
        stub = _stub(channel)
        return [await stub(p, timeout=30) for p in payloads]


class _Load:
    """The running clients of one scenario."""

    def __init__(
        self,
        target: str,
        payloads: Sequence[bytes],
        references: Sequence[bytes],
        deadlines: Sequence[float],
    ) -> None:
        self.target = target
        self.payloads = list(payloads)
        self.references = dict(zip(payloads, references, strict=True))
        self.deadlines = list(deadlines)
        self.result = LoadResult()
        self.began = time.monotonic()
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._channels: list[grpc.aio.Channel] = []

    def now(self) -> float:
        return time.monotonic() - self.began

    def start(self) -> None:
        self.began = time.monotonic()
        for i, deadline in enumerate(self.deadlines):
            channel = grpc.aio.insecure_channel(self.target, options=_OPTIONS)
            self._channels.append(channel)
            self._tasks.append(asyncio.create_task(self._client(i, _stub(channel), deadline)))
        self._tasks.append(asyncio.create_task(self._watch_health()))

    async def _client(self, i: int, stub: Stub, deadline_s: float) -> None:
        clock = time.monotonic
        turn = i
        while not self._stop.is_set():
            payload = self.payloads[turn % len(self.payloads)]
            turn += 1
            started = clock()
            try:
                reply = await stub(payload, timeout=deadline_s)
                code = "OK"
                if reply != self.references[payload]:
                    self.result.wrong_answers += 1
            except grpc.aio.AioRpcError as exc:
                code = exc.code().name
            ended = clock()
            self.result.calls.append(
                Call(i, started - self.began, ended - started, code, deadline_s)
            )
            if code != "OK":
                await asyncio.sleep(0.005)  # a client backs off a little after a failure

    async def _watch_health(self) -> None:
        async with grpc.aio.insecure_channel(self.target) as channel:
            check = channel.unary_unary(
                HEALTH_CHECK,
                request_serializer=health_pb2.HealthCheckRequest.SerializeToString,
                response_deserializer=health_pb2.HealthCheckResponse.FromString,
            )
            last = ""
            while not self._stop.is_set():
                try:
                    reply = await check(health_pb2.HealthCheckRequest(), timeout=1.0)
                    status = health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)
                except grpc.aio.AioRpcError as exc:
                    status = exc.code().name
                if status != last:
                    self.result.health.append((self.now(), status))
                    last = status
                await asyncio.sleep(0.05)

    def status(self) -> str:
        return self.result.health[-1][1] if self.result.health else ""

    async def wait_for(self, status: str, timeout_s: float) -> float:
        """Wait until health reports `status`; returns when (s since the load began)."""
        async with asyncio.timeout(timeout_s):
            while self.status() != status:
                await asyncio.sleep(0.02)
        return self.result.health[-1][0]

    async def wait_all_ok_after(self, since_s: float, timeout_s: float) -> float:
        """Wait until every client had an OK call that started after `since_s`."""
        async with asyncio.timeout(timeout_s):
            while True:
                ok = {
                    c.client for c in self.result.calls if c.code == "OK" and c.started_s > since_s
                }
                if len(ok) == len(self.deadlines):
                    return self.now()
                await asyncio.sleep(0.02)

    async def stop(self) -> None:
        self.result.seconds = self.now()
        self._stop.set()
        await asyncio.gather(*self._tasks)
        for channel in self._channels:
            await channel.close()


async def _sustained(
    server: ServerProcess,
    payloads: Sequence[bytes],
    clients: int,
    seconds: float,
    warmup_s: float,
) -> LoadResult:
    references = await _references(server.target, payloads)
    load = _Load(server.target, payloads, references, [10.0] * clients)
    load.start()
    await asyncio.sleep(warmup_s)  # every channel connected, allocator and caches warm
    warm_calls = len(load.result.calls)
    rss_before = server.rss()
    await asyncio.sleep(seconds)
    await load.stop()
    result = load.result
    result.rss_before, result.rss_after = rss_before, server.rss()
    result.calls = result.calls[warm_calls:]
    result.seconds -= warmup_s
    return result


def sustained_load(
    server: ServerProcess,
    payloads: Sequence[bytes],
    *,
    clients: int,
    seconds: float,
    warmup_s: float = 2.0,
) -> LoadResult:
    """`clients` clients for `seconds` after `warmup_s`; the server's RSS is read when
    the warm-up ends and when the load ends. Only the calls after the warm-up count."""
    return asyncio.run(_sustained(server, payloads, clients, seconds, warmup_s))


Fault = Literal["kill", "freeze"]


async def _outage(
    server: ServerProcess,
    redis: RedisProcess,
    fault: Fault,
    payloads: Sequence[bytes],
    deadlines: Sequence[float],
    warmup_s: float,
    down_s: float,
    after_s: float,
    timeout_s: float,
) -> LoadResult:
    references = await _references(server.target, payloads)
    # the data comes back after a kill: the restarted redis-server loads this snapshot
    await asyncio.to_thread(redis.client().save)
    load = _Load(server.target, payloads, references, deadlines)
    load.result.rss_before = server.rss()
    load.start()
    events = load.result.events
    try:
        await asyncio.sleep(warmup_s)
        if fault == "kill":
            await asyncio.to_thread(redis.kill)
        else:
            redis.freeze()
        events["fault"] = load.now()
        events["not_serving"] = await load.wait_for("NOT_SERVING", timeout_s)
        await asyncio.sleep(max(0.0, events["fault"] + down_s - load.now()))
        events["restore"] = load.now()
        if fault == "kill":
            await asyncio.to_thread(redis.start)  # same port and folder
        else:
            redis.thaw()
        events["restored"] = load.now()
        events["serving"] = await load.wait_for("SERVING", timeout_s)
        events["all_clients_ok"] = await load.wait_all_ok_after(events["restored"], timeout_s)
        await asyncio.sleep(after_s)
    finally:
        if redis.frozen:
            redis.thaw()
        await load.stop()
    result = load.result
    result.rss_after = server.rss()
    return result


def redis_outage(
    server: ServerProcess,
    redis: RedisProcess,
    fault: Fault,
    payloads: Sequence[bytes],
    *,
    deadlines: Sequence[float],
    warmup_s: float = 1.0,
    down_s: float = 2.0,
    after_s: float = 1.0,
    timeout_s: float = 30.0,
) -> LoadResult:
    """Load from one client per deadline in `deadlines`; after `warmup_s`, Redis is
    killed (SIGKILL, restarted on the same port) or frozen (SIGSTOP, then SIGCONT) for
    at least `down_s` and until health says NOT_SERVING; the load goes on until health
    says SERVING again, every client has had an answer, and `after_s` more.

    `events` holds when (seconds since the load began): `fault` (Redis gone),
    `not_serving`, `restore` (restart or SIGCONT sent), `restored` (Redis answers PING
    again after a restart), `serving`, `all_clients_ok`. Raises TimeoutError if health
    or the clients do not get there within `timeout_s`."""
    return asyncio.run(
        _outage(server, redis, fault, payloads, deadlines, warmup_s, down_s, after_s, timeout_s)
    )


def outage_figures(result: LoadResult) -> dict[str, Any]:
    """The outage's own figures: how the calls while Redis was away ended, and how soon
    after it came back the server answered again."""
    ev = result.events
    down = [c for c in result.calls if ev["fault"] < c.started_s and c.ended_s < ev["restore"]]
    first_ok = min(
        (c.ended_s for c in result.calls if c.code == "OK" and c.started_s > ev["restored"]),
        default=float("nan"),
    )
    return {
        **result.figures(),
        "while_down": {
            "requests": len(down),
            "codes": dict(sorted(Counter(c.code for c in down).items())),
            "latency": {k: round(v, 3) for k, v in stats([c.seconds for c in down]).items()}
            if down
            else {},
        },
        "first_ok_after_restore_ms": round((first_ok - ev["restored"]) * 1000, 1),
        "not_serving_after_fault_s": round(ev["not_serving"] - ev["fault"], 3),
        "serving_after_restore_s": round(ev["serving"] - ev["restored"], 3),
    }
