"""Byte strings of a whole Arrow batch, built with numpy instead of row by row in Python.

The online writer encodes every row's key and value column by column (online/codec.py,
online/entries.py). Each column becomes "segments": every row's byte length and all
rows' bytes concatenated in row order; interleave() lays several columns' segments side
by side, row by row, and split() cuts the result into one bytes object per row.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

Lengths = npt.NDArray[np.int64]
Bytes = npt.NDArray[np.uint8]
Segments = tuple[Lengths, Bytes]

_VARINT_GROUPS = np.arange(10, dtype=np.uint64) * np.uint64(7)
_GROUP_INDEX = np.arange(10)
_THRESHOLDS = [np.uint64(1 << (7 * k)) for k in range(1, 10)]


def interleave(parts: Sequence[Segments], rows: int) -> Segments:
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


def split(segments: Segments) -> list[bytes]:
    lengths, data = segments
    raw = data.tobytes()
    ends = np.cumsum(lengths).tolist()
    starts = [0, *ends[:-1]] if ends else []
    return [raw[a:b] for a, b in zip(starts, ends, strict=True)]


def fixed(rows: npt.NDArray[Any]) -> Segments:
    """Segments of a (rows, width) or 1-D array: every row the same width."""
    width = rows.itemsize * (rows.shape[1] if rows.ndim == 2 else 1)
    data = np.ascontiguousarray(rows).view(np.uint8).reshape(-1)
    return np.full(len(rows), width, dtype=np.int64), data


def constant(value: bytes, rows: int) -> Segments:
    return fixed(np.tile(np.frombuffer(value, dtype=np.uint8), (rows, 1)))


def binary(values: pa.Array) -> Segments:
    """Lengths and bytes of a null-free string or binary array (no length prefix)."""
    cast = pc.cast(values, pa.large_binary())
    rows = len(cast)
    data_buffer = cast.buffers()[2]
    if rows == 0 or data_buffer is None:
        return np.zeros(rows, dtype=np.int64), np.zeros(0, dtype=np.uint8)
    offsets = np.frombuffer(cast.buffers()[1], dtype=np.int64)[cast.offset : cast.offset + rows + 1]
    data = np.frombuffer(data_buffer, dtype=np.uint8)[offsets[0] : offsets[-1]]
    return np.diff(offsets), data


def u32(values: npt.NDArray[Any]) -> Segments:
    return fixed(values.astype(">u4"))


def varints(values: npt.NDArray[Any]) -> Segments:
    """Protocol Buffers base-128 varints of 64-bit integers (a negative one as its
    two's complement, ten bytes), as protobuf writes an int64 or an int32."""
    bits = np.asarray(values).astype(np.int64).view(np.uint64)
    sizes = np.ones(len(bits), dtype=np.int64)
    for threshold in _THRESHOLDS:
        sizes += bits >= threshold
    widest = int(sizes.max()) if len(bits) else 1  # only as many groups as needed
    groups = ((bits[:, None] >> _VARINT_GROUPS[None, :widest]) & np.uint64(0x7F)).astype(np.uint8)
    index = _GROUP_INDEX[None, :widest]
    groups |= np.where(index < (sizes - 1)[:, None], np.uint8(0x80), np.uint8(0))
    return sizes, groups[index < sizes[:, None]]


def int64s(values: pa.Array) -> npt.NDArray[np.int64]:
    if pa.types.is_timestamp(values.type):
        values = pc.cast(pc.cast(values, pa.timestamp("us")), pa.int64())
    result: npt.NDArray[np.int64] = np.asarray(
        values.to_numpy(zero_copy_only=False), dtype=np.int64
    )
    return result


def valid(column: pa.Array) -> npt.NDArray[np.bool_]:
    if column.null_count == 0:
        return np.ones(len(column), dtype=np.bool_)
    return np.asarray(column.is_valid().to_numpy(zero_copy_only=False), dtype=np.bool_)


def only_valid(
    column: pa.Array, present: npt.NDArray[np.bool_], encode: Callable[[pa.Array], Segments]
) -> Segments:
    """`encode` applied to the rows where `present`; the others get no bytes."""
    values = column if column.null_count == 0 else column.filter(pa.array(present))
    encoded_lengths, data = encode(values)
    lengths = np.zeros(len(column), dtype=np.int64)
    lengths[present] = encoded_lengths
    return lengths, data
