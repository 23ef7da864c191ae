"""A radix-sorted head start for the sorts by (join keys, event time).

The point-in-time join runs a window per key, ordered by time (batch/pit_join.py), and
materialization's deduplication a window per key and an aggregate per key and time
(batch/materialize.py), so Spark sorts each shuffle partition by the join keys, then by
time. Spark's sort compares an 8-byte prefix of the first column and, when two prefixes
tie, both whole rows. Every entity has many rows (about a hundred in the benchmarks), so
most comparisons near the end of the sort tie on the key and read two rows from random
places in memory, which dominates a large join's sort (docs/performance.md).

`presorted()` sorts first by a single long per row, which Spark radix-sorts by its prefix
alone, without comparing rows: the high 32 bits of a 64-bit hash of the join keys, then
the row's time in 2**27 microsecond (134 s) steps, distinct from year 1 to 9999. The caller
puts the same hash (KEY_HASH) first in its window partition, so the order Spark requires,
(KEY_HASH, keys, time, ...), is already nearly the order of its input, and its TimSort
finishes in about one pass over neighbouring rows.

The hint never decides an order: Spark's own sort still runs, on the exact columns, and puts
right what the hint leaves out of order (keys whose hashes share their high 32 bits, rows of
one key within one time step), so every result is what it was without it.

Only a window keeps the hint: Spark's optimizer (EliminateSorts) drops a sort whose only
consumer is an aggregate or a join, so a caller that aggregates runs its window first.
"""

from __future__ import annotations

from collections.abc import Sequence

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F  # noqa: N812

KEY_HASH = "__key_hash"  # xxhash64 of the join keys

_LOW_BITS = 32
_HIGH_MASK = -(1 << _LOW_BITS)  # the top 32 bits of a long, as a signed literal
# Years 1 to 9999 lie within -2**56 <= microseconds < 2**58, so (us >> 27) + 2**31 fits
# the low 32 bits. Shifting before adding cannot overflow (ANSI mode would raise), and
# the clamp puts the times a long holds beyond that (Spark reads them from files without
# complaint) in the first or last step.
_TIME_SHIFT = 27
_TIME_OFFSET = 1 << (_LOW_BITS - 1)


def key_hash(keys: Sequence[str]) -> Column:
    return F.xxhash64(*[F.col(f"`{k}`") for k in keys])


def sort_hint(hash_column: Column, ts: Column) -> Column:
    """The hint of a row: the hash's high bits, then its time's step (step 0 for a null
    time, which Spark's ascending order puts first). Orders as (hash, time) does, up to
    ties of 32 bits of hash and 134 s of time."""
    step = F.shiftright(F.unix_micros(ts), _TIME_SHIFT) + F.lit(_TIME_OFFSET)
    step = F.coalesce(F.least(F.greatest(step, F.lit(0)), F.lit((1 << _LOW_BITS) - 1)), F.lit(0))
    return hash_column.bitwiseAND(F.lit(_HIGH_MASK)).bitwiseOR(step)


def presorted(frame: DataFrame, keys: Sequence[str], ts: str) -> DataFrame:
    """`frame` with KEY_HASH added, hash-partitioned by `keys` (the shuffle the caller's
    window partitioned by (KEY_HASH, *keys) then reuses) and sorted within each partition
    by sort_hint()."""
    hashed = frame.withColumn(KEY_HASH, key_hash(keys))
    clustered = hashed.repartition(*[F.col(f"`{k}`") for k in keys])
    return clustered.sortWithinPartitions(sort_hint(F.col(KEY_HASH), F.col(ts)))
