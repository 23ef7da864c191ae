"""Online store encoding: Redis keys and values, versioned and pure (no I/O).

Key:   b"sk1|" project b"|" view b"|" entity-key
       entity-key = for each join key, in the view's join-key order:
                    a type tag (b"i" int64, b"s" UTF-8 string, b"b" bytes, b"t" bool,
                    b"n" null) and, except for null and bool, a 4-byte big-endian length
                    and the bytes. Typed and length-prefixed, so ("a|b", "c") and
                    ("a", "b|c"), or 1 and "1", can never share a key.
Value (codec version 3):
       header = the 28 bytes of online/header.py: version 3, flags, reserved, then the
                rank bytes (event time, created time, tie hash) the writer's
                compare-and-set reads; flags bit 0 set means 4-byte offsets, clear
                2-byte; no other bit is used.
       offsets = n + 1 little-endian unsigned integers for a view of n features: where
                each feature's entry starts, counted from the value's first byte, then
                the value's length.
       entries = each feature's value, in the view's schema order, as the gRPC response
                carries it (online/entries.py): a FeatureColumn.values field holding a
                Value message.
Values of another version are refused with an error that says to materialize again.

The gRPC server answers a lookup by gathering stored entries (entry_gatherer): for each
requested feature, the entries of every row, concatenated, are its column's `values` as
they go on the wire, so serving builds no Python object per value. In-process lookups
decode them (column_decoder). Both check the layout of every value they read (version,
offsets, each entry's tag and length) and refuse what they cannot vouch for.
"""

from __future__ import annotations

import functools
import itertools
import struct
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from skewless.online import entries as en
from skewless.online import segments as sg
from skewless.online.header import (
    CODEC_VERSION,
    HEADER_SIZE,
    RANK_SLICE,
    CodecError,
    Record,
    header_bytes,
    read_header,
)
from skewless.rules.ranking import rank_bytes_many
from skewless.types import ArrayType, DType

__all__ = [
    "CODEC_VERSION",
    "HEADER_SIZE",
    "RANK_SLICE",
    "CodecError",
    "ColumnDecoder",
    "Gather",
    "Record",
    "arrow_entity_keys",
    "column_decoder",
    "decode_value",
    "encode_entity_key",
    "encode_value",
    "encode_values",
    "entity_key",
    "entity_keys",
    "entry_gatherer",
    "event_times",
    "key_prefix",
]

_WIDE = 0x01  # flags: 4-byte offsets

_I64 = struct.Struct(">q")
_U32 = struct.Struct(">I")
_EVENT = struct.Struct(">4xQ")  # the rank's event time (offset by 2**63)
_SIGN = 1 << 63


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


@functools.cache
def _offsets(width: int, features: int) -> struct.Struct:
    return struct.Struct(f"<{features + 1}{'H' if width == 2 else 'I'}")


def encode_value(record: Record, dtypes: Sequence[DType]) -> bytes:
    """The stored value of one entity's latest row."""
    if len(record.values) != len(dtypes):
        raise CodecError(f"{len(record.values)} values for {len(dtypes)} features")
    body = [en.encode_entry(v, dtype) for v, dtype in zip(record.values, dtypes, strict=True)]
    sizes = [len(b) for b in body]
    for width in (2, 4):
        start = HEADER_SIZE + width * (len(dtypes) + 1)
        ends = [start]
        for size in sizes:
            ends.append(ends[-1] + size)
        if ends[-1] < 1 << (8 * width):
            break
    else:  # pragma: no cover - a value of 4 GiB
        raise CodecError(f"a value of {ends[-1]} bytes")
    flags = 0 if width == 2 else _WIDE
    return b"".join(
        [
            header_bytes(flags, record),
            _offsets(width, len(dtypes)).pack(*ends),
            *body,
        ]
    )


def value_layout(data: bytes, features: int) -> tuple[int, ...]:
    """The offsets of a value, checked: from the end of the table, never decreasing, up
    to the value's end."""
    flags = read_header(data)[0]
    if flags & ~_WIDE:
        raise CodecError(f"unknown flags {flags:#x}")
    width = 4 if flags & _WIDE else 2
    table = _offsets(width, features)
    if len(data) < HEADER_SIZE + table.size:
        raise CodecError("value is truncated (its offsets)")
    ends = table.unpack_from(data, HEADER_SIZE)
    if ends[0] != HEADER_SIZE + table.size:
        raise CodecError(f"the first entry is at {ends[0]}, not after the offsets")
    if ends[-1] > len(data):
        raise CodecError(f"value is truncated: its entries end at {ends[-1]} of {len(data)} bytes")
    if ends[-1] < len(data):
        raise CodecError(f"{len(data) - ends[-1]} unexpected trailing bytes")
    if any(a > b for a, b in itertools.pairwise(ends)):
        raise CodecError("offsets decrease")
    return ends


def decode_value(data: bytes, dtypes: Sequence[DType]) -> Record:
    """The record of a stored value."""
    _, event, created, tie = read_header(data)
    ends = value_layout(data, len(dtypes))
    values = []
    for i, dtype in enumerate(dtypes):
        try:
            values.append(en.decode_entry(data[ends[i] : ends[i + 1]], dtype))
        except CodecError as exc:
            raise CodecError(f"feature {i} ({dtype.name}): {exc}") from None
    return Record(event, created, tuple(values), tie)


def event_times(values: Sequence[bytes | None]) -> list[int | None]:
    """The event time of each stored value (None for None), from its header."""
    event = _EVENT.unpack_from
    try:
        return [None if v is None else event(v)[0] - _SIGN for v in values]
    except struct.error:
        raise CodecError("value is shorter than its header") from None


# --- reading many values: the serving hot path ------------------------------------------
#
# Both readers below take the values of one view for a batch of entity rows (None where
# nothing is stored, or where the caller withholds the value) and a selection of the
# view's features. Up to _FEW values are read one by one in Python; more are read with
# numpy: the values joined into one buffer, every offset table read at once, and the
# selected entries located, checked and copied (or decoded) as arrays, so the cost per
# value is a few array elements rather than Python calls.

_FEW = 8
_PAD = 16
Gather = Callable[[Sequence[bytes | None]], list[bytes]]
ColumnDecoder = Callable[[Sequence[bytes | None]], tuple[list[int | None], list[list[Any]]]]


def _check_positions(dtypes: Sequence[DType], positions: Sequence[int]) -> None:
    if len(set(positions)) != len(positions) or not all(0 <= p < len(dtypes) for p in positions):
        raise ValueError(f"positions {list(positions)} do not select features of {len(dtypes)}")


class Located:
    """Where the selected entries of a batch of stored values lie in one buffer."""

    def __init__(self, raw: bytes, starts: npt.NDArray[np.int64], lengths: npt.NDArray[np.int64]):
        self.raw = raw  # the values joined, then a null entry and padding
        self.buffer = np.frombuffer(raw, dtype=np.uint8)
        self.starts = starts  # (rows, selected): where each entry starts in raw
        self.lengths = lengths  # and its length


def locate_entries(
    values: Sequence[bytes | None], features: int, positions: npt.NDArray[np.int64] | slice
) -> Located | None:
    """The selected entries of `values` (None rows: a null entry), or None when any value
    is not a well-formed value of this version with 2-byte offsets (the caller then reads them
    one by one, which also raises the precise error)."""
    stored = [v for v in values if v is not None]
    # then the null entry, and zeros enough that reading a fixed width past any entry
    # (of a row the readers then mask out) stays inside the buffer
    raw = b"".join([*stored, en.NULL_ENTRY, bytes(_PAD)])
    null_at = len(raw) - _PAD - len(en.NULL_ENTRY)
    buffer = np.frombuffer(raw, dtype=np.uint8)
    sizes = np.fromiter(map(len, stored), dtype=np.int64, count=len(stored))
    table_end = HEADER_SIZE + 2 * (features + 1)
    if stored and sizes.min() < table_end:
        return None
    begin = np.cumsum(sizes) - sizes
    table = buffer[begin[:, None] + _table_columns(features)].view("<u2").astype(np.int64)
    lengths = np.diff(table, axis=1)
    bad = (buffer[begin] != CODEC_VERSION) | (buffer[begin + 1] != 0)  # this version, narrow
    bad |= (table[:, 0] != table_end) | (table[:, -1] != sizes)
    if bad.any() or (lengths < 0).any():
        return None
    starts = table[:, positions] + begin[:, None]
    lengths = lengths[:, positions]
    rows = len(values)
    if len(stored) < rows:  # the rows without a value get the null entry at the end
        at = np.fromiter((v is not None for v in values), dtype=np.bool_, count=rows)
        shape = (rows, starts.shape[1])
        all_starts = np.full(shape, null_at, dtype=np.int64)
        all_lengths = np.full(shape, 2, dtype=np.int64)
        all_starts[at], all_lengths[at] = starts, lengths
        starts, lengths = all_starts, all_lengths
    return Located(raw, starts, lengths)


def _selection(positions: Sequence[int]) -> npt.NDArray[np.int64] | slice:
    """Positions as an index of the offset table's columns: a slice (a view, no copy)
    when they are consecutive and ascending, as when a lookup asks for a whole view."""
    if positions and list(positions) == list(range(positions[0], positions[-1] + 1)):
        return slice(positions[0], positions[-1] + 1)
    return np.asarray(positions, dtype=np.int64)


@functools.cache
def _first_bytes(tags: tuple[bytes, ...]) -> npt.NDArray[np.uint8]:
    """The first byte of each selected feature's field tag, as the masks compare them."""
    return np.array([t[0] for t in tags], dtype=np.uint8)


@functools.cache
def _table_columns(features: int) -> npt.NDArray[np.int64]:
    """Where a value's 2-byte offsets lie, from its first byte."""
    return np.arange(HEADER_SIZE, HEADER_SIZE + 2 * (features + 1))[None, :]


def _entries_in_order(located: Located, tags: tuple[bytes, ...]) -> bool:
    """Whether every located entry is a FeatureColumn.values field of its length holding
    its feature's field (tags[i] for the i-th selected feature) or nothing: what the wire
    needs to stay well formed."""
    buffer, starts, lengths = located.buffer, located.starts, located.lengths
    first = _first_bytes(tags)
    short = lengths <= 0x81  # a one-byte length: checked here; longer ones in Python
    bad = (buffer[starts] != en.ENTRY_TAG) | (lengths < 2)
    # the length byte, and the first byte of the field held (past the end of a null
    # entry this is a byte of the next one, or padding, and is not looked at)
    wrong = (buffer[starts + 1] != lengths - 2) | ((lengths > 2) & (buffer[starts + 2] != first))
    bad |= short & wrong
    if bad.any():
        return False
    if short.all():
        return True
    for row, col in zip(*np.nonzero(~short), strict=True):
        s, n = int(starts[row, col]), int(lengths[row, col])
        if not _long_entry_ok(located.raw, s, n, tags[col]):
            return False
    return True


def _long_entry_ok(raw: bytes, start: int, length: int, tag: bytes) -> bool:
    try:
        size, p = en.read_varint(raw, start + 1, start + length)
    except CodecError:
        return False
    return p + size == start + length and raw[p : p + len(tag)] == tag


def _entry_ok(entry: bytes, tag: bytes) -> bool:
    """_entries_in_order() for one entry."""
    if len(entry) < 2 or entry[0] != en.ENTRY_TAG:
        return False
    if entry[1] < 0x80:
        return entry[1] + 2 == len(entry) and (len(entry) == 2 or entry[2] == tag[0])
    return _long_entry_ok(entry, 0, len(entry), tag)


def entry_gatherer(dtypes: Sequence[DType], positions: Sequence[int]) -> Gather:
    """A function giving, for the stored values of a batch of rows, per feature at
    `positions` (indices into `dtypes`, in the order wanted), the entries of every row
    concatenated (a null entry for a None row): that feature's FeatureColumn.values on
    the wire. It raises CodecError for a value of another codec version or whose
    layout is wrong."""
    _check_positions(dtypes, positions)
    dtypes = tuple(dtypes)
    selected = _selection(positions)
    pairs = [(p, p + 1) for p in positions]
    tags = tuple(en.tag_of(dtypes[p]) for p in positions)
    nulls = [en.NULL_ENTRY] * len(positions)
    features = len(dtypes)

    def one_by_one(values: Sequence[bytes | None]) -> list[bytes]:
        rows: list[list[bytes]] = []
        for data in values:
            if data is None:
                rows.append(nulls)
                continue
            ends = value_layout(data, features)
            row = [data[ends[a] : ends[b]] for a, b in pairs]
            if not all(_entry_ok(e, t) for e, t in zip(row, tags, strict=True)):
                _refuse(data, dtypes)
            rows.append(row)
        if not rows:
            return [b""] * len(pairs)
        return [b"".join(column) for column in zip(*rows, strict=True)]

    def gather(values: Sequence[bytes | None]) -> list[bytes]:
        if len(values) <= _FEW:
            return one_by_one(values)
        located = locate_entries(values, features, selected)
        if located is None or not _entries_in_order(located, tags):
            return one_by_one(values)  # another version, 4-byte offsets, or an error
        lengths = located.lengths.T.reshape(-1)
        starts = located.starts.T.reshape(-1)
        total = int(lengths.sum())
        index = np.repeat(starts - (np.cumsum(lengths) - lengths), lengths) + np.arange(total)
        out = located.buffer[index].tobytes()
        ends = np.cumsum(located.lengths.sum(axis=0)).tolist()
        return [out[a:b] for a, b in zip([0, *ends][:-1], ends, strict=True)]

    return gather


def _refuse(data: bytes, dtypes: Sequence[DType]) -> None:
    decode_value(data, dtypes)  # raises the precise error
    raise CodecError("a value whose layout the gather refused decodes alone")


def column_decoder(dtypes: Sequence[DType], positions: Sequence[int]) -> ColumnDecoder:
    """A function decoding a batch of stored values (None: no value stored) of one view
    into, per value, its event time (None for None) and, per feature at `positions`
    (indices into `dtypes`, in the order wanted), a column of values (None for None).
    Row for row equal to decode_value(data, dtypes); raises what
    it raises for a value whose layout or selected features are wrong."""
    _check_positions(dtypes, positions)
    dtypes = tuple(dtypes)
    selected = _selection(positions)
    chosen = [dtypes[p] for p in positions]
    none_row = (None,) * len(dtypes)
    tags = tuple(en.tag_of(d) for d in chosen)
    # the selected scalar features by type, read a type at a time; arrays one by one
    by_name: dict[str, list[int]] = {}
    one_by_one = []
    for i, dtype in enumerate(chosen):
        if isinstance(dtype, ArrayType):
            one_by_one.append(i)
        else:
            by_name.setdefault(dtype.name, []).append(i)
    groups = [(name, np.asarray(at, dtype=np.int64)) for name, at in by_name.items()]

    def row_by_row(values: Sequence[bytes | None]) -> tuple[list[int | None], list[list[Any]]]:
        ets: list[int | None] = []
        rows: list[tuple[Any, ...]] = []
        for data in values:
            if data is None:
                ets.append(None)
                rows.append(none_row)
                continue
            record = decode_value(data, dtypes)
            ets.append(record.event_ts_us)
            rows.append(record.values)
        if not rows:
            return ets, [[] for _ in positions]
        transposed = list(zip(*rows, strict=True))
        return ets, [list(transposed[p]) for p in positions]

    def decode(values: Sequence[bytes | None]) -> tuple[list[int | None], list[list[Any]]]:
        if len(values) <= _FEW:
            return row_by_row(values)
        located = locate_entries(values, len(dtypes), selected)
        if located is None or not _entries_in_order(located, tags):
            return row_by_row(values)  # another version, 4-byte offsets, or an error
        columns: list[list[Any]] = [[] for _ in positions]
        for name, at in groups:
            read = en.read_columns(
                located.buffer, located.raw, located.starts[:, at], located.lengths[:, at], name
            )
            if read is None:
                return row_by_row(values)  # raises the precise error
            for i, column in zip(at, read, strict=True):
                columns[i] = column
        for i in one_by_one:
            columns[i] = _entries_one_by_one(values, located, i, dtypes, chosen[i])
        return event_times(values), columns

    return decode


def _entries_one_by_one(
    values: Sequence[bytes | None],
    located: Located,
    i: int,
    dtypes: tuple[DType, ...],
    dtype: DType,
) -> list[Any]:
    column = []
    for row, (s, n) in enumerate(
        zip(located.starts[:, i].tolist(), located.lengths[:, i].tolist(), strict=True)
    ):
        try:
            column.append(en.decode_entry(located.raw[s : s + n], dtype))
        except CodecError:
            data = values[row]
            assert data is not None  # a None row's entry is the null entry
            _refuse(data, dtypes)
    return column


# --- the online writer: a whole Arrow batch at once --------------------------------------


def encode_values(
    event_ts_us: pa.Array,
    created_ts_us: pa.Array,
    tie_hash: pa.Array,
    columns: Sequence[pa.Array],
    dtypes: Sequence[DType],
) -> list[bytes]:
    """encode_value() of every row of Arrow columns, byte for byte, column by column.

    `event_ts_us` and `created_ts_us` are microseconds (int64 or timestamps); created
    times may be null (stored as the lowest), event times and tie hashes may not.
    `columns` hold the features in the view's schema order, as Arrow arrays of the
    dtypes' types."""
    if len(columns) != len(dtypes):
        raise CodecError(f"{len(columns)} columns for {len(dtypes)} features")
    rows = len(event_ts_us)
    if event_ts_us.null_count:
        raise CodecError("an event time is null")
    if tie_hash.null_count or len(tie_hash) != rows:
        raise CodecError("a tie hash is missing")
    features = []
    for column, dtype in zip(columns, dtypes, strict=True):
        if len(column) != rows:
            raise CodecError(f"a column of {len(column)} rows in a batch of {rows}")
        features.append(en.encode_column(column, dtype))
    sizes = np.zeros(rows, dtype=np.int64)
    for lengths, _ in features:
        sizes += lengths
    # 2-byte offsets unless a value of this batch needs more (then all of them get 4)
    width = 2
    if rows and int(sizes.max()) + HEADER_SIZE + 2 * (len(dtypes) + 1) >= 1 << 16:
        width = 4
    start = HEADER_SIZE + width * (len(dtypes) + 1)
    ends = np.empty((rows, len(dtypes) + 1), dtype=np.int64)
    ends[:, 0] = start
    for i, (lengths, _) in enumerate(features):
        ends[:, i + 1] = ends[:, i] + lengths
    header = np.zeros((rows, HEADER_SIZE), dtype=np.uint8)
    header[:, 0] = CODEC_VERSION
    header[:, 1] = 0 if width == 2 else _WIDE
    header[:, RANK_SLICE] = rank_bytes_many(
        sg.int64s(event_ts_us),
        sg.int64s(pc.fill_null(created_ts_us, 0)),
        sg.valid(created_ts_us),
        sg.int64s(tie_hash),
    )
    table = ends.astype("<u2" if width == 2 else "<u4")
    parts = [sg.fixed(header), sg.fixed(table), *features]
    return sg.split(sg.interleave(parts, rows))


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


def _length_prefixed(values: pa.Array) -> sg.Segments:
    """A 4-byte big-endian length, then the bytes, of each row of a null-free string or
    binary column."""
    lengths, data = sg.binary(values)
    return sg.interleave([sg.u32(lengths), (lengths, data)], len(values))


def _int_key(values: pa.Array) -> sg.Segments:
    length = np.tile(np.frombuffer(_U32.pack(8), dtype=np.uint8), (len(values), 1))
    number = sg.int64s(values).astype(">i8").view(np.uint8).reshape(len(values), 8)
    return sg.fixed(np.concatenate([length, number], axis=1))


def _bool_key(values: pa.Array) -> sg.Segments:
    return sg.fixed(values.to_numpy(zero_copy_only=False).astype(np.uint8))


def _key_part(column: pa.Array) -> sg.Segments | None:
    """One join key column's encode_entity_key() parts, or None for types that only
    the row-wise encoder handles (its checks and errors then apply)."""
    kind = column.type
    encode: Callable[[pa.Array], sg.Segments]
    if pa.types.is_integer(kind) and kind != pa.uint64():  # uint64 may not fit an int64
        tag, encode = b"i", _int_key
    elif pa.types.is_boolean(kind):
        tag, encode = b"t", _bool_key
    elif pa.types.is_string(kind) or pa.types.is_large_string(kind):
        tag, encode = b"s", _length_prefixed
    elif pa.types.is_binary(kind) or pa.types.is_large_binary(kind):
        tag, encode = b"b", _length_prefixed
    else:
        return None
    valid = sg.valid(column)
    tags = np.where(valid, np.uint8(tag[0]), np.uint8(ord("n"))).astype(np.uint8)
    return sg.interleave([sg.fixed(tags), sg.only_valid(column, valid, encode)], len(column))


def arrow_entity_keys(project: str, view: str, columns: Sequence[pa.Array]) -> list[bytes]:
    """entity_key() of every row of Arrow join key columns (in join-key order)."""
    rows = len(columns[0]) if columns else 0
    parts = [sg.constant(key_prefix(project, view), rows)]
    for column in columns:
        part = _key_part(column)
        if part is None:
            rows_of_values = zip(*(c.to_pylist() for c in columns), strict=True)
            return [entity_key(project, view, values) for values in rows_of_values]
        parts.append(part)
    return sg.split(sg.interleave(parts, rows))
