from __future__ import annotations

import json
import textwrap
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from skewless import FeatureStore, Float64, Int32, Int64, String
from skewless.errors import DefinitionError
from skewless.plan import AddObject
from skewless.rules.schema import DATE, NANOS, TEXT, Unsupported
from skewless.source_schema import delta_schema, file_schema
from skewless.types import Array, UnixTimestamp

# What pandas writes by default: nanoseconds, naive or with the frame's zone.
TRIPS = pd.DataFrame(
    {
        "driver_id": [1001, 1002],
        "ts": pd.to_datetime(
            ["2024-03-01 12:00:00.000001999", "2024-03-01 12:30:00"], format="ISO8601"
        ),
        "created": pd.to_datetime(
            ["2024-03-01 13:00:00", "2024-03-01 13:30:00.5"], format="ISO8601"
        ).tz_localize("Europe/Berlin"),
        "fare": [12.5, 7.0],
        "tiny": pd.array([1, 2], dtype="int8"),
    }
)

TRIPS_DEFS = """
from skewless import *
driver = Entity("driver", join_keys=["driver_id"])
trips = FeatureView(
    "trips",
    entities=[driver],
    schema=[Field("fare", Float64){more}],
    source=FileSource("data/{data}", timestamp_field="ts", created_timestamp_column="created"),
)
"""


def trips_repo(root: Path, *, more: str = "", data: str = "trips.parquet") -> Path:
    (root / "data").mkdir(parents=True, exist_ok=True)
    (root / "feature_store.yaml").write_text("project: unit\n")
    (root / "defs.py").write_text(textwrap.dedent(TRIPS_DEFS.format(more=more, data=data)))
    if data == "trips.parquet":
        TRIPS.to_parquet(root / "data/trips.parquet")
    return root


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
    assert cols == {
        "id": Int64,
        "ts": UnixTimestamp,
        "tags": Array(String),
        "tiny": Unsupported("int8"),
    }


def test_csv_schema_is_text_until_parsed(tmp_path: Path) -> None:
    (tmp_path / "x.csv").write_text("id,ts,v\n1,2024-01-01,2\n")
    assert file_schema(str(tmp_path / "x.csv"), "csv") == {"id": TEXT, "ts": TEXT, "v": TEXT}


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
        {"name": "day", "type": "date", "nullable": True, "metadata": {}},
        {"name": "money", "type": "decimal(10,2)", "nullable": True, "metadata": {}},
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
        "day": DATE,
        "money": Unsupported("decimal(10,2)"),
    }


def test_parquet_schema_of_pandas_defaults_has_nanosecond_timestamps(tmp_path: Path) -> None:
    TRIPS.to_parquet(tmp_path / "x.parquet")
    assert pq.read_schema(tmp_path / "x.parquet").field("created").type == pa.timestamp(
        "ns", tz="Europe/Berlin"
    )
    assert file_schema(str(tmp_path / "x.parquet"), "parquet") == {
        "driver_id": Int64,
        "ts": NANOS,
        "created": NANOS,
        "fare": Float64,
        "tiny": Unsupported("int8"),
    }


def test_parquet_schema_reads_int96_as_the_timestamp_spark_reads(tmp_path: Path) -> None:
    TRIPS.to_parquet(tmp_path / "x.parquet", use_deprecated_int96_timestamps=True)
    cols = file_schema(str(tmp_path / "x.parquet"), "parquet")
    assert (cols["ts"], cols["created"]) == (UnixTimestamp, UnixTimestamp)


def test_plan_accepts_pandas_default_parquet_and_records_the_key_type(tmp_path: Path) -> None:
    plan = FeatureStore(trips_repo(tmp_path)).plan()
    stage = next(s for s in plan.stages if s.name == "trips")
    assert isinstance(stage, AddObject)
    assert stage.spec["schema_"][0] == {"name": "driver_id", "dtype": "int64", "description": ""}


def test_plan_refuses_an_unusable_column_naming_file_view_column_and_type(tmp_path: Path) -> None:
    trips_repo(tmp_path, more=', Field("tiny", Int64)')
    with pytest.raises(DefinitionError) as info:
        FeatureStore(tmp_path).plan()
    assert str(info.value) == (
        "defs.py: feature view 'trips': field 'schema': source data/trips.parquet: "
        "feature 'tiny' is declared int64 but the source has int8 (not a type skewless "
        "can carry)"
    )
    trips_repo(tmp_path, more=', Field("ts2", Int64)')
    TRIPS.assign(ts2=TRIPS["ts"]).to_parquet(tmp_path / "data/trips.parquet")
    with pytest.raises(DefinitionError, match="feature 'ts2' is declared int64 but the source has "
                       "timestamp in nanoseconds"):  # fmt: skip
        FeatureStore(tmp_path).plan()


def test_plan_refuses_a_folder_mixing_nanoseconds_and_microseconds(tmp_path: Path) -> None:
    trips_repo(tmp_path, data="trips")
    (tmp_path / "data/trips").mkdir()
    TRIPS.to_parquet(tmp_path / "data/trips/part-0.parquet")
    TRIPS.to_parquet(
        tmp_path / "data/trips/part-1.parquet",
        coerce_timestamps="us",
        allow_truncated_timestamps=True,
    )
    with pytest.raises(DefinitionError) as info:
        FeatureStore(tmp_path).plan()
    assert info.value.detail == (
        "source data/trips: timestamp field 'ts' must be a timestamp or a date but the "
        "source has a timestamp in nanoseconds in part-0.parquet but unix_timestamp in "
        "part-1.parquet (every file of a folder must store it in the same unit); created "
        "timestamp column 'created' must be a timestamp or a date but the source has a "
        "timestamp in nanoseconds in part-0.parquet but unix_timestamp in part-1.parquet "
        "(every file of a folder must store it in the same unit)"
    )
    (tmp_path / "data/trips/part-1.parquet").unlink()
    TRIPS.to_parquet(tmp_path / "data/trips/part-1.parquet")
    assert FeatureStore(tmp_path).plan().has_changes
