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
from functools import partial
from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

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
# prepares, once per (dtypes, selected positions), a function that reads a whole batch
# of stored values and returns columns: a value with every feature present, of a view
# whose features are all fixed-width, is one struct.unpack_from; in any other value each
# run of up to _RUN fixed-width features is one struct.unpack_from when all of them are
# present, and the rest (variable-width features, runs holding a null) are read by one
# prepared reader per feature (no code is generated or evaluated). It accepts
# exactly what decode_value accepts: whenever the fast path meets anything unexpected (a
# wrong version, a truncated or over-long value, bad UTF-8) it hands the value to
# decode_value, which raises the precise error. tests/unit/online/test_codec.py checks it
# against decode_value.

ColumnDecoder = Callable[[Sequence[bytes | None]], tuple[list[int | None], list[list[Any]]]]
# Reads the present feature whose presence byte is at `p`: (value, position after it).
_FieldReader = Callable[[bytes, int], tuple[Any, int]]

_HEAD = struct.Struct(">B3xQ")  # version, event_ts (offset-binary) of HEADER
_FIXED = {  # scalar name -> (struct, width)
    "int64": _I64,
    "int32": _I64,
    "unix_timestamp": _I64,
    "float64": _F64,
    "float32": _F32,
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


def _field_reader(dtype: DType) -> _FieldReader:
    if isinstance(dtype, ArrayType):
        element = dtype.element.name
        return lambda data, p: _array_at(data, p + 1, element)
    name = dtype.name
    if name == "bool":
        return lambda data, p: (data[p + 1] == 1, p + 2)
    if name in _FIXED:
        unpack, width = _FIXED[name].unpack_from, _FIXED[name].size
        return lambda data, p: (unpack(data, p + 1)[0], p + 1 + width)
    text = name == "string"  # else bytes: both a 4-byte length, then the bytes

    def sized(data: bytes, p: int) -> tuple[Any, int]:
        end = p + 5 + _U32.unpack_from(data, p + 1)[0]
        raw = data[p + 5 : end]  # past the end: caught by the length check after
        return (raw.decode() if text else raw), end

    return sized


_FORMATS = {"bool": "B", **{name: st.format[-1] for name, st in _FIXED.items()}}
# A run of fixed-width features is read by one struct of at most this many: a null costs
# only its run field-by-field reading (a struct cannot skip an absent value), so shorter
# runs lose less to a null, longer ones save more calls when every feature is present.
_RUN = 8


def _fixed_width(dtype: DType) -> bool:
    return not isinstance(dtype, ArrayType) and dtype.name in _FORMATS


def _present_format(dtypes: Sequence[DType]) -> str:
    """The struct format of fixed-width features, each present: its byte, its value."""
    return "".join("B" + _FORMATS[d.name] for d in dtypes)


def _all_present(dtypes: Sequence[DType]) -> struct.Struct | None:
    """The layout of a value with every feature present, if that has a fixed size."""
    if not all(_fixed_width(d) for d in dtypes):
        return None
    return struct.Struct(">B3xQ8x" + _present_format(dtypes))


class _Segment(NamedTuple):
    """Consecutive features of a value: `unpack` reads all of them at once when they are
    all present (presence byte then value, `size` bytes in all); `readers` read them one
    by one, the way any value is read. `unpack` is None for a variable-width feature."""

    unpack: Callable[[bytes, int], tuple[Any, ...]] | None
    size: int
    readers: tuple[_FieldReader, ...]


def _segments(dtypes: Sequence[DType]) -> tuple[_Segment, ...]:
    """The features in runs of up to _RUN fixed-width ones, and each other one alone."""
    out: list[_Segment] = []
    run: list[DType] = []

    def close_run() -> None:
        if run:
            layout = struct.Struct(">" + _present_format(run))
            readers = tuple(_field_reader(d) for d in run)
            out.append(_Segment(layout.unpack_from, layout.size, readers))
            run.clear()

    for dtype in dtypes:
        if _fixed_width(dtype):
            run.append(dtype)
            if len(run) == _RUN:
                close_run()
        else:
            close_run()
            out.append(_Segment(None, 0, (_field_reader(dtype),)))
    close_run()
    return tuple(out)


def _row_reader(dtypes: tuple[DType, ...]) -> Callable[[bytes], tuple[int, tuple[Any, ...]]]:
    """A function reading (event time, every feature) of one stored value, as
    decode_value reads it; raises what decode_value raises."""
    segments = _segments(dtypes)
    full = _all_present(dtypes)
    head = _HEAD.unpack_from
    # No stored value is -1 bytes long, so without a fixed layout the fast path never runs.
    full_size, full_unpack = (-1, head) if full is None else (full.size, full.unpack_from)

    def read_row(data: bytes) -> tuple[int, tuple[Any, ...]]:
        """(event time, every feature) of one stored value."""
        if len(data) == full_size:
            t = full_unpack(data, 0)
            if t[0] == CODEC_VERSION and 0 not in t[2::2]:
                return t[1] - _OFFSET, t[3::2]
        p = -1
        end = len(data)
        try:
            version, ets = head(data, 0)
            p = HEADER_SIZE
            row: list[Any] = []
            for unpack, size, readers in segments:
                # A run whose features are all present, in one struct. Were one of them
                # null, the first null's presence byte is still read where it lies (every
                # feature before it is present), so `0 in` sees it.
                if unpack is not None and p + size <= end:
                    t = unpack(data, p)
                    if 0 not in t[::2]:
                        row.extend(t[1::2])
                        p += size
                        continue
                for read in readers:
                    if data[p]:
                        value, p = read(data, p)
                    else:
                        value, p = None, p + 1
                    row.append(value)
        except _DECODE_ERRORS:
            p = -1
        if p != end or version != CODEC_VERSION:
            decode_value(data, dtypes)  # raises the precise error
            raise CodecError("a value the batch decoder refused decodes alone")
        return ets - _OFFSET, tuple(row)

    return read_row


def column_decoder(dtypes: Sequence[DType], positions: Sequence[int]) -> ColumnDecoder:
    """A function decoding a batch of stored values (None: no value stored) of one view
    into, per value, its event time (None for None) and, per feature at `positions`
    (indices into `dtypes`, in the order wanted), a column of values (None for None).
    Row for row equal to decode_value(data, dtypes); raises what it raises."""
    if len(set(positions)) != len(positions) or not all(0 <= p < len(dtypes) for p in positions):
        raise ValueError(f"positions {list(positions)} do not select features of {len(dtypes)}")
    dtypes = tuple(dtypes)
    read_row = _row_reader(dtypes)
    none_row = (None,) * len(dtypes)
    bools = [i for i, p in enumerate(positions) if str(dtypes[p]) == "bool"]
    width = len(positions)

    def decode(values: Sequence[bytes | None]) -> tuple[list[int | None], list[list[Any]]]:
        ets: list[int | None] = []
        rows: list[tuple[Any, ...]] = []
        for data in values:
            if data is None:
                ets.append(None)
                rows.append(none_row)
            else:
                event, row = read_row(data)
                ets.append(event)
                rows.append(row)
        if not rows:
            return ets, [[] for _ in range(width)]
        transposed = list(zip(*rows, strict=True))
        columns = [list(transposed[p]) for p in positions]
        for i in bools:  # a struct reads a bool as its byte
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


# --- column-wise encoding ---------------------------------------------------------------
#
# The same bytes as entity_key() and encode_value(), built for a whole Arrow batch at once
# with numpy instead of row by row in Python (the online writer's hot path). Each column
# becomes "segments": every row's byte length and all rows' bytes concatenated in row
# order; _interleave() lays the columns' segments side by side, row by row.

_Lengths = npt.NDArray[np.int64]
_Bytes = npt.NDArray[np.uint8]
_Segments = tuple[_Lengths, _Bytes]
_HEADER_START = np.frombuffer(struct.pack(">BBH", CODEC_VERSION, 0, 0), dtype=np.uint8)
_SIGN = np.uint64(_OFFSET)
_F32_QUIET = np.uint32(0x00400000)


def _interleave(parts: Sequence[_Segments], rows: int) -> _Segments:
    """Row i of the result is row i of every part, in order."""
    lengths = np.zeros(rows, dtype=np.int64)
    for part_lengths, _ in parts:
        lengths += part_lengths
    out = np.empty(int(lengths.sum()), dtype=np.uint8)
    cursor = np.cumsum(lengths) - lengths  # where each row's next part goes
    for part_lengths, data in parts:
        if data.size:
            source = np.cumsum(part_lengths) - part_lengths
            out[np.repeat(cursor - source, part_lengths) + np.arange(data.size)] = data
        cursor += part_lengths
    return lengths, out


def _split(segments: _Segments) -> list[bytes]:
    lengths, data = segments
    raw = data.tobytes()
    ends = np.cumsum(lengths).tolist()
    starts = [0, *ends[:-1]] if ends else []
    return [raw[a:b] for a, b in zip(starts, ends, strict=True)]


def _fixed(rows: npt.NDArray[Any]) -> _Segments:
    """Segments of a (rows, width) or big-endian 1-D array: every row the same width."""
    width = rows.itemsize * (rows.shape[1] if rows.ndim == 2 else 1)
    data = np.ascontiguousarray(rows).view(np.uint8).reshape(-1)
    return np.full(len(rows), width, dtype=np.int64), data


def _constant(value: bytes, rows: int) -> _Segments:
    return _fixed(np.tile(np.frombuffer(value, dtype=np.uint8), (rows, 1)))


def _binary(values: pa.Array) -> _Segments:
    """Lengths and bytes of a null-free string or binary array (no length prefix)."""
    cast = pc.cast(values, pa.large_binary())
    rows = len(cast)
    data_buffer = cast.buffers()[2]
    if rows == 0 or data_buffer is None:
        return np.zeros(rows, dtype=np.int64), np.zeros(0, dtype=np.uint8)
    offsets = np.frombuffer(cast.buffers()[1], dtype=np.int64)[cast.offset : cast.offset + rows + 1]
    data = np.frombuffer(data_buffer, dtype=np.uint8)[offsets[0] : offsets[-1]]
    return np.diff(offsets), data


def _u32(values: npt.NDArray[Any]) -> _Segments:
    return _fixed(values.astype(">u4"))


def _int64s(values: pa.Array) -> npt.NDArray[np.int64]:
    if pa.types.is_timestamp(values.type):
        values = pc.cast(pc.cast(values, pa.timestamp("us")), pa.int64())
    result: npt.NDArray[np.int64] = np.asarray(
        values.to_numpy(zero_copy_only=False), dtype=np.int64
    )
    return result


def _scalars(values: pa.Array, name: str) -> _Segments:
    """The encodings of a null-free column of scalars, as _scalar() writes them."""
    if name in ("int64", "int32", "unix_timestamp"):
        return _fixed(_int64s(values).astype(">i8"))
    if name == "float64":
        return _fixed(values.to_numpy(zero_copy_only=False).astype(">f8"))
    if name == "float32":
        # _scalar() packs float(v): a float32 widened to a double and narrowed back,
        # which quiets a signalling NaN; the bits are otherwise unchanged.
        bits = values.to_numpy(zero_copy_only=False).astype(np.float32).view(np.uint32)
        nan = (bits & np.uint32(0x7FFFFFFF)) > np.uint32(0x7F800000)
        bits = np.where(nan, bits | _F32_QUIET, bits)
        return _fixed(bits.astype(">u4"))
    if name == "bool":
        return _fixed(values.to_numpy(zero_copy_only=False).astype(np.uint8))
    if name in ("string", "bytes"):
        lengths, data = _binary(values)
        return _interleave([_u32(lengths), (lengths, data)], len(values))
    raise CodecError(f"no encoding for {name}")  # pragma: no cover - names are closed


def _valid(column: pa.Array) -> npt.NDArray[np.bool_]:
    if column.null_count == 0:
        return np.ones(len(column), dtype=np.bool_)
    return np.asarray(column.is_valid().to_numpy(zero_copy_only=False), dtype=np.bool_)


def _only_valid(
    column: pa.Array, valid: npt.NDArray[np.bool_], encode: Callable[[pa.Array], _Segments]
) -> _Segments:
    """`encode` applied to the valid rows; null rows get no bytes."""
    values = column if column.null_count == 0 else column.filter(pa.array(valid))
    encoded_lengths, data = encode(values)
    lengths = np.zeros(len(column), dtype=np.int64)
    lengths[valid] = encoded_lengths
    return lengths, data


def _present(column: pa.Array, encode: Callable[[pa.Array], _Segments]) -> _Segments:
    """A presence byte per row, then (for valid rows) `encode(valid values)`."""
    valid = _valid(column)
    presence = _fixed(valid.astype(np.uint8))
    return _interleave([presence, _only_valid(column, valid, encode)], len(column))


def _array_values(values: pa.Array, element: str) -> _Segments:
    """A null-free list column: a 4-byte count, then each element with a presence byte."""
    counts = np.asarray(pc.list_value_length(values).to_numpy(zero_copy_only=False), dtype=np.int64)
    element_lengths, data = _present(values.flatten(), partial(_scalars, name=element))
    ends = np.concatenate([np.zeros(1, dtype=np.int64), np.cumsum(element_lengths)])
    stops = np.cumsum(counts)
    return _interleave([_u32(counts), (ends[stops] - ends[stops - counts], data)], len(values))


def encode_values(
    event_ts_us: pa.Array,
    created_ts_us: pa.Array,
    columns: Sequence[pa.Array],
    dtypes: Sequence[DType],
) -> list[bytes]:
    """encode_value() of every row of Arrow columns, byte for byte, column by column.

    `event_ts_us` and `created_ts_us` are microseconds (int64 or timestamps); created
    times may be null (stored as the lowest), event times may not. `columns` hold the
    features in the view's schema order, as Arrow arrays of the dtypes' types."""
    if len(columns) != len(dtypes):
        raise CodecError(f"{len(columns)} columns for {len(dtypes)} features")
    rows = len(event_ts_us)
    if event_ts_us.null_count:
        raise CodecError("an event time is null")
    header = np.empty((rows, HEADER_SIZE), dtype=np.uint8)
    header[:, :4] = _HEADER_START
    events = _int64s(event_ts_us).view(np.uint64) ^ _SIGN
    header[:, 4:12] = events.astype(">u8").view(np.uint8).reshape(rows, 8)
    created = _int64s(pc.fill_null(created_ts_us, 0)).view(np.uint64) ^ _SIGN
    created[~_valid(created_ts_us)] = _NULL_CREATED
    header[:, 12:20] = created.astype(">u8").view(np.uint8).reshape(rows, 8)
    parts = [_fixed(header)]
    for column, dtype in zip(columns, dtypes, strict=True):
        if len(column) != rows:
            raise CodecError(f"a column of {len(column)} rows in a batch of {rows}")
        if isinstance(dtype, ArrayType):
            element = dtype.element.name
            parts.append(_present(column, partial(_array_values, element=element)))
        else:
            parts.append(_present(column, partial(_scalars, name=dtype.name)))
    return _split(_interleave(parts, rows))


def _int_key(values: pa.Array) -> _Segments:
    length = np.tile(np.frombuffer(_U32.pack(8), dtype=np.uint8), (len(values), 1))
    number = _int64s(values).astype(">i8").view(np.uint8).reshape(len(values), 8)
    return _fixed(np.concatenate([length, number], axis=1))


def _bool_key(values: pa.Array) -> _Segments:
    return _fixed(values.to_numpy(zero_copy_only=False).astype(np.uint8))


def _key_part(column: pa.Array) -> _Segments | None:
    """One join key column's encode_entity_key() parts, or None for types that only
    the row-wise encoder handles (its checks and errors then apply)."""
    kind = column.type
    encode: Callable[[pa.Array], _Segments]
    if pa.types.is_integer(kind) and kind != pa.uint64():  # uint64 may not fit an int64
        tag, encode = b"i", _int_key
    elif pa.types.is_boolean(kind):
        tag, encode = b"t", _bool_key
    elif pa.types.is_string(kind) or pa.types.is_large_string(kind):
        tag, encode = b"s", partial(_scalars, name="string")
    elif pa.types.is_binary(kind) or pa.types.is_large_binary(kind):
        tag, encode = b"b", partial(_scalars, name="bytes")
    else:
        return None
    valid = _valid(column)
    tags = np.where(valid, np.uint8(tag[0]), np.uint8(ord("n"))).astype(np.uint8)
    return _interleave([_fixed(tags), _only_valid(column, valid, encode)], len(column))


def arrow_entity_keys(project: str, view: str, columns: Sequence[pa.Array]) -> list[bytes]:
    """entity_key() of every row of Arrow join key columns (in join-key order)."""
    rows = len(columns[0]) if columns else 0
    parts = [_constant(key_prefix(project, view), rows)]
    for column in columns:
        part = _key_part(column)
        if part is None:
            rows_of_values = zip(*(c.to_pylist() for c in columns), strict=True)
            return [entity_key(project, view, values) for values in rows_of_values]
        parts.append(part)
    return _split(_interleave(parts, rows))
