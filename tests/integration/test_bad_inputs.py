"""Bad source files, with real Spark, Delta and redis-server: every one is refused with
the file named, at plan and at every read (materialization, training sets), and nothing
is written; the CSV that pandas writes, quirks included, is read as pandas reads it."""

from __future__ import annotations

import textwrap
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import redis
from pyspark.sql import SparkSession

from skewless import FeatureStore
from skewless.errors import (
    DefinitionError,
    RejectedRowsError,
    SourceNotFoundError,
    UnreadableSourceError,
)
from skewless.serving.response import FeatureStatus
from skewless.timeutil import MAX_DURATION

T0 = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)
END = datetime(2025, 1, 1, tzinfo=UTC)

DEFS = """
from datetime import timedelta
from skewless import *

driver = Entity("driver", join_keys=["driver_id"])
stats = FeatureView(
    "stats",
    entities=[driver],
    schema=[Field("driver_id", Int64), Field("trips", Int64), Field("note", String)],
    source=FileSource("{path}", timestamp_field="ts"{extra}),
    ttl={ttl},
)
"""


def make_repo(
    root: Path,
    redis_url: str,
    path: str,
    *,
    csv: bool = False,
    ttl: str = "timedelta(days=365)",
) -> Path:
    (root / "data").mkdir(parents=True, exist_ok=True)
    (root / "feature_store.yaml").write_text(
        f"project: {root.name}\nonline_store:\n  type: redis\n  url: {redis_url}\n"
    )
    extra = ', file_format="csv"' if csv else ""
    (root / "defs.py").write_text(textwrap.dedent(DEFS.format(path=path, extra=extra, ttl=ttl)))
    return root


def frame(rows: list[tuple[int, datetime, int, str]]) -> pd.DataFrame:
    """Rows as users hold them: a pandas frame (nanosecond timestamps, UTC)."""
    df = pd.DataFrame(rows, columns=["driver_id", "ts", "trips", "note"])
    df["ts"] = pd.to_datetime(df["ts"], utc=True)
    return df


GOOD = frame([(1, T0, 10, "one"), (2, T0, 20, "two")])


def training_set(store: FeatureStore, drivers: list[int]) -> pd.DataFrame:
    entity_df = pd.DataFrame(
        {"driver_id": drivers, "event_timestamp": [T0 + timedelta(hours=1)] * len(drivers)}
    )
    return store.get_historical_features(entity_df, ["stats:trips", "stats:note"]).to_pandas()


def online_statuses(store: FeatureStore, drivers: list[int]) -> list[FeatureStatus]:
    resp = store.get_online_features(
        ["stats:trips"], [{"driver_id": d} for d in drivers], request_time=T0
    )
    return list(resp.statuses["trips"])


def nothing_written(store: FeatureStore, redis_url: str) -> bool:
    offline = store.repo_path / "data/offline"
    keys = redis.Redis.from_url(redis_url).keys(f"{store.project}*")
    return not offline.exists() and not keys and not store.registry.materializations()


def test_malformed_csv_lines_fail_plan_and_every_read_naming_the_files(
    tmp_path: Path, spark: SparkSession, redis_url: str
) -> None:
    repo = make_repo(tmp_path / "malformed", redis_url, "data/src", csv=True)
    (repo / "data/src").mkdir()
    GOOD.to_csv(repo / "data/src/a.csv", index=False)
    store = FeatureStore(repo)
    store.apply()
    # A line short of a field (its note would be a null served as PRESENT), one with a
    # field too many (dropped), one of spaces, between good lines; CRLF endings.
    (repo / "data/src/b.csv").write_bytes(
        b"driver_id,ts,trips,note\r\n"
        b"3,2024-03-01 12:00:00+00:00,30,three\r\n"
        b"4,2024-03-01 12:00:00+00:00,40\r\n"
        b"5,2024-03-01 12:00:00+00:00,50,five,extra\r\n"
        b"  \r\n"
        b"6,2024-03-01 12:00:00+00:00,60,six\r\n"
    )
    expected = "3 CSV line(s) with more or fewer fields than the header (data/src/b.csv: 3); "
    first = "the first: '4,2024-03-01 12:00:00+00:00,40'"

    with pytest.raises(DefinitionError) as at_plan:
        store.plan()
    assert at_plan.value.field == "source"
    assert at_plan.value.detail == f"source data/src: {expected}{first}"

    with pytest.raises(RejectedRowsError) as at_materialize:
        store.materialize(None, END)
    assert at_materialize.value.malformed == {"data/src/b.csv": 3}
    assert at_materialize.value.example == "4,2024-03-01 12:00:00+00:00,40"
    assert at_materialize.value.counts == {}
    assert f"{expected}{first}" in str(at_materialize.value)
    assert nothing_written(store, redis_url)
    assert online_statuses(store, [1, 4]) == [FeatureStatus.NOT_FOUND] * 2

    with pytest.raises(RejectedRowsError) as at_training:
        training_set(store, [4])
    assert at_training.value.malformed == {"data/src/b.csv": 3}

    # Malformed lines and unparsable values in one report; a value of a malformed line
    # is not counted again as unparsable.
    (repo / "data/src/c.csv").write_text(
        "driver_id,ts,trips,note\n7,2024-03-01 12:00:00+00:00,seven,x\n8,yesterday\n"
    )
    with pytest.raises(RejectedRowsError) as both:
        store.materialize(None, END)
    assert both.value.malformed == {"data/src/b.csv": 3, "data/src/c.csv": 1}
    assert both.value.counts == {"trips": 1}

    assert nothing_written(store, redis_url)


def test_csv_as_pandas_and_excel_write_it_is_read_as_written(
    tmp_path: Path, spark: SparkSession, redis_url: str
) -> None:
    notes = ["a, b", "two\nlines", 'say "hi"', "crlf\r\ninside", ""]
    df = frame([(i, T0 + timedelta(minutes=i), i * 10, n) for i, n in enumerate(notes, 1)])
    repo = make_repo(tmp_path / "quirks", redis_url, "data/src.csv", csv=True)
    # A UTF-8 BOM, CRLF line endings, quoted commas, line breaks and doubled quotes,
    # then a blank line at the end.
    df.to_csv(repo / "data/src.csv", index=False, encoding="utf-8-sig", lineterminator="\r\n")
    with (repo / "data/src.csv").open("ab") as f:
        f.write(b"\r\n")
    store = FeatureStore(repo)
    store.apply()  # plan finds no malformed line

    got = training_set(store, [1, 2, 3, 4, 5])
    # Spark reads a line break inside a quoted value as "\n", and an empty field as null.
    assert got["note"].tolist() == ["a, b", "two\nlines", 'say "hi"', "crlf\ninside", None]
    assert got["trips"].tolist() == [10, 20, 30, 40, 50]
    [record] = store.materialize(None, END)
    assert (record.rows_read, record.rows_rejected) == (5, 0)
    resp = store.get_online_features(
        ["stats:note"], [{"driver_id": 3}], request_time=T0 + timedelta(hours=1)
    )
    assert resp.values["note"] == ['say "hi"']


def test_empty_and_damaged_files_are_named_at_plan_and_at_every_read(
    tmp_path: Path, spark: SparkSession, redis_url: str
) -> None:
    repo = make_repo(tmp_path / "damaged", redis_url, "data/src")
    (repo / "data/src").mkdir()
    GOOD.to_parquet(repo / "data/src/part-0.parquet")  # pandas' defaults: nanoseconds
    store = FeatureStore(repo)
    store.apply()
    part = repo / "data/src/part-1.parquet"

    part.write_bytes(b"")
    with pytest.raises(DefinitionError) as at_plan:
        store.plan()
    assert at_plan.value.detail == "source file data/src/part-1.parquet is empty (0 bytes)"
    for read in (lambda: store.materialize(None, END), lambda: training_set(store, [1])):
        with pytest.raises(UnreadableSourceError) as at_read:
            read()
        assert str(at_read.value) == (
            "feature view 'stats': source file data/src/part-1.parquet is empty (0 bytes)"
        )

    whole = (repo / "data/src/part-0.parquet").read_bytes()
    part.write_bytes(whole[: len(whole) // 2])  # a copy cut short: no footer
    with pytest.raises(UnreadableSourceError) as truncated:
        store.materialize(None, END)
    assert truncated.value.file == "data/src/part-1.parquet"
    assert "is not a readable Parquet file: " in truncated.value.detail

    # A footer intact but a page damaged: only Spark finds out, when it reads the page.
    table = pa.Table.from_pandas(frame([(3, T0, 30, "x" * 50)] * 100), preserve_index=False)
    pq.write_table(table, part, compression="none")
    damaged = bytearray(part.read_bytes())
    damaged[4:200] = b"\xff" * 196
    part.write_bytes(bytes(damaged))
    store.plan()  # the footers are readable
    with pytest.raises(UnreadableSourceError) as at_page:
        store.materialize(None, END)
    assert at_page.value.file == "data/src/part-1.parquet"
    assert at_page.value.view == "stats"
    assert at_page.value.detail.startswith("cannot be read: ")
    with pytest.raises(UnreadableSourceError, match="source file data/src/part-1.parquet"):
        training_set(store, [3])
    assert nothing_written(store, redis_url)

    part.unlink()
    (repo / "data/src").rename(repo / "data/gone")
    with pytest.raises(SourceNotFoundError, match="source path data/src does not exist"):
        training_set(store, [1])
    with pytest.raises(DefinitionError) as missing:
        store.plan()
    assert missing.value.detail == "source path data/src does not exist"


def test_empty_csv_other_csv_headers_and_a_damaged_uri_source_are_named(
    tmp_path: Path, spark: SparkSession, redis_url: str
) -> None:
    repo = make_repo(tmp_path / "empty_csv", redis_url, "data/src.csv", csv=True)
    GOOD.to_csv(repo / "data/src.csv", index=False)
    store = FeatureStore(repo)
    store.apply()
    (repo / "data/src.csv").write_bytes(b"")
    detail = "is empty (0 bytes): a CSV file starts with its header line"
    with pytest.raises(DefinitionError) as at_plan:
        store.plan()
    assert at_plan.value.detail == f"source file data/src.csv {detail}"
    with pytest.raises(UnreadableSourceError) as at_read:
        training_set(store, [1])
    assert (at_read.value.file, at_read.value.detail) == ("data/src.csv", detail)

    # A quoted value in the last column never closed: parsers would read every later
    # line into it, and no line would be malformed.
    lines = GOOD.to_csv(index=False).splitlines()
    lines[1] = lines[1].rsplit(",", 1)[0] + ',"never closed'
    (repo / "data/src.csv").write_text("\n".join(lines) + "\n")
    with pytest.raises(DefinitionError) as at_plan_quote:
        store.plan()
    assert "quoted value opened on line 2 that is never closed" in at_plan_quote.value.detail
    with pytest.raises(UnreadableSourceError) as at_materialize:
        store.materialize(None, END)
    assert at_materialize.value.file == "data/src.csv"
    assert "opened on line 2" in at_materialize.value.detail
    assert nothing_written(store, redis_url)

    # A folder whose files name their columns in another order: never read by position.
    folder = make_repo(tmp_path / "headers", redis_url, "data/src", csv=True)
    (folder / "data/src").mkdir()
    GOOD.to_csv(folder / "data/src/a.csv", index=False)
    folder_store = FeatureStore(folder)
    folder_store.apply()
    GOOD[["driver_id", "ts", "note", "trips"]].to_csv(folder / "data/src/b.csv", index=False)
    with pytest.raises(DefinitionError, match="source file data/src/b.csv has the header"):
        folder_store.plan()
    with pytest.raises(UnreadableSourceError) as at_header:
        training_set(folder_store, [1])
    assert at_header.value.file == "data/src/b.csv"
    assert "CSV header does not conform to the schema" in at_header.value.detail

    # A source given as a URI is read by Spark alone (no footers read beforehand).
    uri_repo = make_repo(tmp_path / "uri", redis_url, (tmp_path / "uri/data/src").as_uri())
    (uri_repo / "data/src").mkdir()
    GOOD.to_parquet(uri_repo / "data/src/part-0.parquet", coerce_timestamps="us")
    uri_store = FeatureStore(uri_repo)
    uri_store.apply()
    whole = (uri_repo / "data/src/part-0.parquet").read_bytes()
    (uri_repo / "data/src/part-1.parquet").write_bytes(whole[:-20])  # no footer
    with pytest.raises(UnreadableSourceError) as at_uri:
        uri_store.materialize(None, END)
    assert at_uri.value.file == (tmp_path / "uri/data/src").as_uri() + "/part-1.parquet"
    assert "cannot be read" in at_uri.value.detail


def test_the_longest_ttl_is_served_and_joined_across_spark_s_whole_range(
    tmp_path: Path, spark: SparkSession, redis_url: str
) -> None:
    repo = make_repo(
        tmp_path / "ttl", redis_url, "data/src.parquet", ttl=f"timedelta(days={MAX_DURATION.days})"
    )
    first = datetime(1, 1, 1, tzinfo=UTC)
    table = pa.table(
        {
            "driver_id": [1],
            "ts": pa.array([first], pa.timestamp("us", tz="UTC")),
            "trips": [7],
            "note": ["ancient"],
        }
    )
    pq.write_table(table, repo / "data/src.parquet")
    store = FeatureStore(repo)
    store.apply()
    [record] = store.materialize(None, END)
    assert record.keys_written_online == 1
    resp = store.get_online_features(["stats:trips"], [{"driver_id": 1}], request_time=END)
    assert (resp.values["trips"], resp.statuses["trips"]) == ([7], [FeatureStatus.PRESENT])
    last = datetime(9999, 12, 31, tzinfo=UTC)
    entity_df = spark.createDataFrame([(1, last), (1, first)], ["driver_id", "event_timestamp"])
    got = store.get_historical_features(entity_df, ["stats:trips"]).to_arrow()
    assert got.column("trips").to_pylist() == [7, 7]
