"""Plan-time inspection of source schemas, without starting Spark.

Parquet and CSV schemas come from file footers and headers (pyarrow); a Delta table's
schema comes from its transaction log (the newest `metaData` action, in a JSON commit or
in a checkpoint). Their types are translated into the schema rule's terms and
`check_view_source` applies the rule (rules/schema.py), so a bad definition fails at
`plan` with the file, view, column and types named. The same rule runs again at read
time on the Spark schema (batch/sources.py), because data can change after a plan.

The footers of every file of a Parquet folder are read: a column stored in nanoseconds
(pandas' default) is read differently from one in microseconds, so its unit must be
known file by file; at read time batch/sources.py takes the same layout from here.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.dataset as pads
import pyarrow.parquet as pq

from skewless.definitions import DeltaSource, FeatureView, Field, FileSource
from skewless.errors import DefinitionError, SourceNotFoundError
from skewless.rules.schema import (
    DATE,
    NANOS,
    TEXT,
    ColumnType,
    Unsupported,
    check_schema,
    combine_files,
)
from skewless.types import (
    ArrayType,
    DType,
    ScalarType,
    UnixTimestamp,
    from_arrow_scalar,
    from_delta_scalar,
)

ColumnTypes = dict[str, ColumnType]


def arrow_column_type(t: pa.DataType) -> ColumnType:
    """What an Arrow column (as pyarrow reads a Parquet footer) holds, in the rule's terms."""
    if pa.types.is_dictionary(t):  # pandas' categoricals: Spark reads their values
        return arrow_column_type(t.value_type)
    if pa.types.is_list(t) or pa.types.is_large_list(t):
        inner = arrow_column_type(t.value_type)
        return ArrayType(inner) if isinstance(inner, ScalarType) else Unsupported(str(t))
    if pa.types.is_timestamp(t):
        return NANOS if t.unit == "ns" else UnixTimestamp
    if pa.types.is_date(t):
        return DATE
    scalar = from_arrow_scalar(t)
    return Unsupported(str(t)) if scalar is None else scalar


def _holds_nanos(t: pa.DataType) -> bool:
    if pa.types.is_timestamp(t):
        return bool(t.unit == "ns")
    return any(_holds_nanos(t.field(i).type) for i in range(t.num_fields))


@dataclass(frozen=True)
class ParquetLayout:
    """What the footers of a Parquet file, or of every file of a folder, say."""

    columns: ColumnTypes  # combined over the files (rules.schema.combine_files)
    arrow_types: dict[str, pa.DataType]  # each column's in the first file that holds it
    has_nanos: bool  # some file stores a nanosecond timestamp, in any column at any depth


def parquet_layout(path: str) -> ParquetLayout:
    """The layout of the Parquet file or folder at `path` (footers only, no data).

    INT96 timestamps (old Spark and Impala files) are taken as what Spark reads them as,
    a timestamp, not as the nanoseconds pyarrow makes of them by default.
    """
    p = Path(path)
    files = [path] if p.is_file() else sorted(pads.dataset(path, format="parquet").files)
    schemas: list[tuple[str, pa.Schema]] = []
    for file in files:
        with pq.ParquetFile(file, coerce_int96_timestamp_unit="us") as f:
            schemas.append((_shown(file, p), f.schema_arrow))
    arrow_types: dict[str, pa.DataType] = {}
    for _, schema in schemas:
        for field in schema:
            arrow_types.setdefault(field.name, field.type)
    columns = combine_files(
        [(name, {f.name: arrow_column_type(f.type) for f in schema}) for name, schema in schemas]
    )
    return ParquetLayout(
        columns=columns,
        arrow_types=arrow_types,
        has_nanos=any(_holds_nanos(f.type) for _, schema in schemas for f in schema),
    )


def _shown(file: str, source: Path) -> str:
    """A file of the source, as an error names it: relative to a source folder."""
    return file if source.is_file() else os.path.relpath(file, source)


def _delta_name(t: Any) -> str:
    if isinstance(t, dict):
        if t.get("type") == "array":
            return f"array<{_delta_name(t.get('elementType'))}>"
        return str(t.get("type"))
    return str(t)


def _delta_column_type(t: Any) -> ColumnType:
    if isinstance(t, str):
        if t == "date":
            return DATE
        scalar = from_delta_scalar(t)
        return Unsupported(t) if scalar is None else scalar
    if isinstance(t, dict) and t.get("type") == "array":
        inner = _delta_column_type(t.get("elementType"))
        if isinstance(inner, ScalarType):
            return ArrayType(inner)
    return Unsupported(_delta_name(t))


def file_schema(path: str, file_format: str) -> ColumnTypes:
    if file_format == "csv":
        # Every CSV column is text until it is parsed into its declared type at read time.
        ds = pads.dataset(path, format="csv")
        return dict.fromkeys(ds.schema.names, TEXT)
    return parquet_layout(path).columns


def delta_schema(path: str) -> ColumnTypes:
    log = Path(path) / "_delta_log"
    if not log.is_dir():
        raise FileNotFoundError(f"{path} has no _delta_log: not a Delta table")
    schema_string = _latest_schema_string(log)
    if schema_string is None:
        raise FileNotFoundError(f"{path}: the Delta log holds no table metadata")
    fields = json.loads(schema_string)["fields"]
    return {f["name"]: _delta_column_type(f["type"]) for f in fields}


def _latest_schema_string(log: Path) -> str | None:
    commits = sorted(log.glob("*.json"), key=lambda p: int(p.stem), reverse=True)
    checkpoint_version = -1
    last = log / "_last_checkpoint"
    if last.is_file():
        checkpoint_version = int(json.loads(last.read_text())["version"])
    for commit in commits:
        if int(commit.stem) <= checkpoint_version:
            break
        for line in reversed(commit.read_text().splitlines()):
            action = json.loads(line) if line.strip() else {}
            if "metaData" in action:
                return str(action["metaData"]["schemaString"])
    if checkpoint_version >= 0:
        for part in sorted(log.glob(f"{checkpoint_version:020d}.checkpoint*.parquet")):
            meta = pq.read_table(part, columns=["metaData"]).column("metaData").to_pylist()
            for m in meta:
                if m and m.get("schemaString"):
                    return str(m["schemaString"])
    return None


def source_columns(source: FileSource | DeltaSource, repo_path: Path, view: str) -> ColumnTypes:
    location = source.resolve(repo_path)
    if "://" not in location and not Path(location).exists():
        raise SourceNotFoundError(location, view)
    if isinstance(source, DeltaSource):
        return delta_schema(location)
    return file_schema(location, source.file_format)


def with_key_types(view: FeatureView, key_types: Mapping[str, DType]) -> FeatureView:
    """`view` with a schema Field for every join key its schema does not pin, of the type
    `key_types` gives (the source's, from the schema rule).

    Plan records this completed view, so the applied definition carries every key's
    type: online lookups check join keys against it (FeatureView.key_fields), the same
    data always gives the same definition and fingerprint, and a source whose key column
    changes type shows as a data change (`schema[<key>].dtype`) at the next plan. The
    fields come first, in join-key order: writing them there by hand records the same
    definition.
    """
    pinned = {f.name for f in view.key_fields}
    added = tuple(Field(k, key_types[k]) for k in view.join_keys if k not in pinned)
    if not added:
        return view
    return view.model_copy(update={"schema_": added + view.schema_})


def check_view_source(view: FeatureView, repo_path: Path, file: str | None) -> FeatureView:
    """Apply the schema rule to the view's source; returns the view to record (with its
    join keys' types, with_key_types) or raises DefinitionError naming the file, the
    view, the source and every column at fault."""

    def error(detail: str, field: str) -> DefinitionError:
        return DefinitionError(
            detail, object_kind="feature view", object_name=view.name, field=field, file=file
        )

    try:
        columns = source_columns(view.source, repo_path, view.name)
    except SourceNotFoundError as exc:
        raise error(f"source path {exc.path} does not exist", "source.path") from None
    except (OSError, pa.ArrowException) as exc:
        raise error(f"cannot read the source's schema: {exc}", "source") from None
    check = check_schema(view, columns)
    if check.problems:
        problems = "; ".join(str(p) for p in check.problems)
        raise error(f"source {view.source.label}: {problems}", "schema")
    return with_key_types(view, check.key_types)
