"""The transport-free online service: domain types in, domain types out, no protobuf.

`lookup()` is the blocking lookup FeatureStore.get_online_features runs; OnlineService
is what the gRPC servicer delegates to. Both answer with the serving core's compiled
lookups (serving/plan.py, cached per definitions snapshot: serving/catalog.py), so both
answer identically by construction. OnlineService holds the live Catalog (reloaded when
the registry version changes) and an asynchronous reader of the online store
(online/store.py's OnlineReader).

Redis failures become OnlineStoreUnavailableError (retryable) quickly: every call is
bounded by the socket timeout and by the caller's deadline, a connection that died (say
with a Redis restart) is replaced on the next call (a call that meets it dead retries once
on a new one), and no value is cached across calls, so the server recovers on its own.
The read's budget is what is left of the caller's deadline when the MGET is sent, less a
margin to send the refusal in (margin_s), so a hung Redis is answered UNAVAILABLE before
the caller gives up.

OnlineService.lookup checks the server's limits (serving/limits.py) before any work. The
work of a large lookup (decoding its entity columns, building its keys, gathering its
answer) runs on a worker thread, and its read is split into MGETs of READ_KEYS keys, so
the event loop keeps answering other calls, health checks and Redis replies meanwhile.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from skewless.config import RepoConfig, ServingConfig, load_config
from skewless.errors import OnlineStoreUnavailableError, ServerBusyError
from skewless.online.embedded import EmbeddedServer, embedded_dir
from skewless.online.redis_reader import redis_reader
from skewless.online.store import OnlineReader
from skewless.registry import RegistryReader, open_registry
from skewless.serving import limits
from skewless.serving.catalog import Catalog, CatalogNotLoadedError, load_catalog
from skewless.serving.limits import InflightBytes
from skewless.serving.plan import LookupPlan, ViewEntries
from skewless.serving.response import OnlineResponse
from skewless.timeutil import utc_micros
from skewless.types import DType

log = logging.getLogger(__name__)

T = TypeVar("T")

# Redis gets the caller's deadline less this share of it (within the bounds below), so
# that the UNAVAILABLE of a hung Redis reaches the caller before its deadline does, even
# while the server is busy.
_MARGIN_SHARE = 0.2
_MARGIN_MIN_S = 0.04
_MARGIN_MAX_S = 0.25

# A lookup of at least this many values (entity rows x features) does its work on the
# lookup thread: on the event loop, 2 to 5 ms that hold up every other call; there,
# about 0.6 ms of thread hops (test_grpc_hardening.py checks that others go on).
OFFLOAD_VALUES = 10_000

# Keys per MGET (see OnlineService._read): a few ms of Redis's time at most.
READ_KEYS = 2000


def wall_clock_us() -> int:
    """Now, in microseconds since the epoch (UTC)."""
    return utc_micros(datetime.now(UTC))


def margin_s(time_remaining_s: float) -> float:
    """The margin for a call with `time_remaining_s` left: never over half of it, so
    Redis has a chance even within a very short deadline."""
    margin = min(max(_MARGIN_SHARE * time_remaining_s, _MARGIN_MIN_S), _MARGIN_MAX_S)
    return min(margin, time_remaining_s / 2)


@dataclass(frozen=True)
class OnlineQuery:
    """One lookup: feature refs (or a feature service's name) for some entity rows."""

    features: list[str] | str
    entity_rows: list[dict[str, Any]]
    full_feature_names: bool = False
    # request field -> one value per entity row, for on-demand features
    request_data: dict[str, list[Any]] = field(default_factory=dict)


@dataclass(frozen=True)
class OnlineAnswer:
    response: OnlineResponse
    dtypes: Mapping[str, DType]  # output feature name -> its declared type
    registry_version: int


@dataclass(frozen=True)
class Lookup:
    """A lookup's answer, column-major, as the gRPC response is laid out: per view its
    stored entries."""

    plan: LookupPlan
    rows: int
    views: list[ViewEntries]
    registry_version: int
    answer_by: float = float("inf")  # time.monotonic() by which the call must be answered

    @property
    def size(self) -> int:
        """The values it answers: entity rows x features."""
        return self.rows * len(self.plan.features)


def lookup(
    plan: LookupPlan,
    read: Callable[[list[bytes]], list[bytes | None]],
    entity_rows: Sequence[Mapping[str, Any]],
    request_time: datetime | None = None,
    request_data: Mapping[str, Sequence[Any]] | None = None,
) -> OnlineResponse:
    """A blocking lookup with a compiled plan: one `read` (an MGET) for every view.
    `request_data`: request field -> one value per entity row, for on-demand features
    (a field it lacks is taken from the entity rows, as Feast passes request values)."""
    rows = len(entity_rows)
    values = dict(request_data or {})
    for name in plan.request_fields:
        if name not in values and entity_rows and all(name in r for r in entity_rows):
            values[name] = [r[name] for r in entity_rows]
    request = plan.request_arrays(values, rows)  # checked before anything is read
    keys = plan.keys(entity_rows)
    raw = read(keys) if keys else []
    now_us = utc_micros(request_time or datetime.now(UTC))
    return plan.response(entity_rows, plan.assemble(raw, rows, now_us), request)


class OnlineService:
    def __init__(
        self,
        registry: RegistryReader,
        project: str,
        reader: OnlineReader,
        *,
        default_timeout_s: float = 5.0,
        limits: ServingConfig | None = None,
        clock: Callable[[], int] | None = None,
    ) -> None:
        """`clock`: the request time of each lookup, in microseconds since the epoch
        (UTC); by default the wall clock. Tests pass their own to serve at chosen times
        (windowed aggregations depend on it)."""
        self._registry = registry
        self._clock = clock or wall_clock_us
        self._project = project
        self._redis = reader
        self._default_timeout_s = default_timeout_s
        self.limits = limits or ServingConfig()
        # the request bytes of every transport's calls in flight (gRPC and HTTP alike)
        self.inflight = InflightBytes(self.limits.max_inflight_request_bytes)
        self._catalog: Catalog | None = None
        self._load_error = "not read yet"
        # One thread: large lookups take turns on it (the GIL runs one at a time anyway),
        # and the event loop keeps a fair share of the interpreter meanwhile.
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="skewless-lookup")

    @classmethod
    def from_repo(
        cls,
        repo_path: Path,
        config: RepoConfig | None = None,
        *,
        socket_timeout_s: float = 1.0,
        connect_timeout_s: float = 1.0,
        clock: Callable[[], int] | None = None,
    ) -> OnlineService:
        config = config or load_config(repo_path)
        store = config.online_store
        # No URL: the repo's embedded server (started if need be), as materialize uses.
        url = store.url or EmbeddedServer(embedded_dir(repo_path)).ensure_running()
        url = store.connection_url(url)
        reader = redis_reader(
            url,
            password=store.password,
            socket_timeout_s=socket_timeout_s,
            connect_timeout_s=connect_timeout_s,
        )
        return cls(
            open_registry(config, repo_path),
            config.project,
            reader,
            limits=config.serving,
            clock=clock,
        )

    # --- definitions -------------------------------------------------------------------

    @property
    def catalog(self) -> Catalog:
        if self._catalog is None:
            raise CatalogNotLoadedError(self._load_error)
        return self._catalog

    @property
    def ready(self) -> bool:
        """Definitions are loaded and at least one feature view is applied."""
        return self._catalog is not None and bool(self._catalog.views)

    async def refresh(self) -> bool:
        """Reload the definitions if the registry version changed. Returns whether it
        did. A failure keeps the previous catalog (and is logged)."""
        try:
            version = await asyncio.to_thread(self._registry.registry_version)
            if self._catalog is not None and self._catalog.registry_version == version:
                return False
            catalog = await asyncio.to_thread(load_catalog, self._registry, self._project)
        except Exception as exc:  # keep serving the last good definitions
            self._load_error = f"{type(exc).__name__}: {exc}"
            log.warning("registry read failed (keeping registry v%s): %s", self._version(), exc)
            return False
        previous = self._version()
        self._catalog = catalog
        log.info(
            "definitions loaded from registry v%s (was %s)", catalog.registry_version, previous
        )
        return True

    def _version(self) -> int | None:
        return None if self._catalog is None else self._catalog.registry_version

    # --- online store ------------------------------------------------------------------

    async def ping(self, timeout_s: float = 1.0) -> bool:
        return await self._redis.ping(timeout_s)

    async def close(self) -> None:
        await self._redis.close()
        # a job whose call was abandoned may still run: wait for it off the event loop
        await asyncio.to_thread(self._worker.shutdown, wait=True, cancel_futures=True)

    # --- lookups -----------------------------------------------------------------------

    async def lookup(
        self,
        features: Sequence[str] | str,
        rows: int,
        entity_columns: Callable[[Sequence[str]], Mapping[str, Sequence[Any]]],
        *,
        full_feature_names: bool = False,
        time_remaining_s: float | None = None,
        request_columns: Callable[[Mapping[str, DType]], Mapping[str, Sequence[Any]]] | None = None,
    ) -> Lookup:
        """Look up `features` for `rows` entity rows with the current definitions, within
        the caller's remaining time (None: the default timeout). `entity_columns(keys)`
        gives the rows as columns (join key -> `rows` values) of the join keys `keys`,
        and `request_columns(fields)` the request values of the request fields `fields`
        (name -> declared type; for on-demand features); both are called only once the
        server's limits are checked."""
        answer_by = self._answer_by(time_remaining_s)
        limits.check_entity_rows(rows, self.limits)
        if not isinstance(features, str):  # a feature service is counted once compiled
            limits.check_features(rows, len(features), self.limits)
        catalog = self.catalog
        plan = catalog.plan(features, full_feature_names=full_feature_names)
        limits.check_features(rows, len(plan.features), self.limits)
        size = rows * len(plan.features)

        fields = plan.request_fields
        given = request_columns(fields) if request_columns is not None and fields else {}
        request = plan.request_arrays(given, rows)

        def keys() -> list[bytes]:
            return plan.keys_from_columns(entity_columns(plan.join_keys), rows)

        raw = await self._read(await self.run(size, answer_by, keys), answer_by)
        now_us = self._clock()
        views = await self.run(size, answer_by, plan.entries, raw, rows, now_us, request)
        return Lookup(plan, rows, views, catalog.registry_version, answer_by)

    async def run(self, size: int, answer_by: float, work: Callable[..., T], *args: Any) -> T:
        """`work(*args)` for `size` values of a call to be answered by `answer_by`: on the
        event loop when small; on the lookup thread when large (OFFLOAD_VALUES), given
        up (ServerBusyError) if the call's time runs out while it waits or runs there."""
        if size < OFFLOAD_VALUES:
            return work(*args)
        future = asyncio.wrap_future(self._worker.submit(work, *args))
        try:
            return await asyncio.wait_for(future, answer_by - time.monotonic())
        except TimeoutError:  # a waiting one is dropped; a running one ends unheard
            raise ServerBusyError(
                "the server is busy: the call's time ran out while its rows were processed "
                "(retry, or give calls more time)"
            ) from None

    def _answer_by(self, time_remaining_s: float | None) -> float:
        """When (time.monotonic()) the call must have its answer: the caller's deadline
        less the margin to send it in."""
        if time_remaining_s is None:
            return time.monotonic() + self._default_timeout_s
        return time.monotonic() + time_remaining_s - margin_s(time_remaining_s)

    async def _read(self, keys: list[bytes], answer_by: float) -> list[bytes | None]:
        """The stored values of `keys`, READ_KEYS at a time: the connection to Redis is
        shared and answers in order, so a large read in one MGET would hold up every
        other call's read (and Redis's other clients) until all of it was sent."""
        if len(keys) <= READ_KEYS:
            return await self._mget(keys, answer_by)
        raw: list[bytes | None] = []
        for start in range(0, len(keys), READ_KEYS):
            raw.extend(await self._mget(keys[start : start + READ_KEYS], answer_by))
        return raw

    async def _mget(self, keys: list[bytes], answer_by: float) -> list[bytes | None]:
        budget = answer_by - time.monotonic()  # from when this MGET is sent
        if budget <= 0 and keys:
            raise ServerBusyError(
                "the server is busy: the call's time ran out before the online store was "
                "read (retry, or give calls more time)"
            )
        try:
            return await self._redis.mget(keys, budget)
        except TimeoutError:
            raise OnlineStoreUnavailableError(
                f"no answer within the call's deadline ({budget:.3f} s)"
            ) from None
