"""Row digests (batch/digest.py) against the rows as a multiset, the tests' reference:
equal multisets give equal digests whatever the order and the partitioning, different
ones different digests."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pyspark.sql import SparkSession
from pyspark.sql import types as T  # noqa: N812

from skewless.batch.digest import digests, rows_digest

SCHEMA = T.StructType(
    [
        T.StructField("k", T.LongType()),
        T.StructField("x", T.DoubleType()),
        T.StructField("s", T.StringType()),
        T.StructField("t", T.TimestampType()),
        T.StructField("a", T.ArrayType(T.LongType())),
    ]
)
EPOCH = datetime(2024, 1, 1, tzinfo=UTC)

row = st.tuples(
    st.integers(-3, 3),
    st.one_of(st.none(), st.sampled_from([0.0, -1.5, 2.25, 1e300])),
    st.one_of(st.none(), st.sampled_from(["", "a", "é", "a,b"])),
    st.one_of(st.none(), st.integers(0, 3).map(lambda h: EPOCH + timedelta(hours=h))),
    st.one_of(st.none(), st.lists(st.one_of(st.none(), st.integers(0, 2)), max_size=2)),
)
rows = st.lists(row, max_size=12)


def _key(r: tuple[Any, ...]) -> tuple[Any, ...]:
    return tuple(tuple(v) if isinstance(v, list) else v for v in r)


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(left=rows, right=rows, seed=st.randoms(use_true_random=False), parts=st.integers(1, 4))
def test_digest_equals_when_the_multisets_do(
    spark: SparkSession,
    left: list[tuple[Any, ...]],
    right: list[tuple[Any, ...]],
    seed: Any,
    parts: int,
) -> None:
    shuffled = list(left)
    seed.shuffle(shuffled)
    a = rows_digest(spark.createDataFrame(left, SCHEMA).coalesce(1))
    b = rows_digest(spark.createDataFrame(shuffled, SCHEMA).repartition(parts))
    assert a == b
    c = rows_digest(spark.createDataFrame(right, SCHEMA))
    same = Counter(map(_key, left)) == Counter(map(_key, right))
    assert (a.digest == c.digest) == same
    assert a.rows == len(left)


def test_digest_tells_a_null_moved_between_columns(spark: SparkSession) -> None:
    schema = T.StructType([T.StructField("p", T.LongType()), T.StructField("q", T.LongType())])
    one = rows_digest(spark.createDataFrame([(None, 5)], schema))
    two = rows_digest(spark.createDataFrame([(5, None)], schema))
    assert one.digest != two.digest


def test_digest_tells_where_a_null_sits_in_an_array(spark: SparkSession) -> None:
    schema = T.StructType([T.StructField("a", T.ArrayType(T.StringType()))])
    found = {
        rows_digest(spark.createDataFrame([(value,)], schema)).digest
        for value in (["en", None], [None, "en"], ["en"], [], [None], None)
    }
    assert len(found) == 6


def test_digest_groups_of_columns_in_one_pass(spark: SparkSession) -> None:
    frame = spark.createDataFrame([(1, 2.0, "a", EPOCH, [1])], SCHEMA)
    found = digests(frame, {"keys": ["k"], "all": frame.columns})
    assert found["all"] == rows_digest(frame)
    assert found["keys"] == rows_digest(frame.select("k"))
    assert found["keys"].columns == (("k", "bigint"),)
