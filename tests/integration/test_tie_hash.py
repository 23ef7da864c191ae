"""The tie hash of the ranking rule, as Spark computes it (batch/ranking.py), equals the
tests' independent reference (tests/reference.py) for values of every type: nulls, NaN of
any payload, -0.0, empty and non-ASCII strings, arrays with null elements."""

from __future__ import annotations

import math
import struct
from typing import Any

import pyarrow as pa
from hypothesis import example, given, settings
from hypothesis import strategies as st
from pyspark.sql import SparkSession
from pyspark.sql import functions as F  # noqa: N812

from skewless.batch.ranking import tie_hash_sql
from skewless.types import (
    Array,
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
from tests.reference import tie_hash

# A float32 NaN with another payload than Java's canonical one.
OTHER_NAN_32 = struct.unpack("<f", struct.pack("<I", 0x7FC00001))[0]

SCALARS: dict[DType, st.SearchStrategy[Any]] = {
    Int64: st.integers(-(2**63), 2**63 - 1),
    Int32: st.integers(-(2**31), 2**31 - 1),
    Float64: st.floats(allow_nan=True) | st.sampled_from([-0.0, 0.0, math.nan]),
    Float32: st.floats(width=32, allow_nan=True) | st.sampled_from([-0.0, OTHER_NAN_32]),
    String: st.text(max_size=12),
    Bool: st.booleans(),
    Bytes: st.binary(max_size=12),
    UnixTimestamp: st.integers(-(2**62), 2**62),
}


@st.composite
def rows(draw: st.DrawFn) -> tuple[list[DType], list[list[Any]]]:
    dtypes: list[DType] = []
    for _ in range(draw(st.integers(1, 5))):
        scalar = draw(st.sampled_from(list(SCALARS)))
        dtypes.append(Array(scalar) if draw(st.booleans()) else scalar)
    table = []
    for _ in range(draw(st.integers(1, 6))):
        row = []
        for dtype in dtypes:
            if hasattr(dtype, "element"):
                items = st.lists(st.none() | SCALARS[dtype.element], max_size=4)
                row.append(draw(st.none() | items))
            else:
                row.append(draw(st.none() | SCALARS[dtype]))
        table.append(row)
    return dtypes, table


def spark_hashes(spark: SparkSession, dtypes: list[DType], table: list[list[Any]]) -> list[int]:
    """The tie hash of each row, computed by Spark from an Arrow table of the rows."""
    names = [f"f{i}" for i in range(len(dtypes))]
    columns = {"row": pa.array(range(len(table)), pa.int64())}
    for i, (name, dtype) in enumerate(zip(names, dtypes, strict=True)):
        values = [row[i] for row in table]
        if dtype in (UnixTimestamp, Array(UnixTimestamp)):  # microseconds as Arrow takes them
            raw = pa.int64() if dtype == UnixTimestamp else pa.list_(pa.int64())
            columns[name] = pa.array(values, raw).cast(to_arrow(dtype))
        else:
            columns[name] = pa.array(values, to_arrow(dtype))
    frame = spark.createDataFrame(pa.table(columns))
    sql = tie_hash_sql(list(zip(names, dtypes, strict=True)))
    out = frame.select("row", F.expr(sql).alias("h")).orderBy("row").collect()
    return [int(r["h"]) for r in out]


@example(
    case=(
        [Float64, Float32, Array(Float64), String, Array(Bool)],
        [
            [-0.0, -0.0, [-0.0, None, math.nan], "", [False]],
            [0.0, OTHER_NAN_32, [0.0, None, -math.nan], "\u00e9", []],
            [math.nan, math.nan, None, None, None],
        ],
    )
)
@settings(max_examples=40)
@given(case=rows())
def test_tie_hash_on_spark_equals_the_reference(
    spark: SparkSession, case: tuple[list[DType], list[list[Any]]]
) -> None:
    dtypes, table = case
    kinds = [d.name for d in dtypes]
    assert spark_hashes(spark, dtypes, table) == [tie_hash(row, kinds) for row in table]


def test_tie_hash_tells_apart_values_that_plain_xxhash64_confuses(spark: SparkSession) -> None:
    """xxhash64 skips nulls and runs arrays together; the tie hash's markers and sizes
    keep such rows apart, on Spark as in the reference."""
    cases: list[tuple[list[DType], list[list[Any]]]] = [
        ([Int64, Int64], [[None, 1], [1, None]]),
        ([Array(Int64), Array(Int64)], [[[1], []], [[], [1]], [[1, None], []], [[None, 1], []]]),
        ([Array(Bool), Array(Bool)], [[[False], []], [[], [False]]]),
        ([String, String], [["ab", ""], ["a", "b"], ["", "ab"]]),
    ]
    for dtypes, table in cases:
        hashes = spark_hashes(spark, dtypes, table)
        assert len(set(hashes)) == len(table), (dtypes, table, hashes)
        assert hashes == [tie_hash(row, [d.name for d in dtypes]) for row in table]
