from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from skewless import Entity, FeatureView, Field, FileSource, Float64, Int32, Int64, String
from skewless.source_schema import delta_schema, file_schema, schema_problems
from skewless.types import Array, UnixTimestamp


def test_parquet_schema_maps_types(tmp_path: Path) -> None:
    table = pa.table(
        {
            "id": pa.array([1], pa.int64()),
            "ts": pa.array([datetime(2024, 1, 1, tzinfo=UTC)], pa.timestamp("us", tz="UTC")),
            "tags": pa.array([["a"]], pa.list_(pa.string())),
            "tiny": pa.array([1], pa.int8()),
        }
    )
    pq.write_table(table, tmp_path / "x.parquet")
    cols = file_schema(str(tmp_path / "x.parquet"), "parquet")
    assert cols == {"id": Int64, "ts": UnixTimestamp, "tags": Array(String), "tiny": None}


def test_csv_schema_is_text_until_parsed(tmp_path: Path) -> None:
    (tmp_path / "x.csv").write_text("id,ts,v\n1,2024-01-01,2\n")
    assert file_schema(str(tmp_path / "x.csv"), "csv") == {"id": String, "ts": String, "v": String}


def test_delta_schema_reads_the_newest_metadata(tmp_path: Path) -> None:
    log = tmp_path / "_delta_log"
    log.mkdir()

    def meta(fields: list[dict[str, object]]) -> str:
        schema = json.dumps({"type": "struct", "fields": fields})
        return json.dumps({"metaData": {"id": "x", "schemaString": schema}})

    f1 = [{"name": "id", "type": "long", "nullable": True, "metadata": {}}]
    f2 = [
        *f1,
        {"name": "x", "type": "double", "nullable": True, "metadata": {}},
        {
            "name": "a",
            "type": {"type": "array", "elementType": "integer", "containsNull": True},
            "nullable": True,
            "metadata": {},
        },
    ]
    (log / "00000000000000000000.json").write_text(
        json.dumps({"protocol": {}}) + "\n" + meta(f1) + "\n"
    )
    (log / "00000000000000000001.json").write_text(json.dumps({"add": {"path": "p"}}) + "\n")
    (log / "00000000000000000002.json").write_text(meta(f2) + "\n")
    assert delta_schema(str(tmp_path)) == {
        "id": Int64,
        "x": Float64,
        "a": Array(Int32),
    }


def test_schema_problems_lists_every_mismatch() -> None:
    v = FeatureView(
        "v",
        entities=[Entity("e", join_keys=["id"])],
        schema=[Field("id", Int64), Field("x", Float64), Field("y", Int64)],
        source=FileSource("x", timestamp_field="ts", created_timestamp_column="c"),
    )
    problems = schema_problems(v, {"id": String, "ts": UnixTimestamp, "x": Int64})
    assert problems == [
        "created timestamp column 'c' is missing from the source",
        "join key 'id' is declared int64 but the source has string",
        "feature 'x' is declared float64 but the source has int64",
        "feature 'y' is missing from the source",
    ]
