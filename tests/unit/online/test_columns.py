"""Columns of entries (FeatureColumn.values as the gRPC response carries them) read back
into values: with numpy or entry by entry, the same values, and the same refusals."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from skewless.online import columns
from skewless.online.codec import CodecError
from skewless.online.columns import decode_column, decode_columns, split_entries
from skewless.online.entries import NULL_ENTRY, encode_entry
from skewless.types import Array, Bool, DType, Float32, Float64, Int64
from tests.unit.online.test_codec import SCALARS, same


@contextmanager
def vector_values(threshold: int) -> Iterator[None]:
    """decode_columns reading scalar columns with numpy from `threshold` values on."""
    saved = columns.VECTOR_VALUES
    columns.VECTOR_VALUES = threshold  # type: ignore[misc]
    try:
        yield
    finally:
        columns.VECTOR_VALUES = saved  # type: ignore[misc]


@st.composite
def column_sets(draw: st.DrawFn) -> tuple[list[DType], list[list[Any]], int]:
    """Columns of a few types (often the same one twice, as read together), each with a
    value or a null per row."""
    rows = draw(st.integers(0, 12))
    kinds = draw(st.lists(st.sampled_from(list(SCALARS)), min_size=1, max_size=3))
    dtypes: list[DType] = []
    values: list[list[Any]] = []
    for _ in range(draw(st.integers(1, 6))):
        scalar = draw(st.sampled_from(kinds))
        if draw(st.integers(0, 4)) == 0:
            element = st.none() | st.lists(st.none() | SCALARS[scalar], max_size=3)
            dtypes.append(Array(scalar))
        else:
            element = st.none() | SCALARS[scalar]
            dtypes.append(scalar)
        values.append(draw(st.lists(element, min_size=rows, max_size=rows)))
    return dtypes, values, rows


def encoded(values: list[Any], dtype: DType) -> bytes:
    return b"".join(encode_entry(v, dtype) for v in values)


@pytest.mark.parametrize("threshold", [1, 10**9], ids=["numpy", "one-by-one"])
@given(case=column_sets())
def test_decode_columns_gives_back_the_values_encoded(
    threshold: int, case: tuple[list[DType], list[list[Any]], int]
) -> None:
    dtypes, values, rows = case
    blobs = [encoded(v, d) for v, d in zip(values, dtypes, strict=True)]
    with vector_values(threshold):
        got = decode_columns(blobs, dtypes, rows)
    assert same(got, values)
    assert same(got, [decode_column(b, rows, d) for b, d in zip(blobs, dtypes, strict=True)])


def test_decode_columns_reads_null_free_fixed_width_columns_with_numpy() -> None:
    rows = 40
    floats = [float(i) / 3 for i in range(rows)]
    flags = [i % 3 == 0 for i in range(rows)]
    got = decode_columns(
        [encoded(floats, Float64), encoded(floats, Float64), encoded(flags, Bool)],
        [Float64, Float64, Bool],
        rows,
    )
    assert got == [floats, floats, flags]


@pytest.mark.parametrize("threshold", [1, 10**9], ids=["numpy", "one-by-one"])
def test_decode_columns_refuses_a_column_as_long_as_fixed_width_entries_but_not_them(
    threshold: int,
) -> None:
    """A null entry and a float64 entry 9 bytes too long are together as long as two
    float64 entries: the column must not be read as two of them."""
    message = b"\x11" + bytes(8) + bytes(9)  # double_value, 8 bytes, then 9 more
    long_entry = b"\x12" + bytes([len(message)]) + message
    column = NULL_ENTRY + long_entry
    assert len(column) == 2 * len(encode_entry(0.0, Float64))
    with vector_values(threshold), pytest.raises(CodecError, match="unexpected bytes"):
        decode_columns([column, encoded([1.0, 2.0], Float64)], [Float64, Float64], 2)


def test_split_entries_refuses_what_is_not_rows_entries() -> None:
    column = encoded([[1], None, []], Array(Int64))
    assert len(split_entries(column, 3)) == 3
    with pytest.raises(CodecError, match="2 entries for 3 rows"):
        split_entries(encoded([1, 2], Int64), 3)
    with pytest.raises(CodecError, match="not FeatureColumn.values' tag"):
        split_entries(b"\x0a\x00", 1)
    with pytest.raises(CodecError, match="runs past its column"):
        split_entries(encode_entry(1.5, Float32)[:-1], 1)


def test_decode_columns_takes_a_type_per_column() -> None:
    with pytest.raises(ValueError, match="2 columns for 1 types"):
        decode_columns([b"", b""], [Int64], 0)
