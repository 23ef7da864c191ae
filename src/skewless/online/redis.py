"""The Redis online store: one key per (project, view, entity), ordered writes.

A write replaces the stored value only if its (event_ts, created_ts) is newer, decided
atomically on the server by a Lua script comparing the two values' order bytes (see
codec.py). So concurrent or replayed writers can never put an older value over a newer
one, and a same-event-time correction with a later created_ts wins online exactly as it
wins offline. An equal header is a replay: nothing changes, unless the stored value is
of an older codec version (online/codec_v1.py), which the replay then rewrites: running
a materialization again over the same interval upgrades a store in place.

Expiry is per key, from the view's ttl: a value stays readable until `ttl` after the
later of its event time and its write time, plus one more `ttl` of grace, so a reader can
still answer "outside max age" for a stale value instead of "not found". Keys of one view
never keep another view's keys alive. Views without a ttl never expire.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta

import numpy as np
import numpy.typing as npt
import redis

# Compares bytes 5..20 (event_ts, created_ts as offset-binary uint64) as four uint32
# words, which Lua's doubles hold exactly; on a tie, a value of a newer codec version
# (byte 1) replaces one of an older version.
_ORDERED_SET = """
local written = 0
for i, key in ipairs(KEYS) do
  local new = ARGV[2 * i - 1]
  local expire_at = ARGV[2 * i]
  local old = redis.call('GET', key)
  local newer = true
  if old and string.len(old) >= 20 then
    local o1, o2, o3, o4 = struct.unpack('>I4I4I4I4', string.sub(old, 5, 20))
    local n1, n2, n3, n4 = struct.unpack('>I4I4I4I4', string.sub(new, 5, 20))
    if n1 ~= o1 then newer = n1 > o1
    elseif n2 ~= o2 then newer = n2 > o2
    elseif n3 ~= o3 then newer = n3 > o3
    elseif n4 ~= o4 then newer = n4 > o4
    else newer = string.byte(new, 1) > string.byte(old, 1) end
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


@dataclass(frozen=True)
class WriteResult:
    offered: int
    written: int

    @property
    def skipped(self) -> int:
        """Values not written because the stored one was as new or newer."""
        return self.offered - self.written


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

    def write(
        self, items: Iterable[tuple[bytes, bytes, int]], *, pipeline_depth: int = 8
    ) -> WriteResult:
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

    def read(self, keys: list[bytes]) -> list[bytes | None]:
        if not keys:
            return []
        raw = self.client.mget(list(keys))
        return [v.encode() if isinstance(v, str) else v for v in raw]

    @staticmethod
    def now_ms() -> int:
        return int(time.time() * 1000)
