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
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from skewless.config import RepoConfig, load_config
from skewless.errors import OnlineStoreUnavailableError
from skewless.online.embedded import EmbeddedServer, embedded_dir
from skewless.online.redis_reader import redis_reader
from skewless.online.store import OnlineReader
from skewless.registry import RegistryReader, open_registry
from skewless.serving.catalog import Catalog, CatalogNotLoadedError, load_catalog
from skewless.serving.plan import LookupPlan, ViewEntries
from skewless.serving.response import OnlineResponse
from skewless.timeutil import utc_micros
from skewless.types import DType

log = logging.getLogger(__name__)

# Answer UNAVAILABLE a little before the caller's deadline rather than let it expire.
_DEADLINE_MARGIN_S = 0.02


@dataclass(frozen=True)
class OnlineQuery:
    """One lookup: feature refs (or a feature service's name) for some entity rows."""

    features: list[str] | str
    entity_rows: list[dict[str, Any]]
    full_feature_names: bool = False


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


def _answer(
    plan: LookupPlan,
    entity_rows: Sequence[Mapping[str, Any]],
    raw: Sequence[bytes | None],
    request_time: datetime | None,
) -> OnlineResponse:
    now_us = utc_micros(request_time or datetime.now(UTC))
    return plan.response(entity_rows, plan.assemble(raw, len(entity_rows), now_us))


def lookup(
    plan: LookupPlan,
    read: Callable[[list[bytes]], list[bytes | None]],
    entity_rows: Sequence[Mapping[str, Any]],
    request_time: datetime | None = None,
) -> OnlineResponse:
    """A blocking lookup with a compiled plan: one `read` (an MGET) for every view."""
    keys = plan.keys(entity_rows)
    return _answer(plan, entity_rows, read(keys) if keys else [], request_time)


class OnlineService:
    def __init__(
        self,
        registry: RegistryReader,
        project: str,
        reader: OnlineReader,
        *,
        default_timeout_s: float = 5.0,
    ) -> None:
        self._registry = registry
        self._project = project
        self._redis = reader
        self._default_timeout_s = default_timeout_s
        self._catalog: Catalog | None = None
        self._load_error = "not read yet"

    @classmethod
    def from_repo(
        cls,
        repo_path: Path,
        config: RepoConfig | None = None,
        *,
        socket_timeout_s: float = 1.0,
        connect_timeout_s: float = 1.0,
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
        return cls(open_registry(config, repo_path), config.project, reader)

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

    # --- lookups -----------------------------------------------------------------------

    async def lookup(
        self,
        features: Sequence[str] | str,
        entity_columns: Mapping[str, Sequence[Any]],
        rows: int,
        *,
        full_feature_names: bool = False,
        time_remaining_s: float | None = None,
    ) -> Lookup:
        """Look up `features` for `rows` entity rows given as columns (join key ->
        values) with the current definitions, within the caller's remaining time (None:
        the default timeout)."""
        catalog = self.catalog
        plan = catalog.plan(features, full_feature_names=full_feature_names)
        raw = await self._read(plan.keys_from_columns(entity_columns, rows), time_remaining_s)
        views = plan.entries(raw, rows, utc_micros(datetime.now(UTC)))
        return Lookup(plan, rows, views, catalog.registry_version)

    async def _read(self, keys: list[bytes], time_remaining_s: float | None) -> list[bytes | None]:
        budget = self._budget(time_remaining_s)
        try:
            return await self._redis.mget(keys, budget)
        except TimeoutError:
            raise OnlineStoreUnavailableError(
                f"no answer within the call's deadline ({budget:.3f} s)"
            ) from None

    def _budget(self, time_remaining_s: float | None) -> float:
        if time_remaining_s is None:
            return self._default_timeout_s
        return max(0.0, time_remaining_s - _DEADLINE_MARGIN_S)
