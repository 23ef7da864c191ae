"""Windowed aggregations on Spark: a view's events, and each aggregation's value at each
lookup, exactly as rules/windows.py says.

Events (`window_events`): rows with a null join key or event time are dropped; without a
created-timestamp column each distinct row (keys, event time, every stored column) is
one event; with one, each (keys, event time) is one event, its greatest row by the
ranking rule (batch/ranking.py).

Values (`window_features`): the lookups (keys, time) are put in one frame with the events
(keys, time, inputs; a lookup's inputs are null, so it never counts), partitioned by the
join keys and ordered by time in microseconds, and each aggregation is a window function
over the range frame `RANGE BETWEEN w - 1 PRECEDING AND CURRENT ROW`: the events at
times in (t - w, t], peers at exactly t included. One shuffle and one sort (presorted,
batch/presort.py) serve every window length, after the shuffle that finds the distinct
events. Nothing joins lookups to events; Spark computes a sliding frame's aggregates
anew for each row, so a lookup costs in proportion to the events in its window. Per
function:
- count: `count`; count_distinct: the size of `collect_set` (Spark refuses DISTINCT
  window aggregates);
- integers: sum as decimal(38,0), exact (overflowing it takes over 10**19 values of
  int64), null outside int64; mean: that sum as a double over the count;
- float sum, mean, stddev: the window's (time, value) pairs collected, sorted (Spark
  orders NaN above every number, as the rule does) and folded from 0.0 one addition at
  a time with `aggregate`: the rule's fold, bit for bit. Spark's own sum, avg and
  stddev_samp add in the order rows arrive, and stddev_samp uses another algorithm;
- stddev, also of integers, folds the squared deviations from the mean in that order;
- min, max: Spark's (NaN greatest); last: the greatest (time, value) pair's value;
  a float zero from either is made +0.0 by adding +0.0.
Every division and cast is guarded (`when`), and the frames' edges cannot leave a long,
so ANSI mode cannot raise.
"""

from __future__ import annotations

from collections.abc import Sequence

from pyspark.sql import Column, DataFrame, Window, WindowSpec
from pyspark.sql import functions as F  # noqa: N812
from pyspark.sql.types import DataType

from skewless.batch.presort import KEY_HASH, presorted
from skewless.batch.ranking import rank_fields, values_struct
from skewless.batch.sources import CTS, TS
from skewless.definitions import FeatureView
from skewless.definitions.aggregation import Aggregation
from skewless.feature_request import ViewRequest
from skewless.online.event_lists import horizon_us
from skewless.timeutil import micros
from skewless.types import Float32, Float64, ScalarType, to_spark_ddl

_US = "__us"  # a row's time in microseconds: the window's order
_LOOKUP = "__lookup"  # true on a lookup row, null on an event
_BEST = "__best"
_VALUES = "__values"
_T = "t"  # the fields of a collected (time, value) pair
_V = "v"
_SUM = "s"  # the fields of a stddev fold's state
_MEAN = "m"

_FLOATS = frozenset({Float32, Float64})
_INT64_MIN, _INT64_MAX = -(1 << 63), (1 << 63) - 1
_DECIMAL = "decimal(38,0)"  # an exact integer sum


def _col(name: str) -> Column:
    return F.col(f"`{name}`")


def window_events(rows: DataFrame, view: FeatureView) -> DataFrame:
    """The view's events among `rows` (batch/sources.read_source's columns; others are
    ignored): keys, TS, CTS and the stored columns in schema order, each event once by
    the identity rule of rules/windows.py."""
    keys = list(view.join_keys)
    stored = list(view.stored_names)
    valid = rows.where(F.col(TS).isNotNull())
    for key in keys:
        valid = valid.where(_col(key).isNotNull())
    columns = [*[_col(k) for k in keys], F.col(TS), F.col(CTS), *[_col(f) for f in stored]]
    if view.source.created_timestamp_column is None:
        # Spark groups NaN with NaN and -0.0 with 0.0 (it normalizes floats in grouping
        # keys), as the rule's equality of events does.
        return valid.select(*columns).dropDuplicates([*keys, TS, *stored])
    # One row per (keys, event time): the greatest (created, tie hash, values).
    ranked = F.struct(*rank_fields(view, event_time=False), values_struct(view).alias(_VALUES))
    best = valid.groupBy(*[_col(k) for k in keys], F.col(TS)).agg(F.max(ranked).alias(_BEST))
    return best.select(
        *[_col(k) for k in keys],
        F.col(TS),
        F.col(f"{_BEST}.{CTS}").alias(CTS),
        *[F.col(_BEST).getField(_VALUES).getField(f).alias(f) for f in stored],
    )


class _Columns:
    """The columns the aggregations read, each computed once however many aggregations
    read it (a sum, a mean and a stddev share a count, the sorted pairs and their sum),
    in two stages: `windows`, the window functions, and `totals`, the float sums folded
    from the sorted pairs."""

    def __init__(self, keys: Sequence[str]) -> None:
        self._partition = [F.col(KEY_HASH), *[_col(k) for k in keys]]
        self.windows: dict[str, Column] = {}
        self.totals: dict[str, Column] = {}

    def spec(self, window_us: int) -> WindowSpec:
        """The events at times in (t - w, t]: a range frame holds the current row's
        peers, so an event at exactly t counts."""
        ordered = Window.partitionBy(*self._partition).orderBy(F.col(_US))
        return ordered.rangeBetween(-(window_us - 1), Window.currentRow)

    def window(self, name: str, expression: Column) -> Column:
        self.windows.setdefault(name, expression)
        return _col(name)

    def total(self, name: str, expression: Column) -> Column:
        self.totals.setdefault(name, expression)
        return _col(name)


def _zero_as_positive(value: Column, dtype: ScalarType) -> Column:
    """A float zero as +0.0 (adding +0.0 leaves every other float as it is, NaN and the
    infinities included); other types as they are."""
    if dtype in _FLOATS:
        return value + F.lit(0.0).cast(to_spark_ddl(dtype))
    return value


def _value(agg: Aggregation, dtype: ScalarType, cols: _Columns) -> Column:  # noqa: PLR0911 - one case per function
    """The aggregation's value of a lookup row, over the columns it adds to `cols`."""
    w = micros(agg.time_window)
    spec = cols.spec(w)
    x = _col(agg.column)
    tag = f"__{w}_{agg.column}"  # the window's digits end at the first underscore
    n = cols.window(f"{tag}_n", F.count(x).over(spec))
    pair = F.when(x.isNotNull(), F.struct(F.col(_US).alias(_T), x.alias(_V)))

    def pairs() -> Column:
        # sort_array compares natively (array_sort's default is an interpreted lambda)
        return cols.window(f"{tag}_pairs", F.sort_array(F.collect_list(pair).over(spec)))

    def exact_sum() -> Column:
        return cols.window(f"{tag}_dsum", F.sum(x.cast(_DECIMAL)).over(spec))

    def total() -> Column:
        """The sum as a double: integers exactly, then rounded once; floats folded."""
        if dtype not in _FLOATS:
            return exact_sum().cast("double")
        fold = F.aggregate(pairs(), F.lit(0.0), lambda acc, p: acc + p[_V].cast("double"))
        return cols.total(f"{tag}_total", fold)

    def mean() -> Column:
        return F.when(n > 0, total() / n)

    def add_square(acc: Column, p: Column) -> Column:
        d = p[_V].cast("double") - acc[_MEAN]
        return F.struct((acc[_SUM] + d * d).alias(_SUM), acc[_MEAN].alias(_MEAN))

    match agg.function:
        case "count":
            return n
        case "count_distinct":
            return cols.window(f"{tag}_distinct", F.size(F.collect_set(x).over(spec)))
        case "sum" if dtype in _FLOATS:
            return F.when(n > 0, total())
        case "sum":
            exact = exact_sum()
            return F.when(exact.between(_INT64_MIN, _INT64_MAX), exact.cast("bigint"))
        case "mean":
            return mean()
        case "stddev":
            # The mean rides in the fold's state: computed once per row, not per value.
            start = F.struct(F.lit(0.0).alias(_SUM), mean().alias(_MEAN))
            squares = F.aggregate(pairs(), start, add_square, lambda acc: acc[_SUM])
            return F.when(n >= 2, F.sqrt(squares / (n - 1)))
        case "min":
            return _zero_as_positive(cols.window(f"{tag}_min", F.min(x).over(spec)), dtype)
        case "max":
            return _zero_as_positive(cols.window(f"{tag}_max", F.max(x).over(spec)), dtype)
        case "last":
            latest = cols.window(f"{tag}_last", F.max(pair).over(spec))
            return _zero_as_positive(latest.getField(_V), dtype)
    raise ValueError(f"unknown aggregation function {agg.function!r} of {agg.name!r}")


def window_features(
    lookups: DataFrame,
    source: DataFrame,
    req: ViewRequest,
    bounds: tuple[int, int] | None,
) -> DataFrame:
    """Every lookup row with the requested aggregations (`req.columns`, each named
    `c.output` and typed `c.dtype`), for a view with aggregations.

    `lookups`: the join keys (typed as the source's), TS (the lookup's time) and any
    other columns, carried to the result as they are (the point-in-time join passes its
    row id). `source`: the view's rows as batch/sources.read_source gives them. `bounds`
    (least and greatest lookup time, UTC microseconds) prunes events no window can
    hold; None disables pruning. A lookup row with a null key or time gets an empty
    window; none is dropped or repeated."""
    view = req.view
    keys = list(view.join_keys)
    dtypes = {f.name: f.dtype for f in view.stored}
    rows = source
    if bounds is not None:
        low, high = bounds
        us = F.unix_micros(F.col(TS))
        since = max(low - horizon_us(view), _INT64_MIN)
        rows = rows.where((us <= F.lit(high)) & (us > F.lit(since)))
    wanted = {c.feature: view.aggregation(c.feature) for c in req.columns}
    read = {a.column for a in wanted.values()}
    inputs = [f for f in view.stored_names if f in read]  # schema order
    carried = [c for c in lookups.columns if c not in (TS, *keys)]
    carried_types = {f.name: f.dataType for f in lookups.schema.fields}
    events = window_events(rows, view)
    input_types = {f.name: f.dataType for f in events.schema.fields}
    both = lookups.select(
        # a lookup without a time looks up nothing: with null keys too it shares no
        # partition with any event
        *[F.when(F.col(TS).isNotNull(), _col(k)).alias(k) for k in keys],
        F.col(TS),
        F.lit(True).alias(_LOOKUP),
        *[_col(c) for c in carried],
        *[_null(input_types[f]).alias(f) for f in inputs],
    ).unionByName(
        events.select(
            *[_col(k) for k in keys],
            F.col(TS),
            F.lit(None).cast("boolean").alias(_LOOKUP),
            *[_null(carried_types[c]).alias(c) for c in carried],
            *[_col(f) for f in inputs],
        )
    )
    # KEY_HASH first: the rows arrive presorted by it (batch/presort.py). A frame's
    # lower edge, t - (w - 1), must fit a long (ANSI mode raises otherwise): times
    # earlier than the least that leaves room for the longest window (some 280,000
    # years before Spark's year 1) are ordered as that time. (A lookup without a time
    # gets it too, in its partition of null keys where no event is.)
    earliest = F.lit(_INT64_MIN + horizon_us(view))
    both = presorted(both, keys, TS)
    both = both.withColumn(_US, F.greatest(F.unix_micros(F.col(TS)), earliest))
    cols = _Columns(keys)
    values = {}
    for name, agg in wanted.items():
        dtype = dtypes[agg.column]
        assert isinstance(dtype, ScalarType)  # FeatureView checks aggregation inputs
        values[name] = _value(agg, dtype, cols)
    windowed = both.select(
        F.col(_LOOKUP),
        *[_col(c) for c in carried],
        *[expression.alias(name) for name, expression in cols.windows.items()],
    ).where(F.col(_LOOKUP))
    totals = windowed.withColumns(cols.totals)
    return totals.select(
        *[_col(c) for c in carried],
        *[values[c.feature].cast(to_spark_ddl(c.dtype)).alias(c.output) for c in req.columns],
    )


def _null(dtype: DataType) -> Column:
    return F.lit(None).cast(dtype)
