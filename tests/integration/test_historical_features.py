"""get_historical_features through FeatureStore: each semantic rule pinned by an example."""

from __future__ import annotations

import gc
import math
import tempfile
import textwrap
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from pyspark.sql import SparkSession

from skewless import FeatureStore
from skewless.batch import retrieval
from skewless.errors import (
    EntityDataFrameError,
    FeatureNotFoundError,
    FeatureViewNotFoundError,
    IncompatibleSchemaError,
    InvalidFeatureRefError,
    RejectedRowsError,
)

T0 = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)


def ts(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


DEFS = """
from datetime import timedelta
from skewless import *

driver = Entity("driver", join_keys=["driver_id"])
trip_zone = Entity("trip_zone", join_keys=["city", "zone"])

stats = FeatureView(
    "stats",
    entities=[driver],
    schema=[
        Field("driver_id", Int64),
        Field("rating", Float64),
        Field("trips", Int64),
        Field("small", Int32),
        Field("active", Bool),
        Field("ratio", Float32),
        Field("name", String),
        Field("tags", Array(String)),
    ],
    source=FileSource(
        "data/stats.parquet", timestamp_field="ts", created_timestamp_column="created"
    ),
    ttl=timedelta(minutes=60),
)

zones = FeatureView(
    "zones",
    entities=[trip_zone],
    schema=[Field("demand", Float64), Field("rating", Float64)],
    source=FileSource("data/zones.parquet", timestamp_field="ts"),
)

svc = FeatureService("svc", features=[stats[["rating", "trips"]], zones[["demand"]]])
"""

STATS_SCHEMA = pa.schema(
    [
        ("driver_id", pa.int64()),
        ("ts", pa.timestamp("us", tz="UTC")),
        ("created", pa.timestamp("us", tz="UTC")),
        ("rating", pa.float64()),
        ("trips", pa.int64()),
        ("small", pa.int32()),
        ("active", pa.bool_()),
        ("ratio", pa.float32()),
        ("name", pa.string()),
        ("tags", pa.list_(pa.string())),
    ]
)
ZONES_SCHEMA = pa.schema(
    [
        ("city", pa.string()),
        ("zone", pa.int64()),
        ("ts", pa.timestamp("us", tz="UTC")),
        ("demand", pa.float64()),
        ("rating", pa.float64()),
    ]
)


def stats_row(
    driver_id: int, at: datetime, created: datetime | None = None, **kw: Any
) -> dict[str, Any]:
    row: dict[str, Any] = {"driver_id": driver_id, "ts": at, "created": created or at}
    row.update(kw)
    return row


STATS_ROWS = [
    stats_row(
        1, ts(0), rating=4.0, trips=10, small=1, active=True, ratio=0.5, name="a", tags=["x"]
    ),
    stats_row(1, ts(10), rating=4.1, trips=11, name="b"),
    # same event time, later created time: a correction, it must win
    stats_row(1, ts(20), ts(20), rating=4.2, trips=12),
    stats_row(1, ts(20), ts(25), rating=4.25, trips=13),
    # the latest row has a genuine null rating: it stays null
    stats_row(1, ts(30), rating=None, trips=14),
    stats_row(2, ts(0), rating=float("nan"), trips=None, name="nan-row"),
    # exact duplicates must not multiply output rows
    stats_row(3, ts(5), rating=3.0, trips=3),
    stats_row(3, ts(5), rating=3.0, trips=3),
]

ZONE_ROWS = [
    {"city": "paris", "zone": 1, "ts": ts(0), "demand": 1.0, "rating": 9.0},
    {"city": "paris", "zone": 2, "ts": ts(0), "demand": 2.0, "rating": 9.0},
    {"city": "lyon", "zone": 1, "ts": ts(0), "demand": 3.0, "rating": 9.0},
    {"city": "paris", "zone": 1, "ts": ts(50), "demand": 1.5, "rating": 9.0},
]


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory, spark: SparkSession) -> FeatureStore:
    repo = tmp_path_factory.mktemp("repo")
    (repo / "data").mkdir()
    (repo / "feature_store.yaml").write_text("project: hf\n")
    (repo / "defs.py").write_text(textwrap.dedent(DEFS))
    pq.write_table(
        pa.Table.from_pylist(STATS_ROWS, schema=STATS_SCHEMA), repo / "data/stats.parquet"
    )
    pq.write_table(
        pa.Table.from_pylist(ZONE_ROWS, schema=ZONES_SCHEMA), repo / "data/zones.parquet"
    )
    fs = FeatureStore(repo)
    fs.apply()
    return fs


def entities(
    rows: list[tuple[Any, ...]], cols: tuple[str, ...] = ("driver_id", "event_timestamp")
) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=list(cols))


def values(series: pd.Series) -> list[Any]:
    """A column as a list, with every kind of missing value as None."""
    return [None if x is pd.NA or (isinstance(x, float) and math.isnan(x)) else x for x in series]


def features(store: FeatureStore, df: pd.DataFrame, refs: list[str]) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = store.get_historical_features(df, refs).to_arrow().to_pylist()
    return rows


def test_pit_latest_row_at_or_before_entity_time(store: FeatureStore) -> None:
    df = entities([(1, ts(9.99)), (1, ts(10)), (1, ts(15))])
    got = [r["rating"] for r in features(store, df, ["stats:rating"])]
    assert got == [4.0, 4.1, 4.1]  # the row at exactly t is visible; later rows are not


def test_pit_created_timestamp_breaks_event_time_ties(store: FeatureStore) -> None:
    got = features(store, entities([(1, ts(20)), (1, ts(29))]), ["stats:rating", "stats:trips"])
    assert [(r["rating"], r["trips"]) for r in got] == [(4.25, 13), (4.25, 13)]


def test_pit_latest_null_is_not_filled_from_older_rows(store: FeatureStore) -> None:
    got = features(store, entities([(1, ts(30))]), ["stats:rating", "stats:trips"])
    assert got[0]["rating"] is None
    assert got[0]["trips"] == 14


def test_pit_ttl_boundary_is_inclusive(store: FeatureStore) -> None:
    at_edge = ts(30) + timedelta(minutes=60)  # t - ttl == event time of the last row
    past = at_edge + timedelta(microseconds=1)
    got = features(store, entities([(1, at_edge), (1, past)]), ["stats:trips"])
    assert [r["trips"] for r in got] == [14, None]


def test_pit_nan_stays_nan_and_null_stays_null(store: FeatureStore) -> None:
    got = features(store, entities([(2, ts(1))]), ["stats:rating", "stats:trips", "stats:name"])
    assert math.isnan(got[0]["rating"])
    assert got[0]["trips"] is None
    assert got[0]["name"] == "nan-row"


def test_pit_unknown_keys_and_early_rows_give_nulls_never_drops(store: FeatureStore) -> None:
    df = entities([(99, ts(10)), (1, ts(-1)), (None, ts(10)), (1, None)])
    df["driver_id"] = df["driver_id"].astype("Int64")
    got = features(store, df, ["stats:rating"])
    assert [r["rating"] for r in got] == [None, None, None, None]


def test_pit_duplicates_neither_multiply_nor_vanish(store: FeatureStore) -> None:
    df = entities([(3, ts(6)), (3, ts(6)), (1, ts(10)), (3, ts(6))])
    got = features(store, df, ["stats:trips"])
    assert [r["trips"] for r in got] == [3, 3, 11, 3]


def test_pit_composite_keys_and_several_views_in_one_call(store: FeatureStore) -> None:
    df = pd.DataFrame(
        {
            "driver_id": [1, 2, 1, 1],
            "city": ["paris", "paris", "lyon", "paris"],
            "zone": [1, 2, 2, 1],
            "event_timestamp": [ts(15), ts(15), ts(15), ts(55)],
            "label": [1, 0, 1, 0],
        }
    )
    job = store.get_historical_features(
        df, ["stats:trips", "zones:demand", "zones:rating", "stats:rating"], full_feature_names=True
    )
    got = job.to_pandas()
    assert list(got.columns) == [
        "driver_id",
        "city",
        "zone",
        "event_timestamp",
        "label",
        "stats__trips",
        "zones__demand",
        "zones__rating",
        "stats__rating",
    ]
    assert got["zones__demand"].tolist()[:2] == [1.0, 2.0]
    assert pd.isna(got["zones__demand"].iloc[2])  # (lyon, 2) is unknown
    assert got["zones__demand"].iloc[3] == 1.5
    assert values(got["stats__trips"]) == [11, None, 11, 14]  # driver 2's trips are null


def test_output_keeps_input_order_index_and_columns(store: FeatureStore) -> None:
    df = entities([(3, ts(6)), (1, ts(10)), (2, ts(1))])
    df["label"] = ["x", "y", "z"]
    df.index = [30, 10, 20]
    out = store.get_historical_features(df, ["stats:trips"]).to_pandas()
    assert list(out.index) == [30, 10, 20]
    assert out["label"].tolist() == ["x", "y", "z"]
    assert values(out["trips"]) == [3, 11, None]
    pd.testing.assert_frame_equal(out[df.columns], df)


def test_output_dtypes_follow_the_schema(store: FeatureStore) -> None:
    refs = [f"stats:{f}" for f in ("rating", "trips", "small", "active", "ratio", "name", "tags")]
    out = store.get_historical_features(entities([(1, ts(5)), (9, ts(5))]), refs).to_pandas()
    assert str(out["trips"].dtype) == "Int64"
    assert str(out["small"].dtype) == "Int32"
    assert str(out["active"].dtype) == "boolean"
    assert str(out["ratio"].dtype) == "float32"
    assert str(out["rating"].dtype) == "float64"
    assert values(out["trips"]) == [10, None]
    assert list(out["tags"].iloc[0]) == ["x"]
    table = store.get_historical_features(entities([(1, ts(5))]), refs).to_arrow()
    assert table.schema.field("small").type == pa.int32()
    assert table.schema.field("tags").type == pa.list_(pa.string())


def test_timestamps_naive_means_utc_and_aware_converts(store: FeatureStore) -> None:
    naive = entities([(1, pd.Timestamp("2024-03-01 12:10:00"))])
    aware = entities([(1, pd.Timestamp("2024-03-01 13:09:59.999999+01:00"))])  # 12:09:59.999999Z
    assert features(store, naive, ["stats:rating"])[0]["rating"] == 4.1
    assert features(store, aware, ["stats:rating"])[0]["rating"] == 4.0  # one microsecond early
    strings = entities([(1, "2024-03-01T12:10:00Z")])
    assert features(store, strings, ["stats:rating"])[0]["rating"] == 4.1


def test_spark_entity_df_gives_rows_in_order(store: FeatureStore, spark: SparkSession) -> None:
    pdf = entities([(3, ts(6)), (1, ts(10)), (2, ts(1)), (1, ts(20))])
    pdf["event_timestamp"] = pdf["event_timestamp"].dt.tz_localize(None)
    pdf["row"] = np.arange(4)
    sdf = spark.createDataFrame(pdf).repartition(1)
    out = store.get_historical_features(sdf, ["stats:trips"]).to_pandas()
    assert out["row"].tolist() == [0, 1, 2, 3]
    assert values(out["trips"]) == [3, 11, None, 13]


def test_spark_entity_df_over_a_growing_folder_is_read_afresh(
    store: FeatureStore, spark: SparkSession, tmp_path: Path
) -> None:
    # The entity rows of one call must not be served to a later call's identical plan
    # (Spark matches cached data by plan, and a folder's plan ignores new files).
    folder = tmp_path / "entity_rows"
    folder.mkdir()
    schema = pa.schema([("driver_id", pa.int64()), ("event_timestamp", pa.timestamp("us"))])
    naive = ts(10).replace(tzinfo=None)
    pq.write_table(
        pa.table({"driver_id": [1], "event_timestamp": [naive]}, schema), folder / "a.parquet"
    )
    job = store.get_historical_features(spark.read.parquet(str(folder)), ["stats:trips"])
    assert len(job.to_pandas()) == 1
    naive = ts(6).replace(tzinfo=None)
    pq.write_table(
        pa.table({"driver_id": [3], "event_timestamp": [naive]}, schema), folder / "b.parquet"
    )
    again = store.get_historical_features(spark.read.parquet(str(folder)), ["stats:trips"])
    out = again.to_pandas().sort_values("driver_id")
    assert out["driver_id"].tolist() == [1, 3]
    assert values(out["trips"]) == [11, 3]


def test_feature_service_by_object_and_by_name(store: FeatureStore) -> None:
    df = pd.DataFrame(
        {"driver_id": [1], "city": ["paris"], "zone": [1], "event_timestamp": [ts(15)]}
    )
    by_name = store.get_historical_features(df, "svc").to_pandas()
    by_obj = store.get_historical_features(df, store.get_feature_service("svc")).to_pandas()
    pd.testing.assert_frame_equal(by_name, by_obj)
    assert list(by_name.columns)[-3:] == ["rating", "trips", "demand"]


def test_to_delta_writes_a_versioned_table(
    store: FeatureStore, spark: SparkSession, tmp_path: Path
) -> None:
    job = store.get_historical_features(entities([(1, ts(10)), (3, ts(6))]), ["stats:trips"])
    version = job.to_delta(str(tmp_path / "training"))
    assert version == 0
    back = (
        spark.read.format("delta").load(str(tmp_path / "training")).orderBy("driver_id").collect()
    )
    assert [(r["driver_id"], r["trips"]) for r in back] == [(1, 11), (3, 3)]


def _staged_folders() -> set[Path]:
    return set(Path(tempfile.gettempdir()).glob("skewless-frame-*"))


def test_pandas_rows_are_staged_for_the_job_and_removed_with_it(store: FeatureStore) -> None:
    """The join reads a pandas frame's rows from a Parquet file the job owns: it is there
    for every output the job gives, and gone once the job is."""
    before = _staged_folders()
    job = store.get_historical_features(entities([(1, ts(10)), (3, ts(6))]), ["stats:trips"])
    (folder,) = _staged_folders() - before
    assert values(job.to_pandas()["trips"]) == [11, 3]
    assert job.to_arrow().column("trips").to_pylist() == [11, 3]
    assert folder.is_dir()
    del job
    gc.collect()
    assert not folder.exists()


def test_to_spark_outlives_its_job(store: FeatureStore) -> None:
    """A Spark frame from to_spark() reads nothing the job owns (its staged file goes with
    the job), so it still gives the training set after the job is gone."""
    before = _staged_folders()
    job = store.get_historical_features(entities([(1, ts(10)), (3, ts(6))]), ["stats:trips"])
    frame = job.to_spark().select("driver_id", "trips")
    del job
    gc.collect()
    assert _staged_folders() == before
    assert [tuple(r) for r in frame.collect()] == [(1, 11), (3, 3)]
    assert [tuple(r) for r in frame.collect()] == [(1, 11), (3, 3)]


def test_errors_name_what_is_wrong(store: FeatureStore) -> None:
    df = entities([(1, ts(10))])
    with pytest.raises(FeatureViewNotFoundError, match="Did you mean 'stats'"):
        store.get_historical_features(df, ["stat:rating"])
    with pytest.raises(FeatureNotFoundError, match="Did you mean 'rating'"):
        store.get_historical_features(df, ["stats:ratin"])
    with pytest.raises(InvalidFeatureRefError, match="view:feature"):
        store.get_historical_features(df, ["rating"])
    with pytest.raises(InvalidFeatureRefError, match="full_feature_names"):
        store.get_historical_features(
            pd.DataFrame(
                {"driver_id": [1], "city": ["x"], "zone": [1], "event_timestamp": [ts(1)]}
            ),
            ["stats:rating", "zones:rating"],
        )
    with pytest.raises(EntityDataFrameError, match="join key 'zone'"):
        store.get_historical_features(
            pd.DataFrame({"city": ["x"], "event_timestamp": [ts(1)]}), ["zones:demand"]
        )
    with pytest.raises(EntityDataFrameError, match="timestamp column 'event_timestamp'"):
        store.get_historical_features(pd.DataFrame({"driver_id": [1]}), ["stats:rating"])
    with pytest.raises(EntityDataFrameError, match="'driver_id' is string but .* bigint"):
        store.get_historical_features(entities([("1", ts(10))]), ["stats:rating"])


ID = ("id", "event_timestamp")


def _repo(tmp_path: Path, defs: str) -> Path:
    (tmp_path / "data").mkdir(exist_ok=True)
    (tmp_path / "feature_store.yaml").write_text("project: other\n")
    (tmp_path / "defs.py").write_text(textwrap.dedent(defs))
    return tmp_path


SIMPLE = """
from skewless import *
d = Entity("d", join_keys=["id"])
v = FeatureView("v", entities=[d], schema=[Field("id", Int64), Field("x", Int64)],
                source=FileSource("data/src{suffix}", timestamp_field="ts"{extra}))
"""


def test_csv_source_reads_and_rejects_unparseable_values(
    tmp_path: Path, spark: SparkSession
) -> None:
    repo = _repo(tmp_path, SIMPLE.format(suffix=".csv", extra=', file_format="csv"'))
    (repo / "data/src.csv").write_text(
        "id,ts,x\n1,2024-03-01T12:00:00Z,5\n1,2024-03-01T12:05:00,6\n"
    )
    fs = FeatureStore(repo)
    fs.apply()
    got = fs.get_historical_features(entities([(1, ts(4)), (1, ts(5))], ID), ["v:x"]).to_pandas()
    assert got["x"].tolist() == [5, 6]
    (repo / "data/src.csv").write_text(
        "id,ts,x\n1,2024-03-01T12:00:00Z,5\n1,yesterday,six\n2,2024-03-01T12:00:00Z,7.5\n"
    )
    with pytest.raises(RejectedRowsError) as info:
        fs.get_historical_features(entities([(1, ts(4))], ID), ["v:x"]).to_pandas()
    assert info.value.counts == {"ts": 1, "x": 2}


def test_source_with_wrong_types_is_refused_with_names(tmp_path: Path, spark: SparkSession) -> None:
    repo = _repo(tmp_path, SIMPLE.format(suffix=".parquet", extra=""))
    good = pa.table({"id": [1], "ts": pa.array([T0], pa.timestamp("us", tz="UTC")), "x": [1]})
    pq.write_table(good, repo / "data/src.parquet")
    fs = FeatureStore(repo)
    fs.apply()
    bad = pa.table({"id": [1], "ts": pa.array([T0], pa.timestamp("us", tz="UTC")), "x": ["1"]})
    pq.write_table(bad, repo / "data/src.parquet")
    with pytest.raises(
        IncompatibleSchemaError, match="feature 'x' is declared int64 but the source has string"
    ):
        fs.get_historical_features(entities([(1, ts(4))], ID), ["v:x"])


def test_delta_source(tmp_path: Path, spark: SparkSession) -> None:
    repo = _repo(
        tmp_path,
        """
        from skewless import *
        d = Entity("d", join_keys=["id"])
        v = FeatureView("v", entities=[d], schema=[Field("x", Float64)],
                        source=DeltaSource("data/table", timestamp_field="ts"))
        """,
    )
    frame = pd.DataFrame({"id": [1, 1], "ts": [ts(0), ts(10)], "x": [1.0, 2.0]})
    spark.createDataFrame(frame).write.format("delta").save(str(repo / "data/table"))
    fs = FeatureStore(repo)
    fs.apply()
    got = fs.get_historical_features(entities([(1, ts(5)), (1, ts(10))], ID), ["v:x"]).to_pandas()
    assert got["x"].tolist() == [1.0, 2.0]


def test_local_frame_reads_back_as_create_dataframe_does(spark: SparkSession) -> None:
    """Entity rows reach Spark through a Parquet file and a checkpoint (local master):
    same column names (any a pandas frame may have), types, values and nulls as
    createDataFrame gives, no file left behind; other types take createDataFrame."""
    naive = ["2024-03-01 12:00:00.000001", None, "1960-01-01 00:00:00.5"]
    aware = ["2024-03-01T13:00:00+01:00", None, "2030-01-01T00:00:00Z"]
    frame = pd.DataFrame(
        {
            "user id": pd.array([1, None, 3], dtype="Int64"),
            "a,b;c": np.array([1, 2, 3], dtype="int8"),
            "f32": np.array([0.5, np.nan, -1.0], dtype="float32"),
            "ok": pd.array([True, None, False], dtype="boolean"),
            "s": ["x", None, "é"],
            "naive": pd.to_datetime(naive).astype("datetime64[us]"),
            "aware": pd.to_datetime(aware, utc=True)
            .tz_convert("Europe/Paris")
            .astype("datetime64[us, Europe/Paris]"),
        }
    )
    assert retrieval._stageable(pa.Table.from_pandas(frame).schema)  # the Parquet path
    before = _staged_folders()
    staged = retrieval.local_frame(spark, frame)
    assert _staged_folders() == before
    plain = spark.createDataFrame(frame)
    assert staged.schema == plain.schema
    assert staged.collect() == plain.collect()
    # The same rows scanned in place from the file, while its owner lives.
    owner = retrieval.StagedRows(spark, frame)
    assert owner.folder is not None and Path(owner.folder).is_dir()
    assert owner.frame.schema == plain.schema
    assert owner.frame.collect() == plain.collect()

    odd = pd.DataFrame({"k": np.array([1, 2], dtype="uint64"), "c": pd.Categorical(["a", "b"])})
    assert not retrieval._stageable(pa.Table.from_pandas(odd).schema)
    fallback = retrieval.local_frame(spark, odd)
    assert fallback.schema == spark.createDataFrame(odd).schema
    assert fallback.collect() == spark.createDataFrame(odd).collect()
    unstaged = retrieval.StagedRows(spark, odd)
    assert unstaged.folder is None
    assert unstaged.frame.collect() == spark.createDataFrame(odd).collect()
