"""Plan-time inspection of source schemas, without starting Spark.

Parquet and CSV schemas come from file footers and headers (pyarrow); a Delta table's
schema comes from its transaction log (the newest `metaData` action, in a JSON commit or
in a checkpoint). `check_view_source` then compares them with the view's declaration, so
a bad definition fails at `plan` with the file, view, column and types named. The same
rules run again at read time (batch/sources.py), because data can change after a plan.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.dataset as pads
import pyarrow.parquet as pq

from skewless.definitions import DeltaSource, FeatureView, FileSource
from skewless.errors import DefinitionError, SourceNotFoundError
from skewless.types import ArrayType, DType, ScalarType, accepts

# A column whose type skewless cannot carry maps to None.
ColumnTypes = dict[str, DType | None]

_ARROW_SCALARS: list[tuple[Any, str]] = [
    (pa.types.is_int32, "int32"),
    (pa.types.is_int64, "int64"),
    (pa.types.is_float32, "float32"),
    (pa.types.is_float64, "float64"),
    (lambda t: pa.types.is_string(t) or pa.types.is_large_string(t), "string"),
    (pa.types.is_boolean, "bool"),
    (pa.types.is_timestamp, "unix_timestamp"),
    (lambda t: pa.types.is_binary(t) or pa.types.is_large_binary(t), "bytes"),
]

_DELTA_SCALARS = {
    "integer": "int32",
    "long": "int64",
    "float": "float32",
    "double": "float64",
    "string": "string",
    "boolean": "bool",
    "timestamp": "unix_timestamp",
    "timestamp_ntz": "unix_timestamp",
    "binary": "bytes",
}


def _arrow_scalar(t: pa.DataType) -> ScalarType | None:
    for test, name in _ARROW_SCALARS:
        if test(t):
            return ScalarType(name)  # type: ignore[arg-type]
    return None


def arrow_to_dtype(t: pa.DataType) -> DType | None:
    if pa.types.is_list(t) or pa.types.is_large_list(t):
        inner = _arrow_scalar(t.value_type)
        return ArrayType(inner) if inner else None
    return _arrow_scalar(t)


def _delta_to_dtype(t: Any) -> DType | None:
    if isinstance(t, str):
        name = _DELTA_SCALARS.get(t)
        return ScalarType(name) if name else None  # type: ignore[arg-type]
    if isinstance(t, dict) and t.get("type") == "array":
        inner = _delta_to_dtype(t.get("elementType"))
        return ArrayType(inner) if isinstance(inner, ScalarType) else None
    return None


def file_schema(path: str, file_format: str) -> ColumnTypes:
    if file_format == "csv":
        # Every CSV column is text until it is parsed into its declared type at read time.
        ds = pads.dataset(path, format="csv")
        return dict.fromkeys(ds.schema.names, ScalarType("string"))
    p = Path(path)
    schema = pq.read_schema(p) if p.is_file() else pads.dataset(path, format="parquet").schema
    return {f.name: arrow_to_dtype(f.type) for f in schema}


def delta_schema(path: str) -> ColumnTypes:
    log = Path(path) / "_delta_log"
    if not log.is_dir():
        raise FileNotFoundError(f"{path} has no _delta_log: not a Delta table")
    schema_string = _latest_schema_string(log)
    if schema_string is None:
        raise FileNotFoundError(f"{path}: the Delta log holds no table metadata")
    fields = json.loads(schema_string)["fields"]
    return {f["name"]: _delta_to_dtype(f["type"]) for f in fields}


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


def schema_problems(view: FeatureView, columns: ColumnTypes) -> list[str]:
    """Every mismatch between the view's declaration and the source's columns."""
    problems: list[str] = []
    src = view.source
    is_csv = isinstance(src, FileSource) and src.file_format == "csv"

    def need(column: str, role: str, declared: DType | None) -> None:
        if column not in columns:
            problems.append(f"{role} '{column}' is missing from the source")
            return
        actual = columns[column]
        if declared is None or is_csv:
            return
        if actual is None or not accepts(declared, actual):
            shown = actual.name if actual else "an unsupported type"
            problems.append(
                f"{role} '{column}' is declared {declared.name} but the source has {shown}"
            )

    ts = ScalarType("unix_timestamp")
    need(src.timestamp_field, "timestamp field", ts)
    if src.created_timestamp_column:
        need(src.created_timestamp_column, "created timestamp column", ts)
    pinned = {f.name: f.dtype for f in view.key_fields}
    for key in view.join_keys:
        need(key, "join key", pinned.get(key))
        if not is_csv and isinstance(columns.get(key), ArrayType):
            problems.append(f"join key '{key}' is an array; keys must be scalars")
    for feat in view.features:
        need(feat.name, "feature", feat.dtype)
    return problems


def check_view_source(view: FeatureView, repo_path: Path, file: str | None) -> None:
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
    problems = schema_problems(view, columns)
    if problems:
        raise error("; ".join(problems), "schema")
