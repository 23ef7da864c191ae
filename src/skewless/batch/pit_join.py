"""The point-in-time join, on Spark.

For an entity row (keys, t) and a feature view, the chosen feature row is the one with
equal join keys and `event_ts <= t` (and `event_ts >= t - ttl` when the view has a ttl)
that ranks highest by the ranking rule (rules/ranking.py): event time, created time
(null lowest), the tie hash of the view's feature values, then the values. Every
feature of the view takes part, whichever were requested, so the chosen row does not
depend on the request and is the row the online store holds. No candidate gives nulls;
an entity row is never dropped or repeated.

Algorithm (per view): union the entity rows with the source rows, partition by the join
keys, order by ts and then the entity row id, nulls first (a source row has no row id,
so source rows come before entity rows at the same ts), and take the running maximum of
the source rows' rank struct (event_ts, created_ts, tie hash, values) up to each entity
row (`max(...)` over a running frame; an entity row's struct is null and a maximum
ignores nulls). The maximum is the ranking itself, so the sort only orders primitive
columns and ties within a timestamp need no ordering at all. That is one shuffle and one
sort (with a radix-sorted head start, batch/presort.py), linear in entity rows + feature
rows and independent of the ttl, unlike the cross product of every key's history
followed by ROW_NUMBER. The ttl is then a filter on the chosen row's event time. The
struct itself is never null for a source row, so a feature that is null in the latest
row stays null: it is never filled from older rows.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F  # noqa: N812

from skewless.batch.aggregation import window_features
from skewless.batch.presort import KEY_HASH, presorted
from skewless.batch.ranking import rank_fields
from skewless.batch.sources import TS
from skewless.errors import EntityDataFrameError
from skewless.feature_request import ViewRequest
from skewless.timeutil import micros

ROW = "__row"  # the entity row's identity: a unique, collision-free long
ETS = "__ets"  # the entity row's timestamp, UTC
_F = "__f"
_M = "__m"

_INTEGRAL = {"tinyint", "smallint", "int", "bigint"}


def _align_keys(
    entity: DataFrame, source: DataFrame, req: ViewRequest
) -> tuple[DataFrame, DataFrame]:
    e_types = {f.name: f.dataType.simpleString() for f in entity.schema.fields}
    s_types = {f.name: f.dataType.simpleString() for f in source.schema.fields}
    for key in req.join_keys:
        et, st = e_types[key], s_types[key]
        if et == st:
            continue
        if et in _INTEGRAL and st in _INTEGRAL:
            entity = entity.withColumn(key, F.col(key).cast("bigint"))
            source = source.withColumn(key, F.col(key).cast("bigint"))
            continue
        if et == "void":  # a column of nulls only
            entity = entity.withColumn(key, F.col(key).cast(st))
            continue
        raise EntityDataFrameError(
            f"join key '{key}' is {et} but feature view '{req.name}' has it as {st}",
            column=key,
        )
    return entity, source


def view_features(
    entity: DataFrame,
    source: DataFrame,
    req: ViewRequest,
    bounds: tuple[int, int] | None,
) -> DataFrame:
    """(ROW, feature outputs...) for every entity row, for one view (a view with
    aggregations: batch/aggregation.py)."""
    keys = list(req.join_keys)
    entity, source = _align_keys(entity, source, req)
    if req.view.aggregations:
        lookups = entity.select(*keys, F.col(ETS).alias(TS), F.col(ROW))
        return window_features(lookups, source, req, bounds)
    rows = source.where(F.col(TS).isNotNull())
    for key in keys:
        rows = rows.where(F.col(key).isNotNull())
    if bounds is not None:
        low, high = bounds
        rows = rows.where(F.unix_micros(F.col(TS)) <= F.lit(high))
        if req.ttl is not None:
            rows = rows.where(F.unix_micros(F.col(TS)) >= F.lit(low - micros(req.ttl)))
    # The rank's fields (batch/ranking.py), then every feature of the view in schema
    # order, whatever was requested: the rule's last field, and what the join returns.
    feats = list(req.view.stored_names)
    ranked = F.struct(*rank_fields(req.view), *[F.col(f"`{f}`") for f in feats])
    rows = rows.select(
        *keys,
        TS,
        F.lit(None).cast("long").alias(ROW),  # a source row has none: see the ordering
        ranked.alias(_F),
    )
    struct_type = rows.schema[_F].dataType
    ents = entity.select(
        *keys,
        F.col(ETS).alias(TS),
        F.col(ROW),
        F.lit(None).cast(struct_type).alias(_F),
    )
    # KEY_HASH first: the rows arrive presorted by it (batch/presort.py).
    window = (
        Window.partitionBy(KEY_HASH, *keys)
        .orderBy(F.col(TS), F.col(ROW).asc_nulls_first())
        .rowsBetween(Window.unboundedPreceding, Window.currentRow)
    )
    union = presorted(ents.unionByName(rows), keys, TS)
    filled = union.withColumn(_M, F.max(_F).over(window))
    filled = filled.where(F.col(ROW).isNotNull())  # the entity rows
    match = F.col(_M)
    if req.ttl is not None:
        fresh = F.unix_micros(F.col(f"{_M}.{TS}")) >= F.unix_micros(F.col(TS)) - F.lit(
            micros(req.ttl)
        )
        match = F.when(fresh, F.col(_M))
    filled = filled.withColumn(_M, match)
    return filled.select(
        F.col(ROW), *[F.col(_M).getField(c.feature).alias(c.output) for c in req.columns]
    )


def pit_join(
    entity: DataFrame,
    requests: Sequence[ViewRequest],
    sources: Mapping[str, DataFrame],
    bounds: tuple[int, int] | None,
) -> DataFrame:
    """(ROW, every requested feature output) for every entity row.

    `entity` has ROW, ETS and the join keys of every view. `bounds` (min, max entity
    time, UTC microseconds) prunes source rows that no entity row can use; None disables pruning.
    """
    # Each view's frame has exactly one row per entity row, so joining on ROW can
    # neither drop nor repeat rows.
    result: DataFrame | None = None
    for req in requests:
        frame = view_features(entity, sources[req.name], req, bounds)
        result = frame if result is None else result.join(frame, ROW, "left")
    if result is None:
        return entity.select(ROW)
    return result
