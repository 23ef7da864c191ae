"""Windowed aggregations: the one rule both engines follow. Engine-free.

The value of an aggregation (column c, function f, window w) for an entity at time t
aggregates the entity's events e with

    t - w < e.event_ts <= t

so an event at exactly t counts (as a plain lookup takes a row at exactly t) and an
event at exactly t - w does not. Times are whole microseconds (UTC).

Which events there are (the event identity):
- without a created-timestamp column, each distinct row counts once: rows equal in join
  keys, event time and every input column of the view (the schema's non-key fields)
  are one event, so a row delivered twice is counted once, while two different rows at
  the same time both count;
- with a created-timestamp column, (join keys, event time) identifies an event: rows
  sharing it are versions of one event and the latest created wins (the ranking rule of
  rules/ranking.py, as for plain features), so a row re-issued with a later created time
  corrects the earlier one.

Per function, over the window's events whose input is not null (a null input is
ignored):
- count: how many (0 for an empty window), an int64;
- sum: integers exactly, as int64 (null when the sum does not fit in 64 bits); floats
  as float64, added in the fold order below;
- mean: the sum (as float64) divided by the count;
- stddev: the sample standard deviation, sqrt(sum((x - mean)^2) / (n - 1)), with the
  squares added in the fold order; null for fewer than two values;
- min, max: the least and the greatest value (for floats NaN is greater than every
  number, as Spark orders them);
- last: the value of the latest event by event time; events at the same time with
  different values give the greatest of them;
  (a float zero that min, max or last gives is +0.0: -0.0 and 0.0 compare equal);
- count_distinct: the exact number of distinct values (int64, 0 for an empty window).
Every function but count and count_distinct gives null for an empty window.

The fold order: float sums, means and deviations add the window's values one at a time,
starting from +0.0, in the order of (event time, value) ascending (NaN last). IEEE
addition is not associative; a fixed order makes the offline and the online result equal
to the last bit.
"""

from __future__ import annotations

from typing import Final

# The functions, the input types each takes and the type of its result are part of the
# definition (definitions/aggregation.py: FUNCTIONS).
EMPTY_COUNT: Final = 0  # count and count_distinct of an empty window; others give null


def in_window(event_us: int, t_us: int, window_us: int) -> bool:
    """Whether an event at `event_us` is in the window of length `window_us` ending at
    `t_us` (all in microseconds)."""
    return t_us - window_us < event_us <= t_us
