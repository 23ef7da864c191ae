"""get_historical_features: prepare the entity rows, run the point-in-time join, and
hand back a RetrievalJob that renders the result as pandas, Arrow, Spark or Delta.

Output rows: exactly one per input row, in input order, with the input columns as they
were and the features appended. Timestamps: naive means UTC, aware is converted to UTC;
precision is microseconds (finer digits are truncated).
"""

from __future__ import annotations

import shutil
import tempfile
import weakref
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F  # noqa: N812
from pyspark.sql.pandas.types import from_arrow_schema

from skewless.batch.digest import digests
from skewless.batch.on_demand import with_on_demand
from skewless.batch.pit_join import ETS, ROW, pit_join
from skewless.batch.sources import naming_unreadable_files, read_source
from skewless.batch.spark import local_master
from skewless.errors import EntityDataFrameError, ManifestError
from skewless.feature_request import FeatureRequest, check_entity_columns
from skewless.offline.manifest import InputPin, Manifest, ManifestDraft, RowsDigest
from skewless.types import NULLABLE_PANDAS, pandas_dtype


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
        request: FeatureRequest,
        features: DataFrame,
        entity: DataFrame | _PandasInput,
        repo_path: Path,
        *,
        draft: ManifestDraft | None = None,
    ) -> None:
        """`features`: ROW + the feature outputs; `entity`: ROW + every input column, or
        the pandas input; `repo_path`: where the sources' relative paths start; `draft`:
        the manifest but for the digests of the rows (None: the job has no manifest)."""
        self._spark = spark
        self.request = request
        self._features = features
        self._entity = entity
        self._repo_path = repo_path
        self._draft = draft
        self._manifest: Manifest | None = None
        self._held: DataFrame | None = None  # see _held_rows

    @property
    def manifest(self) -> Manifest:
        """What built this training set (offline/manifest.py). The first access computes
        the digests of the entity rows and of the result over the result's rows (the
        point-in-time join runs for it), which Spark then holds for a later to_delta."""
        if self._manifest is None:
            if self._draft is None:
                raise ManifestError("this retrieval job", "it was built without a manifest")
            found = self.digests(self._held_rows())
            self._manifest = self._draft.complete(found["entity"], found["result"])
        return self._manifest

    def _held_rows(self) -> DataFrame:
        """The unordered result, computed once and held by Spark (a local checkpoint, in
        memory then on disk) for the digests and what follows them (to_delta, reproduce's
        comparison), which then write or compare the held rows instead of running the
        join again (benchmarks/reproduce.py times a save after the manifest)."""
        if self._held is None:
            with self._reading():
                self._held = self._joined(ordered=False).localCheckpoint(eager=True)
        return self._held

    def digests(self, rows: DataFrame) -> dict[str, RowsDigest]:
        """The entity and result digests of `rows` (this job's result, or a table that
        holds it)."""
        return digests(rows, {"entity": self.entity_columns, "result": rows.columns})

    def result_digests(self) -> tuple[DataFrame, dict[str, RowsDigest]]:
        """The unordered result and its entity and result digests (computed by one job,
        a source file Spark cannot read named as for any result)."""
        rows = self._held_rows()
        return rows, self.digests(rows)

    def with_manifest(self, manifest: Manifest) -> None:
        """Record the manifest completed elsewhere (from the rows as saved)."""
        self._manifest = manifest

    @property
    def draft(self) -> ManifestDraft | None:
        return self._draft

    @property
    def entity_columns(self) -> list[str]:
        if isinstance(self._entity, _PandasInput):
            return [str(c) for c in self._entity.frame.columns]
        return [c for c in self._entity.columns if c != ROW]

    def _reading(self) -> AbstractContextManager[None]:
        """Names a source file Spark cannot read (an UnreadableSourceError)."""
        return naming_unreadable_files([r.view for r in self.request.views], self._repo_path)

    @property
    def _entity_pandas(self) -> pd.DataFrame | None:
        return self._entity.frame if isinstance(self._entity, _PandasInput) else None

    @property
    def feature_columns(self) -> list[str]:
        return self.request.outputs

    def to_spark(self) -> DataFrame:
        """Input columns then features, in input order."""
        return self._joined(ordered=True)

    def to_spark_unordered(self) -> DataFrame:
        """The rows of to_spark() without the sort that puts them in input order."""
        return self._joined(ordered=False)

    def _joined(self, *, ordered: bool) -> DataFrame:
        if isinstance(self._entity, _PandasInput):
            # A frame handed out must not depend on this job's staged file, which goes
            # with the job: the input rows are held by Spark and the join planned anew.
            entity, features = self._entity.held(self._spark)
        else:
            entity, features = self._entity, self._features
        joined = entity.join(features, ROW, "left")
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
        with self._reading():
            return self._to_arrow()

    def _to_arrow(self) -> pa.Table:
        if self._entity_pandas is None:
            result: pa.Table = self.to_spark().toArrow()
            return result
        base = pa.Table.from_pandas(self._entity_pandas, preserve_index=False)
        feats = self._feature_arrow()
        for name in feats.column_names:
            base = base.append_column(name, feats.column(name))
        return base

    def to_pandas(self) -> pd.DataFrame:
        with self._reading():
            return self._to_pandas()

    def to_df(self) -> pd.DataFrame:
        """to_pandas(), by the name Feast's RetrievalJob gives it."""
        return self.to_pandas()

    def _to_pandas(self) -> pd.DataFrame:
        if self._entity_pandas is None:
            table = self.to_spark().toArrow()
            out = table.to_pandas(types_mapper=NULLABLE_PANDAS.get)
            return self._typed(out)
        feats = self._feature_arrow().to_pandas(types_mapper=NULLABLE_PANDAS.get)
        out = self._entity_pandas.copy()
        for name in feats.columns:
            out[name] = feats[name].to_numpy() if feats[name].dtype == object else feats[name].array
        return self._typed(out)

    def _typed(self, frame: pd.DataFrame) -> pd.DataFrame:
        for output, dtype in self.request.output_dtypes.items():
            target = pandas_dtype(dtype)
            if target is not object and str(frame[output].dtype) != str(target):
                frame[output] = frame[output].astype(target)
        return frame

    def to_delta(self, path: str, mode: str = "errorifexists") -> int:
        """Write the training set as a Delta table; returns the Delta version written.
        A table has no row order, so no global sort is spent on it: every input row is
        there once, with its input columns."""
        rows = self._held if self._held is not None else self._joined(ordered=False)
        with self._reading():
            rows.write.format("delta").mode(mode).save(path)
        history = self._spark.sql(f"DESCRIBE HISTORY delta.`{path}` LIMIT 1").collect()
        return int(history[0]["version"])


class _PandasInput:
    """A pandas entity frame and how its training set is planned. The join reads the
    entity rows from a Parquet file this object owns (StagedRows), removed when the
    object goes; `held` gives frames that live on their own, for to_spark and to_delta."""

    def __init__(
        self,
        spark: SparkSession,
        frame: pd.DataFrame,
        keys: list[str],
        ts_col: str,
        plan: Callable[[DataFrame, tuple[int, int] | None], DataFrame],
    ) -> None:
        self.frame = frame
        self._keys = keys
        self._plan = plan
        ets = utc_timestamps(frame[ts_col], ts_col)
        self._ets = ets.to_numpy()
        valid = ets.dropna()
        self.bounds: tuple[int, int] | None = None
        if len(valid):
            us = valid.to_numpy().astype("datetime64[us]").astype(np.int64)
            self.bounds = int(us.min()), int(us.max())
        narrow = pd.DataFrame({ROW: np.arange(len(frame), dtype="int64"), ETS: self._ets})
        for key in keys:
            narrow[key] = _column_values(frame[key])
        self._staged = StagedRows(spark, narrow)
        self.features = plan(self._staged.frame, self.bounds)

    def held(self, spark: SparkSession) -> tuple[DataFrame, DataFrame]:
        """(ROW + every input column, ROW + the features), over a local checkpoint of
        the input rows rather than over the staged file."""
        full = self.frame.copy()
        full[ROW] = np.arange(len(full), dtype="int64")
        full[ETS] = self._ets
        rows = local_frame(spark, full)
        features = self._plan(rows.select(ROW, ETS, *[f"`{k}`" for k in self._keys]), self.bounds)
        return rows.drop(ETS), features


def _column_values(col: pd.Series[Any]) -> Any:
    if isinstance(col.dtype, pd.api.extensions.ExtensionDtype):
        return col.array
    return col.to_numpy()


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


def _parquet_rows(spark: SparkSession, frame: pd.DataFrame) -> tuple[DataFrame, str] | None:
    """`frame` written to a Parquet file in a new temporary folder, and a Spark frame
    that scans it with the file's schema (no inference job); None where Spark's
    executors do not share the driver's file system or a type would not read back as
    createDataFrame gives it."""
    if not local_master(spark):
        return None
    table = pa.Table.from_pandas(frame, preserve_index=False)
    if not _stageable(table.schema):
        return None
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
        rows = spark.read.schema(from_arrow_schema(table.schema)).parquet(folder)
        return rows.toDF(*names), folder
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise


def _nanosecond_times(dtype: Any) -> bool:
    if isinstance(dtype, pd.DatetimeTZDtype):
        return bool(dtype.unit == "ns")
    return bool(pd.api.types.is_datetime64_dtype(dtype) and np.datetime_data(dtype)[0] == "ns")


def _microsecond_times(frame: pd.DataFrame) -> pd.DataFrame:
    """`frame` with every nanosecond timestamp column floored to the microsecond (as
    utc_timestamps does), so that neither path to Spark has to drop digits: the Parquet
    staging takes microseconds only, and createDataFrame's Arrow conversion refuses to
    truncate (it then falls back to converting row by row)."""
    nanos = [name for name, dtype in frame.dtypes.items() if _nanosecond_times(dtype)]
    if not nanos:
        return frame
    frame = frame.copy()
    for name in nanos:
        column = frame[name]
        zone = column.dt.tz
        unit: Any = "datetime64[us]"
        if zone is not None:
            unit = pd.DatetimeTZDtype(unit="us", tz=zone)  # type: ignore[arg-type]
        frame[name] = column.dt.floor("us").astype(unit)
    return frame


def local_frame(spark: SparkSession, frame: pd.DataFrame) -> DataFrame:
    """A driver-side frame as a Spark frame, computed once and independent of any file.

    With a local master the executors share the driver's file system, so the rows go
    through a Parquet file and a local checkpoint, which later jobs read as cached
    blocks; createDataFrame would decode its Arrow batches again on every scan, several
    times slower for a large entity set (docs/performance.md). The file is removed as soon
    as the checkpoint holds the rows. Other masters, and columns whose type would not
    read back the same from Parquet, take createDataFrame. Nanosecond timestamps (pandas'
    default) reach Spark at its precision, the microsecond at or before them.
    """
    frame = _microsecond_times(frame)
    staged = _parquet_rows(spark, frame)
    if staged is None:
        return spark.createDataFrame(frame)
    rows, folder = staged
    try:
        return rows.localCheckpoint(eager=True)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


class StagedRows:
    """A driver-side frame as a Spark frame that scans a Parquet file in place, for the
    jobs that read it while this object lives; the file is removed when the object goes
    (or at exit). It saves local_frame's checkpoint job: 0.1 s of a 1.4 s warm
    point-in-time join at small benchmark scale. Where local_frame would take
    createDataFrame, so does this, and there is no file."""

    def __init__(self, spark: SparkSession, frame: pd.DataFrame) -> None:
        staged = _parquet_rows(spark, frame)
        if staged is None:
            self.frame = spark.createDataFrame(frame)
            self.folder: str | None = None
            return
        self.frame, self.folder = staged
        weakref.finalize(self, shutil.rmtree, self.folder, True)


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
    request: FeatureRequest,
    timestamp_column: str,
    *,
    pins: Mapping[str, InputPin] | None = None,
    draft: ManifestDraft | None = None,
) -> RetrievalJob:
    """The training set of `entity_df`; each view's source read as `pins` pins it (by
    view name; unpinned: as it is now), with `draft` the manifest of the job."""
    columns = list(entity_df.columns)
    check_entity_columns(columns, request, timestamp_column)
    requests = request.views
    # the columns the join reads: every join key, then the request fields on-demand
    # features read
    keys: list[str] = []
    for req in requests:
        keys.extend(k for k in req.join_keys if k not in keys)
    keys.extend(f for f in request.request_fields if f not in keys)
    pins = pins or {}
    sources = {
        req.name: read_source(spark, req.view, repo_path, pin=pins.get(req.name))
        for req in requests
    }

    def plan(entity: DataFrame, bounds: tuple[int, int] | None) -> DataFrame:
        return with_on_demand(pit_join(entity, requests, sources, bounds), entity, request)

    if isinstance(entity_df, pd.DataFrame):
        pandas_input = _PandasInput(spark, entity_df, keys, timestamp_column, plan)
        return RetrievalJob(
            spark, request, pandas_input.features, pandas_input, repo_path, draft=draft
        )
    # Row ids must be computed once (the join and the result both use them). A
    # checkpoint, not a cache: Spark hands cached data to any later plan that looks
    # the same, and a plan over a folder looks the same after new files arrive.
    entity_full = _prepare_spark(entity_df, timestamp_column).localCheckpoint()
    entity = entity_full.select(ROW, ETS, *keys)
    features = plan(entity, _bounds(entity))
    return RetrievalJob(spark, request, features, entity_full.drop(ETS), repo_path, draft=draft)


def _bounds(entity: DataFrame) -> tuple[int, int] | None:
    """(min, max) entity time in UTC microseconds (no Python datetimes: their conversion
    would depend on the driver's local time zone)."""
    us = F.unix_micros(F.col(ETS))
    row = entity.agg(F.min(us).alias("lo"), F.max(us).alias("hi")).collect()[0]
    if row["lo"] is None:
        return None
    return int(row["lo"]), int(row["hi"])
