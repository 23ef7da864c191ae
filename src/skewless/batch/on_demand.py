"""On-demand features of a training set, on Spark.

After the point-in-time join, each on-demand feature is computed row by row from the
features its view reads (joined as hidden columns, feature_request.hidden_name) and from
the request fields, which are columns of the entity dataframe. The expression is
compiled to Spark Columns (batch/expressions.py) with the semantics the online evaluator
shares (docs/expressions.md).

A request field's column must hold the field's declared type, or one that widens to it
without loss (int32 into int64, float32 into float64; a date or timestamp of any kind for
a UnixTimestamp), as a source column must feed a feature: anything else is an
EntityDataFrameError naming the column, never a silent conversion. A NaN in a float
request column is a null (pandas writes it so, and the online path reads it so).
"""

from __future__ import annotations

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F  # noqa: N812

from skewless.batch.expressions import to_column
from skewless.batch.pit_join import ROW
from skewless.errors import EntityDataFrameError
from skewless.expr.check import EType, infer
from skewless.feature_request import FeatureRequest
from skewless.types import (
    DType,
    Float32,
    Float64,
    UnixTimestamp,
    accepts,
    from_spark_simple_string,
    to_spark_ddl,
)

_TIMES = ("timestamp", "timestamp_ntz", "date")


def request_column(entity: DataFrame, name: str, dtype: DType, view: str) -> Column:
    """The entity dataframe's column `name` as request field of type `dtype`."""
    spark_type = entity.schema[name].dataType.simpleString()
    column = F.col(f"`{name}`")
    if dtype == UnixTimestamp and spark_type in _TIMES:
        return column.cast("timestamp")
    if spark_type == "void":  # a column of nulls only
        return column.cast(to_spark_ddl(dtype))
    actual = from_spark_simple_string(spark_type)
    if actual is None or not accepts(dtype, actual):
        raise EntityDataFrameError(
            f"column '{name}' is {spark_type}, but on-demand feature view '{view}' reads it as "
            f"request field of type {dtype.name} (give the column that type, or one that "
            "widens to it without loss)",
            column=name,
        )
    typed = column.cast(to_spark_ddl(dtype))
    if dtype in (Float32, Float64):  # a NaN request value is a null, online too
        return F.when(~F.isnan(typed), typed)
    return typed


def with_on_demand(features: DataFrame, entity: DataFrame, request: FeatureRequest) -> DataFrame:
    """`features` (ROW and every view output, hidden ones included) with the on-demand
    outputs added and the hidden columns gone: ROW and the outputs."""
    if not request.on_demand:
        return features
    fields: dict[str, Column] = {}
    for odfv in request.on_demand:
        types = odfv.view.input_types
        for name in odfv.request_fields:
            dtype = types[name]
            if name not in fields and isinstance(dtype, DType):
                fields[name] = request_column(entity, name, dtype, odfv.name)
    frame = features
    if fields:
        # one entity row per ROW on both sides: the join neither drops nor repeats rows
        carried = entity.select(F.col(ROW), *[c.alias(_request(n)) for n, c in fields.items()])
        frame = frame.join(carried, ROW, "left")
    outputs: list[Column] = []
    for odfv in request.on_demand:
        types = odfv.view.input_types
        inputs: dict[str, Column] = {}
        input_types: dict[str, EType] = {}
        for name, holder in odfv.inputs:
            is_field = name in odfv.request_fields and holder == name
            inputs[name] = F.col(f"`{_request(name) if is_field else holder}`")
            input_types[name] = types[name]
        for col in odfv.columns:
            expr = odfv.view.expression(col.feature)
            value = to_column(expr, inputs, input_types)
            if infer(expr, input_types) != col.dtype:  # a lossless widening
                value = value.cast(to_spark_ddl(col.dtype))
            outputs.append(value.alias(col.output))
    kept = [F.col(f"`{c.output}`") for r in request.views for c in r.columns if not c.hidden]
    return frame.select(F.col(ROW), *kept, *outputs)


def _request(name: str) -> str:
    return f"__request__{name}"
