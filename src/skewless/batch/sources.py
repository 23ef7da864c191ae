"""Read a feature view's source with Spark into a normalized frame.

The frame has the join keys, `__ts` (event time), `__cts` (created time, null when the
source has none) and the features, each read as the schema rule says (rules/schema.py,
the rule plan applies too): the source's Spark schema is translated into the rule's
terms, a column the view cannot use raises IncompatibleSchemaError naming the source and
the view, and CSV values that do not parse raise RejectedRowsError with the count per
column. Nothing is silently coerced.

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

from collections.abc import Sequence
from pathlib import Path

from pyspark.errors import AnalysisException
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F  # noqa: N812
from pyspark.sql.pandas.types import from_arrow_type
from pyspark.sql.types import LongType, StructField, StructType

from skewless.definitions import DeltaSource, FeatureView, FileSource
from skewless.errors import IncompatibleSchemaError, RejectedRowsError, SourceNotFoundError
from skewless.rules.schema import (
    DATE,
    NANOS,
    TEXT,
    ColumnRead,
    ColumnType,
    Role,
    Unsupported,
    check_schema,
)
from skewless.source_schema import ParquetLayout, parquet_layout
from skewless.types import String, from_spark_simple_string, to_spark_ddl

TS = "__ts"
CTS = "__cts"
# Field metadata of a bigint column that holds a Parquet nanosecond timestamp.
NANOS_METADATA = "skewless.nanosecond_timestamp"

_ALIAS = {Role.EVENT_TIME: TS, Role.CREATED_TIME: CTS}


def _label(view: FeatureView) -> str:
    return f"{view.source.label} (feature view '{view.name}')"


def read_raw(spark: SparkSession, view: FeatureView, repo_path: Path) -> DataFrame:
    src = view.source
    location = src.resolve(repo_path)
    remote = "://" in location
    if not remote and not Path(location).exists():
        raise SourceNotFoundError(location, view.name)
    if isinstance(src, DeltaSource):
        # One snapshot for every job of the frame: a Delta frame otherwise reads the
        # table's newest version each time it runs, so two jobs could see two versions.
        from delta.tables import DeltaTable  # noqa: PLC0415 - needs the JVM

        version = DeltaTable.forPath(spark, location).history(1).collect()[0]["version"]
        return spark.read.format("delta").option("versionAsOf", int(version)).load(location)
    if src.file_format == "csv":
        return spark.read.option("header", "true").option("inferSchema", "false").csv(location)
    if remote:
        return _read_remote_parquet(spark, view, location)
    layout = parquet_layout(location)
    if not layout.has_nanos:
        return spark.read.parquet(location)
    return spark.read.schema(_nanos_schema(view, layout)).parquet(location)


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


def _read_remote_parquet(spark: SparkSession, view: FeatureView, location: str) -> DataFrame:
    """Parquet at a URI: its footers are not read here, so nanosecond timestamps there
    cannot be read; Spark's refusal becomes an error that says what to do."""
    try:
        return spark.read.parquet(location)
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
) -> DataFrame:
    """The view's rows: keys, __ts, __cts and every feature, plus
    the `extra` columns of `raw` (the source as read, by default) as they are."""
    src = view.source
    raw = read_raw(spark, view, repo_path) if raw is None else raw
    csv = isinstance(src, FileSource) and src.file_format == "csv"
    columns = {f.name: spark_column_type(f, csv=csv) for f in raw.schema.fields}
    check = check_schema(view, columns)
    if check.problems:
        raise IncompatibleSchemaError(_label(view), [str(p) for p in check.problems])

    selected = [_read(r).alias(_ALIAS.get(r.role, r.column)) for r in check.reads]
    frame = raw.select(*selected, *[F.col(c) for c in extra])
    if not src.created_timestamp_column:
        frame = frame.withColumn(CTS, F.lit(None).cast("timestamp"))
    parsed = [r for r in check.reads if r.source == TEXT and r.dtype != String]
    if parsed:
        _check_parsed(raw, parsed, _label(view))
    return frame


def _check_parsed(raw: DataFrame, reads: list[ColumnRead], label: str) -> None:
    """Count CSV values that are present but do not parse as their declared type."""
    checks = [
        F.sum(
            F.when(F.col(f"`{r.column}`").isNotNull() & _try_cast(r).isNull(), 1).otherwise(0)
        ).alias(r.column)
        for r in reads
    ]
    row = raw.agg(*checks).collect()[0].asDict()
    bad = {c: int(n) for c, n in row.items() if n}
    if bad:
        raise RejectedRowsError(label, bad)


def _try_cast(read: ColumnRead) -> Column:
    return F.expr(f"try_cast(`{read.column}` AS {to_spark_ddl(read.dtype)})")
