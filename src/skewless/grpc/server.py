"""The online gRPC server: grpc.aio in front of redis.asyncio.

Besides skewless.serving.v1.OnlineServing it serves the standard health service
(grpc.health.v1) and server reflection. Health is SERVING, for the whole server ("") and
for OnlineServing, only while the registry is loaded with at least one feature view and
Redis answers PING; NOT_SERVING otherwise. A watch task re-checks both every
`poll_interval_s` (1 s): when the registry version changed (an `apply` happened) it
reloads the definitions, so new views and services are served without a restart.

With a metrics port, Prometheus metrics (metrics.py) are served over HTTP at /metrics,
among them each served view's freshness, read from the registry at each scrape.

Requests are limited by the repo's `serving` config (serving/limits.py). gRPC's own cap on
a received message is set to twice `serving.max_request_bytes`, so a request between the
two reaches the handler and is refused there (RESOURCE_EXHAUSTED naming the limit,
counted in the metrics); one past the cap is refused by gRPC itself, before any skewless
code sees it, and is not counted.

With `serving.tls` in the repo's config the port speaks TLS (and with its
`client_ca_file`, mutual TLS); otherwise plaintext.

With an HTTP port, the same process serves HTTP/JSON too (skewless/http/: Feast's
POST /get-online-features and GET /health): uvicorn on the same event loop, over the
same OnlineService, so both transports share the definitions, the Redis connection and
the lookup thread; /health says what the gRPC health service says. With `serving.tls` it
speaks HTTPS with the same certificate and key (and the same client CA).

`serve()` is what `skewless serve` runs; `running_server()` starts a server on a free
port in a background thread, for tests and notebooks.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import signal
import ssl
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import grpc
import grpc.aio
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from skewless.config import RepoConfig, TlsConfig, load_config, resolve_path
from skewless.definitions import FeatureView
from skewless.errors import BindError, ConfigError
from skewless.grpc import convert
from skewless.grpc.errors import with_status
from skewless.grpc.metrics import ServerMetrics
from skewless.grpc.servicer import OnlineServingServicer
from skewless.http import LOOKUP_METHOD, HttpServer, OnlineHttp, TlsFiles
from skewless.net import address
from skewless.registry import RegistryReader, open_registry
from skewless.serving.freshness import FreshnessReader
from skewless.serving.service import OnlineService, wall_clock_us

log = logging.getLogger(__name__)

DEFAULT_PORT: Final = 6566
SERVICE_NAME: Final = convert.SERVICE_NAME
HEALTH_SERVICES: Final = ("", SERVICE_NAME)  # "" is the whole server
_SERVING = health_pb2.HealthCheckResponse.SERVING
_NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


def receive_cap(max_request_bytes: int) -> int:
    """gRPC's cap on a received message: room above the limit to refuse (and count)
    requests over it ourselves; an int32 for grpc."""
    return min(2 * max_request_bytes, 2**31 - 1)


def http_tls_files(repo_path: Path, tls: TlsConfig | None) -> TlsFiles | None:
    """The HTTP port's TLS files from `serving.tls` (None: plain HTTP), resolved as
    server_credentials() resolves them (which checks they can be read)."""
    if tls is None:
        return None
    ca = tls.client_ca_file
    return TlsFiles(
        Path(resolve_path(repo_path, tls.cert_file)),
        Path(resolve_path(repo_path, tls.key_file)),
        None if ca is None else Path(resolve_path(repo_path, ca)),
    )


def server_credentials(repo_path: Path, tls: TlsConfig | None) -> grpc.ServerCredentials | None:
    """The port's TLS credentials from `serving.tls` (None: plaintext). A file that
    cannot be read, or does not hold what its key says (a PEM certificate chain, its
    private key without a passphrase, a CA's PEM certificates), is a ConfigError naming
    the key and the path: checked here, before any port is bound, as neither grpcio
    (which says only that it cannot bind) nor the HTTP server's ssl module names them."""
    if tls is None:
        return None
    config_file = str(repo_path / "feature_store.yaml")

    def read(key: str, value: str) -> tuple[bytes, str]:
        path = resolve_path(repo_path, value)
        try:
            return Path(path).read_bytes(), path
        except OSError as exc:
            raise ConfigError(
                config_file, f"serving.tls.{key}: cannot read {path}: {exc.strerror or exc}"
            ) from None

    chain, chain_path = read("cert_file", tls.cert_file)
    key, key_path = read("key_file", tls.key_file)
    _check_certificates(config_file, "cert_file", chain, chain_path)
    _check_key_pair(config_file, chain_path, key_path)
    client_ca = None
    if tls.client_ca_file is not None:
        client_ca, ca_path = read("client_ca_file", tls.client_ca_file)
        _check_certificates(config_file, "client_ca_file", client_ca, ca_path)
    return grpc.ssl_server_credentials(
        [(key, chain)], root_certificates=client_ca, require_client_auth=client_ca is not None
    )


def _check_certificates(config_file: str, key: str, pem: bytes, path: str) -> None:
    """A ConfigError unless `pem` holds PEM certificates."""
    try:
        ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER).load_verify_locations(
            cadata=pem.decode("ascii", errors="replace")
        )
    except ssl.SSLError as exc:
        raise ConfigError(
            config_file, f"serving.tls.{key}: {path} holds no PEM certificate ({exc.reason})"
        ) from None


def _check_key_pair(config_file: str, chain_path: str, key_path: str) -> None:
    """A ConfigError unless the key file holds the private key of the chain's first
    certificate, unencrypted (neither server asks for a passphrase)."""
    try:
        ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER).load_cert_chain(
            chain_path,
            key_path,
            password=lambda: b"",  # never prompt on the terminal
        )
    except ssl.SSLError as exc:
        if exc.reason == "KEY_VALUES_MISMATCH":
            why = f"is not the private key of serving.tls.cert_file's certificate ({chain_path})"
        else:
            why = "holds no PEM private key (or one with a passphrase, which is not supported)"
        raise ConfigError(config_file, f"serving.tls.key_file: {key_path} {why}") from None


def _add_online_serving(
    servicer: OnlineServingServicer, server: grpc.aio.Server, metrics: ServerMetrics | None
) -> None:
    """Register OnlineServing as the generated code would, with the status table (and
    the metrics' timing) around each method and responses that may already be
    serialized (convert.encode_lookup). Requests arrive as bytes: the handler checks
    their size and parses them inside the status table."""
    method = f"/{SERVICE_NAME}/GetOnlineFeatures"
    record = metrics.recorder(method) if metrics is not None else None
    handlers: dict[str, grpc.RpcMethodHandler[bytes, bytes]] = {
        "GetOnlineFeatures": grpc.unary_unary_rpc_method_handler(
            with_status(method, servicer.GetOnlineFeatures, record),
            request_deserializer=None,
            response_serializer=convert.serialize_response,
        )
    }
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE_NAME, handlers),))
    server.add_registered_method_handlers(SERVICE_NAME, handlers)


class OnlineServer:
    """One server over one backend; start() and stop() run on the caller's event loop."""

    def __init__(
        self,
        backend: OnlineService,
        *,
        host: str = "127.0.0.1",
        port: int = DEFAULT_PORT,
        poll_interval_s: float = 1.0,
        metrics_port: int | None = None,
        credentials: grpc.ServerCredentials | None = None,
        http_port: int | None = None,
        http_tls: TlsFiles | None = None,
        registry: RegistryReader | None = None,
        clock: Callable[[], int] | None = None,
    ) -> None:
        """With metrics, `registry` (the backend's registry) gives the views' freshness
        gauges at `clock`'s time (microseconds since the epoch; by default the wall
        clock's); without it there are none."""
        self.backend = backend
        self.credentials = credentials  # None: plaintext
        self.metrics = None if metrics_port is None else ServerMetrics(metrics_port)
        if self.metrics is not None and registry is not None:
            reader = FreshnessReader(registry, self._served_views, clock or wall_clock_us)
            self.metrics.watch_freshness(reader)
        self.http = (
            None
            if http_port is None
            else HttpServer(
                OnlineHttp(
                    backend,
                    lambda: self.serving,
                    None if self.metrics is None else self.metrics.http_recorder(LOOKUP_METHOD),
                ).app(),
                host,
                http_port,
                http_tls,
            )
        )
        self.host = host
        self.port = port
        self.poll_interval_s = poll_interval_s
        self._server: grpc.aio.Server | None = None
        self._health: health.aio.HealthServicer | None = None
        self._watch_task: asyncio.Task[None] | None = None
        self._serving: bool | None = None
        self._stopping = False

    def _served_views(self) -> Iterable[FeatureView]:
        return self.backend.catalog.views.values() if self.backend.ready else ()

    @property
    def serving(self) -> bool:
        """What the health service reports: SERVING (True) or NOT_SERVING."""
        return bool(self._serving) and not self._stopping

    async def start(self) -> int:
        """Load the definitions, check Redis, bind and start. Returns the bound port
        (useful with port 0). The server starts even if Redis or the registry is not
        ready: health says NOT_SERVING until they are.

        All or nothing: when any step fails (a port taken, the HTTP server refusing to
        start, anything raised), what had started is stopped (gRPC, /metrics, HTTP, the
        backend's connections) before the error propagates, so no caller is left with a
        port served by an object it never got."""
        try:
            return await self._start()
        except BaseException:
            await self.stop(grace_s=0)
            raise

    async def _start(self) -> int:
        server = grpc.aio.server(
            options=[
                # never share the port silently with another server started on it
                ("grpc.so_reuseport", 0),
                (
                    "grpc.max_receive_message_length",
                    receive_cap(self.backend.limits.max_request_bytes),
                ),
            ],
        )
        self._server = server  # stop() stops it from here on, started or not
        self._health = health.aio.HealthServicer()
        _add_online_serving(OnlineServingServicer(self.backend), server, self.metrics)
        health_pb2_grpc.add_HealthServicer_to_server(self._health, server)
        reflection.enable_server_reflection(
            (SERVICE_NAME, health.SERVICE_NAME, reflection.SERVICE_NAME), server
        )
        where = address(self.host, self.port)
        try:
            if self.credentials is None:
                bound = server.add_insecure_port(where)
            else:
                bound = server.add_secure_port(where, self.credentials)
        except RuntimeError:  # what grpcio raises when it cannot bind
            bound = 0
        if not bound:
            raise BindError(where, "gRPC", "the port is taken or the address is not local")
        for name in HEALTH_SERVICES:
            await self._health.set(name, _NOT_SERVING)
        await self._check()
        await server.start()
        self.port = bound
        self._watch_task = asyncio.create_task(self._watch(), name="skewless-grpc-watch")
        log.info(
            "serving on %s (%s)",
            address(self.host, bound),
            "plaintext" if self.credentials is None else "TLS",
        )
        if self.metrics is not None:
            try:
                metrics_port = self.metrics.start_http(self.host)
            except OSError as exc:
                where = address(self.host, self.metrics.port)
                raise BindError(where, "metrics", exc.strerror or str(exc)) from None
            log.info("metrics on http://%s/metrics", address(self.host, metrics_port))
        if self.http is not None:
            await self.http.start()
        return bound

    @property
    def metrics_port(self) -> int | None:
        """Where /metrics is served (None: no metrics)."""
        return None if self.metrics is None else self.metrics.port

    @property
    def http_port(self) -> int | None:
        """Where HTTP/JSON is served (None: not served)."""
        return None if self.http is None else self.http.port

    async def stop(self, grace_s: float | None = 5.0) -> None:
        """Report NOT_SERVING, finish calls in flight over gRPC and HTTP (up to
        `grace_s`), close Redis and the metrics' HTTP server."""
        self._stopping = True
        if self._watch_task is not None:
            self._watch_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watch_task
            self._watch_task = None
        if self._health is not None:
            await self._health.enter_graceful_shutdown()
        stopping = [] if self.http is None else [self.http.stop(grace_s)]
        if self._server is not None:
            stopping.append(self._server.stop(grace_s))
            self._server = None
        await asyncio.gather(*stopping)  # both finish their calls within the same grace
        await self.backend.close()
        if self.metrics is not None:
            self.metrics.stop_http()

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(self.poll_interval_s)
            try:
                await self._check()
            except Exception:  # a background task must outlive any one failed check
                log.exception("health check failed")

    async def _check(self) -> None:
        await self.backend.refresh()
        if not self.backend.ready:
            serving, why = False, " (no feature view applied, or the registry is unreadable)"
        elif not await self.backend.ping():
            serving, why = False, " (Redis does not answer PING)"
        else:
            serving, why = True, ""
        if serving != self._serving:
            log.info("health: %s%s", "SERVING" if serving else "NOT_SERVING", why)
            self._serving = serving
            if self.metrics is not None:
                self.metrics.set_serving(serving)
            assert self._health is not None
            for name in HEALTH_SERVICES:
                await self._health.set(name, _SERVING if serving else _NOT_SERVING)


def _server_of(
    repo_path: str | Path,
    config: RepoConfig | None,
    *,
    host: str,
    port: int,
    metrics_port: int | None,
    poll_interval_s: float = 1.0,
    http_port: int | None = None,
    clock: Callable[[], int] | None = None,
) -> OnlineServer:
    """The repo's server, not started: its backend, and its TLS from `serving.tls`."""
    root = Path(repo_path).resolve()
    config = config or load_config(root)
    credentials = server_credentials(root, config.serving.tls)
    return OnlineServer(
        OnlineService.from_repo(root, config, clock=clock),
        host=host,
        port=port,
        poll_interval_s=poll_interval_s,
        metrics_port=metrics_port,
        credentials=credentials,
        http_port=http_port,
        http_tls=http_tls_files(root, config.serving.tls),
        # the freshness gauges' own reader of the backend's registry
        registry=None if metrics_port is None else open_registry(config, root),
        clock=clock,
    )


async def serve_async(
    repo_path: str | Path,
    port: int = DEFAULT_PORT,
    host: str = "127.0.0.1",
    *,
    config: RepoConfig | None = None,
    on_started: Callable[[int], None] | None = None,
    grace_s: float = 5.0,
    metrics_port: int | None = None,
    http_port: int | None = None,
) -> None:
    """Serve until SIGINT or SIGTERM, then shut down gracefully. `on_started` receives
    the bound port once the server accepts calls. With `metrics_port`, /metrics is
    served over HTTP on that port of the same host; with `http_port`, HTTP/JSON lookups
    (0: a free port; the bound one is logged)."""
    server = _server_of(
        repo_path, config, host=host, port=port, metrics_port=metrics_port, http_port=http_port
    )
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):  # not the main thread
            loop.add_signal_handler(sig, stopping.set)
    bound = await server.start()  # all or nothing: on failure it stopped what it started
    try:
        # What is loaded by now (modules, definitions, the plan caches' owners) lives as
        # long as the process: take it out of the collector's reach. Otherwise every
        # full collection walks ~100k start-up objects (about 35 ms on this project's
        # machine), which shows up as a stall in the latency tail.
        gc.collect()
        gc.freeze()
        if on_started is not None:
            on_started(bound)
        await stopping.wait()
        log.info("shutting down (grace %s s)", grace_s)
    finally:
        await server.stop(grace_s)


def serve(
    repo_path: str | Path,
    port: int = DEFAULT_PORT,
    host: str = "127.0.0.1",
    *,
    on_started: Callable[[int], None] | None = None,
    metrics_port: int | None = None,
    http_port: int | None = None,
) -> None:
    """Blocking: serve the repo's online features until interrupted."""
    asyncio.run(
        serve_async(
            repo_path,
            port,
            host,
            on_started=on_started,
            metrics_port=metrics_port,
            http_port=http_port,
        )
    )


@dataclass(frozen=True)
class RunningServer:
    host: str
    port: int
    server: OnlineServer

    @property
    def metrics_port(self) -> int | None:
        return self.server.metrics_port

    @property
    def http_port(self) -> int | None:
        return self.server.http_port

    @property
    def target(self) -> str:
        """The address to give OnlineClient or a grpc channel."""
        return address(self.host, self.port)

    @property
    def http_url(self) -> str | None:
        """The HTTP/JSON endpoints' base URL, e.g. http://127.0.0.1:PORT (None: none)."""
        http = self.server.http
        return None if http is None else f"{http.scheme}://{address(self.host, http.port)}"


@contextlib.contextmanager
def running_server(
    repo_path: str | Path,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    poll_interval_s: float = 1.0,
    config: RepoConfig | None = None,
    metrics_port: int | None = None,
    http_port: int | None = None,
    clock: Callable[[], int] | None = None,
) -> Iterator[RunningServer]:
    """A server on its own event loop in a background thread (port 0: a free port),
    stopped on exit; with `metrics_port` (0: a free one) it serves /metrics too, with
    `http_port` (0: a free one) HTTP/JSON; `clock` gives its request times (microseconds
    since the epoch; by default the wall clock's). For tests and notebooks; production
    runs serve()."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="skewless-grpc", daemon=True)
    thread.start()

    async def start() -> OnlineServer:
        server = _server_of(
            repo_path,
            config,
            host=host,
            port=port,
            poll_interval_s=poll_interval_s,
            metrics_port=metrics_port,
            http_port=http_port,
            clock=clock,
        )
        await server.start()
        return server

    server: OnlineServer | None = None
    try:
        server = asyncio.run_coroutine_threadsafe(start(), loop).result(timeout=60)
        yield RunningServer(host, server.port, server)
    finally:
        if server is not None:
            asyncio.run_coroutine_threadsafe(server.stop(grace_s=1.0), loop).result(timeout=60)
        # the registry reads' worker thread (asyncio.to_thread) ends here, not after us
        asyncio.run_coroutine_threadsafe(loop.shutdown_default_executor(), loop).result(60)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=60)
        loop.close()
