"""The 20-byte header every stored online value starts with, in every codec version.

header = codec version (1 byte), flags (1 byte), reserved (2 bytes), event_ts and
         created_ts as microseconds since the epoch, each stored as a big-endian uint64
         after adding 2**63, so that comparing the 16 bytes in order is comparing
         (event_ts, created_ts) as signed numbers; a null created_ts is stored as 0
         (lowest), as it ranks offline.

The online writer compares these bytes on the Redis server (online/redis.py), so that
only a newer (event_ts, created_ts) replaces a stored value.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any

HEADER = struct.Struct(">BBHQQ")
HEADER_SIZE = HEADER.size  # 20
ORDER_SLICE = slice(4, 20)  # the bytes whose order is (event_ts, created_ts) order
OFFSET = 1 << 63
NULL_CREATED = 0


class CodecError(ValueError):
    """A value could not be encoded or decoded with this codec."""


@dataclass(frozen=True)
class Record:
    """One entity's latest row of one view, as stored online."""

    event_ts_us: int
    created_ts_us: int | None
    values: tuple[Any, ...]


def order_bytes(event_ts_us: int, created_ts_us: int | None) -> bytes:
    created = NULL_CREATED if created_ts_us is None else created_ts_us + OFFSET
    return struct.pack(">QQ", event_ts_us + OFFSET, created)


def header_bytes(version: int, flags: int, event_ts_us: int, created_ts_us: int | None) -> bytes:
    return struct.pack(">BBH", version, flags, 0) + order_bytes(event_ts_us, created_ts_us)


def created_from_header(stored: int) -> int | None:
    return None if stored == NULL_CREATED else stored - OFFSET
