"""An aggregated view's stored event lists, read into flat arrays for the evaluator
(serving/windows.py).

The stored value of an entity (online/event_lists.py) is one value of the codec whose
features are arrays: the event times, then each input column. EventListReader reads a
batch of rows' values into EventLists: every row's events one after another, a row's
events a segment, one numpy array per column. The arrays of numbers are read with numpy,
every row's at once; the codec's decoder reads arrays element by element in Python
(35 ms for 100 rows of 100 events and three columns, against under 1 ms here), and is
left what is not in the writer's form, so it raises its precise CodecError for what is
malformed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from skewless.online import entries as en
from skewless.online.codec import CodecError, column_decoder, locate_entries, value_layout
from skewless.types import ArrayType, DType

Ints = npt.NDArray[np.int64]
Mask = npt.NDArray[np.bool_]

FLOATS: Final = frozenset({"float32", "float64"})
OBJECTS: Final = frozenset({"string", "bytes"})  # kept as Python objects
_INT32: Final = (-(1 << 31), (1 << 31) - 1)


@dataclass(frozen=True, eq=False)
class ListColumn:
    """One input column of a batch's events: a value per event (a placeholder where the
    element is null) and whether it is not null."""

    kind: str  # the scalar type's name
    values: npt.NDArray[Any]  # int64, float32/64, bool, or object (str, bytes)
    valid: Mask


@dataclass(frozen=True, eq=False)
class EventLists:
    """The stored events of a batch of entity rows, flat: row i's events are at
    offsets[i]:offsets[i + 1] of `times` and of each column."""

    offsets: Ints
    times: Ints
    columns: Mapping[str, ListColumn]
    row_of: Ints = field(init=False)

    def __post_init__(self) -> None:
        lengths = np.diff(self.offsets)
        object.__setattr__(self, "row_of", np.repeat(np.arange(len(lengths)), lengths))

    @property
    def rows(self) -> int:
        return len(self.offsets) - 1

    @classmethod
    def of(
        cls, rows: Sequence[Sequence[Sequence[Any] | None] | None], kinds: Mapping[str, str]
    ) -> EventLists:
        """The events of decoded lists: per row None (nothing stored) or, in list_fields()
        order, its event times then each column of `kinds` (column -> type name), as
        Python values with None for a null element."""
        names = list(kinds)
        counts = []
        for i, row in enumerate(rows):
            if row is None:
                counts.append(0)
                continue
            if len(row) != len(names) + 1:
                raise CodecError(f"row {i}: {len(row)} lists for {len(names) + 1} fields")
            lengths = [0 if c is None else len(c) for c in row]
            _check_lengths(i, lengths, names)
            counts.append(lengths[0])
        offsets = np.concatenate(([0], np.cumsum(counts, dtype=np.int64))).astype(np.int64)
        flat = [_flat([None if r is None else r[j] for r in rows]) for j in range(len(names) + 1)]
        times, valid = _typed(flat[0], "int64")
        if not valid.all():
            at = int(np.searchsorted(offsets, np.argmin(valid), "right")) - 1
            raise CodecError(f"row {at}: a stored event list holds a null event time")
        columns = {}
        for name, values in zip(names, flat[1:], strict=True):
            kind = kinds[name]
            typed, ok = _typed(values, kind)
            columns[name] = ListColumn(kind, typed, ok)
        return cls(offsets, times, columns)


def _flat(columns: Sequence[Sequence[Any] | None]) -> list[Any]:
    out: list[Any] = []
    for c in columns:
        if c:
            out.extend(c)
    return out


def _typed(values: list[Any], kind: str) -> tuple[npt.NDArray[Any], Mask]:
    valid = np.fromiter((v is not None for v in values), dtype=np.bool_, count=len(values))
    if kind in OBJECTS:
        array = np.empty(len(values), dtype=object)
        array[:] = values
        return array, valid
    zero = False if kind == "bool" else 0
    filled = values if valid.all() else [zero if v is None else v for v in values]
    return np.asarray(filled, dtype=_NUMPY[kind]).reshape(-1), valid


_NUMPY: Final[dict[str, Any]] = {
    "int32": np.int64,
    "int64": np.int64,
    "unix_timestamp": np.int64,
    "bool": np.bool_,
    "float32": np.float32,
    "float64": np.float64,
}


def _check_lengths(row: int, lengths: Sequence[int], names: Sequence[str]) -> None:
    """A row's lists must hold one element per event."""
    for name, n in zip(names, lengths[1:], strict=True):
        if n != lengths[0]:
            raise CodecError(
                f"row {row}: a stored event list holds {lengths[0]} event times and {n} "
                f"values of {name!r}"
            )


class _UnusualEntryError(Exception):
    """An entry not in the form the writer gives it: read it with the codec instead."""


class EventListReader:
    """Reads a batch of one view's stored values (None: nothing stored) into EventLists.

    The codec locates each value's entries (checking the value's version and offsets);
    the entries' fields are then checked and read as arrays, every row's at once.
    Anything not in the form the writer gives (online/entries.py) is read by the codec's
    decoder instead, which raises its precise CodecError for what is malformed."""

    def __init__(self, fields: Sequence[tuple[str, DType]]) -> None:
        self.fields = tuple(fields)
        self._arrays: list[tuple[str, ArrayType]] = []
        for name, dtype in self.fields:
            assert isinstance(dtype, ArrayType)  # list_fields() gives arrays
            self._arrays.append((name, dtype))
        self._kinds = {name: dtype.element.name for name, dtype in self._arrays[1:]}
        positions = list(range(len(self.fields)))
        self._decode = column_decoder([d for _, d in self.fields], positions)
        # the arrays of numbers, whose entries are read together, and their tags
        self._numbers = [
            j for j, (_, d) in enumerate(self._arrays) if d.element.name not in OBJECTS
        ]
        self._tags = _Tags.of(
            [en.LIST_TAGS[self._arrays[j][1].element.name] for j in self._numbers]
        )

    def __call__(self, stored: Sequence[bytes | None]) -> EventLists:
        try:
            read = self._read(stored)
        except (_UnusualEntryError, CodecError):
            return self._decoded(stored)  # reads the unusual, raises for the malformed
        counts, times, time_valid = read[0]
        columns: dict[str, ListColumn] = {}
        for (name, dtype), (n, values, valid) in zip(self._arrays[1:], read[1:], strict=True):
            if not np.array_equal(n, counts):
                return self._decoded(stored)  # which names the row
            columns[name] = ListColumn(dtype.element.name, values, valid)
        if not time_valid.all():
            return self._decoded(stored)  # which names the row
        offsets = np.concatenate(([0], np.cumsum(counts))).astype(np.int64)
        return EventLists(offsets, times, columns)

    def _read(self, stored: Sequence[bytes | None]) -> list[tuple[Ints, npt.NDArray[Any], Mask]]:
        """Per field, each row's element count, the elements and which are not null."""
        raw, starts, lengths = _located(stored, len(self.fields))
        at = self._numbers
        begin, end, nulls = _packed_fields(
            raw, starts[:, at], starts[:, at] + lengths[:, at], self._tags
        )
        read = []
        for j, (_, dtype) in enumerate(self._arrays):
            kind = dtype.element.name
            if kind in OBJECTS:
                read.append(_objects(raw, starts[:, j], lengths[:, j], dtype))
            else:
                c = at.index(j)
                read.append(_numbers(raw, begin[:, c], end[:, c], nulls.get(c, {}), kind))
        return read

    def _decoded(self, stored: Sequence[bytes | None]) -> EventLists:
        _, columns = self._decode(stored)
        rows = [None if stored[i] is None else [c[i] for c in columns] for i in range(len(stored))]
        return EventLists.of(rows, self._kinds)


_PAD: Final = bytes(16)  # past the last entry: the fixed-width reads below stay inside


def _located(stored: Sequence[bytes | None], features: int) -> tuple[bytes, Ints, Ints]:
    """The stored values joined (then padding), and where each row's entries are in it
    and their lengths ((rows, features) each; a null entry for a row not stored)."""
    located = locate_entries(stored, features, slice(0, features))
    if located is not None:
        return located.raw, located.starts, located.lengths
    # values with 4-byte offsets (lists over 64 KiB), or malformed (which value_layout refuses)
    parts: list[bytes] = []
    starts = np.empty((len(stored), features), dtype=np.int64)
    at = 0
    for row, data in enumerate(stored):
        if data is None:
            parts.append(en.NULL_ENTRY * features)
            starts[row] = at + 2 * np.arange(features)
            at += 2 * features
            continue
        ends = value_layout(data, features)
        parts.append(data)
        starts[row] = at + np.asarray(ends[:-1])
        at += len(data)
    ends_all = np.empty_like(starts)
    ends_all[:, :-1] = starts[:, 1:]
    ends_all[:, -1] = np.cumsum([len(p) for p in parts])
    return b"".join([*parts, _PAD]), starts, ends_all - starts


def _objects(
    raw: bytes, starts: Ints, lengths: Ints, dtype: ArrayType
) -> tuple[Ints, npt.NDArray[Any], Mask]:
    """A column of arrays of strings or bytes (an element per field): read by the codec.
    Each row's element count, the elements, which are not null."""
    lists = [
        en.decode_entry(raw[s : s + n], dtype)
        for s, n in zip(starts.tolist(), lengths.tolist(), strict=True)
    ]
    counts = np.fromiter((0 if x is None else len(x) for x in lists), np.int64, len(lists))
    objects, valid = _typed(_flat(lists), dtype.element.name)
    return counts, objects, valid


def _numbers(
    raw: bytes, begin: Ints, end: Ints, nulls: Mapping[int, tuple[int, int]], kind: str
) -> tuple[Ints, npt.NDArray[Any], Mask]:
    """A column of arrays of numbers, from each row's packed values (`begin`:`end` in
    `raw`) and null-index fields (row -> where): each row's element count, the
    elements (placeholders at nulls) and which are not null."""
    data = np.frombuffer(
        b"".join([raw[b:e] for b, e in zip(begin.tolist(), end.tolist(), strict=True)]),
        dtype=np.uint8,
    )
    sizes = end - begin
    if kind in FLOATS:
        width = 4 if kind == "float32" else 8
        if (sizes % width).any():
            raise _UnusualEntryError
        counts = sizes // width
        values: npt.NDArray[Any] = data.view("<f4" if width == 4 else "<f8")
    else:
        values, counts = _varints(data, sizes)
        low, high = _INT32 if kind == "int32" else (0, 1) if kind == "bool" else (None, None)
        if low is not None and len(values) and (values.min() < low or values.max() > high):
            raise _UnusualEntryError
        if kind == "bool":
            values = values.astype(np.bool_)
    valid = np.ones(len(values), dtype=np.bool_)
    offsets = np.concatenate(([0], np.cumsum(counts)))
    for row, (a, b) in nulls.items():
        q = a
        while q < b:
            at, q = _varint_at(raw, q, b)
            if at >= counts[row]:
                raise _UnusualEntryError
            valid[offsets[row] + at] = False
    return counts.astype(np.int64), values, valid


def _varint_at(raw: bytes, p: int, end: int) -> tuple[int, int]:
    try:
        return en.read_varint(raw, p, end)
    except CodecError:
        raise _UnusualEntryError from None


_HEAD: Final = np.arange(5)  # a length within an entry is a varint of at most 5 bytes


def _lengths_at(buffer: npt.NDArray[np.uint8], at: Ints) -> tuple[Ints, Ints, Mask]:
    """The varints of at most 5 bytes at positions `at` (any shape): their values, the
    positions after them, and where there is none that short."""
    taken = buffer[np.minimum(at[..., None] + _HEAD, len(buffer) - 1)].astype(np.int64)
    more = taken >= 0x80
    size = np.argmin(more, axis=-1)  # the last byte's index (0 when none ends: bad)
    bad = more.all(axis=-1)
    inside = size[..., None] >= _HEAD
    value = (np.where(inside, taken & 0x7F, 0) << (7 * _HEAD)).sum(axis=-1)
    return value, at + size + 1, bad


@dataclass(frozen=True, eq=False)
class _Tags:
    """The array tags of a list of columns (one or two bytes each), as arrays."""

    bytes_: npt.NDArray[np.uint8]  # (columns, 2), zero-padded
    widths: Ints
    used: Mask  # (columns, 2): which bytes are the tag's

    @classmethod
    def of(cls, tags: Sequence[bytes]) -> _Tags:
        padded = np.zeros((len(tags), 2), dtype=np.uint8)
        for i, tag in enumerate(tags):
            padded[i, : len(tag)] = np.frombuffer(tag, dtype=np.uint8)
        widths = np.array([len(t) for t in tags], dtype=np.int64)
        return cls(padded, widths, np.arange(2)[None, :] < widths[:, None])


def _packed_fields(
    raw: bytes, starts: Ints, ends: Ints, tags: _Tags
) -> tuple[Ints, Ints, dict[int, dict[int, tuple[int, int]]]]:
    """Where each entry's packed values lie (begin, end; empty for a null entry) for
    entries (rows, columns) of arrays of numbers, and the null-index fields of those
    that have one (column -> row -> begin, end). An entry is its tag, its length, the
    array's tag, the list's length, then the `values` field (0x0A) and the
    `null_indices` field (0x12), each optional, exactly filling the entry."""
    buffer = np.frombuffer(raw, dtype=np.uint8)
    last = len(buffer) - 1
    size, p, bad = _lengths_at(buffer, starts + 1)
    bad |= (buffer[starts] != en.ENTRY_TAG) | (p + size != ends)
    stored = size > 0
    head = buffer[np.minimum(p[..., None] + np.arange(2), last)]
    bad |= stored & ((head != tags.bytes_) & tags.used).any(axis=-1)
    body, q, wrong = _lengths_at(buffer, p + tags.widths)
    bad |= stored & (wrong | (q + body != ends))
    p = np.where(stored, q, ends)
    fields: list[tuple[Ints, Ints]] = []
    for field_tag in (0x0A, 0x12):
        here = (p < ends) & (buffer[np.minimum(p, last)] == field_tag)
        n, q, wrong = _lengths_at(buffer, p + 1)
        bad |= here & wrong
        begin, end = np.where(here, q, p), np.where(here, q + n, p)
        fields.append((begin, end))
        p = end
    if (bad | (p != ends)).any():
        raise _UnusualEntryError
    (begin, end), (null_begin, null_end) = fields
    nulls: dict[int, dict[int, tuple[int, int]]] = {}
    for row, column in zip(*np.nonzero(null_end > null_begin), strict=True):
        r, c = int(row), int(column)
        nulls.setdefault(c, {})[r] = (int(null_begin[r, c]), int(null_end[r, c]))
    return begin, end, nulls


_GROUPS: Final = np.arange(10)
_SHIFTS: Final = (np.arange(10) * 7).astype(np.uint64)
# Joining the 7-bit groups of an 8-byte little-endian word: pairs, then fours, then all.
_JOIN: Final = tuple(
    (np.uint64(keep), np.uint64(move), np.uint64(shift))
    for keep, move, shift in (
        (0x007F007F007F007F, 0x7F007F007F007F00, 1),
        (0x00003FFF00003FFF, 0x3FFF00003FFF0000, 2),
        (0x000000000FFFFFFF, 0x0FFFFFFF00000000, 4),
    )
)


def _varints(data: npt.NDArray[np.uint8], sizes: Ints) -> tuple[Ints, Ints]:
    """The varints (int64, two's complement) of the rows' packed segments (`sizes` bytes
    each, one after another in `data`), and how many each row holds."""
    if not len(data):
        return np.zeros(0, dtype=np.int64), np.zeros(len(sizes), dtype=np.int64)
    last = data < 0x80
    ends = np.cumsum(sizes)
    if not last[ends[sizes > 0] - 1].all():  # a varint runs on into the next row's
        raise _UnusualEntryError
    stop = np.flatnonzero(last)
    start = np.empty_like(stop)
    start[0], start[1:] = 0, stop[:-1] + 1
    length = stop - start + 1
    widest = int(length.max())
    counts = np.searchsorted(stop, ends) - np.searchsorted(stop, ends - sizes)
    if widest > 8:  # up to 10 bytes (negative numbers): group by group
        if widest > 10:
            raise _UnusualEntryError
        at = _GROUPS[:widest]
        index = np.minimum(start[:, None] + at, len(data) - 1)
        groups = np.where(at < length[:, None], data[index], 0).astype(np.uint64)
        groups &= np.uint64(0x7F)
        if widest == 10 and ((length == 10) & (groups[:, 9] > 1)).any():
            raise _UnusualEntryError  # a tenth byte holds one bit
        values = (groups << _SHIFTS[:widest]).sum(axis=1, dtype=np.uint64).view(np.int64)
        return values, counts.astype(np.int64)
    # each varint in an 8-byte word (zeros after its last byte), its groups joined
    words = np.zeros((len(stop), 8), dtype=np.uint8)
    if widest == int(length.min()):  # all of one width, as event times mostly are
        words[:, :widest] = data.reshape(-1, widest)
    else:
        at = _GROUPS[:widest]
        inside = at < length[:, None]
        words[:, :widest] = np.where(
            inside, data[np.minimum(start[:, None] + at, len(data) - 1)], 0
        )
    packed = words.view("<u8").reshape(-1) & np.uint64(0x7F7F7F7F7F7F7F7F)
    for keep, move, shift in _JOIN:
        packed = (packed & keep) | ((packed & move) >> shift)
    return packed.view(np.int64), counts.astype(np.int64)
