"""What the gRPC servicer delegates to: domain types in, domain types out, no protobuf.

It holds the live Catalog (reloaded when the registry version changes) and an asyncio
Redis client, and answers with the serving core (skewless.serving.service), the same code
FeatureStore.get_online_features runs, so both answer identically by construction.

Redis failures become OnlineStoreUnavailableError (retryable) quickly: every call is
bounded by the socket timeouts and by the caller's deadline, redis-py retries once
without backoff (so a pooled connection that died with a Redis restart is replaced on the
next call), and nothing is cached across calls, so the server recovers on its own.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from skewless.config import RepoConfig, load_config
from skewless.errors import OnlineStoreUnavailableError
from skewless.grpc.catalog import Catalog, CatalogNotLoadedError, load_catalog
from skewless.online.embedded import EmbeddedServer, embedded_dir
from skewless.registry import RegistryReader, open_registry
from skewless.serving.service import OnlineResponse, get_online_features_async
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


class OnlineBackend:
    def __init__(
        self,
        registry: RegistryReader,
        project: str,
        client: aioredis.Redis,
        *,
        default_timeout_s: float = 5.0,
    ) -> None:
        self._registry = registry
        self._project = project
        self._redis = client
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
    ) -> OnlineBackend:
        config = config or load_config(repo_path)
        store = config.online_store
        # No URL: the repo's embedded server (started if need be), as materialize uses.
        url = store.url or EmbeddedServer(embedded_dir(repo_path)).ensure_running()
        url = store.connection_url(url)
        client = aioredis.Redis.from_url(
            url,
            password=store.password,
            socket_timeout=socket_timeout_s,
            socket_connect_timeout=connect_timeout_s,
            retry=Retry(NoBackoff(), retries=1),
        )
        return cls(open_registry(config, repo_path), config.project, client)

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
        try:
            return bool(await asyncio.wait_for(self._redis.ping(), timeout_s))
        except (TimeoutError, RedisConnectionError, RedisTimeoutError):
            return False

    async def _mget(self, keys: list[bytes]) -> list[bytes | None]:
        if not keys:
            return []
        values = await self._redis.mget(keys)
        return [v.encode() if isinstance(v, str) else v for v in values]

    async def close(self) -> None:
        await self._redis.aclose()

    # --- lookups -----------------------------------------------------------------------

    async def get_online_features(
        self, query: OnlineQuery, *, time_remaining_s: float | None = None
    ) -> OnlineAnswer:
        """Look up `query` with the current definitions, within the caller's remaining
        time (None: the default timeout)."""
        catalog = self.catalog
        requests = catalog.compile(query.features, full_feature_names=query.full_feature_names)
        lookup = get_online_features_async(self._mget, catalog.project, requests, query.entity_rows)
        budget = self._budget(time_remaining_s)
        try:
            response = await asyncio.wait_for(lookup, budget)
        except TimeoutError:
            raise OnlineStoreUnavailableError(
                f"no answer within the call's deadline ({budget:.3f} s)"
            ) from None
        except (RedisConnectionError, RedisTimeoutError) as exc:
            raise OnlineStoreUnavailableError(str(exc)) from exc
        dtypes = {c.output: c.dtype for req in requests for c in req.columns}
        return OnlineAnswer(response, dtypes, catalog.registry_version)

    def _budget(self, time_remaining_s: float | None) -> float:
        if time_remaining_s is None:
            return self._default_timeout_s
        return max(0.0, time_remaining_s - _DEADLINE_MARGIN_S)
