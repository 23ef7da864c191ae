"""The Redis online store: one key per (project, view, entity), ordered writes.

A write replaces the stored value only if its row ranks higher (rules/ranking.py), decided
atomically on the server by a Lua script comparing the rank bytes of the two values'
headers (online/header.py): event time, created time and tie hash. So concurrent or
replayed writers can never put a lower ranked row over a higher one, and the value that
stays is the one the offline point-in-time join picks among every row written. An equal
rank is a replay: nothing changes. A value of an older codec version is replaced by any
value of this one, so a full materialization after an upgrade rewrites the store in
place.

Expiry is per key, from the view's ttl: a value stays readable until `ttl` after the
later of its event time and its write time, plus one more `ttl` of grace, so a reader can
still answer "outside max age" for a stale value instead of "not found". Keys of one view
never keep another view's keys alive. Views without a ttl never expire.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterable, Sequence
from datetime import timedelta

import numpy as np
import numpy.typing as npt
import redis

from skewless.errors import OnlineStoreUnavailableError
from skewless.online.header import HEADER_SIZE, RANK_SLICE
from skewless.online.store import Item, WriteResult

# Rank bytes are compared as 4-byte big-endian words, which Lua's doubles hold exactly;
# an equal rank is a replay and changes nothing. A value of an older codec version (its
# first byte) is replaced by any value of this one, so a full materialization rewrites
# every entity its source still has; a value of a newer version is never replaced.
_FIRST = RANK_SLICE.start + 1  # Lua counts from 1
_WORDS = (HEADER_SIZE - RANK_SLICE.start) // 4
_ORDERED_SET = f"""
local written = 0
local format = '>' .. string.rep('I4', {_WORDS})
for i, key in ipairs(KEYS) do
  local new = ARGV[2 * i - 1]
  local expire_at = ARGV[2 * i]
  local old = redis.call('GET', key)
  local newer = true
  if old and string.len(old) > 0 then
    local old_version, new_version = string.byte(old, 1), string.byte(new, 1)
    if old_version == new_version and string.len(old) >= {HEADER_SIZE} then
      local o = {{struct.unpack(format, string.sub(old, {_FIRST}, {HEADER_SIZE}))}}
      local n = {{struct.unpack(format, string.sub(new, {_FIRST}, {HEADER_SIZE}))}}
      newer = false
      for w = 1, {_WORDS} do
        if n[w] ~= o[w] then
          newer = n[w] > o[w]
          break
        end
      end
    elseif old_version > new_version then
      newer = false
    end
  end
  if newer then
    if expire_at == '0' then
      redis.call('SET', key, new)
    else
      redis.call('SET', key, new, 'PXAT', expire_at)
    end
    written = written + 1
  end
end
return written
"""


def redis_glob_escape(text: bytes) -> bytes:
    """`text` as a SCAN MATCH pattern that matches only itself: each of Redis's glob
    characters (* ? [ ] and the backslash) escaped."""
    return re.sub(rb"([*?\[\]\\])", rb"\\\1", text)


def expire_at_ms(event_ts_us: int, ttl: timedelta | None, now_ms: int) -> int:
    """When a key may disappear: 0 for never (no ttl)."""
    if ttl is None:
        return 0
    ttl_ms = int(ttl.total_seconds() * 1000)
    return max(event_ts_us // 1000 + ttl_ms, now_ms + ttl_ms) + ttl_ms


def expire_at_ms_many(
    event_ts_us: npt.NDArray[np.int64], ttl: timedelta | None, now_ms: int
) -> list[int]:
    """expire_at_ms() of every event time."""
    if ttl is None:
        return [0] * len(event_ts_us)
    ttl_ms = int(ttl.total_seconds() * 1000)
    expire = np.maximum(event_ts_us // 1000 + ttl_ms, now_ms + ttl_ms) + ttl_ms
    result: list[int] = expire.tolist()
    return result


class RedisOnlineStore:
    """Writes and reads encoded values; the connection is configured once, here."""

    def __init__(self, client: redis.Redis, *, batch_size: int = 500) -> None:
        self.client = client
        self.batch_size = batch_size
        self._ordered_set = client.register_script(_ORDERED_SET)

    @classmethod
    def from_url(cls, url: str, *, password: str | None = None) -> RedisOnlineStore:
        return cls(redis.Redis.from_url(url, password=password))

    def write(self, items: Iterable[Item], *, pipeline_depth: int = 8) -> WriteResult:
        """Ordered writes of (key, value, expire_at_ms) in pipelined batches."""
        offered = written = 0
        pipe = self.client.pipeline(transaction=False)
        pending = 0
        batch_keys: list[bytes] = []
        batch_args: list[bytes | int] = []

        def flush_batch() -> None:
            nonlocal pending
            if batch_keys:
                self._ordered_set(keys=list(batch_keys), args=list(batch_args), client=pipe)
                pending += 1
                batch_keys.clear()
                batch_args.clear()

        def flush_pipe() -> int:
            nonlocal pending
            done = sum(int(n) for n in pipe.execute()) if pending else 0
            pending = 0
            return done

        for key, value, expire_at in items:
            batch_keys.append(key)
            batch_args.extend((value, expire_at))
            offered += 1
            if len(batch_keys) >= self.batch_size:
                flush_batch()
                if pending >= pipeline_depth:
                    written += flush_pipe()
        flush_batch()
        written += flush_pipe()
        return WriteResult(offered, written)

    def read(self, keys: Sequence[bytes]) -> list[bytes | None]:
        """The values of `keys`; OnlineStoreUnavailableError when Redis does not answer."""
        if not keys:
            return []
        try:
            raw = self.client.mget(list(keys))
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            raise OnlineStoreUnavailableError(str(exc)) from exc
        return [v.encode() if isinstance(v, str) else v for v in raw]

    def delete(self, keys: Sequence[bytes]) -> int:
        """Remove `keys`, in batches; returns how many existed."""
        removed = 0
        for i in range(0, len(keys), self.batch_size):
            removed += int(self.client.unlink(*keys[i : i + self.batch_size]))
        return removed

    def delete_prefix(
        self, prefix: bytes, group: Callable[[bytes], str], *, scan_count: int = 1000
    ) -> dict[str, int]:
        """Remove every key that starts with `prefix`; returns how many were removed per
        `group(key)`. SCAN walks the keyspace a page at a time and each page's keys are
        unlinked in one pipeline (UNLINK frees the memory in the background), so a big
        keyspace never blocks the server. A key SCAN returns twice counts once: UNLINK
        answers 0 for a key already gone."""
        pattern = redis_glob_escape(prefix) + b"*"
        removed: dict[str, int] = {}
        try:
            cursor = 0
            while True:
                cursor, page = self.client.scan(cursor, match=pattern, count=scan_count)
                found = (k.encode() if isinstance(k, str) else k for k in page)
                keys = [k for k in found if k.startswith(prefix)]
                if keys:
                    pipe = self.client.pipeline(transaction=False)
                    for key in keys:
                        pipe.unlink(key)
                    for key, gone in zip(keys, pipe.execute(), strict=True):
                        if gone:
                            name = group(key)
                            removed[name] = removed.get(name, 0) + 1
                if cursor == 0:
                    return removed
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            raise OnlineStoreUnavailableError(str(exc)) from exc
        except redis.ResponseError as exc:  # a read-only replica, a denied command, ...
            raise OnlineStoreUnavailableError(f"Redis refused to delete keys: {exc}") from exc

    def close(self) -> None:
        self.client.close()

    @staticmethod
    def now_ms() -> int:
        return int(time.time() * 1000)
