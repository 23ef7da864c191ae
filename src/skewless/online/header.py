"""The 28-byte header every stored online value starts with.

header = codec version (1 byte), flags (1 byte), reserved (2 bytes), then the rank of
         the stored row as rules/ranking.py's rank_bytes: event time, created time and
         tie hash, 24 bytes whose order is the rank's order.

The online writer compares the rank bytes on the Redis server (online/redis.py), so that
only a higher ranked row replaces a stored value.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any

from skewless.rules.ranking import RANK_BYTES, rank_bytes, rank_from_bytes

CODEC_VERSION = 3
_PREFIX = struct.Struct(">BBH")
HEADER_SIZE = _PREFIX.size + RANK_BYTES  # 28
RANK_SLICE = slice(_PREFIX.size, HEADER_SIZE)  # where the rank bytes lie


class CodecError(ValueError):
    """A value could not be encoded or decoded with this codec."""


@dataclass(frozen=True)
class Record:
    """One entity's latest row of one view, as stored online."""

    event_ts_us: int
    created_ts_us: int | None
    values: tuple[Any, ...]
    tie_hash: int = 0  # rules/ranking.py; computed by Spark when materializing


def header_bytes(flags: int, record: Record) -> bytes:
    return _PREFIX.pack(CODEC_VERSION, flags, 0) + rank_bytes(
        record.event_ts_us, record.created_ts_us, record.tie_hash
    )


def read_header(data: bytes) -> tuple[int, int, int | None, int]:
    """(flags, event time, created time, tie hash) of a value of this codec version."""
    if len(data) < HEADER_SIZE:
        raise CodecError("value is shorter than its header")
    version, flags, _ = _PREFIX.unpack_from(data)
    if version != CODEC_VERSION:
        raise CodecError(
            f"codec version {version}: this skewless reads version {CODEC_VERSION} only; "
            "materialize the view again to rewrite the values of an older skewless"
        )
    event, created, tie = rank_from_bytes(data[RANK_SLICE])
    return flags, event, created, tie
