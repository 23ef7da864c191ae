"""The online server's Prometheus metrics, served over HTTP by `skewless serve --metrics-port`.

- `skewless_online_requests_total{method, code}`: calls answered, by gRPC status code,
  refusals included: over a limit (RESOURCE_EXHAUSTED) or undecodable (INVALID_ARGUMENT).
  Requests gRPC refuses before any handler runs (over twice serving.max_request_bytes)
  are not counted: the server never sees them. HTTP/JSON calls (`skewless serve
  --http-port`) are counted under their method (`POST /get-online-features`) with the
  HTTP status as the code.
- `skewless_online_request_seconds{method}`: a histogram of the time a call spends in
  the server's handler, from the request's bytes to the encoded response (Redis round
  trips included; gRPC's own transport and queueing not). Set against a client's
  latency, it tells the server's work from the network and the client.
- `skewless_online_serving`: 1 while the health service says SERVING, else 0.
- `skewless_view_materialized_until_seconds{view}`: the event time (Unix seconds) up to
  which the view's values online are materialized: the greatest end of any successful
  run of its current definition (serving/freshness.py says why that rule).
- `skewless_view_freshness_lag_seconds{view}`: the server's now minus that time (an
  alert on it tells a view that stopped being materialized).
- `skewless_view_last_success_seconds{view}`: when (Unix seconds) the view's last
  successful run of its current definition finished.

The three view gauges cover the views the server serves with `online=True`, and are read
from the registry at each scrape (one read of the recorded runs, on the scrape's thread,
never a background one). A view never materialized under its current definition has no
sample. When the registry cannot be read, the scrape leaves the view gauges out and
still returns every other metric; the failure is logged once (again only when the error
changes, or after the registry was readable in between).

Each server has its own registry (no process-global state), so several servers in one
process (tests, notebooks) keep separate counts.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Final

import grpc
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server
from prometheus_client.metrics_core import GaugeMetricFamily, Metric

from skewless.serving.freshness import ViewFreshness

log = logging.getLogger(__name__)

# Sub-millisecond resolution where a lookup's time normally lies, then coarser.
LATENCY_BUCKETS: Final = (
    0.0001,
    0.00025,
    0.0005,
    0.00075,
    0.001,
    0.0015,
    0.002,
    0.003,
    0.005,
    0.0075,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
)


class FreshnessCollector:
    """The view gauges, computed at each scrape by `read` (which reads the registry).
    Scrapes may run at once on the HTTP server's threads: the record of the last failure
    logged is guarded by a lock."""

    def __init__(self, read: Callable[[], Sequence[ViewFreshness]]) -> None:
        self._read = read
        self._lock = threading.Lock()
        self._failure: str | None = None  # the error last logged; None: the last read worked

    def describe(self) -> list[Metric]:
        """The families without samples: lets the registry refuse a clash of names
        without reading anything."""
        return list(self._families())

    def collect(self) -> Iterator[Metric]:
        try:
            rows = self._read()
        except Exception as exc:  # a scrape must keep every other metric, whatever broke
            self._failed(f"{type(exc).__name__}: {exc}")
            return
        with self._lock:
            if self._failure is not None:
                log.info("view freshness: the registry is readable again")
                self._failure = None
        yield from self._families(rows)

    def _failed(self, error: str) -> None:
        with self._lock:
            if error == self._failure:
                return
            self._failure = error
        log.warning("view freshness left out of /metrics: cannot read the registry: %s", error)

    @staticmethod
    def _families(rows: Sequence[ViewFreshness] = ()) -> Iterator[GaugeMetricFamily]:
        until = GaugeMetricFamily(
            "skewless_view_materialized_until_seconds",
            "Event time (Unix seconds) up to which the view is materialized online: the "
            "greatest end of a successful run of its current definition.",
            labels=["view"],
        )
        lag = GaugeMetricFamily(
            "skewless_view_freshness_lag_seconds",
            "Now minus skewless_view_materialized_until_seconds: how far the view's online "
            "values are behind.",
            labels=["view"],
        )
        success = GaugeMetricFamily(
            "skewless_view_last_success_seconds",
            "When (Unix seconds) the view's last successful run of its current definition "
            "finished.",
            labels=["view"],
        )
        for row in rows:
            if row.materialized_until is None or row.last_success is None:
                continue  # never materialized: no sample
            until.add_metric([row.name], row.materialized_until.timestamp())
            if row.lag_seconds is not None:
                lag.add_metric([row.name], row.lag_seconds)
            success.add_metric([row.name], row.last_success.timestamp())
        yield from (until, lag, success)


class ServerMetrics:
    """The metrics of one server, to be served over HTTP on `port` (0: a free one; the
    bound port once start_http() ran)."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.registry = CollectorRegistry()
        self._requests = Counter(
            "skewless_online_requests",
            "Calls answered by the online server, by method and status code (gRPC's, or "
            "HTTP's for HTTP/JSON calls).",
            ["method", "code"],
            registry=self.registry,
        )
        self._seconds = Histogram(
            "skewless_online_request_seconds",
            "Seconds a call spent in the server's handler (request bytes to encoded "
            "response, Redis included).",
            ["method"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self._serving = Gauge(
            "skewless_online_serving",
            "1 while the health service reports SERVING, else 0.",
            registry=self.registry,
        )
        self._http: Any = None
        self._thread: threading.Thread | None = None

    def recorder(self, method: str) -> Callable[[grpc.StatusCode, float], None]:
        """A function that records one call of `method`: its status and seconds. The
        label children are bound here, once, not on every call."""
        seconds = self._seconds.labels(method)
        by_code = {code: self._requests.labels(method, code.name) for code in grpc.StatusCode}
        unknown = by_code[grpc.StatusCode.UNKNOWN]

        def record(code: grpc.StatusCode, elapsed_s: float) -> None:
            seconds.observe(elapsed_s)
            by_code.get(code, unknown).inc()

        return record

    def http_recorder(self, method: str) -> Callable[[int, float], None]:
        """recorder() for an HTTP endpoint (`method` such as "POST /get-online-features"):
        its code label is the HTTP status."""
        seconds = self._seconds.labels(method)

        def record(status: int, elapsed_s: float) -> None:
            seconds.observe(elapsed_s)
            self._requests.labels(method, str(status)).inc()

        return record

    def watch_freshness(self, read: Callable[[], Sequence[ViewFreshness]]) -> None:
        """Export the view gauges, computed by `read` at each scrape."""
        self.registry.register(FreshnessCollector(read))

    def set_serving(self, serving: bool) -> None:
        self._serving.set(1 if serving else 0)

    def start_http(self, host: str) -> int:
        """Serve /metrics on (host, port) from a background thread; returns the bound
        port."""
        self._http, self._thread = start_http_server(self.port, addr=host, registry=self.registry)
        self.port = int(self._http.server_port)
        return self.port

    def stop_http(self) -> None:
        if self._http is not None:
            self._http.shutdown()
            self._http.server_close()
            self._http = None
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
