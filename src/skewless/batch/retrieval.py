"""get_historical_features: prepare the entity rows, run the point-in-time join, and
hand back a RetrievalJob that renders the result as pandas, Arrow, Spark or Delta.

Output rows: exactly one per input row, in input order, with the input columns as they
were and the features appended. Timestamps: naive means UTC, aware is converted to UTC;
precision is microseconds (finer digits are truncated).
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F  # noqa: N812

from skewless.batch.compile import ViewRequest, check_entity_columns, output_columns
from skewless.batch.pit_join import ETS, ROW, pit_join
from skewless.batch.sources import read_source
from skewless.batch.spark import local_master
from skewless.errors import EntityDataFrameError
from skewless.types import pandas_dtype

_PANDAS_NULLABLE = {
    pa.int64(): pd.Int64Dtype(),
    pa.int32(): pd.Int32Dtype(),
    pa.bool_(): pd.BooleanDtype(),
}


def utc_timestamps(series: pd.Series[Any], column: str) -> pd.Series[Any]:
    """A pandas column as naive UTC datetime64[us]: naive means UTC, aware converts."""
    s = series
    if not pd.api.types.is_datetime64_any_dtype(s):
        try:
            s = pd.to_datetime(s, utc=True, format="ISO8601")
        except (ValueError, TypeError) as exc:
            raise EntityDataFrameError(
                f"column '{column}' holds values that are not timestamps: {exc}", column=column
            ) from None
    if isinstance(s.dtype, pd.DatetimeTZDtype):
        s = s.dt.tz_convert("UTC").dt.tz_localize(None)
    result: pd.Series[Any] = s.dt.floor("us").astype("datetime64[us]")
    return result


class RetrievalJob:
    """A training set, computed lazily on Spark."""

    def __init__(
        self,
        spark: SparkSession,
        requests: Sequence[ViewRequest],
        features: DataFrame,
        entity_spark: DataFrame,
        entity_pandas: pd.DataFrame | None,
    ) -> None:
        self._spark = spark
        self.requests = list(requests)
        self._features = features  # ROW + feature outputs
        self._entity_spark = entity_spark  # ROW + every input column
        self._entity_pandas = entity_pandas

    @property
    def feature_columns(self) -> list[str]:
        return output_columns(self.requests)

    def to_spark(self) -> DataFrame:
        """Input columns then features, in input order."""
        return self._joined(ordered=True)

    def _joined(self, *, ordered: bool) -> DataFrame:
        entity = self._entity_spark
        if self._entity_pandas is not None:
            full = self._entity_pandas.copy()
            full[ROW] = np.arange(len(full), dtype="int64")
            entity = local_frame(self._spark, full)
        joined = entity.join(self._features, ROW, "left")
        if ordered:
            joined = joined.orderBy(ROW)
        inputs = [c for c in entity.columns if c != ROW]
        return joined.select(*[f"`{c}`" for c in inputs + self.feature_columns])

    def _feature_arrow(self) -> pa.Table:
        """Feature columns in input order. Row ids of a pandas input are 0..n-1, so the
        unordered Spark result is put in order on the driver (no global sort in Spark)."""
        table = self._features.toArrow()
        rows = table.column(ROW).to_numpy()
        expected = len(rows) if self._entity_pandas is None else len(self._entity_pandas)
        if len(rows) != expected or (len(rows) and int(rows.max()) != expected - 1):
            raise AssertionError(f"point-in-time join returned {len(rows)} rows for {expected}")
        order = np.empty(len(rows), dtype=np.int64)
        order[rows] = np.arange(len(rows), dtype=np.int64)
        return table.take(pa.array(order)).select(self.feature_columns)

    def to_arrow(self) -> pa.Table:
        if self._entity_pandas is None:
            result: pa.Table = self.to_spark().toArrow()
            return result
        base = pa.Table.from_pandas(self._entity_pandas, preserve_index=False)
        feats = self._feature_arrow()
        for name in feats.column_names:
            base = base.append_column(name, feats.column(name))
        return base

    def to_pandas(self) -> pd.DataFrame:
        if self._entity_pandas is None:
            table = self.to_spark().toArrow()
            out = table.to_pandas(types_mapper=_PANDAS_NULLABLE.get)
            return self._typed(out)
        feats = self._feature_arrow().to_pandas(types_mapper=_PANDAS_NULLABLE.get)
        out = self._entity_pandas.copy()
        for name in feats.columns:
            out[name] = feats[name].to_numpy() if feats[name].dtype == object else feats[name].array
        return self._typed(out)

    def _typed(self, frame: pd.DataFrame) -> pd.DataFrame:
        for req in self.requests:
            for col in req.columns:
                target = pandas_dtype(col.dtype)
                if target is not object and str(frame[col.output].dtype) != str(target):
                    frame[col.output] = frame[col.output].astype(target)
        return frame

    def to_delta(self, path: str, mode: str = "errorifexists") -> int:
        """Write the training set as a Delta table; returns the Delta version written.
        A table has no row order, so no global sort is spent on it: every input row is
        there once, with its input columns."""
        self._joined(ordered=False).write.format("delta").mode(mode).save(path)
        history = self._spark.sql(f"DESCRIBE HISTORY delta.`{path}` LIMIT 1").collect()
        return int(history[0]["version"])


def _prepare_pandas(
    spark: SparkSession, entity_df: pd.DataFrame, keys: list[str], ts_col: str
) -> tuple[DataFrame, tuple[int, int] | None]:
    """The entity rows as a Spark frame, and their time bounds computed here on the
    driver (a Spark job over a local frame would ship it to the executors once more)."""
    ets = utc_timestamps(entity_df[ts_col], ts_col)
    frame = pd.DataFrame({ROW: np.arange(len(entity_df), dtype="int64"), ETS: ets.to_numpy()})
    valid = ets.dropna()
    bounds = None
    if len(valid):
        us = valid.to_numpy().astype("datetime64[us]").astype(np.int64)
        bounds = int(us.min()), int(us.max())
    for key in keys:
        col = entity_df[key]
        frame[key] = (
            col.to_numpy()
            if not isinstance(col.dtype, pd.api.extensions.ExtensionDtype)
            else col.array
        )
    return local_frame(spark, frame), bounds


def _stageable(schema: pa.Schema) -> bool:
    """Types that read back from Parquet as the Spark types createDataFrame gives them:
    signed integers, floats, booleans, strings and timestamps in microseconds (a naive
    one is UTC, as the session time zone reads it)."""
    for field in schema:
        t = field.type
        plain = pa.types.is_signed_integer(t) or pa.types.is_floating(t)
        if plain or pa.types.is_boolean(t) or pa.types.is_string(t):
            continue
        if not (pa.types.is_timestamp(t) and t.unit == "us"):
            return False
    return True


def local_frame(spark: SparkSession, frame: pd.DataFrame) -> DataFrame:
    """A driver-side frame as a Spark frame, computed once.

    With a local master the executors share the driver's file system, so the rows go
    through a Parquet file and a local checkpoint, which the join then reads as cached
    blocks; createDataFrame would decode its Arrow batches again on every scan (at 1M
    rows: about 0.7 s against 5 s, see benchmarks/README.md). The file is removed as soon
    as the checkpoint holds the rows. Other masters, and columns whose type would not
    read back the same from Parquet, take createDataFrame.
    """
    if not local_master(spark):
        return spark.createDataFrame(frame)
    table = pa.Table.from_pandas(frame, preserve_index=False)
    if not _stageable(table.schema):
        return spark.createDataFrame(frame)
    for i, field in enumerate(table.schema):
        if pa.types.is_timestamp(field.type) and field.type.tz is None:
            table = table.set_column(
                i, field.name, table.column(i).cast(pa.timestamp("us", tz="UTC"))
            )
    names = table.column_names  # any name a pandas column may have; Parquet gets c0...
    table = table.rename_columns([f"c{i}" for i in range(len(names))])
    folder = tempfile.mkdtemp(prefix="skewless-frame-")
    try:
        pq.write_table(table, f"{folder}/rows.parquet")
        return spark.read.parquet(folder).toDF(*names).localCheckpoint(eager=True)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _prepare_spark(entity_df: DataFrame, ts_col: str) -> DataFrame:
    ts_type = entity_df.schema[ts_col].dataType.simpleString()
    if ts_type in ("timestamp", "timestamp_ntz", "date"):
        ets = F.col(f"`{ts_col}`").cast("timestamp")
    elif ts_type == "string":
        ets = F.to_timestamp(F.col(f"`{ts_col}`"))
    else:
        raise EntityDataFrameError(
            f"column '{ts_col}' is {ts_type}, not a timestamp", column=ts_col
        )
    return entity_df.withColumn(ROW, F.monotonically_increasing_id()).withColumn(ETS, ets)


def get_historical_features(
    spark: SparkSession,
    repo_path: Path,
    entity_df: pd.DataFrame | DataFrame,
    requests: Sequence[ViewRequest],
    timestamp_column: str,
) -> RetrievalJob:
    columns = list(entity_df.columns)
    check_entity_columns(columns, requests, timestamp_column)
    keys: list[str] = []
    for req in requests:
        keys.extend(k for k in req.join_keys if k not in keys)
    if isinstance(entity_df, pd.DataFrame):
        entity, bounds = _prepare_pandas(spark, entity_df, keys, timestamp_column)
        entity_full = entity
        pandas_input: pd.DataFrame | None = entity_df
    else:
        # Row ids must be computed once (the join and the result both use them). A
        # checkpoint, not a cache: Spark hands cached data to any later plan that looks
        # the same, and a plan over a folder looks the same after new files arrive.
        entity_full = _prepare_spark(entity_df, timestamp_column).localCheckpoint()
        entity = entity_full.select(ROW, ETS, *keys)
        entity_full = entity_full.drop(ETS)
        pandas_input = None
        bounds = _bounds(entity)
    sources = {req.name: read_source(spark, req.view, repo_path) for req in requests}
    features = pit_join(entity, requests, sources, bounds)
    return RetrievalJob(spark, requests, features, entity_full, pandas_input)


def _bounds(entity: DataFrame) -> tuple[int, int] | None:
    """(min, max) entity time in UTC microseconds (no Python datetimes: their conversion
    would depend on the driver's local time zone)."""
    us = F.unix_micros(F.col(ETS))
    row = entity.agg(F.min(us).alias("lo"), F.max(us).alias("hi")).collect()[0]
    if row["lo"] is None:
        return None
    return int(row["lo"]), int(row["hi"])
