"""Read a feature view's source with Spark into a normalized frame.

The frame has the join keys, `__ts` (event time), `__cts` (created time, null when the
source has none) and the features cast to their declared types. Columns or types that
do not match the declaration raise IncompatibleSchemaError; CSV values that do not parse
raise RejectedRowsError with the count per column. Nothing is silently coerced.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F  # noqa: N812

from skewless.definitions import DeltaSource, FeatureView, FileSource
from skewless.errors import IncompatibleSchemaError, RejectedRowsError, SourceNotFoundError
from skewless.types import DType, ScalarType, accepts, from_spark_simple_string, to_spark_ddl

TS = "__ts"
CTS = "__cts"
_TIMESTAMP = ScalarType("unix_timestamp")


def read_raw(spark: SparkSession, view: FeatureView, repo_path: Path) -> DataFrame:
    src = view.source
    location = src.resolve(repo_path)
    if "://" not in location and not Path(location).exists():
        raise SourceNotFoundError(location, view.name)
    if isinstance(src, DeltaSource):
        return spark.read.format("delta").load(location)
    if src.file_format == "csv":
        return spark.read.option("header", "true").option("inferSchema", "false").csv(location)
    return spark.read.parquet(location)


def _cast(col: str, dtype: DType) -> Column:
    return F.col(f"`{col}`").cast(to_spark_ddl(dtype))


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
    is_csv = isinstance(src, FileSource) and src.file_format == "csv"
    actual = {f.name: f.dataType.simpleString() for f in raw.schema.fields}
    pinned = {f.name: f.dtype for f in view.key_fields}
    wanted: list[tuple[str, str, DType | None]] = [
        (src.timestamp_field, TS, _TIMESTAMP),
    ]
    if src.created_timestamp_column:
        wanted.append((src.created_timestamp_column, CTS, _TIMESTAMP))
    wanted += [(k, k, pinned.get(k)) for k in view.join_keys]
    wanted += [(f.name, f.name, f.dtype) for f in view.features]

    problems = []
    for column, _, declared in wanted:
        if column not in actual:
            problems.append(f"column '{column}' is missing (source has {sorted(actual)})")
        elif declared is not None and not is_csv:
            have = from_spark_simple_string(actual[column])
            ok = have is not None and accepts(declared, have)
            if declared == _TIMESTAMP and actual[column] in ("timestamp", "timestamp_ntz", "date"):
                ok = True
            if not ok:
                problems.append(
                    f"column '{column}' is declared {declared.name} but is {actual[column]}"
                )
    if problems:
        raise IncompatibleSchemaError(f"{src.label} (feature view '{view.name}')", problems)

    selected = []
    for column, alias, declared in wanted:
        expr = F.col(f"`{column}`") if declared is None else _cast(column, declared)
        selected.append(expr.alias(alias))
    frame = raw.select(*selected, *[F.col(c) for c in extra])
    if not src.created_timestamp_column:
        frame = frame.withColumn(CTS, F.lit(None).cast("timestamp"))
    if is_csv:
        _check_parsed(raw, wanted, f"{src.label} (feature view '{view.name}')")
    return frame


def _check_parsed(raw: DataFrame, wanted: list[tuple[str, str, DType | None]], label: str) -> None:
    """Count CSV values that are present but do not parse as their declared type."""
    checks = [
        F.sum(F.when(F.col(f"`{c}`").isNotNull() & _try_cast(c, d).isNull(), 1).otherwise(0)).alias(
            c
        )
        for c, _, d in wanted
        if d is not None and d != ScalarType("string")
    ]
    if not checks:
        return
    row = raw.agg(*checks).collect()[0].asDict()
    bad = {c: int(n) for c, n in row.items() if n}
    if bad:
        raise RejectedRowsError(label, bad)


def _try_cast(col: str, dtype: DType) -> Column:
    return F.expr(f"try_cast(`{col}` AS {to_spark_ddl(dtype)})")
