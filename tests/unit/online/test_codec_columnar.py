"""The column-wise encoders produce exactly the row-wise encoders' bytes."""

from __future__ import annotations

import struct
from typing import Any

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from skewless.online.codec import (
    CodecError,
    Record,
    arrow_entity_keys,
    decode_value,
    encode_value,
    encode_values,
    entity_key,
)
from skewless.timeutil import utc_micros
from skewless.types import (
    Array,
    ArrayType,
    Bool,
    Bytes,
    DType,
    Float32,
    Float64,
    Int32,
    Int64,
    String,
    UnixTimestamp,
    to_arrow,
)

I64 = st.integers(-(2**63), 2**63 - 1)
# Timestamps a Python datetime can hold (years 1..9999), as the writer sees them.
DATETIME_US = st.integers(-62_135_596_800_000_000, 253_402_300_799_999_999)
# Raw bit patterns as numpy scalars, so that signalling NaNs reach the Arrow column as is.
F32_BITS = st.integers(0, 2**32 - 1).map(lambda b: np.uint32(b).view(np.float32))
F64_BITS = st.integers(0, 2**64 - 1).map(lambda b: np.uint64(b).view(np.float64))
SIGNALLING_NAN_32 = np.uint32(0x7F800001).view(np.float32)

SCALARS: dict[Any, st.SearchStrategy[Any]] = {
    Int64: I64,
    Int32: st.integers(-(2**31), 2**31 - 1),
    Float64: st.floats(allow_nan=True) | F64_BITS,
    Float32: st.floats(width=32, allow_nan=True) | F32_BITS,
    String: st.text(),
    Bool: st.booleans(),
    Bytes: st.binary(),
    UnixTimestamp: DATETIME_US,
}


def arrow_column(values: list[Any], dtype: DType) -> pa.Array:
    """An Arrow column as Spark hands it to the writer (timestamps as timestamp[us])."""
    element = dtype.element if isinstance(dtype, ArrayType) else dtype
    if element.name in ("float32", "float64"):
        # From numpy, so that NaN payloads (signalling ones included) survive as is.
        width = np.float32 if element.name == "float32" else np.float64

        def floats(items: list[Any]) -> pa.Array:
            mask = np.array([v is None for v in items], dtype=bool)
            data = np.array([0.0 if v is None else v for v in items], dtype=width)
            return pa.array(data, mask=mask)

        if isinstance(dtype, ArrayType):
            flat = [x for v in values if v is not None for x in v]
            offsets = np.cumsum([0] + [0 if v is None else len(v) for v in values])
            mask = pa.array([v is None for v in values], pa.bool_())
            return pa.ListArray.from_arrays(pa.array(offsets, pa.int32()), floats(flat), mask=mask)
        return floats(values)
    if element.name == "unix_timestamp":
        inner = pa.int64() if not isinstance(dtype, ArrayType) else pa.list_(pa.int64())
        return pa.array(values, inner).cast(to_arrow(dtype))
    return pa.array(values, to_arrow(dtype))


def writer_values(column: pa.Array, dtype: DType) -> list[Any]:
    """What the row-wise writer passed to encode_value: to_pylist, timestamps as micros."""
    values = column.to_pylist()
    if dtype == UnixTimestamp:
        return [None if v is None else utc_micros(v) for v in values]
    if isinstance(dtype, ArrayType) and dtype.element == UnixTimestamp:
        return [None if v is None else [utc_micros(x) if x else None for x in v] for v in values]
    return values


@st.composite
def batches(draw: st.DrawFn) -> tuple[list[DType], list[list[Any]], list[int], list[int | None]]:
    dtypes: list[DType] = []
    for _ in range(draw(st.integers(0, 6))):
        scalar = draw(st.sampled_from(list(SCALARS)))
        dtypes.append(Array(scalar) if draw(st.booleans()) else scalar)
    rows = draw(st.integers(0, 12))
    columns = []
    for dtype in dtypes:
        if isinstance(dtype, ArrayType):
            item = st.none() | SCALARS[dtype.element]
            values = st.none() | st.lists(item, max_size=4)
        else:
            values = st.none() | SCALARS[dtype]
        columns.append(draw(st.lists(values, min_size=rows, max_size=rows)))
    events = draw(st.lists(I64, min_size=rows, max_size=rows))
    created = draw(st.lists(st.none() | I64, min_size=rows, max_size=rows))
    ties = draw(st.lists(I64, min_size=rows, max_size=rows))
    return dtypes, columns, events, created, ties


def row_wise(
    dtypes: list[DType],
    columns: list[pa.Array],
    events: pa.Array,
    created: pa.Array,
    ties: pa.Array,
) -> list[bytes]:
    values = [writer_values(c, d) for c, d in zip(columns, dtypes, strict=True)]
    rows = zip(events.to_pylist(), created.to_pylist(), ties.to_pylist(), strict=True)
    return [
        encode_value(Record(e, c, tuple(col[i] for col in values), t), dtypes)
        for i, (e, c, t) in enumerate(rows)
    ]


EVERY_TYPE = (
    [Int64, Int32, Float64, Float32, String, Bool, Bytes, UnixTimestamp, Array(Float32)],
    [
        [1, None, -(2**63)],
        [None, -5, 2**31 - 1],
        [float("nan"), None, -0.0],
        [SIGNALLING_NAN_32, float("inf"), None],
        ["é", None, ""],
        [True, False, None],
        [b"\x00", None, b""],
        [0, None, -1],
        [[SIGNALLING_NAN_32, None], None, []],
    ],
    [0, -1, 2**63 - 1],
    [None, 5, -(2**63)],
    [-(2**63), 0, 2**63 - 1],
)


@example(batch=EVERY_TYPE, skip=1)
@given(batch=batches(), skip=st.integers(0, 2))
def test_codec_encode_values_equals_encode_value_row_by_row(
    batch: tuple[list[DType], list[list[Any]], list[int], list[int | None], list[int]], skip: int
) -> None:
    dtypes, raw_columns, raw_events, raw_created, raw_ties = batch
    # Sliced arrays (a non-zero offset) arrive from Arrow batches too.
    columns = [arrow_column(c, d)[skip:] for c, d in zip(raw_columns, dtypes, strict=True)]
    events = pa.array(raw_events, pa.int64())[skip:]
    created = pa.array(raw_created, pa.int64())[skip:]
    ties = pa.array(raw_ties, pa.int64())[skip:]
    expected = row_wise(dtypes, columns, events, created, ties)
    assert encode_values(events, created, ties, columns, dtypes) == expected


def test_codec_encode_values_takes_timestamp_headers_and_rejects_bad_input() -> None:
    ts = pa.array([1_000_000, -7], pa.int64())
    as_timestamps = ts.cast(pa.timestamp("us", tz="UTC"))
    none = pa.array([None, None], pa.timestamp("us", tz="UTC"))
    ties = pa.array([5, -5], pa.int64())
    values = encode_values(as_timestamps, none, ties, [pa.array([1, 2])], [Int64])
    assert values == [
        encode_value(Record(1_000_000, None, (1,), 5), [Int64]),
        encode_value(Record(-7, None, (2,), -5), [Int64]),
    ]
    with pytest.raises(CodecError, match="1 columns for 2 features"):
        encode_values(ts, ts, ties, [pa.array([1, 2])], [Int64, Int64])
    with pytest.raises(CodecError, match="event time is null"):
        encode_values(pa.array([1, None]), ts, ties, [], [])
    with pytest.raises(CodecError, match="a tie hash is missing"):
        encode_values(ts, ts, pa.array([1, None], pa.int64()), [], [])


def test_codec_encode_values_golden_bytes() -> None:
    (value,) = encode_values(
        pa.array([1], pa.int64()),
        pa.array([None], pa.int64()),
        pa.array([-2], pa.int64()),
        [pa.array([7])],
        [Int64],
    )
    assert value == (
        b"\x03\x00\x00\x00"  # version 3, no flags: 2-byte offsets
        + struct.pack(">Q", 2**63 + 1)  # event time 1 us
        + b"\x00" * 8  # no created time
        + struct.pack(">Q", 2**63 - 2)  # tie hash -2
        + struct.pack("<HH", 32, 36)  # the entry of the one feature, then the end
        + b"\x12\x02\x08\x07"  # FeatureColumn.values: a Value of int64_value 7
    )


def test_codec_encode_values_refuses_an_int32_out_of_range() -> None:
    with pytest.raises(CodecError, match="2147483648 is out of range for int32"):
        encode_values(
            pa.array([1], pa.int64()),
            pa.array([None], pa.int64()),
            pa.array([0], pa.int64()),
            [pa.array([2**31])],
            [Int32],
        )
    with pytest.raises(CodecError, match="2147483648 is out of range for int32"):
        encode_value(Record(1, None, (2**31,)), [Int32])


def test_codec_encode_values_takes_4_byte_offsets_for_a_batch_past_64_kib() -> None:
    column = pa.array(["x" * 70_000, "y", None])
    values = encode_values(
        pa.array([1, 2, 3]),
        pa.array([None] * 3, pa.int64()),
        pa.array([0] * 3, pa.int64()),
        [column],
        [String],
    )
    assert [v[1] for v in values] == [1, 1, 1]  # every value of the batch
    assert [decode_value(v, [String]).values for v in values] == [("x" * 70_000,), ("y",), (None,)]


KEY_COLUMNS: dict[str, tuple[pa.DataType, st.SearchStrategy[Any]]] = {
    "int64": (pa.int64(), I64),
    "int32": (pa.int32(), st.integers(-(2**31), 2**31 - 1)),
    "string": (pa.string(), st.text(max_size=6)),
    "large_string": (pa.large_string(), st.text(max_size=6)),
    "binary": (pa.binary(), st.binary(max_size=6)),
    "bool": (pa.bool_(), st.booleans()),
}


@st.composite
def key_batches(draw: st.DrawFn) -> list[pa.Array]:
    kinds = draw(st.lists(st.sampled_from(list(KEY_COLUMNS)), min_size=1, max_size=3))
    rows = draw(st.integers(0, 10))
    columns = []
    for kind in kinds:
        arrow_type, values = KEY_COLUMNS[kind]
        items = draw(st.lists(st.none() | values, min_size=rows, max_size=rows))
        columns.append(pa.array(items, arrow_type))
    return columns


@given(columns=key_batches())
def test_codec_entity_keys_equal_entity_key_row_by_row(columns: list[pa.Array]) -> None:
    rows = zip(*(c.to_pylist() for c in columns), strict=True)
    assert arrow_entity_keys("p", "v", columns) == [entity_key("p", "v", list(r)) for r in rows]
    sliced = [c[1:] for c in columns]
    rows = zip(*(c.to_pylist() for c in sliced), strict=True)
    assert arrow_entity_keys("p", "v", sliced) == [entity_key("p", "v", list(r)) for r in rows]


def test_codec_entity_keys_fall_back_to_the_row_wise_checks() -> None:
    assert arrow_entity_keys("p", "v", [pa.array([3.0])]) == [entity_key("p", "v", [3.0])]
    with pytest.raises(CodecError, match="join key value 1.5"):
        arrow_entity_keys("p", "v", [pa.array([1.5])])
