from __future__ import annotations

import pyarrow as pa
import pytest

from skewless.types import (
    Array,
    Float32,
    Float64,
    Int32,
    Int64,
    String,
    UnixTimestamp,
    accepts,
    coerce_dtype,
    from_spark_simple_string,
    parse_dtype,
    to_arrow,
    to_spark_ddl,
)


@pytest.mark.parametrize(
    "dtype", [Int32, Int64, Float32, Float64, String, UnixTimestamp, Array(Int64)]
)
def test_dtype_round_trips_through_its_canonical_name(dtype: object) -> None:
    assert parse_dtype(str(dtype)) == dtype
    assert coerce_dtype(str(dtype)) == dtype


def test_dtype_rejects_unknown_names_and_nested_arrays() -> None:
    with pytest.raises(ValueError, match="unknown dtype 'int8'"):
        parse_dtype("int8")
    with pytest.raises(TypeError):
        Array(Array(Int64))  # type: ignore[arg-type]


def test_dtype_engine_mappings() -> None:
    assert to_arrow(Array(Float32)) == pa.list_(pa.float32())
    assert to_arrow(UnixTimestamp) == pa.timestamp("us", tz="UTC")
    assert to_spark_ddl(Array(String)) == "ARRAY<STRING>"
    assert from_spark_simple_string("bigint") == Int64
    assert from_spark_simple_string("array<int>") == Array(Int32)
    assert from_spark_simple_string("map<string,int>") is None


def test_dtype_accepts_only_lossless_widening() -> None:
    assert accepts(Int64, Int32)
    assert accepts(Float64, Float32)
    assert not accepts(Int32, Int64)
    assert not accepts(Float64, Int64)
    assert not accepts(String, Int64)
    assert accepts(Array(Int64), Array(Int32))
    assert not accepts(Array(Int64), Int64)
