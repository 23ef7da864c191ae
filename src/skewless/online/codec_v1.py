"""Codec version 1 of stored online values: read, so that values written before
version 2 (skewless 0.1.0 and earlier sessions' stores) keep serving until rewritten.

Value v1: the 20-byte header of online/codec.py (version 1), then the features in the
view's schema order, each a presence byte (0 null, 1 value) followed, when present, by
its encoding: int32/int64/unix_timestamp as signed 8-byte big-endian, float32 as 4-byte
IEEE, float64 as 8-byte IEEE (NaN kept), bool as 1 byte, string/bytes as 4-byte length +
bytes, arrays as 4-byte count then each element as a presence byte + encoding.

encode_value_v1() writes that format; tests use it to stand for an older store. A
version 1 value is read row by row (decode_value_v1), and a materialization run that
covers it again replaces it with its version 2 encoding (online/redis.py).
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from typing import Any

from skewless.online.header import (
    HEADER,
    HEADER_SIZE,
    OFFSET,
    CodecError,
    Record,
    created_from_header,
    header_bytes,
)
from skewless.types import ArrayType, DType

VERSION = 1

_I64 = struct.Struct(">q")
_F32 = struct.Struct(">f")
_F64 = struct.Struct(">d")
_U32 = struct.Struct(">I")


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


def encode_value_v1(record: Record, dtypes: Sequence[DType]) -> bytes:
    if len(record.values) != len(dtypes):
        raise CodecError(f"{len(record.values)} values for {len(dtypes)} features")
    out = [
        header_bytes(VERSION, 0, record.event_ts_us, record.created_ts_us),
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


def decode_value_v1(data: bytes, dtypes: Sequence[DType]) -> Record:
    if len(data) < HEADER_SIZE:
        raise CodecError("value is shorter than its header")
    version, _flags, _reserved, ets, cts = HEADER.unpack_from(data)
    if version != VERSION:
        raise CodecError(f"codec version {version} is not version {VERSION}")
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
    created = created_from_header(cts)
    return Record(ets - OFFSET, created, tuple(values))
