"""uvicorn serving an ASGI app on the caller's event loop, next to grpc.aio.

The listening socket is bound here, so a port that is taken is a BindError (uvicorn,
binding itself, would exit the process). uvicorn runs without its own logging setup,
signal handling or lifespan: the process belongs to `skewless serve`, which stops this
server with the gRPC one. With TLS files it speaks HTTPS with the gRPC port's
certificate and key, and with a client CA it requires a client certificate that CA
signed (mutual TLS), as the gRPC port does.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import socket
import ssl
from dataclasses import dataclass
from pathlib import Path

import uvicorn
from starlette.types import ASGIApp

from skewless.errors import BindError
from skewless.net import address

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TlsFiles:
    """PEM files, resolved: the server's certificate chain and key, and the CA whose
    client certificates are accepted (None: no client certificate asked for)."""

    cert_file: Path
    key_file: Path
    client_ca_file: Path | None = None


def _bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket on (host, port); OSError when it cannot be had."""
    family, kind, proto, _, where = socket.getaddrinfo(
        host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    )[0]
    sock = socket.socket(family, kind, proto)
    try:
        # a restarted server may take its port back while old connections linger in
        # TIME_WAIT; never SO_REUSEPORT, which would share it with a live server
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(where)
        sock.listen(2048)
    except OSError:
        sock.close()
        raise
    return sock


class HttpServer:
    """One ASGI app served on (host, port); start() and stop() run on the caller's loop."""

    def __init__(self, app: ASGIApp, host: str, port: int, tls: TlsFiles | None = None) -> None:
        self.host = host
        self.port = port
        self.tls = tls
        self._config = uvicorn.Config(
            app,
            host=host,
            port=port,
            http="httptools",  # the C parser (pyproject.toml says what it saves)
            lifespan="off",
            log_config=None,  # leave the process's logging as `skewless serve` set it
            access_log=False,
            server_header=False,
            proxy_headers=False,
            ws="none",
            ssl_certfile=None if tls is None else str(tls.cert_file),
            ssl_keyfile=None if tls is None else str(tls.key_file),
            ssl_ca_certs=None
            if tls is None or tls.client_ca_file is None
            else str(tls.client_ca_file),
            ssl_cert_reqs=ssl.CERT_NONE
            if tls is None or tls.client_ca_file is None
            else ssl.CERT_REQUIRED,
        )
        self._server: uvicorn.Server | None = None
        self._socket: socket.socket | None = None
        self._ticks: asyncio.Task[None] | None = None

    @property
    def scheme(self) -> str:
        return "http" if self.tls is None else "https"

    async def start(self) -> int:
        """Bind and serve; returns the bound port (useful with port 0)."""
        try:
            sock = _bind(self.host, self.port)
        except OSError as exc:
            raise BindError(
                address(self.host, self.port), "HTTP", exc.strerror or str(exc)
            ) from None
        server = uvicorn.Server(self._config)
        try:
            if not self._config.loaded:
                self._config.load()
            server.lifespan = self._config.lifespan_class(self._config)
            await server.startup(sockets=[sock])
        except BaseException:
            sock.close()
            raise
        self._server, self._socket = server, sock
        self.port = int(sock.getsockname()[1])
        # uvicorn's tick: the Date header, once a second, and the wait for should_exit
        self._ticks = asyncio.create_task(server.main_loop(), name="skewless-http-ticks")
        log.info("HTTP/JSON on %s://%s", self.scheme, address(self.host, self.port))
        return self.port

    async def stop(self, grace_s: float | None = 5.0) -> None:
        """Stop accepting connections, let calls in flight finish (up to `grace_s`)."""
        server, self._server = self._server, None
        if server is None:
            return
        server.should_exit = True
        if self._ticks is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._ticks
            self._ticks = None
        # uvicorn's setting is whole seconds
        server.config.timeout_graceful_shutdown = (
            None if grace_s is None else math.ceil(max(grace_s, 0))
        )
        await server.shutdown(sockets=[self._socket] if self._socket is not None else None)
        self._socket = None
