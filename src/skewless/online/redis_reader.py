"""The server's Redis reads: MGET and PING on one pipelined asyncio connection.

redis-py's asyncio client costs about 0.3 ms of Python per command (pool lock, health
and observability hooks, retry wrapper), more than the whole rest of a one-entity lookup.
The server only ever sends MGET and PING, so it speaks RESP itself on one connection
(hiredis parses the replies): a call writes its command and awaits its reply, and
replies come back in the order the commands were written, so concurrent calls share the
connection without waiting for each other (pipelining).

Failure rules, as the server had them with redis-py: a lost connection fails the calls
in flight with OnlineStoreUnavailableError and the next call reconnects; a call that
finds its connection dead before any reply retries once on a new one; a reply slower
than `socket_timeout_s` closes the connection (Redis is hung); the caller's deadline
bounds every call (the caller raises when it passes). TLS (rediss://) URLs, and URL
options this module does not know, keep redis-py's client (`redis_reader()` picks).
"""

from __future__ import annotations

import asyncio
import collections
from typing import Any

import hiredis
import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.connection import parse_url
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from skewless.errors import OnlineStoreUnavailableError
from skewless.online.store import OnlineReader

_KNOWN_URL_OPTIONS = frozenset({"host", "port", "path", "db", "username", "password"})


def redis_reader(
    url: str,
    *,
    password: str | None = None,
    socket_timeout_s: float = 1.0,
    connect_timeout_s: float = 1.0,
) -> OnlineReader:
    """A pipelined connection for redis:// and unix:// URLs, redis-py for the others."""
    options: dict[str, Any] = {"password": password}
    options.update(parse_url(url))  # type: ignore[no-untyped-call]  # the URL's password wins, as in redis-py
    if url.startswith(("redis://", "unix://")) and options.keys() - {"connection_class"} <= (
        _KNOWN_URL_OPTIONS
    ):
        return PipelinedReader(
            host=options.get("host", "localhost"),
            port=int(options.get("port", 6379)),
            path=options.get("path"),
            db=int(options.get("db") or 0),
            username=options.get("username"),
            password=options.get("password"),
            socket_timeout_s=socket_timeout_s,
            connect_timeout_s=connect_timeout_s,
        )
    client = aioredis.Redis.from_url(
        url,
        password=password,
        socket_timeout=socket_timeout_s,
        socket_connect_timeout=connect_timeout_s,
        retry=Retry(NoBackoff(), retries=1),
    )
    return RedisPyReader(client)


class _LostError(Exception):
    """The connection was lost (or never made) before the reply came."""


class _Connection(asyncio.Protocol):
    def __init__(self) -> None:
        self.parser = hiredis.Reader()
        self.waiting: collections.deque[asyncio.Future[Any]] = collections.deque()
        self.transport: asyncio.Transport | None = None
        self.lost: str | None = None

    @property
    def usable(self) -> bool:
        return self.lost is None and self.transport is not None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.parser.feed(data)
        while True:
            try:
                reply = self.parser.gets()
            except hiredis.ProtocolError as exc:
                self.close(f"unreadable reply from Redis: {exc}")
                return
            if reply is False:
                return
            waiter = self.waiting.popleft()
            if not waiter.done():  # else its caller gave up (deadline)
                waiter.set_result(reply)

    def connection_lost(self, exc: Exception | None) -> None:
        self._fail(f"connection to Redis lost ({exc or 'closed by the server'})")

    def close(self, why: str) -> None:
        if self.transport is not None:
            self.transport.close()
        self._fail(why)

    def _fail(self, why: str) -> None:
        if self.lost is None:
            self.lost = why
        while self.waiting:
            waiter = self.waiting.popleft()
            if not waiter.done():
                waiter.set_exception(_LostError(self.lost))

    def send(self, command: bytes) -> asyncio.Future[Any]:
        assert self.transport is not None
        waiter = asyncio.get_running_loop().create_future()
        self.waiting.append(waiter)
        self.transport.write(command)
        return waiter


class PipelinedReader:
    """MGET and PING over one connection, made on first use and remade when lost."""

    def __init__(
        self,
        *,
        host: str = "localhost",
        port: int = 6379,
        path: str | None = None,
        db: int = 0,
        username: str | None = None,
        password: str | None = None,
        socket_timeout_s: float = 1.0,
        connect_timeout_s: float = 1.0,
    ) -> None:
        self._host, self._port, self._path, self._db = host, port, path, db
        self._auth = (
            None
            if password is None
            else (("AUTH", password) if username is None else ("AUTH", username, password))
        )
        self._socket_timeout_s = socket_timeout_s
        self._connect_timeout_s = connect_timeout_s
        self._conn: _Connection | None = None
        self._connecting: asyncio.Lock | None = None

    @property
    def address(self) -> str:
        return self._path or f"{self._host}:{self._port}"

    async def mget(self, keys: list[bytes], timeout_s: float) -> list[bytes | None]:
        if not keys:
            return []
        command = hiredis.pack_command((b"MGET", *keys))  # type: ignore[arg-type]
        reply = await self._call(command, timeout_s)
        if not isinstance(reply, list):
            raise OnlineStoreUnavailableError(f"Redis answered MGET with {reply!r}")
        return reply

    async def ping(self, timeout_s: float) -> bool:
        try:
            return bool(await self._call(b"*1\r\n$4\r\nPING\r\n", timeout_s) == b"PONG")
        except (TimeoutError, OnlineStoreUnavailableError):
            return False

    async def close(self) -> None:
        if self._conn is not None:
            self._conn.close("closed")
            self._conn = None

    async def _call(self, command: bytes, timeout_s: float) -> Any:
        """Send `command`, return its reply. Raises TimeoutError after `timeout_s` (the
        caller's deadline), OnlineStoreUnavailableError if Redis is unreachable, errs or
        stays silent for `socket_timeout_s`."""
        hung = self._socket_timeout_s <= timeout_s  # which limit is the tighter one
        try:
            async with asyncio.timeout(min(timeout_s, self._socket_timeout_s)) as limit:
                for attempt in (1, 2):
                    conn = self._conn
                    fresh = conn is None or not conn.usable
                    if fresh:
                        conn = await self._connect()
                    assert conn is not None
                    waiter = conn.send(command)
                    try:
                        reply = await waiter
                    except _LostError as exc:
                        if fresh or attempt == 2:
                            raise OnlineStoreUnavailableError(f"{self.address}: {exc}") from None
                        continue  # the connection died while idle: retry once on a new one
                    except asyncio.CancelledError:
                        if limit.expired() and _arrived(waiter):
                            # The reply came in the loop turn the timeout fired in (a
                            # busy loop): it is an answer, not Redis's silence.
                            reply = waiter.result()
                        else:
                            # Only Redis's own silence, not one caller's short deadline,
                            # closes the connection the other calls share.
                            if hung and not waiter.done():
                                conn.close(f"no reply within {self._socket_timeout_s} s")
                            raise
                    if isinstance(reply, hiredis.ReplyError):
                        raise OnlineStoreUnavailableError(f"{self.address}: {reply}")
                    return reply
        except TimeoutError:
            if hung:
                raise OnlineStoreUnavailableError(
                    f"Redis at {self.address} did not answer within {self._socket_timeout_s} s"
                ) from None
            raise
        raise AssertionError("unreachable")  # pragma: no cover

    async def _connect(self) -> _Connection:
        if self._connecting is None:
            self._connecting = asyncio.Lock()
        async with self._connecting:
            if self._conn is not None and self._conn.usable:
                return self._conn
            loop = asyncio.get_running_loop()
            try:
                async with asyncio.timeout(self._connect_timeout_s):
                    if self._path is not None:
                        _, conn = await loop.create_unix_connection(_Connection, self._path)
                    else:
                        _, conn = await loop.create_connection(_Connection, self._host, self._port)
                    for setup in ([self._auth] if self._auth else []) + (
                        [("SELECT", str(self._db))] if self._db else []
                    ):
                        reply = await conn.send(hiredis.pack_command(setup))  # type: ignore[arg-type]
                        if isinstance(reply, hiredis.ReplyError):
                            conn.close(str(reply))
                            raise OnlineStoreUnavailableError(
                                f"{self.address}: {setup[0]} failed: {reply}"
                            )
            except (OSError, TimeoutError, _LostError) as exc:
                raise OnlineStoreUnavailableError(
                    f"cannot connect to Redis at {self.address}: {str(exc) or type(exc).__name__}"
                ) from None
            self._conn = conn
            return conn


def _arrived(waiter: asyncio.Future[Any]) -> bool:
    return waiter.done() and not waiter.cancelled() and waiter.exception() is None


class RedisPyReader:
    """The same reads through redis-py's asyncio client (TLS and other URL options)."""

    def __init__(self, client: aioredis.Redis) -> None:
        self._client = client

    async def mget(self, keys: list[bytes], timeout_s: float) -> list[bytes | None]:
        if not keys:
            return []
        try:
            async with asyncio.timeout(timeout_s):
                values = await self._client.mget(keys)
        except (RedisConnectionError, RedisTimeoutError) as exc:
            raise OnlineStoreUnavailableError(str(exc)) from exc
        return [v.encode() if isinstance(v, str) else v for v in values]

    async def ping(self, timeout_s: float) -> bool:
        try:
            async with asyncio.timeout(timeout_s):
                return bool(await self._client.ping())
        except (TimeoutError, RedisConnectionError, RedisTimeoutError):
            return False

    async def close(self) -> None:
        await self._client.aclose()
