"""Feature values as the gRPC response carries them: the entries of a stored value.

An entry is one value of a `FeatureColumn.values` field of the serving contract
(proto/skewless/serving/v1/serving.proto), byte for byte as protobuf serializes it: the
tag byte 0x12, the length of the `Value` message as a varint, then the message, which is
empty for a null and otherwise one field of `Value`'s oneof, chosen by the feature's
declared type:

    int64 -> int64_value (1, varint)        float64 -> double_value (2, 8 bytes LE)
    string -> string_value (3, UTF-8)       bool -> bool_value (4, varint 0/1)
    bytes -> bytes_value (5)                float32 -> float_value (6, 4 bytes LE)
    int32 -> int32_value (7, varint)        unix_timestamp -> unix_timestamp_value (8)
    arrays -> the *_list_value fields 9-16: a packed `values` field (strings and bytes
              one field per element) and a packed `null_indices` field; a null element
              holds the placeholder 0, 0.0, false, "" or b"".

A negative integer is its ten-byte two's complement varint, as protobuf writes int64 and
int32. Storing the entries means the gRPC server answers by concatenating stored bytes
(online/codec.py's gather), with no Python object per value; tests check every entry
against the generated code's serialization.

This module writes entries (one value, or a whole Arrow column with numpy) and reads
them back (one entry strictly, or columns of many with numpy). It takes the field tags
from the generated descriptor of the contract, and the field of each type from
types.ENGINES; it builds no protobuf message.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from functools import partial
from typing import Any, Final

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc
from google.protobuf.descriptor import FieldDescriptor

from skewless._proto.skewless.serving.v1 import serving_pb2 as pb
from skewless.online import segments as sg
from skewless.online.header import CodecError
from skewless.types import ENGINES, ArrayType, DType

_INT64: Final = (-(2**63), 2**63 - 1)


def tag_of(dtype: DType) -> bytes:
    """The tag bytes a present value of `dtype` starts its Value message with."""
    if isinstance(dtype, ArrayType):
        return LIST_TAGS[dtype.element.name]
    return SCALAR_TAGS[dtype.name]


# --- varints ---------------------------------------------------------------------------


def varint(n: int) -> bytes:
    """A non-negative integer below 2**64, or an int64 as its two's complement."""
    if 0 <= n < 0x80:
        return bytes((n,))
    n &= 0xFFFF_FFFF_FFFF_FFFF
    out = bytearray()
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def read_varint(data: bytes, p: int, end: int) -> tuple[int, int]:
    """The varint at `p` (ending by `end`) as an unsigned number, and the position after."""
    n = shift = 0
    while True:
        if p >= end or shift > 63:
            raise CodecError("a varint runs past its entry")
        b = data[p]
        n |= (b & 0x7F) << shift
        p += 1
        if b < 0x80:
            if n >= 1 << 64:
                raise CodecError("a varint is longer than 64 bits")
            return n, p
        shift += 7


def _signed(n: int) -> int:
    return n - (1 << 64) if n >= 1 << 63 else n


# --- the contract's tags ------------------------------------------------------------

# The gRPC contract's wire types per protobuf field type (varint, 64-bit, length-delimited,
# 32-bit), and each field's tag as it goes on the wire.
_WIRE_TYPES: Final = {
    FieldDescriptor.TYPE_INT64: 0,
    FieldDescriptor.TYPE_INT32: 0,
    FieldDescriptor.TYPE_BOOL: 0,
    FieldDescriptor.TYPE_DOUBLE: 1,
    FieldDescriptor.TYPE_STRING: 2,
    FieldDescriptor.TYPE_BYTES: 2,
    FieldDescriptor.TYPE_MESSAGE: 2,
    FieldDescriptor.TYPE_FLOAT: 5,
}


def _tag(message: Any, field: str) -> bytes:
    descriptor = message.DESCRIPTOR.fields_by_name[field]
    return varint((descriptor.number << 3) | _WIRE_TYPES[descriptor.type])


def _wire_type(field: str) -> int:
    return _WIRE_TYPES[pb.Value.DESCRIPTOR.fields_by_name[field].type]


# FeatureColumn.values: every stored entry starts with this tag (field 2, length-delimited)
ENTRY_TAG: Final = _tag(pb.FeatureColumn, "values")[0]
NULL_ENTRY: Final = bytes([ENTRY_TAG, 0])

# scalar type -> the tag of its Value field, and of its list field (types.ENGINES names them)
SCALAR_TAGS: Final = {name: _tag(pb.Value, e.proto) for name, e in ENGINES.items()}
LIST_TAGS: Final = {name: _tag(pb.Value, e.proto_list) for name, e in ENGINES.items()}
# the types written as varints (but bool, which is one byte of 0 or 1)
_INTS: Final = frozenset(
    name for name, e in ENGINES.items() if _wire_type(e.proto) == 0 and e.key_python is not bool
)
_RANGES: Final = {"int32": (-(2**31), 2**31 - 1)}
_PLACEHOLDERS: Final = {name: e.zero for name, e in ENGINES.items() if name not in _INTS}
_F64: Final = struct.Struct("<d")
_F32: Final = struct.Struct("<f")
# the fixed-size entries, whole: entry tag, length, field tag, then 8, 4 or 1 byte
# (a null entry of these types is 2 bytes: entry tag and a length of 0)
FIXED_SIZE: Final = {"float64": 3 + 8, "float32": 3 + 4, "bool": 3 + 1}


# --- one value -------------------------------------------------------------------------


def _int(name: str, v: Any) -> int:
    n = int(v)
    low, high = _RANGES.get(name, _INT64)
    if not low <= n <= high:
        raise CodecError(f"{n} is out of range for {name}")
    return n


def _scalar_payload(name: str, v: Any) -> bytes:
    """A present scalar's Value field without its tag."""
    if name in _INTS:
        return varint(_int(name, v))
    if name == "float64":
        return _F64.pack(float(v))
    if name == "float32":
        return _F32.pack(float(v))
    if name == "bool":
        return b"\x01" if v else b"\x00"
    raw = v.encode() if name == "string" else bytes(v)
    return varint(len(raw)) + raw


def _list_message(name: str, items: list[Any]) -> bytes:
    """The Int64List (DoubleList, ...) message of an array's items."""
    filled = [_PLACEHOLDERS.get(name, 0) if x is None else x for x in items]
    out: list[bytes] = []
    if name in ("string", "bytes"):  # length-delimited elements are never packed
        out.extend(b"\x0a" + _scalar_payload(name, x) for x in filled)
    elif filled:
        packed = b"".join(_scalar_payload(name, x) for x in filled)
        out.append(b"\x0a" + varint(len(packed)) + packed)
    nulls = b"".join(varint(i) for i, x in enumerate(items) if x is None)
    if nulls:
        out.append(b"\x12" + varint(len(nulls)) + nulls)
    return b"".join(out)


def encode_entry(value: Any, dtype: DType) -> bytes:
    """The entry of one value (None: null) of type `dtype`."""
    if value is None:
        return NULL_ENTRY
    try:
        if isinstance(dtype, ArrayType):
            body = _list_message(dtype.element.name, list(value))
            message = LIST_TAGS[dtype.element.name] + varint(len(body)) + body
        else:
            message = SCALAR_TAGS[dtype.name] + _scalar_payload(dtype.name, value)
    except (struct.error, TypeError, ValueError, AttributeError, OverflowError) as exc:
        raise CodecError(f"cannot encode {value!r} as {dtype.name}: {exc}") from None
    return b"\x12" + varint(len(message)) + message


def _read_scalar(name: str, data: bytes, p: int, end: int) -> tuple[Any, int]:
    """A scalar's payload at `p` (past its tag), and the position after it."""
    if name in _INTS:
        n, p = read_varint(data, p, end)
        value = _signed(n)
        low, high = _RANGES.get(name, _INT64)
        if not low <= value <= high:
            raise CodecError(f"{value} is out of range for {name}")
        return value, p
    if name in ("float64", "float32"):
        unpack = _F64 if name == "float64" else _F32
        if p + unpack.size > end:
            raise CodecError(f"a {name} runs past its entry")
        return unpack.unpack_from(data, p)[0], p + unpack.size
    if name == "bool":
        n, p = read_varint(data, p, end)
        if n > 1:
            raise CodecError(f"a bool holds {n}")
        return n == 1, p
    size, p = read_varint(data, p, end)
    if p + size > end:
        raise CodecError(f"a {name} of {size} bytes runs past its entry")
    raw = data[p : p + size]
    try:
        return (raw.decode() if name == "string" else raw), p + size
    except UnicodeDecodeError as exc:
        raise CodecError(f"a string is not UTF-8: {exc}") from None


def _packed(
    data: bytes, p: int, end: int, read: Callable[[bytes, int, int], tuple[Any, int]], what: str
) -> tuple[list[Any], int]:
    """The items of the packed field whose length is at `p`, each read with `read`, and
    the position after it."""
    size, p = read_varint(data, p, end)
    stop = p + size
    if stop > end:
        raise CodecError(f"{what} run past their entry")
    items = []
    while p < stop:
        item, p = read(data, p, stop)
        items.append(item)
    return items, p


def _read_list(name: str, data: bytes, p: int, end: int) -> list[Any]:
    items: list[Any] = []
    nulls: list[int] = []
    while p < end:
        tag = data[p]
        p += 1
        if tag == 0x0A and name in ("string", "bytes"):
            value, p = _read_scalar(name, data, p, end)
            items.append(value)
        elif tag == 0x0A:
            values, p = _packed(data, p, end, partial(_read_scalar, name), "packed values")
            items.extend(values)
        elif tag == 0x12:
            indices, p = _packed(data, p, end, read_varint, "null indices")
            nulls.extend(indices)
        else:
            raise CodecError(f"an array holds field tag {tag:#x}")
    for i in nulls:
        if i >= len(items):
            raise CodecError(f"null index {i} is past the end of an array of {len(items)}")
        items[i] = None
    return items


def decode_entry(entry: bytes, dtype: DType) -> Any:
    """The value of one entry of type `dtype` (None for a null). Raises CodecError for
    anything that is not one well-formed entry of that type: another field, a length
    that does not match, a truncated or trailing byte, an int32 or bool out of range,
    a string that is not UTF-8."""
    try:
        if len(entry) < 2 or entry[0] != ENTRY_TAG:
            raise CodecError("an entry does not start with FeatureColumn.values' tag")
        size, p = read_varint(entry, 1, len(entry))
        end = len(entry)
        if p + size != end:
            raise CodecError(f"an entry declares {size} bytes and holds {end - p}")
        if size == 0:
            return None
        tag = tag_of(dtype)
        if entry[p : p + len(tag)] != tag:
            raise CodecError(f"an entry holds field tag {entry[p]:#x}, not {dtype.name}'s")
        p += len(tag)
        if isinstance(dtype, ArrayType):
            body, p = read_varint(entry, p, end)
            if p + body != end:
                raise CodecError(f"an array declares {body} bytes and holds {end - p}")
            return _read_list(dtype.element.name, entry, p, end)
        value, p = _read_scalar(dtype.name, entry, p, end)
        if p != end:
            raise CodecError(f"{end - p} unexpected bytes after a {dtype.name}")
        return value
    except IndexError:
        raise CodecError("an entry is truncated") from None


# --- a whole Arrow column (the online writer) -------------------------------------------


def _fixed_payloads(values: pa.Array, name: str) -> npt.NDArray[np.uint8]:
    """The bytes of each value of a null-free float or bool column, one row each."""
    if name == "float64":
        body = values.to_numpy(zero_copy_only=False).astype("<f8").view(np.uint8)
    elif name == "float32":
        # encode_entry packs float(v): a float32 widened to a double and narrowed back,
        # which quiets a signalling NaN; the bits are otherwise unchanged.
        bits = values.to_numpy(zero_copy_only=False).astype(np.float32).view(np.uint32)
        nan = (bits & np.uint32(0x7FFFFFFF)) > np.uint32(0x7F800000)
        body = np.where(nan, bits | np.uint32(0x00400000), bits).astype("<u4").view(np.uint8)
    else:
        body = values.to_numpy(zero_copy_only=False).astype(np.uint8)
    rows: npt.NDArray[np.uint8] = body.reshape(len(values), FIXED_SIZE[name] - 3)
    return rows


def _checked_ints(values: pa.Array, name: str) -> npt.NDArray[np.int64]:
    numbers = sg.int64s(values)
    if name in _RANGES and len(numbers):
        low, high = _RANGES[name]
        bad = (numbers < low) | (numbers > high)
        if bad.any():
            raise CodecError(f"{int(numbers[bad][0])} is out of range for {name}")
    return numbers


def _messages(values: pa.Array, name: str) -> sg.Segments:
    """The Value messages of a null-free column of scalars, as encode_entry writes them."""
    rows = len(values)
    tag = sg.constant(SCALAR_TAGS[name], rows)
    if name in FIXED_SIZE:
        return sg.interleave([tag, sg.fixed(_fixed_payloads(values, name))], rows)
    if name in _INTS:
        return sg.interleave([tag, sg.varints(_checked_ints(values, name))], rows)
    lengths, data = sg.binary(values)
    return sg.interleave([tag, sg.varints(lengths), (lengths, data)], rows)


def _packed_elements(values: pa.Array, name: str) -> sg.Segments:
    """Per element (nulls as their placeholder): its packed encoding, or for strings and
    bytes its whole `values` field."""
    rows = len(values)
    if name in _INTS:
        numbers = values
        if pa.types.is_timestamp(values.type):
            numbers = pc.cast(pc.cast(values, pa.timestamp("us")), pa.int64())
        return sg.varints(_checked_ints(pc.fill_null(numbers, 0), name))
    filled = pc.fill_null(values, _PLACEHOLDERS[name]) if values.null_count else values
    if name in ("string", "bytes"):
        lengths, data = sg.binary(filled)
        return sg.interleave(
            [sg.constant(b"\x0a", rows), sg.varints(lengths), (lengths, data)], rows
        )
    return sg.fixed(_fixed_payloads(filled, name))


def _per_row(lengths: sg.Lengths, row_of: npt.NDArray[np.int64], rows: int) -> sg.Lengths:
    """The sums of `lengths` by the row each item belongs to."""
    return np.bincount(row_of, weights=lengths, minlength=rows).astype(np.int64)


def _field_if_any(tag: bytes, lengths: sg.Lengths, data: sg.Bytes, rows: int) -> sg.Segments:
    """Per row, `tag + varint(length) + bytes` when it has bytes, nothing otherwise."""
    some = lengths > 0
    sizes = lengths[some]
    head_lengths, head_data = sg.interleave(
        [sg.constant(tag, len(sizes)), sg.varints(sizes)], len(sizes)
    )
    all_heads = np.zeros(rows, dtype=np.int64)
    all_heads[some] = head_lengths
    return sg.interleave([(all_heads, head_data), (lengths, data)], rows)


def _list_messages(values: pa.Array, name: str) -> sg.Segments:
    """The Value messages of a null-free list column, as encode_entry writes them."""
    rows = len(values)
    counts = np.asarray(pc.list_value_length(values).to_numpy(zero_copy_only=False), dtype=np.int64)
    flat = values.flatten()
    element_lengths, element_data = _packed_elements(flat, name)
    element_row = np.repeat(np.arange(rows), counts)
    per_row = _per_row(element_lengths, element_row, rows)
    if name in ("string", "bytes"):
        body = [(per_row, element_data)]
    else:
        body = [_field_if_any(b"\x0a", per_row, element_data, rows)]
    if flat.null_count:
        starts = np.cumsum(counts) - counts
        null_at = np.flatnonzero(~sg.valid(flat))
        row_of = element_row[null_at]
        index_lengths, index_data = sg.varints(null_at - starts[row_of])
        body.append(_field_if_any(b"\x12", _per_row(index_lengths, row_of, rows), index_data, rows))
    message = sg.interleave(body, rows)
    tag = sg.constant(LIST_TAGS[name], rows)
    return sg.interleave([tag, sg.varints(message[0]), message], rows)


def encode_column(column: pa.Array, dtype: DType) -> sg.Segments:
    """encode_entry() of every row of an Arrow column of type `dtype`."""
    rows = len(column)
    present = sg.valid(column)
    if isinstance(dtype, ArrayType):
        encode: Callable[[pa.Array], sg.Segments] = partial(_list_messages, name=dtype.element.name)
    else:
        encode = partial(_messages, name=dtype.name)
    message = sg.only_valid(column, present, encode)
    head = sg.interleave([sg.constant(b"\x12", rows), sg.varints(message[0])], rows)
    return sg.interleave([head, message], rows)


# --- columns of entries (the in-process lookups) ----------------------------------------

_NUMBER_GROUPS = np.arange(10)
_SHIFTS = (np.arange(10) * 7).astype(np.uint64)


def read_columns(
    buffer: npt.NDArray[np.uint8],
    raw: bytes,
    starts: npt.NDArray[np.int64],
    lengths: npt.NDArray[np.int64],
    name: str,
) -> list[list[Any]] | None:
    """The values of columns of entries of one scalar type: the entry of row i of column
    j is `lengths[i, j]` bytes at `starts[i, j]` in `buffer` (the bytes of `raw`). The
    caller has checked each entry's tag, length and field (codec._entries_in_order, which
    entry_gatherer also applies to the columns columns.py reads).
    None when a value is not in the form its type's writer gives it (the caller then
    reads the entries one by one, which raises the precise error)."""
    present = lengths > 2
    body = np.where(present, starts + 3, 0)  # past the entry's tag, length, field tag
    if name in ("string", "bytes"):
        return _texts(buffer, raw, starts, lengths, present, text=name == "string")
    if name in FIXED_SIZE:
        values = _fixed_values(buffer, lengths, present, body, name)
    else:
        values = _int_values(buffer, lengths, present, body, name)
    if values is None:
        return None
    boxed = values.astype(object)
    boxed[~present] = None
    result: list[list[Any]] = boxed.T.tolist()
    return result


_Ints = npt.NDArray[np.int64]
_Mask = npt.NDArray[np.bool_]


def _fixed_values(
    buffer: npt.NDArray[np.uint8], lengths: _Ints, present: _Mask, body: _Ints, name: str
) -> npt.NDArray[Any] | None:
    if (present & (lengths != FIXED_SIZE[name])).any():
        return None
    width = FIXED_SIZE[name] - 3
    taken = buffer[body[:, :, None] + np.arange(width)[None, None, :]]
    if name == "bool":
        if (present & (taken[:, :, 0] > 1)).any():
            return None
        flags: npt.NDArray[Any] = taken[:, :, 0] == 1
        return flags
    numbers: npt.NDArray[Any] = taken.reshape(-1).view("<f8" if name == "float64" else "<f4")
    return numbers.reshape(lengths.shape)


def _int_values(
    buffer: npt.NDArray[np.uint8], lengths: _Ints, present: _Mask, body: _Ints, name: str
) -> npt.NDArray[Any] | None:
    sizes = np.where(present, lengths - 3, 1)
    widest = int(sizes.max(initial=1))  # read only as many bytes as the longest varint
    if widest > 10 or sizes.min(initial=1) < 1:
        return None
    at = _NUMBER_GROUPS[:widest]
    index = np.minimum(body[:, :, None] + at, len(buffer) - 1)
    inside = sizes[:, :, None] > at
    groups = np.where(inside, buffer[index], 0)
    # every byte but the last continues the varint (and bytes past it are zeros here)
    if ((groups >= 0x80) != (sizes[:, :, None] - 1 > at)).any():
        return None
    if widest == 10 and ((sizes == 10) & (groups[:, :, 9] > 1)).any():
        return None  # a tenth byte holds one bit
    shifted = (groups & 0x7F).astype(np.uint64) << _SHIFTS[:widest]
    values: npt.NDArray[Any] = shifted.sum(axis=2, dtype=np.uint64).view(np.int64)
    if name in _RANGES:
        low, high = _RANGES[name]
        if (present & ((values < low) | (values > high))).any():
            return None
    return values


def _texts(
    buffer: npt.NDArray[np.uint8],
    raw: bytes,
    starts: _Ints,
    lengths: _Ints,
    present: _Mask,
    *,
    text: bool,
) -> list[list[Any]] | None:
    if (present & (buffer[np.where(present, starts + 3, 0)] != lengths - 4)).any():
        return None  # a length of the bytes longer than one byte
    columns = []
    try:
        for s_col, n_col in zip(starts.T.tolist(), lengths.T.tolist(), strict=True):
            columns.append(
                [
                    (raw[s + 4 : s + n].decode() if text else raw[s + 4 : s + n]) if n > 2 else None
                    for s, n in zip(s_col, n_col, strict=True)
                ]
            )
    except UnicodeDecodeError:
        return None
    return columns
