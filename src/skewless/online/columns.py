"""Columns of entries read back into values, for transports other than gRPC.

A column is what the gRPC response carries for one feature (its FeatureColumn.values):
the entries (online/entries.py) of every entity row, concatenated, as codec.py's
entry_gatherer gives them, which has checked each entry's tag, length and field. The
gRPC server sends columns as they are; the HTTP/JSON adapter needs the values, and reads
them here, so the entries' byte layout stays in this package.

decode_columns() reads the columns of a lookup: an array column entry by entry
(decode_entry), and the columns of one scalar type together, with numpy
(entries.read_columns), once they hold VECTOR_VALUES values or more. Whatever numpy
cannot vouch for is read entry by entry, which raises the precise CodecError.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from skewless.online.entries import (
    ENTRY_TAG,
    FIXED_SIZE,
    decode_entry,
    read_columns,
    read_varint,
)
from skewless.online.header import CodecError
from skewless.types import ArrayType, DType

# Columns of one scalar type are read together once they hold this many values: at 100
# rows x 50 features the HTTP response takes 2.2 ms to write instead of 9.5 ms one
# entry at a time (benchmarks/http_latency.py measures the whole call).
VECTOR_VALUES: Final = 64
# read_columns reads a fixed width at a null entry's offset 0 (then masks it out): the
# zeros after the columns keep that read inside the buffer however short the column.
_PAD: Final = bytes(16)


def split_entries(column: bytes, rows: int) -> list[bytes]:
    """The `rows` entries of a column, one by one; CodecError when it holds another
    number, or something that is not an entry."""
    out: list[bytes] = []
    p, end = 0, len(column)
    while p < end:
        if column[p] != ENTRY_TAG:
            raise CodecError(f"an entry starts with {column[p]:#x}, not FeatureColumn.values' tag")
        size, q = read_varint(column, p + 1, end)
        if q + size > end:
            raise CodecError(f"an entry of {size} bytes runs past its column")
        out.append(column[p : q + size])
        p = q + size
    if len(out) != rows:
        raise CodecError(f"a column holds {len(out)} entries for {rows} rows")
    return out


def decode_column(column: bytes, rows: int, dtype: DType) -> list[Any]:
    """The values of a column of `rows` entries of type `dtype` (None for a null), read
    entry by entry."""
    return [decode_entry(entry, dtype) for entry in split_entries(column, rows)]


def decode_columns(columns: Sequence[bytes], dtypes: Sequence[DType], rows: int) -> list[list[Any]]:
    """The values of each column (of `rows` entries, of the type at the same place in
    `dtypes`), in order. Equal to decode_column() of each, and raises what it raises."""
    if len(columns) != len(dtypes):
        raise ValueError(f"{len(columns)} columns for {len(dtypes)} types")
    out: dict[int, list[Any]] = {}
    groups: dict[str, list[int]] = {}  # the scalar columns, by type
    for i, dtype in enumerate(dtypes):
        if isinstance(dtype, ArrayType):
            out[i] = decode_column(columns[i], rows, dtype)
        else:
            groups.setdefault(dtype.name, []).append(i)
    for name, at in groups.items():
        read = None
        if rows * len(at) >= VECTOR_VALUES:
            read = _read_together([columns[i] for i in at], rows, name)
        if read is None:
            read = [decode_column(columns[i], rows, dtypes[i]) for i in at]
        for i, values in zip(at, read, strict=True):
            out[i] = values
    return [out[i] for i in range(len(columns))]


def _bounds(column: bytes, rows: int, name: str) -> list[int] | range | None:
    """Where each of a column's entries starts, then its end: None unless it holds
    `rows` entries, each with a one-byte length (the entries read_columns reads)."""
    width = FIXED_SIZE.get(name)
    if (
        width is not None
        and len(column) == rows * width
        and column[0::width] == bytes((ENTRY_TAG,)) * rows
        and column[1::width] == bytes((width - 2,)) * rows
    ):
        return range(0, len(column) + 1, width)  # no null entry: each has its type's width
    bounds: list[int] = []
    p, end = 0, len(column)
    while p < end:
        if p + 1 >= end or column[p + 1] & 0x80:
            return None
        bounds.append(p)
        p += column[p + 1] + 2
    if len(bounds) != rows or p != end:
        return None
    bounds.append(end)
    return bounds


def _read_together(columns: list[bytes], rows: int, name: str) -> list[list[Any]] | None:
    """The values of columns of the scalar type `name`, read with numpy; None when
    read_columns cannot take them (then each is read entry by entry)."""
    starts: list[npt.NDArray[np.int64]] = []
    lengths: list[npt.NDArray[np.int64]] = []
    base = 0
    for column in columns:
        bounds = _bounds(column, rows, name)
        if bounds is None:
            return None
        at = np.asarray(bounds, dtype=np.int64)
        starts.append(at[:-1] + base)
        lengths.append(np.diff(at))
        base += len(column)
    raw = b"".join([*columns, _PAD])
    buffer = np.frombuffer(raw, dtype=np.uint8)
    return read_columns(buffer, raw, np.stack(starts, axis=1), np.stack(lengths, axis=1), name)
