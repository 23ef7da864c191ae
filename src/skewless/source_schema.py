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

Every line of a local CSV source is read too (one streaming pass, no values converted):
a line with more or fewer fields than its file's header is malformed, the rule Spark
applies at read time (batch/sources.py), so `plan` refuses the files a run would refuse,
with the same counts. Quoted fields (commas, line breaks and doubled quotes inside), a
UTF-8 BOM, CRLF line endings and blank lines are read as pandas writes and reads them.

A file that is empty (0 bytes) or not a readable file of its format is an
UnreadableSourceError naming it. Files are named as the definition names the source:
its path as written (relative to the repo, unless written absolute), then the file's
path inside a folder (`data/stats/part-0.parquet`): the same name wherever the repo is,
and the name the user can find in their definitions.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.dataset as pads
import pyarrow.parquet as pq

from skewless.definitions import DeltaSource, FeatureView, Field, FileSource
from skewless.errors import (
    DefinitionError,
    ExpressionTypeError,
    RejectedRowsError,
    SourceNotFoundError,
    UnreadableSourceError,
    clip,
)
from skewless.rules.schema import (
    DATE,
    NANOS,
    TEXT,
    ColumnType,
    Unsupported,
    check_schema,
    combine_files,
    derived_type,
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


# --- the files of a source, and their names in errors ----------------------------------


def source_files(location: str) -> list[str]:
    """The files Spark and pyarrow read from a local source: the file itself, or every
    file below the folder except those whose name, or the name of a folder on the way,
    starts with `.` or `_` (`_SUCCESS`, `.part-0.crc`), in path order."""
    root = Path(location)
    if root.is_file():
        return [location]
    return [
        str(path)
        for path in sorted(root.rglob("*"))
        if path.is_file()
        and not any(p.startswith((".", "_")) for p in path.relative_to(root).parts)
    ]


def file_in_source(written: str, location: str, file: str) -> str | None:
    """A file of a source as errors name it: the source's path as the definition writes
    it, then, in a folder, the file's path inside it; None for a file outside the source.
    `location` is the source's resolved location (SourceBase.resolve), `file` a path or
    a URI (Spark's `file:` URIs included)."""
    if file.startswith("file:"):
        file = unquote(urlparse(file).path)
    base = location.rstrip("/")
    if file == base:
        return written
    if file.startswith(base + "/"):
        return f"{written.rstrip('/')}/{file[len(base) + 1 :]}"
    return None


def shown_file(written: str, location: str, file: str) -> str:
    """file_in_source(), or the file as given when it is outside the source."""
    return file_in_source(written, location, file) or file


EMPTY = "is empty (0 bytes)"
EMPTY_CSV = f"{EMPTY}: a CSV file starts with its header line"
_CHUNK = 1 << 20


def csv_file_problem(file: str) -> str | None:
    """What makes a local CSV file unreadable before any parser sees it, or None: it is
    empty, or a quoted value in it is never closed. CSV parsers (pyarrow's and Spark's)
    read an unclosed quote as one value holding the rest of the file, so the lines after
    it would be lost without a malformed line to show for it. An odd number of quote
    characters in the file is that case (or a quote inside an unquoted value, which RFC
    4180 does not allow either). Plan and every read apply it to each file."""
    quotes = 0
    size = 0
    with open(file, "rb") as f:
        while chunk := f.read(_CHUNK):
            size += len(chunk)
            quotes += chunk.count(b'"')
    if size == 0:
        return EMPTY_CSV
    if quotes % 2 == 0:
        return None
    opened, inside = 0, False
    with open(file, "rb") as f:
        for number, line in enumerate(f, 1):
            if line.count(b'"') % 2:
                inside = not inside
                opened = number if inside else opened
    return (
        f"has a quoted value opened on line {opened} that is never closed (an odd number "
        "of quote characters; a quote inside a value must be in a quoted value, doubled): "
        "the lines after it would be read as that one value"
    )


def _unreadable(shown: str, what: str, exc: Exception) -> UnreadableSourceError:
    reason = clip(str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__)
    return UnreadableSourceError(shown, f"is not a readable {what} file: {reason}")


@dataclass(frozen=True)
class SourceLayout:
    """What plan reads of a source: its columns and, for CSV, its malformed lines."""

    columns: ColumnTypes  # a CSV source's: the first file's header, every column text
    malformed: dict[str, int] = field(default_factory=dict)  # file -> lines of another width
    example: str | None = None  # the first such line of the first of those files


# --- Parquet ---------------------------------------------------------------------------


@dataclass(frozen=True)
class ParquetLayout:
    """What the footers of a Parquet file, or of every file of a folder, say."""

    columns: ColumnTypes  # combined over the files (rules.schema.combine_files)
    arrow_types: dict[str, pa.DataType]  # each column's in the first file that holds it
    has_nanos: bool  # some file stores a nanosecond timestamp, in any column at any depth


def parquet_layout(
    path: str, written: str | None = None, files: Sequence[str] | None = None
) -> ParquetLayout:
    """The layout of the local Parquet file or folder at `path` (footers only, no data),
    or of the given `files` of it (a training set's pinned files); `written` is the
    source's path as its definition gives it, for the names of files in errors
    (shown_file). A file that is empty or has no readable footer is an
    UnreadableSourceError naming it.

    INT96 timestamps (old Spark and Impala files) are taken as what Spark reads them as,
    a timestamp, not as the nanoseconds pyarrow makes of them by default.
    """
    remote = "://" in path
    if files is None:
        files = sorted(pads.dataset(path, format="parquet").files) if remote else source_files(path)
    schemas: list[tuple[str, pa.Schema]] = []
    for file in files:
        shown = shown_file(written or path, path, file)
        if not remote and Path(file).stat().st_size == 0:
            raise UnreadableSourceError(shown, EMPTY)
        try:
            with pq.ParquetFile(file, coerce_int96_timestamp_unit="us") as f:
                schemas.append((shown, f.schema_arrow))
        except (OSError, pa.ArrowException) as exc:
            raise _unreadable(shown, "Parquet", exc) from None
    arrow_types: dict[str, pa.DataType] = {}
    for _, schema in schemas:
        for column in schema:
            arrow_types.setdefault(column.name, column.type)
    columns = combine_files(
        [(name, {f.name: arrow_column_type(f.type) for f in schema}) for name, schema in schemas]
    )
    return ParquetLayout(
        columns=columns,
        arrow_types=arrow_types,
        has_nanos=any(_holds_nanos(f.type) for _, schema in schemas for f in schema),
    )


# --- CSV -------------------------------------------------------------------------------


# How pyarrow reads CSV as Spark is told to (batch/sources.py): a quoted value may hold
# line breaks, a quote inside one is doubled, blank lines are skipped.
_CSV_PARSE = {"newlines_in_values": True, "double_quote": True, "escape_char": False}


def csv_layout(path: str, written: str | None = None) -> SourceLayout:
    """The header of the local CSV file or folder at `path` (`written`: as for
    parquet_layout) and its malformed lines, in one streaming pass per file that splits
    lines into fields and converts no value. A file that is empty, does not parse as CSV
    or has another header than the first file (or a column twice in it: Spark renames
    such columns) is an UnreadableSourceError naming it."""
    columns: ColumnTypes = {}
    first = ""  # the file the columns come from
    malformed: dict[str, int] = {}
    firsts: dict[str, str] = {}
    for file in source_files(path):
        shown = shown_file(written or path, path, file)
        problem = csv_file_problem(file)
        if problem is not None:
            raise UnreadableSourceError(shown, problem)
        try:
            with pacsv.open_csv(file, parse_options=_skipping(_BadLines())) as header:
                names = header.schema.names
            # One column, as bytes: the pass splits every line and converts nothing.
            one = pacsv.ConvertOptions(
                column_types={names[0]: pa.binary()}, include_columns=names[:1]
            )
            bad = _BadLines()
            with pacsv.open_csv(file, parse_options=_skipping(bad), convert_options=one) as rows:
                for _ in rows:
                    pass
        except (OSError, pa.ArrowException) as exc:
            raise _unreadable(shown, "CSV", exc) from None
        folded = [n.casefold() for n in names]
        twice = next((n for i, n in enumerate(names) if folded.index(n.casefold()) != i), None)
        if twice is not None:
            raise UnreadableSourceError(shown, f"names the column {clip(twice)!r} twice")
        if not columns:
            columns, first = dict.fromkeys(names, TEXT), shown
        elif folded != [n.casefold() for n in columns]:
            # Spark's check at read time (batch/sources.py), which ignores case as well
            detail = (
                f"has the header {', '.join(names)} but {first} has {', '.join(columns)} "
                "(every file of a CSV folder needs the same header)"
            )
            raise UnreadableSourceError(shown, clip(detail, 500))
        if bad.count:
            malformed[shown] = bad.count
            firsts[shown] = bad.first or ""
    example = firsts[min(firsts)] if firsts else None  # as read time picks it
    return SourceLayout(columns, malformed, example)


class _BadLines:
    """The lines pyarrow found of another width than the header: how many, the first."""

    def __init__(self) -> None:
        self.count = 0
        self.first: str | None = None

    def __call__(self, row: Any) -> str:
        self.count += 1
        if self.first is None:
            self.first = str(row.text)
        return "skip"


def _skipping(bad: _BadLines) -> pacsv.ParseOptions:
    return pacsv.ParseOptions(**_CSV_PARSE, invalid_row_handler=bad)


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
    """The columns of a Parquet or CSV file or folder: local files by their footers or
    headers (every CSV column is text until it is parsed into its declared type at read
    time), a URI by the header pyarrow finds there."""
    if "://" in path and file_format == "csv":
        return dict.fromkeys(pads.dataset(path, format="csv").schema.names, TEXT)
    if file_format == "csv":
        return csv_layout(path).columns
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


def source_layout(source: FileSource | DeltaSource, repo_path: Path, view: str) -> SourceLayout:
    """The source's columns and, for a local CSV source, its malformed lines."""
    location = source.resolve(repo_path)
    remote = "://" in location
    if not remote and not Path(location).exists():
        raise SourceNotFoundError(source.path, view)
    if isinstance(source, DeltaSource):
        return SourceLayout(delta_schema(location))
    if source.file_format == "parquet":
        return SourceLayout(parquet_layout(location, source.path).columns)
    if remote:  # the header only: Spark counts the malformed lines when it reads
        return SourceLayout(file_schema(location, "csv"))
    return csv_layout(location, source.path)


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
    """Apply the schema rule to the view's source and type-check its derived features'
    expressions over the types it reads; returns the view to record (with its join keys'
    types, with_key_types) or raises DefinitionError naming the file, the view, the
    source and every column at fault, or the derived feature and the sub-expression."""

    def error(detail: str, field: str) -> DefinitionError:
        return DefinitionError(
            detail, object_kind="feature view", object_name=view.name, field=field, file=file
        )

    try:
        layout = source_layout(view.source, repo_path, view.name)
    except SourceNotFoundError as exc:
        raise error(f"source path {exc.path} does not exist", "source.path") from None
    except UnreadableSourceError as exc:
        raise error(f"source file {exc.file} {exc.detail}", "source") from None
    except (OSError, pa.ArrowException) as exc:
        raise error(f"cannot read the source's schema: {clip(str(exc))}", "source") from None
    check = check_schema(view, layout.columns)
    if check.problems:
        problems = "; ".join(str(p) for p in check.problems)
        raise error(f"source {view.source.label}: {problems}", "schema")
    for derived in view.derived:
        try:
            derived_type(derived, check)
        except ExpressionTypeError as exc:
            raise error(f"{exc.expression}: {exc.detail}", f"schema.{derived.name}") from None
    if layout.malformed:
        rejected = RejectedRowsError(
            view.source.label, {}, malformed=layout.malformed, example=layout.example
        )
        raise error(rejected.message, "source")
    return with_key_types(view, check.key_types)
