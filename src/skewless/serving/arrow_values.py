"""Arrow columns as the online evaluator's values, and back (serving/expressions.py).

Inside the evaluator a value is a pair of numpy arrays of the batch's length: the values
and a mask of the rows that are not None, of one physical kind per expression type
(KINDS). Inputs are read straight from Arrow's buffers where their layout allows;
timestamps and durations of any unit become int64 microseconds (nanoseconds floored,
coarser units that overflow are None).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pyarrow as pa

from skewless.expr.check import Duration, EType, Null
from skewless.expr.nodes import INT64_MAX
from skewless.serving.kernels import Array, Mask, Vec
from skewless.types import (
    ArrayType,
    Bool,
    Bytes,
    Float32,
    Float64,
    Int32,
    Int64,
    ScalarType,
    String,
    UnixTimestamp,
    from_arrow_scalar,
    to_arrow,
)

_US = 1_000_000

# Physical kinds of values. NULL is the kind of an untyped None: its consumer decides
# what it becomes (an all-None column of the consumer's kind).
INT = "int"  # int64
FLOAT = "float"  # float64
BOOL = "bool"
STR = "str"  # object array of str
BYTES = "bytes"  # object array of bytes
TS = "ts"  # int64 microseconds since the epoch, UTC
DUR = "dur"  # int64 microseconds
NULL = "null"

KINDS: dict[object, str] = {
    Int32: INT,
    Int64: INT,
    Float32: FLOAT,
    Float64: FLOAT,
    Bool: BOOL,
    String: STR,
    Bytes: BYTES,
    UnixTimestamp: TS,
    Duration: DUR,
    Null: NULL,
}


def arrow_input_type(t: pa.DataType) -> EType | None:
    """The expression type of an Arrow column type (timestamps of any unit and zone,
    durations of any unit, lists of scalars), or None when it has none."""
    if pa.types.is_timestamp(t):
        return UnixTimestamp
    if pa.types.is_duration(t):
        return Duration
    if pa.types.is_null(t):
        return Null
    if pa.types.is_list(t) or pa.types.is_large_list(t):
        element = arrow_input_type(t.value_type)
        return ArrayType(element) if isinstance(element, ScalarType) else None
    return from_arrow_scalar(t)


def input_column(
    inputs: Mapping[str, pa.Array | pa.ChunkedArray], name: str, length: int
) -> pa.Array:
    if name not in inputs:
        raise KeyError(f"no input column '{name}' (given: {', '.join(sorted(inputs)) or 'none'})")
    array = inputs[name]
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    if len(array) != length:
        raise ValueError(f"input column '{name}' has {len(array)} rows, expected {length}")
    return array


def _bits(buffer: pa.Buffer, offset: int, length: int) -> Mask:
    packed = np.frombuffer(buffer, dtype=np.uint8)
    bits = np.unpackbits(packed, count=offset + length, bitorder="little")[offset:]
    return bits.astype(np.bool_)


def _valid_of(array: pa.Array) -> Mask:
    if array.null_count == 0:
        return np.ones(len(array), dtype=np.bool_)
    return _bits(array.buffers()[0], array.offset, len(array))


# The Arrow types read straight from their buffers (a None row's slot holds any value).
_FIXED_WIDTH = {
    pa.int32(): np.int32,
    pa.int64(): np.int64,
    pa.float32(): np.float32,
    pa.float64(): np.float64,
}


def _fixed_width(array: pa.Array, dtype: Any) -> Array:
    n = len(array)
    if n == 0:
        return np.zeros(0, dtype=dtype)
    values = np.frombuffer(array.buffers()[1], dtype=dtype, count=array.offset + n)
    return values[array.offset :]


def load(name: str, array: pa.Array, etype: EType) -> Vec:
    kind = KINDS.get(etype)
    t = array.type
    valid = _valid_of(array)
    if kind in (TS, DUR) and (pa.types.is_timestamp(t) or pa.types.is_duration(t)):
        return _to_micros(_fixed_width(array, np.int64), t.unit, valid)
    ok = {
        INT: pa.types.is_integer(t),
        FLOAT: pa.types.is_floating(t) or pa.types.is_integer(t),
        BOOL: pa.types.is_boolean(t),
        STR: pa.types.is_string(t) or pa.types.is_large_string(t),
        BYTES: pa.types.is_binary(t) or pa.types.is_large_binary(t),
    }.get(kind or "", False)
    if not ok:
        raise TypeError(f"input column '{name}' is Arrow {t}, not {etype.name}")
    if kind in (INT, FLOAT):
        target = np.int64 if kind == INT else np.float64
        if t in _FIXED_WIDTH:
            return _fixed_width(array, _FIXED_WIDTH[t]).astype(target, copy=False), valid
        # Other widths: Arrow's safe cast (an unsigned 64-bit value above int64 fails).
        cast = array.cast(pa.int64() if kind == INT else pa.float64()).fill_null(0)
        return np.asarray(cast.to_numpy(zero_copy_only=False), dtype=target), valid
    if kind == BOOL:
        if len(array) == 0:
            return np.zeros(0, dtype=np.bool_), valid
        return _bits(array.buffers()[1], array.offset, len(array)), valid
    values = np.asarray(array.to_numpy(zero_copy_only=False), dtype=object)
    if not valid.all():
        values = values.copy()
        values[~valid] = "" if kind == STR else b""
    return values, valid


_UNIT_US = {"s": _US, "ms": 1000, "us": 1}


def _to_micros(raw: Array, unit: str, valid: Mask) -> Vec:
    if unit == "ns":
        # The instant at microsecond precision: floor, so that no time moves forward.
        return raw // 1000, valid
    scale = _UNIT_US[unit]
    if scale == 1:
        return raw, valid
    limit = INT64_MAX // scale
    fits = (raw >= -limit) & (raw <= limit)
    return np.where(fits, raw, 0) * scale, valid & fits


def to_output(values: Array, valid: Mask, etype: EType) -> pa.Array:
    n = len(valid)
    if etype == Null:
        return pa.nulls(n)
    mask = None if valid.all() else ~valid
    if etype == Duration:
        return pa.array(values, type=pa.duration("us"), mask=mask)
    if etype == Int32:
        values = np.where(valid, values, 0).astype(np.int32)
    elif etype == Float32:
        values = values.astype(np.float32)
    return pa.array(values, type=to_arrow(etype), mask=mask)  # type: ignore[arg-type]
