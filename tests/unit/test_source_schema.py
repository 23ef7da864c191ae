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
from skewless.errors import DefinitionError, UnreadableSourceError
from skewless.plan import AddObject
from skewless.rules.schema import DATE, NANOS, TEXT, Unsupported
from skewless.source_schema import (
    EMPTY_CSV,
    csv_file_problem,
    csv_layout,
    delta_schema,
    file_schema,
)
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
        "source has a timestamp in nanoseconds in data/trips/part-0.parquet but "
        "unix_timestamp in data/trips/part-1.parquet (every file of a folder must store it "
        "in the same unit); created timestamp column 'created' must be a timestamp or a "
        "date but the source has a timestamp in nanoseconds in data/trips/part-0.parquet "
        "but unix_timestamp in data/trips/part-1.parquet (every file of a folder must "
        "store it in the same unit)"
    )
    (tmp_path / "data/trips/part-1.parquet").unlink()
    TRIPS.to_parquet(tmp_path / "data/trips/part-1.parquet")
    assert FeatureStore(tmp_path).plan().has_changes


CSV_DEFS = """
from skewless import *
driver = Entity("driver", join_keys=["driver_id"])
trips = FeatureView(
    "trips",
    entities=[driver],
    schema=[Field("fare", Float64), Field("note", String)],
    source=FileSource("data/trips", timestamp_field="ts", file_format="csv"),
)
"""


def test_csv_layout_counts_lines_of_another_width_per_file(tmp_path: Path) -> None:
    folder = tmp_path / "trips"
    folder.mkdir()
    quirks = pd.DataFrame(
        {"id": [1, 2, 3], "note": ["a, b", "two\r\nlines", 'say "hi"'], "n": [1, None, 3]}
    )
    # A BOM, CRLF endings, quoted commas, line breaks and quotes, a blank last line.
    quirks.to_csv(folder / "a.csv", index=False, encoding="utf-8-sig", lineterminator="\r\n")
    with (folder / "a.csv").open("ab") as f:
        f.write(b"\r\n")
    (folder / "b.csv").write_text('id,note,n\n1,x,1\n2,"short"\n3,x,3,extra\n   \n4,"y\nz",4\n')
    (folder / "_SUCCESS").write_bytes(b"")  # not a data file, for Spark and pyarrow alike
    layout = csv_layout(str(folder), "data/trips")
    assert layout.columns == {"id": TEXT, "note": TEXT, "n": TEXT}
    assert layout.malformed == {"data/trips/b.csv": 3}  # a line of spaces is not blank
    assert layout.example == '2,"short"'


def test_plan_refuses_malformed_csv_lines_naming_the_files(tmp_path: Path) -> None:
    (tmp_path / "data/trips").mkdir(parents=True)
    (tmp_path / "feature_store.yaml").write_text("project: unit\n")
    (tmp_path / "defs.py").write_text(textwrap.dedent(CSV_DEFS))
    header = "driver_id,ts,fare,note\n"
    (tmp_path / "data/trips/a.csv").write_text(header + "1,2024-01-01,2.5,ok\n")
    assert FeatureStore(tmp_path).plan().has_changes
    (tmp_path / "data/trips/b.csv").write_text(header + "2,2024-01-01,3.5\n" * 7)
    with pytest.raises(DefinitionError) as info:
        FeatureStore(tmp_path).plan()
    assert info.value.field == "source"
    assert info.value.detail == (
        "source data/trips: 7 CSV line(s) with more or fewer fields than the header "
        "(data/trips/b.csv: 7); the first: '2,2024-01-01,3.5'"
    )
    (tmp_path / "data/trips/b.csv").write_bytes(b"")
    with pytest.raises(DefinitionError) as empty:
        FeatureStore(tmp_path).plan()
    assert empty.value.detail == (
        "source file data/trips/b.csv is empty (0 bytes): a CSV file starts with its header line"
    )


def test_plan_names_an_empty_or_damaged_parquet_file(tmp_path: Path) -> None:
    trips_repo(tmp_path, data="trips")
    (tmp_path / "data/trips").mkdir()
    TRIPS.drop(columns="tiny").to_parquet(tmp_path / "data/trips/part-0.parquet")
    assert FeatureStore(tmp_path).plan().has_changes
    part = tmp_path / "data/trips/part-1.parquet"
    part.write_bytes(b"")
    with pytest.raises(DefinitionError) as empty:
        FeatureStore(tmp_path).plan()
    assert (empty.value.field, empty.value.detail) == (
        "source",
        "source file data/trips/part-1.parquet is empty (0 bytes)",
    )
    part.write_bytes(b"PAR1 not really")
    with pytest.raises(DefinitionError) as damaged:
        FeatureStore(tmp_path).plan()
    assert damaged.value.detail.startswith(
        "source file data/trips/part-1.parquet is not a readable Parquet file: "
    )


def test_csv_layout_refuses_a_folder_whose_headers_differ(tmp_path: Path) -> None:
    folder = tmp_path / "trips"
    folder.mkdir()
    (folder / "a.csv").write_text("id,ts,v\n1,2024-01-01,x\n")
    (folder / "b.csv").write_text("ID,Ts,V\n2,2024-01-01,y\n")  # Spark ignores case too
    assert csv_layout(str(folder), "data/trips").columns == {"id": TEXT, "ts": TEXT, "v": TEXT}
    (folder / "c.csv").write_text("id,v,ts\n3,z,2024-01-01\n")  # read by position: refused
    with pytest.raises(UnreadableSourceError) as info:
        csv_layout(str(folder), "data/trips")
    assert str(info.value) == (
        "source file data/trips/c.csv has the header id, v, ts but data/trips/a.csv has "
        "id, ts, v (every file of a CSV folder needs the same header)"
    )
    (folder / "c.csv").write_text("id,ts,ID\n3,2024-01-01,z\n")
    with pytest.raises(UnreadableSourceError, match="names the column 'ID' twice"):
        csv_layout(str(folder), "data/trips")


def test_csv_file_problem_finds_an_unclosed_quote_and_its_line(tmp_path: Path) -> None:
    fine = tmp_path / "fine.csv"
    fine.write_text('id,note\n1,"a, b"\n2,"say ""hi"""\n3,"two\nlines"\n')
    assert csv_file_problem(str(fine)) is None
    unclosed = tmp_path / "unclosed.csv"
    unclosed.write_text('id,note\n1,"closed"\n2,"open\n3,x\n4,y\n')
    problem = csv_file_problem(str(unclosed))
    assert problem is not None
    assert "opened on line 3 that is never closed" in problem
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    assert csv_file_problem(str(empty)) == EMPTY_CSV
