"""What serving and materialization need of an online store, whatever the backend.

An online store holds one value per key (project, view, entity: online/codec.py) and
only ever replaces a value with a higher ranked one (rules/ranking.py). RedisOnlineStore
(online/redis.py) is the one implementation; a Redis Cluster or another backend is
another class with these methods, and nothing in serving changes.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

# (key, value, expire_at_ms): the value's header carries its rank; 0 means no expiry
Item = tuple[bytes, bytes, int]


@dataclass(frozen=True)
class WriteResult:
    offered: int
    written: int

    @property
    def skipped(self) -> int:
        """Values not written because the stored one ranked as high or higher."""
        return self.offered - self.written


class OnlineStore(Protocol):
    """Blocking access: materialization's writes and in-process lookups."""

    def write(self, items: Iterable[Item]) -> WriteResult:
        """Ordered writes: each value replaces the stored one only if it ranks higher,
        decided atomically by the store."""
        ...

    def read(self, keys: Sequence[bytes]) -> list[bytes | None]:
        """The values of `keys`, in order (None where nothing is stored)."""
        ...

    def delete(self, keys: Sequence[bytes]) -> int:
        """Remove `keys`; returns how many existed."""
        ...

    def close(self) -> None:
        """Close the store's connections."""
        ...


class OnlineReader(Protocol):
    """Asynchronous reads, for the server: every call is bounded by `timeout_s`."""

    async def mget(self, keys: list[bytes], timeout_s: float) -> list[bytes | None]:
        """The values of `keys`; raises OnlineStoreUnavailableError, or TimeoutError
        after `timeout_s`."""
        ...

    async def ping(self, timeout_s: float) -> bool: ...

    async def close(self) -> None: ...
