"""Read a feature view's source with Spark into a normalized frame.

The frame has the join keys, `__ts` (event time), `__cts` (created time, null when the
source has none) and the features, each read as the schema rule says (rules/schema.py,
the rule plan applies too): the source's Spark schema is translated into the rule's
terms, a column the view cannot use raises IncompatibleSchemaError naming the source and
the view, and CSV values that do not parse raise RejectedRowsError with the count per
column. Nothing is silently coerced.

CSV is read as pandas writes it (RFC 4180: quoted values may hold commas, line breaks and
doubled quotes; a UTF-8 BOM, CRLF line endings and blank lines are read as such), each
file whole by one task (a quoted line break forbids splitting a file), with every column
a string and a column for malformed lines: Spark puts there each line with more or
fewer fields than the header (its corrupt-record column, PERMISSIVE mode), where a plain
read would fill the missing fields with nulls or drop the extra ones. read_source counts
them per file in the pass that counts the values that do not parse, and refuses the
source (RejectedRowsError) when there is any: the rule plan applies with pyarrow
(source_schema.csv_layout), with the same counts.

An empty (0-byte) or damaged file is an UnreadableSourceError naming it: local Parquet
footers and CSV sizes are checked before Spark reads (source_schema), and a file Spark
fails to read later (FAILED_READ_FILE: a damaged page, a file replaced meanwhile) is
named by `naming_unreadable_files` around the jobs that read sources.

Nanosecond Parquet timestamps (what pandas' `to_parquet()` writes by default): Spark
refuses to read a file that holds one (PARQUET_TYPE_ILLEGAL), and its only remedy,
`spark.sql.legacy.parquet.nanosAsLong`, is a session setting that no read option
overrides and that would turn them into bigints in every read of the process. Spark
does read such a column as a bigint when it is handed a schema that says so. So a local
Parquet source whose footers (read with pyarrow) hold a nanosecond timestamp anywhere is
read with a schema skewless gives: the view's columns only, each nanosecond column a
bigint marked NANOS_METADATA in its field metadata. The translation turns a marked
bigint back into a nanosecond timestamp, so it can never pass for a bigint feature, and
read_source truncates it to the microsecond at or before it (`from_nanos`). A source
without nanoseconds is read as Spark reads it.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from pyspark import SparkContext
from pyspark.errors import AnalysisException
from pyspark.sql import Column, DataFrame, DataFrameReader, SparkSession
from pyspark.sql import functions as F  # noqa: N812
from pyspark.sql.pandas.types import from_arrow_type
from pyspark.sql.types import LongType, StringType, StructField, StructType

from skewless.batch.expressions import to_column
from skewless.definitions import DeltaSource, FeatureView, FileSource
from skewless.errors import (
    ExpressionTypeError,
    IncompatibleSchemaError,
    RejectedRowsError,
    SourceNotFoundError,
    UnreadableSourceError,
    clip,
)
from skewless.expr.nodes import columns as expression_columns
from skewless.offline.manifest import InputPin
from skewless.rules.schema import (
    DATE,
    NANOS,
    TEXT,
    ColumnRead,
    ColumnType,
    Role,
    SchemaCheck,
    Unsupported,
    check_schema,
    derived_type,
)
from skewless.source_schema import (
    ParquetLayout,
    csv_file_problem,
    file_in_source,
    parquet_layout,
    shown_file,
    source_files,
)
from skewless.types import String, from_spark_simple_string, to_spark_ddl

TS = "__ts"
CTS = "__cts"
# Field metadata of a bigint column that holds a Parquet nanosecond timestamp.
NANOS_METADATA = "skewless.nanosecond_timestamp"
# Field metadata of the column a CSV source's malformed lines land in (Spark's corrupt
# record column): the line as the file holds it, null for a line of the header's width.
MALFORMED_METADATA = "skewless.malformed_line"

CSV_OPTIONS = {
    "header": "true",
    # A quoted value may hold line breaks (pandas writes them so); each file is then
    # read whole by one task. Spark's line-by-line read would also miss the malformed
    # lines whenever a query reads some of the columns only.
    "multiLine": "true",
    # A quote inside a quoted value is doubled (RFC 4180, pandas, Excel); with Spark's
    # default escape, a backslash, `"say ""hi"""` would be read with its quotes.
    "escape": '"',
    # Every file's header must name the columns of the first one, in its order (Spark
    # fails the read naming the file, FAILED_READ_FILE); by default Spark would read
    # another file's columns by position under the first file's names.
    "enforceSchema": "false",
}

_ALIAS = {Role.EVENT_TIME: TS, Role.CREATED_TIME: CTS}


def _label(view: FeatureView) -> str:
    return f"{view.source.label} (feature view '{view.name}')"


def read_raw(
    spark: SparkSession, view: FeatureView, repo_path: Path, pin: InputPin | None = None
) -> DataFrame:
    """The source as Spark reads it (a CSV source: every column a string, plus the
    malformed-line column). With a `pin` (batch/pins.py), exactly what it pins: a Delta
    table at its version, a file source's listed files and no other."""
    src = view.source
    # A pin is read where it was pinned (its absolute location), as reproduce checks it.
    location = src.resolve(repo_path) if pin is None else pin.location
    remote = "://" in location
    if not remote and not Path(location).exists():
        raise SourceNotFoundError(src.path, view.name)
    files = None if pin is None or pin.files is None else [f.location for f in pin.files]
    with naming_unreadable_files([view], repo_path):
        if isinstance(src, DeltaSource):
            if pin is not None and pin.delta_version is not None:
                version = pin.delta_version
            else:
                version = latest_delta_version(spark, location)
            # One snapshot for every job of the frame: a Delta frame otherwise reads the
            # table's newest version each time it runs, so two jobs could see two versions.
            return spark.read.format("delta").option("versionAsOf", version).load(location)
        reader = spark.read
        if files is not None and _is_folder(location, files):
            reader = reader.option("basePath", location)  # keeps key=value folder columns
        if src.file_format == "csv":
            for file in [] if remote else (files or source_files(location)):
                problem = csv_file_problem(file)
                if problem is not None:
                    shown = shown_file(src.path, location, file)
                    raise UnreadableSourceError(shown, problem, view=view.name)
            return _read_csv(reader, files or [location])
        if remote:
            return _read_remote_parquet(reader, view, files or [location])
        try:
            layout = parquet_layout(location, src.path, files)
        except UnreadableSourceError as exc:
            raise exc.of_view(view.name) from None
        if not layout.has_nanos:
            return reader.parquet(*(files or [location]))
        return reader.schema(_nanos_schema(view, layout)).parquet(*(files or [location]))


def _is_folder(location: str, files: list[str]) -> bool:
    """Whether a source's pinned `files` are in the folder `location` (not the file)."""
    if "://" not in location:
        return Path(location).is_dir()
    tail = location.split("://", 1)[1].rstrip("/")
    return not (len(files) == 1 and files[0].endswith(tail))


def latest_delta_version(spark: SparkSession, location: str) -> int:
    from delta.tables import DeltaTable  # noqa: PLC0415 - needs the JVM

    return int(DeltaTable.forPath(spark, location).history(1).collect()[0]["version"])


def _read_csv(reader: DataFrameReader, paths: list[str]) -> DataFrame:
    """Every column of the header a string, and the malformed-line column (a name the
    header does not hold)."""
    header = reader.options(**CSV_OPTIONS).csv(paths).columns
    malformed = "__malformed_line"
    while malformed in header:
        malformed += "_"
    schema = StructType(
        [StructField(c, StringType()) for c in header]
        + [StructField(malformed, StringType(), True, {MALFORMED_METADATA: True})]
    )
    return (
        reader.schema(schema)
        .options(**CSV_OPTIONS, mode="PERMISSIVE", columnNameOfCorruptRecord=malformed)
        .csv(paths)
    )


def _nanos_schema(view: FeatureView, layout: ParquetLayout) -> StructType:
    """The schema a Parquet source with nanosecond timestamps is read with: the columns
    the view uses, nanosecond ones as marked bigints. Checked by the rule first, as the
    footers say, so that a column no Spark type fits is refused, never left out."""
    check = check_schema(view, layout.columns)
    if check.problems:
        raise IncompatibleSchemaError(_label(view), [str(p) for p in check.problems])
    fields: dict[str, StructField] = {}
    for read in check.reads:
        if read.source == NANOS:
            field = StructField(read.column, LongType(), True, {NANOS_METADATA: True})
        else:
            field = StructField(read.column, from_arrow_type(layout.arrow_types[read.column]))
        fields.setdefault(read.column, field)
    return StructType(list(fields.values()))


def _read_remote_parquet(reader: DataFrameReader, view: FeatureView, paths: list[str]) -> DataFrame:
    """Parquet at a URI: its footers are not read here, so nanosecond timestamps there
    cannot be read; Spark's refusal becomes an error that says what to do."""
    try:
        return reader.parquet(*paths)
    except AnalysisException as exc:
        if exc.getCondition() != "PARQUET_TYPE_ILLEGAL":
            raise
        problem = (
            f"the files hold a type Spark cannot read ({exc.getMessage().splitlines()[0]}); "
            "nanosecond timestamps are read from local paths only: elsewhere write "
            "microseconds (pandas: to_parquet(..., coerce_timestamps='us', "
            "allow_truncated_timestamps=True))"
        )
        raise IncompatibleSchemaError(_label(view), [problem]) from None


def spark_column_type(field: StructField, *, csv: bool) -> ColumnType:
    """What a column of a source as Spark read it holds, in the schema rule's terms."""
    if csv:
        return TEXT
    name = field.dataType.simpleString()
    if field.metadata.get(NANOS_METADATA) and name == "bigint":
        return NANOS
    if name == "date":
        return DATE
    dtype = from_spark_simple_string(name)
    return Unsupported(name) if dtype is None else dtype


def event_time_after(raw: DataFrame, view: FeatureView, us: int) -> Column | None:
    """A condition on the source's own event-time column, as `raw` holds it, that keeps
    the rows with an event time after `us` (UTC microseconds), in the form Parquet's and
    Delta's statistics are compared with; None when the column's type has no such form
    (a date, CSV text)."""
    name = view.source.timestamp_field
    if name not in raw.columns:
        return None
    field = raw.schema[name]
    column = F.col(f"`{name}`")
    kind = field.dataType.simpleString()
    if field.metadata.get(NANOS_METADATA) and kind == "bigint":
        return column > F.lit(us * 1000 + 999)  # after the floor: nanoseconds past it
    if kind == "timestamp":
        return column > F.expr(f"timestamp_micros({int(us)}L)")
    return None


def from_nanos(column: str) -> Column:
    """Spark's form of rules.schema.nanos_to_micros: a bigint of nanoseconds since the
    epoch as the timestamp of the microsecond at or before it (a floor: `div` alone
    would round times before 1970 up)."""
    c = f"`{column}`"
    return F.expr(f"timestamp_micros({c} div 1000 - if({c} % 1000 < 0, 1, 0))")


def _read(read: ColumnRead) -> Column:
    if read.source == NANOS:
        return from_nanos(read.column)
    return F.col(f"`{read.column}`").cast(to_spark_ddl(read.dtype))


def read_source(
    spark: SparkSession,
    view: FeatureView,
    repo_path: Path,
    *,
    raw: DataFrame | None = None,
    extra: Sequence[str] = (),
    pin: InputPin | None = None,
) -> DataFrame:
    """The view's rows: keys, __ts, __cts and every feature (derived ones computed from
    their inputs), plus the `extra` columns of `raw` (the source as read, by default; as
    `pin` pins it, if given) as they are."""
    src = view.source
    raw = read_raw(spark, view, repo_path, pin) if raw is None else raw
    csv = isinstance(src, FileSource) and src.file_format == "csv"
    columns = {
        f.name: spark_column_type(f, csv=csv)
        for f in raw.schema.fields
        if not f.metadata.get(MALFORMED_METADATA)
    }
    check = check_schema(view, columns)
    if check.problems:
        raise IncompatibleSchemaError(_label(view), [str(p) for p in check.problems])

    frame = _select(raw, view, check, extra)
    if not src.created_timestamp_column:
        frame = frame.withColumn(CTS, F.lit(None).cast("timestamp"))
    if csv:
        parsed = [r for r in check.reads if r.source == TEXT and r.dtype != String]
        with naming_unreadable_files([view], repo_path):
            _check_csv(raw, parsed, view, src.resolve(repo_path))
    return frame


# Derived features' inputs are selected under these names first (no feature name starts
# with "__"), so an input never clashes with an output column of the same name.
_INPUT = "__input_{}"


def _select(
    raw: DataFrame, view: FeatureView, check: SchemaCheck, extra: Sequence[str]
) -> DataFrame:
    """The frame's columns: __ts, __cts (if the source has one), the keys, the features
    in the view's order (derived ones computed from their inputs, each cast to its
    declared type where that widens the expression's: int32 -> int64), then `extra`.

    An expression the source no longer fits (a column's type changed since plan) is an
    IncompatibleSchemaError naming the feature and the sub-expression."""
    outputs = [r for r in check.reads if r.role is not Role.INPUT]
    selected = [_read(r).alias(_ALIAS.get(r.role, r.column)) for r in outputs]
    if not view.derived:
        return raw.select(*selected, *[F.col(c) for c in extra])
    by_column: dict[str, ColumnRead] = {}
    for r in check.reads:
        by_column.setdefault(r.column, r)
    needed: dict[str, None] = {}
    for field in view.derived:
        assert field.expr is not None
        needed.update(dict.fromkeys(expression_columns(field.expr)))
    names = {column: _INPUT.format(i) for i, column in enumerate(needed)}
    types = check.column_types
    features: list[Column] = []
    problems: list[str] = []
    for field in view.stored:
        if field.expr is None:
            features.append(F.col(f"`{field.name}`"))
            continue
        used = expression_columns(field.expr)
        try:
            result = derived_type(field, check)
            column = to_column(
                field.expr, {c: F.col(names[c]) for c in used}, {c: types[c] for c in used}
            )
        except ExpressionTypeError as exc:
            problems.append(f"derived feature '{field.name}': {exc}")
            continue
        if result != field.dtype:
            column = column.cast(to_spark_ddl(field.dtype))
        features.append(column.alias(field.name))
    if problems:
        raise IncompatibleSchemaError(_label(view), problems)
    inputs = [_read(by_column[column]).alias(name) for column, name in names.items()]
    staged = raw.select(*selected, *inputs, *[F.col(c) for c in extra])
    fixed = [_ALIAS.get(r.role, r.column) for r in outputs if r.role is not Role.FEATURE]
    return staged.select(*[F.col(c) for c in fixed], *features, *[F.col(c) for c in extra])


def _check_csv(raw: DataFrame, reads: list[ColumnRead], view: FeatureView, location: str) -> None:
    """One pass over a CSV source, grouped by file: its malformed lines (their number and
    the first) and, on the other lines, the values that are present but do not parse as
    their declared type. Raises RejectedRowsError when there is any."""
    marked = [f.name for f in raw.schema.fields if f.metadata.get(MALFORMED_METADATA)]
    line = F.col(f"`{marked[0]}`") if marked else F.lit(None).cast("string")
    # The event time is always among `reads` (a CSV column is text): Spark refuses a
    # query of a CSV file that reads its malformed-line column alone.
    failed = [F.col(f"`{r.column}`").isNotNull() & _try_cast(r).isNull() for r in reads]
    rows = raw.select(
        F.col("_metadata.file_path").alias("file"),
        F.monotonically_increasing_id().alias("at"),  # the file's order within its task
        line.alias("line"),
        *[f.alias(f"failed{i}") for i, f in enumerate(failed)],
    )
    well_formed = F.col("line").isNull()
    counts = [
        F.count("line").alias("malformed"),
        *[
            F.count_if(F.col(f"failed{i}") & well_formed).alias(f"failed{i}")
            for i in range(len(reads))
        ],
    ]
    per_file = rows.groupBy("file").agg(
        *counts, F.min_by("line", F.when(~well_formed, F.col("at"))).alias("first")
    )
    names = ["malformed", *[f"failed{i}" for i in range(len(reads))]]
    any_bad = F.greatest(*[F.col(n) for n in names]) if len(names) > 1 else F.col(names[0])
    found = per_file.where(any_bad > 0).collect()
    if not found:
        return
    src = view.source
    malformed: dict[str, int] = {}
    firsts: dict[str, str] = {}
    for row in found:
        shown = shown_file(src.path, location, str(row["file"]))
        if row["malformed"]:
            malformed[shown] = int(row["malformed"])
            firsts[shown] = str(row["first"])
    bad = {r.column: sum(int(row[f"failed{i}"]) for row in found) for i, r in enumerate(reads)}
    example = firsts[min(firsts)] if firsts else None
    raise RejectedRowsError(
        _label(view), {c: n for c, n in bad.items() if n}, malformed=malformed, example=example
    )


def _try_cast(read: ColumnRead) -> Column:
    return F.expr(f"try_cast(`{read.column}` AS {to_spark_ddl(read.dtype)})")


# --- files Spark cannot read ------------------------------------------------------------


@contextmanager
def naming_unreadable_files(views: Sequence[FeatureView], repo_path: Path) -> Iterator[None]:
    """Spark's failure to read a file of one of `views`' sources (FAILED_READ_FILE: a
    damaged Parquet page, a footer that went missing after the plan) as one
    UnreadableSourceError naming the file and the view, not a Java stack trace."""
    try:
        yield
    except Exception as exc:
        try:
            failed = _failed_read(exc)
        except Exception:  # the JVM cannot answer: the error as raised says more
            failed = None
        if failed is None:
            raise
        uri, reason = failed
        detail = f"cannot be read: {clip(reason)}"
        for view in views:
            shown = file_in_source(view.source.path, view.source.resolve(repo_path), uri)
            if shown is not None:
                raise UnreadableSourceError(shown, detail, view=view.name) from None
        raise UnreadableSourceError(uri, detail) from None


def _failed_read(exc: Exception) -> tuple[str, str] | None:
    """(the file, why) of a Spark error that failed reading a file, why being the first
    line of what its reader raised (the cause under Spark's FAILED_READ_FILE error); None
    for any other error."""
    # The Java exception behind py4j's Py4JJavaError, or behind pyspark's converted ones.
    throwable: Any = getattr(exc, "java_exception", None) or getattr(exc, "_origin", None)
    jvm = SparkContext._jvm
    if throwable is None or jvm is None:
        return None
    spark_throwable = jvm.java.lang.Class.forName("org.apache.spark.SparkThrowable")
    for _ in range(32):  # a cause chain is short; a cycle must not hang the driver
        if spark_throwable.isInstance(throwable):
            condition = str(jvm.PythonErrorUtils.getCondition(throwable) or "")
            if condition.startswith("FAILED_READ_FILE"):
                path = str(jvm.PythonErrorUtils.getMessageParameters(throwable).get("path"))
                why = throwable.getCause() or throwable
                return path, " ".join(str(why.getMessage() or why.toString()).split())
        throwable = throwable.getCause()
        if throwable is None:
            return None
    return None
