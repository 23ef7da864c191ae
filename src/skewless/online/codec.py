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
from collections.abc import Callable, Sequence
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


# --- batch decoding (the serving hot path) ----------------------------------------------
#
# decode_value() reads one value through a generic reader; a lookup of 100 entities of a
# 50-feature view calls it 100 times and then pivots rows into columns. column_decoder()
# compiles, once per (dtypes, selected positions), a function that reads a whole batch
# of stored values and returns columns: a value with every feature present, of a view
# whose features are all fixed-width, is one struct.unpack_from; any other value goes
# through straight-line code with the dtypes' offsets and formats unrolled. It accepts
# exactly what decode_value accepts: whenever the fast code meets anything unexpected (a
# wrong version, a truncated or over-long value, bad UTF-8) it hands the value to
# decode_value, which raises the precise error. tests/unit/online/test_codec.py checks it
# against decode_value.

ColumnDecoder = Callable[[Sequence[bytes | None]], tuple[list[int | None], list[list[Any]]]]

_HEAD = struct.Struct(">B3xQ")  # version, event_ts (offset-binary) of HEADER
_FIXED = {  # scalar name -> (unpack_from name, struct format, width)
    "int64": ("_i64", "q", 8),
    "int32": ("_i64", "q", 8),
    "unix_timestamp": ("_i64", "q", 8),
    "float64": ("_f64", "d", 8),
    "float32": ("_f32", "f", 4),
    "bool": ("", "B", 1),  # decode_value reads a bool as `byte == 1`, so does the caller
}
_DECODE_ERRORS = (IndexError, struct.error, UnicodeDecodeError, CodecError)


def _array_at(data: bytes, pos: int, element: str) -> tuple[list[Any], int]:
    """An array value whose count starts at `pos` (past the presence byte), and the
    position after it; as decode_value reads it."""
    reader = _Reader(data)
    reader.pos = pos
    count = _U32.unpack(reader.take(4))[0]
    items = [reader.scalar(element) if reader.take(1) == b"\x01" else None for _ in range(count)]
    return items, reader.pos


def _field_lines(dtype: DType, out: str | None) -> list[str]:
    """Source lines reading the feature at `p` into the local `out` (None: skip it)."""
    if isinstance(dtype, ArrayType):
        target = out or "_"
        return [f"{target}, p = _array_at(data, p + 1, {dtype.element.name!r})"]
    name = dtype.name
    if name == "bool":
        return ([f"{out} = data[p + 1] == 1"] if out else []) + ["p += 2"]
    if name in _FIXED:
        unpack, _, width = _FIXED[name]
        return ([f"{out} = {unpack}(data, p + 1)[0]"] if out else []) + [f"p += {width + 1}"]
    # string or bytes: a 4-byte length, then the bytes
    lines = ["n = _u32(data, p + 1)[0]"]
    if out:
        raw = "data[p + 5 : p + 5 + n]"
        lines.append(f"{out} = {raw}.decode()" if name == "string" else f"{out} = {raw}")
    return [*lines, "p += 5 + n"]


def _all_present(dtypes: Sequence[DType]) -> struct.Struct | None:
    """The layout of a value with every feature present, if that has a fixed size."""
    if not all(not isinstance(d, ArrayType) and d.name in _FIXED for d in dtypes):
        return None
    return struct.Struct(">B3xQ8x" + "".join("B" + _FIXED[d.name][1] for d in dtypes))


def column_decoder(dtypes: Sequence[DType], positions: Sequence[int]) -> ColumnDecoder:
    """A function decoding a batch of stored values (None: no value stored) of one view
    into, per value, its event time (None for None) and, per feature at `positions`
    (indices into `dtypes`, in the order wanted), a column of values (None for None).
    Row for row equal to decode_value(data, dtypes); raises what it raises."""
    if len(set(positions)) != len(positions) or not all(0 <= p < len(dtypes) for p in positions):
        raise ValueError(f"positions {list(positions)} do not select features of {len(dtypes)}")
    wanted = set(positions)
    names = [f"v{i}" if i in wanted else None for i in range(len(dtypes))]
    row = f"({', '.join(n or 'None' for n in names)},)" if names else "()"
    full = _all_present(dtypes)
    body = [
        "ets_col = []",
        "e_add = ets_col.append",
        "rows = []",
        "r_add = rows.append",
        "for data in values:",
        "    if data is None:",
        "        e_add(None)",
        "        r_add(_none_row)",
        "        continue",
    ]
    if full is not None:
        body += [
            f"    if len(data) == {full.size}:",
            "        t = _full(data, 0)",
            f"        if t[0] == {CODEC_VERSION} and 0 not in t[2::2]:",
            "            e_add(t[1] - _offset)",
            "            r_add(t[3::2])",
            "            continue",
        ]
    body += ["    try:", "        version, ets = _head(data, 0)", f"        p = {HEADER_SIZE}"]
    for dtype, out in zip(dtypes, names, strict=True):
        body.append("        if data[p]:")
        body.extend(f"            {line}" for line in _field_lines(dtype, out))
        body.append("        else:")
        body.extend(([f"            {out} = None"] if out else []) + ["            p += 1"])
    body += [
        "    except _errors:",
        "        p = -1",
        f"    if p != len(data) or version != {CODEC_VERSION}:",
        "        _decode_value(data, dtypes)  # raises the precise error",
        "        raise CodecError('a value the batch decoder refused decodes alone')",
        "    e_add(ets - _offset)",
        f"    r_add({row})",
        "return ets_col, rows",
    ]
    source = "def decode(values):\n" + "".join(f"    {line}\n" for line in body)
    namespace: dict[str, Any] = {
        "_head": _HEAD.unpack_from,
        "_full": None if full is None else full.unpack_from,
        "_i64": _I64.unpack_from,
        "_f64": _F64.unpack_from,
        "_f32": _F32.unpack_from,
        "_u32": _U32.unpack_from,
        "_array_at": _array_at,
        "_errors": _DECODE_ERRORS,
        "_decode_value": decode_value,
        "_offset": _OFFSET,
        "_none_row": (None,) * len(dtypes),
        "dtypes": tuple(dtypes),
        "CodecError": CodecError,
    }
    exec(compile(source, "<skewless column decoder>", "exec"), namespace)  # noqa: S102
    rows_of = namespace["decode"]
    bools = [i for i, p in enumerate(positions) if str(dtypes[p]) == "bool"]
    width = len(positions)

    def decode(values: Sequence[bytes | None]) -> tuple[list[int | None], list[list[Any]]]:
        ets, rows = rows_of(values)
        if not rows:
            return ets, [[] for _ in range(width)]
        transposed = list(zip(*rows, strict=True))
        columns = [list(transposed[p]) for p in positions]
        for i in bools:  # the all-present layout reads a bool as its byte
            columns[i] = [None if v is None else v == 1 for v in columns[i]]
        return ets, columns

    return decode


_INT_KEY_TAG = b"i" + _U32.pack(8)


def entity_keys(prefix: bytes, columns: Sequence[Sequence[Any]], rows: int) -> list[bytes]:
    """`prefix + encode_entity_key(values)` for each of `rows` rows of join-key values
    given as columns (one per join key, in the view's join-key order): the keys
    entity_key() builds one by one, with a shortcut for single int and str keys."""
    if len(columns) != 1:
        if not columns:
            return [prefix] * rows
        return [prefix + encode_entity_key(values) for values in zip(*columns, strict=True)]
    keys: list[bytes] = []
    add = keys.append
    pack = _I64.pack
    for v in columns[0]:
        if type(v) is int:
            add(prefix + _INT_KEY_TAG + pack(v))
        elif type(v) is str:
            raw = v.encode()
            add(prefix + b"s" + _U32.pack(len(raw)) + raw)
        else:
            add(prefix + encode_entity_key((v,)))
    return keys
