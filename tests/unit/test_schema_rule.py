"""The schema rule (rules/schema.py) and the two translations into it: plan time's (Arrow
types of Parquet footers, Delta log types, CSV) and read time's (Spark schemas)."""

from __future__ import annotations

import pyarrow as pa
import pytest
from pyspark.sql.pandas.types import from_arrow_type
from pyspark.sql.types import LongType, StructField

from skewless import Entity, FeatureView, Field, FileSource
from skewless.batch.sources import NANOS_METADATA, spark_column_type
from skewless.rules.schema import (
    DATE,
    NANOS,
    TEXT,
    ColumnType,
    MixedUnits,
    Problem,
    Role,
    Unsupported,
    check_schema,
    combine_files,
    feeds,
    nanos_to_micros,
)
from skewless.source_schema import arrow_column_type
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
)

ID = Entity("e", join_keys=["id"])


def view(
    features: list[Field],
    *,
    keys: list[Field] | None = None,
    created: str | None = None,
    csv: bool = False,
) -> FeatureView:
    return FeatureView(
        "v",
        entities=[ID],
        schema=[*(keys or []), *features],
        source=FileSource(
            "x",
            timestamp_field="ts",
            created_timestamp_column=created,
            file_format="csv" if csv else "parquet",
        ),
    )


def problems(v: FeatureView, columns: dict[str, ColumnType]) -> list[str]:
    return [str(p) for p in check_schema(v, columns).problems]


def test_schema_rule_time_roles_take_timestamps_dates_and_nanoseconds() -> None:
    v = view([Field("x", Int64)], created="c")
    for ctype in (UnixTimestamp, DATE, NANOS):
        check = check_schema(v, {"ts": ctype, "c": ctype, "id": Int64, "x": Int64})
        assert check.problems == ()
        times = [r for r in check.reads if r.role in (Role.EVENT_TIME, Role.CREATED_TIME)]
        assert [(r.column, r.dtype, r.source) for r in times] == [
            ("ts", UnixTimestamp, ctype),
            ("c", UnixTimestamp, ctype),
        ]
    assert problems(v, {"ts": Int64, "c": String, "id": Int64, "x": Int64}) == [
        "timestamp field 'ts' must be a timestamp or a date but the source has int64",
        "created timestamp column 'c' must be a timestamp or a date but the source has string",
    ]


def test_schema_rule_unix_timestamp_features_take_dates_and_nanoseconds_only() -> None:
    v = view([Field("when", UnixTimestamp), Field("n", Int64)])
    base: dict[str, ColumnType] = {"ts": UnixTimestamp, "id": Int64}
    assert problems(v, {**base, "when": NANOS, "n": Int64}) == []
    assert problems(v, {**base, "when": DATE, "n": Int64}) == []
    # a nanosecond timestamp is never a bigint, whatever Spark reads it as
    assert problems(v, {**base, "when": Int64, "n": NANOS}) == [
        "feature 'when' is declared unix_timestamp but the source has int64",
        "feature 'n' is declared int64 but the source has timestamp in nanoseconds",
    ]


@pytest.mark.parametrize(
    ("declared", "actual", "ok"),
    [
        (Int64, Int32, True),
        (Float64, Float32, True),
        (Array(Int64), Array(Int32), True),
        (Int32, Int64, False),
        (Float32, Float64, False),
        (Float64, Int64, False),
        (Int64, Array(Int64), False),
        (Array(Int64), Int64, False),
        (String, Bytes, False),
        (Bool, TEXT, True),
        (Array(String), TEXT, False),
        (UnixTimestamp, DATE, True),
        (String, DATE, False),
        (Int64, Unsupported("int8"), False),
        (UnixTimestamp, MixedUnits("a", "b", "unix_timestamp"), False),
    ],
)
def test_schema_rule_feeds_only_lossless_widenings(
    declared: DType, actual: ColumnType, ok: bool
) -> None:
    assert feeds(declared, actual) is ok


def test_schema_rule_refuses_array_join_keys_declared_or_not() -> None:
    assert problems(
        view([Field("x", Int64)]), {"ts": UnixTimestamp, "id": Array(Int64), "x": Int64}
    ) == [
        "join key 'id' is an array (array<int64>); join keys must be scalars: "
        "int32, int64, string, bytes, bool"
    ]
    pinned = view([Field("x", Int64)], keys=[Field("id", Int64)])
    assert problems(pinned, {"ts": UnixTimestamp, "id": Array(Int64), "x": Int64}) == [
        "join key 'id' is declared int64 but the source has an array (array<int64>); "
        "join keys must be scalars"
    ]
    declared_array = view([Field("x", Int64)], keys=[Field("id", Array(Int64))])
    assert problems(declared_array, {"ts": UnixTimestamp, "id": Array(Int64), "x": Int64}) == [
        "join key 'id' is declared array<int64>; join keys must be int32, int64, string, "
        "bytes, bool"
    ]


@pytest.mark.parametrize("actual", [Float64, UnixTimestamp, DATE, NANOS, Unsupported("int8")])
def test_schema_rule_refuses_join_keys_the_online_key_encoding_cannot_hold(
    actual: ColumnType,
) -> None:
    found = check_schema(view([Field("x", Int64)]), {"ts": UnixTimestamp, "id": actual, "x": Int64})
    assert [(p.column, p.role, p.actual) for p in found.problems] == [("id", Role.JOIN_KEY, actual)]
    assert str(found.problems[0]) == (
        f"join key 'id' is {actual.name} in the source; join keys must be int32, int64, "
        "string, bytes, bool"
    )


@pytest.mark.parametrize("key", [Int32, Int64, String, Bytes, Bool])
def test_schema_rule_takes_an_undeclared_key_type_from_the_source(key: DType) -> None:
    check = check_schema(view([Field("x", Int64)]), {"ts": UnixTimestamp, "id": key, "x": Int64})
    assert check.problems == ()
    assert check.key_types == {"id": key}


def test_schema_rule_keeps_a_declared_key_type_over_a_narrower_source() -> None:
    v = view([Field("x", Int64)], keys=[Field("id", Int64)])
    check = check_schema(v, {"ts": UnixTimestamp, "id": Int32, "x": Int64})
    assert check.key_types == {"id": Int64}


def test_schema_rule_reads_csv_text_as_any_scalar_and_keys_as_strings() -> None:
    v = view([Field("x", Float64), Field("b", Bool)], csv=True)
    check = check_schema(v, {"ts": TEXT, "id": TEXT, "x": TEXT, "b": TEXT})
    assert check.problems == ()
    assert [(r.column, r.dtype) for r in check.reads] == [
        ("ts", UnixTimestamp),
        ("id", String),
        ("x", Float64),
        ("b", Bool),
    ]
    pinned = view([Field("tags", Array(String))], keys=[Field("id", Int64)], csv=True)
    check = check_schema(pinned, {"ts": TEXT, "id": TEXT, "tags": TEXT})
    assert check.key_types == {"id": Int64}
    assert [str(p) for p in check.problems] == [
        "feature 'tags' is declared array<string> but a CSV column holds no arrays"
    ]


def test_schema_rule_lists_every_problem_with_its_column_role_and_types() -> None:
    v = view([Field("x", Float64), Field("y", Int64)], keys=[Field("id", Int64)], created="c")
    found = check_schema(v, {"id": String, "ts": UnixTimestamp, "x": Unsupported("decimal(10,2)")})
    assert found.problems == (
        Problem(
            "c", Role.CREATED_TIME, UnixTimestamp, None,
            "created timestamp column 'c' is missing from the source",
        ),
        Problem(
            "id", Role.JOIN_KEY, Int64, String,
            "join key 'id' is declared int64 but the source has string",
        ),
        Problem(
            "x", Role.FEATURE, Float64, Unsupported("decimal(10,2)"),
            "feature 'x' is declared float64 but the source has decimal(10,2) "
            "(not a type skewless can carry)",
        ),
        Problem("y", Role.FEATURE, Int64, None, "feature 'y' is missing from the source"),
    )  # fmt: skip
    assert [r.column for r in found.reads] == ["ts"]


def test_nanos_to_micros_floors_before_and_after_the_epoch() -> None:
    assert [nanos_to_micros(n) for n in (0, 999, 1000, 1999, -1, -999, -1000, -1001)] == [
        0, 0, 1, 1, -1, -1, -1, -2,
    ]  # fmt: skip


def test_combine_files_refuses_a_column_in_nanoseconds_in_some_files_only() -> None:
    combined = combine_files(
        [
            ("a.parquet", {"ts": NANOS, "x": Int64, "n": NANOS}),
            ("b.parquet", {"ts": UnixTimestamp, "x": Int64, "n": NANOS}),
            ("c.parquet", {"ts": NANOS, "x": Int32, "extra": String}),
        ]
    )
    assert combined == {
        "ts": MixedUnits("a.parquet", "b.parquet", "unix_timestamp"),
        "x": Int64,
        "n": NANOS,
        "extra": String,
    }
    v = view([Field("x", Int64)])
    assert problems(v, {**combined, "id": Int64}) == [
        "timestamp field 'ts' must be a timestamp or a date but the source has a timestamp in "
        "nanoseconds in a.parquet but unix_timestamp in b.parquet (every file of a folder "
        "must store it in the same unit)"
    ]
    first_not_nanos = combine_files([("b", {"ts": UnixTimestamp}), ("a", {"ts": NANOS})])
    assert first_not_nanos == {"ts": MixedUnits("a", "b", "unix_timestamp")}


@pytest.mark.parametrize(
    "arrow",
    [
        pa.int32(),
        pa.int64(),
        pa.float32(),
        pa.float64(),
        pa.string(),
        pa.large_string(),
        pa.bool_(),
        pa.binary(),
        pa.timestamp("us", tz="UTC"),
        pa.timestamp("us"),
        pa.timestamp("ms", tz="Europe/Berlin"),
        pa.date32(),
        pa.list_(pa.int64()),
        pa.large_list(pa.string()),
        pa.list_(pa.timestamp("us", tz="UTC")),
        pa.dictionary(pa.int32(), pa.string()),
        pa.int8(),
        pa.int16(),
        pa.decimal128(10, 2),
        pa.list_(pa.date32()),
        pa.struct([("a", pa.int64())]),
        pa.map_(pa.string(), pa.int64()),
    ],
    ids=str,
)
def test_schema_translations_agree_at_plan_and_read_time(arrow: pa.DataType) -> None:
    """A Parquet column's type as plan reads it (Arrow) and as read time sees it (the
    Spark type Spark reads it as) mean the same to the rule."""
    at_plan = arrow_column_type(arrow)
    at_read = spark_column_type(StructField("c", from_arrow_type(arrow)), csv=False)
    if isinstance(at_plan, Unsupported):
        assert isinstance(at_read, Unsupported)
    else:
        assert at_plan == at_read


def test_schema_translations_take_only_marked_bigints_as_nanoseconds() -> None:
    assert arrow_column_type(pa.timestamp("ns")) == NANOS
    assert arrow_column_type(pa.timestamp("ns", tz="Europe/Berlin")) == NANOS
    assert isinstance(arrow_column_type(pa.list_(pa.timestamp("ns"))), Unsupported)
    marked = StructField("c", LongType(), True, {NANOS_METADATA: True})
    assert spark_column_type(marked, csv=False) == NANOS
    assert spark_column_type(StructField("c", LongType()), csv=False) == Int64
    assert spark_column_type(StructField("c", LongType()), csv=True) == TEXT
