"""Online store encoding: Redis keys and values, versioned and pure (no I/O).

Key:   b"sk1|" project b"|" view b"|" entity-key
       entity-key = for each join key, in the view's join-key order:
                    a type tag (b"i" int64, b"s" UTF-8 string, b"b" bytes, b"t" bool,
                    b"n" null) and, except for null and bool, a 4-byte big-endian length
                    and the bytes. Typed and length-prefixed, so ("a|b", "c") and
                    ("a", "b|c"), or 1 and "1", can never share a key.
Value: a 20-byte header, then the features.
       header = codec version (1 byte), flags (1 byte), reserved (2 bytes),
                event_ts and created_ts as microseconds since the epoch, each stored
                as a big-endian uint64 after adding 2**63, so that comparing the 16
                bytes in order is comparing (event_ts, created_ts) as signed numbers;
                a null created_ts is stored as 0 (lowest), as it ranks offline.
       features = in the view's schema order, each a presence byte (0 null, 1 value)
                followed, when present, by its encoding: int32/int64/unix_timestamp as
                signed 8-byte big-endian, float32 as 4-byte IEEE, float64 as 8-byte IEEE
                (NaN kept), bool as 1 byte, string/bytes as 4-byte length + bytes,
                arrays as 4-byte count then each element as a presence byte + encoding.

The online writer compares headers on the server (see online/redis.py) so that only a
newer (event_ts, created_ts) replaces a stored value.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from skewless.types import ArrayType, DType

CODEC_VERSION = 1
HEADER = struct.Struct(">BBHQQ")
HEADER_SIZE = HEADER.size  # 20
ORDER_SLICE = slice(4, 20)  # the bytes whose order is (event_ts, created_ts) order
_OFFSET = 1 << 63
_NULL_CREATED = 0

_I64 = struct.Struct(">q")
_F32 = struct.Struct(">f")
_F64 = struct.Struct(">d")
_U32 = struct.Struct(">I")


class CodecError(ValueError):
    """A value could not be encoded or decoded with this codec."""


# --- keys -------------------------------------------------------------------------------


def key_prefix(project: str, view: str) -> bytes:
    return f"sk1|{project}|{view}|".encode()


def encode_entity_key(values: Sequence[Any]) -> bytes:
    parts = []
    for v in values:
        if v is None:
            parts.append(b"n")
        elif isinstance(v, bool):
            parts.append(b"t\x01" if v else b"t\x00")
        elif isinstance(v, int):
            parts.append(b"i" + _U32.pack(8) + _I64.pack(v))
        elif isinstance(v, str):
            raw = v.encode()
            parts.append(b"s" + _U32.pack(len(raw)) + raw)
        elif isinstance(v, bytes):
            parts.append(b"b" + _U32.pack(len(v)) + v)
        else:
            # numpy integers and the like arrive from pandas/arrow conversions
            try:
                as_int = int(v)
            except (TypeError, ValueError):
                raise CodecError(f"join key value {v!r} of type {type(v).__name__}") from None
            if as_int != v:
                raise CodecError(f"join key value {v!r} is not an integer")
            parts.append(b"i" + _U32.pack(8) + _I64.pack(as_int))
    return b"".join(parts)


def entity_key(project: str, view: str, values: Sequence[Any]) -> bytes:
    return key_prefix(project, view) + encode_entity_key(values)


# --- values -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Record:
    """One entity's latest row of one view, as stored online."""

    event_ts_us: int
    created_ts_us: int | None
    values: tuple[Any, ...]


def order_bytes(event_ts_us: int, created_ts_us: int | None) -> bytes:
    created = _NULL_CREATED if created_ts_us is None else created_ts_us + _OFFSET
    return struct.pack(">QQ", event_ts_us + _OFFSET, created)


def _scalar(out: list[bytes], name: str, v: Any) -> None:
    if name in ("int64", "int32", "unix_timestamp"):
        out.append(_I64.pack(int(v)))
    elif name == "float64":
        out.append(_F64.pack(float(v)))
    elif name == "float32":
        out.append(_F32.pack(float(v)))
    elif name == "bool":
        out.append(b"\x01" if v else b"\x00")
    elif name == "string":
        raw = v.encode()
        out.append(_U32.pack(len(raw)) + raw)
    elif name == "bytes":
        raw = bytes(v)
        out.append(_U32.pack(len(raw)) + raw)
    else:  # pragma: no cover - every scalar name is handled above
        raise CodecError(f"no encoding for {name}")


def encode_value(record: Record, dtypes: Sequence[DType]) -> bytes:
    if len(record.values) != len(dtypes):
        raise CodecError(f"{len(record.values)} values for {len(dtypes)} features")
    out = [
        struct.pack(">BBH", CODEC_VERSION, 0, 0),
        order_bytes(record.event_ts_us, record.created_ts_us),
    ]
    for v, dtype in zip(record.values, dtypes, strict=True):
        if v is None:
            out.append(b"\x00")
            continue
        out.append(b"\x01")
        try:
            if isinstance(dtype, ArrayType):
                items = list(v)
                out.append(_U32.pack(len(items)))
                for item in items:
                    if item is None:
                        out.append(b"\x00")
                    else:
                        out.append(b"\x01")
                        _scalar(out, dtype.element.name, item)
            else:
                _scalar(out, dtype.name, v)
        except (struct.error, TypeError, ValueError, AttributeError) as exc:
            raise CodecError(f"cannot encode {v!r} as {dtype.name}: {exc}") from None
    return b"".join(out)


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def take(self, n: int) -> bytes:
        end = self.pos + n
        if end > len(self.data):
            raise CodecError("value is truncated")
        chunk = self.data[self.pos : end]
        self.pos = end
        return chunk

    def scalar(self, name: str) -> Any:
        if name in ("int64", "int32", "unix_timestamp"):
            return _I64.unpack(self.take(8))[0]
        if name == "float64":
            return _F64.unpack(self.take(8))[0]
        if name == "float32":
            return _F32.unpack(self.take(4))[0]
        if name == "bool":
            return self.take(1) == b"\x01"
        n = _U32.unpack(self.take(4))[0]
        raw = self.take(n)
        return raw.decode() if name == "string" else raw


def decode_value(data: bytes, dtypes: Sequence[DType]) -> Record:
    if len(data) < HEADER_SIZE:
        raise CodecError("value is shorter than its header")
    version, _flags, _reserved, ets, cts = HEADER.unpack_from(data)
    if version != CODEC_VERSION:
        raise CodecError(f"codec version {version}; this skewless reads {CODEC_VERSION}")
    reader = _Reader(data)
    reader.pos = HEADER_SIZE
    values: list[Any] = []
    for dtype in dtypes:
        if reader.take(1) == b"\x00":
            values.append(None)
            continue
        if isinstance(dtype, ArrayType):
            count = _U32.unpack(reader.take(4))[0]
            values.append(
                [
                    reader.scalar(dtype.element.name) if reader.take(1) == b"\x01" else None
                    for _ in range(count)
                ]
            )
        else:
            values.append(reader.scalar(dtype.name))
    if reader.pos != len(data):
        raise CodecError(f"{len(data) - reader.pos} unexpected trailing bytes")
    created = None if cts == _NULL_CREATED else cts - _OFFSET
    return Record(ets - _OFFSET, created, tuple(values))
