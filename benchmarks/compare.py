"""Row-by-row comparison of a training set with the reference, matched on `row_id`.

Nothing is repaired before comparing: a row the system lost is missing, a row it
returned twice is duplicated, and a value is differing unless it equals the reference's.
Two conventions only, applied to every system alike: a value may come back in a wider
type of the same kind (float32 as float64, int32 as int64; pandas turns integer columns
with missing values into float64), and NaN counts as null (pandas' marker for a missing
value; the generated data holds no NaN values, so this hides nothing).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc


def _aligned(a: pa.Array, b: pa.Array) -> tuple[pa.Array, pa.Array]:
    if a.type == b.type:
        return a, b
    for source, target in ((b, a.type), (a, b.type)):
        try:
            cast = source.cast(target)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            continue
        return (a, cast) if source is b else (cast, b)
    return pa.array(a.to_pylist(), pa.string()), pa.array(b.to_pylist()).cast(pa.string())


def _nan_to_null(a: pa.Array) -> pa.Array:
    if pa.types.is_floating(a.type):
        return pc.if_else(pc.is_nan(a), pa.nulls(len(a), a.type), a)
    return a


def same_values(got: pa.Array, ref: pa.Array) -> np.ndarray:
    """Per position: equal, or both null."""
    a, b = _aligned(_nan_to_null(got), _nan_to_null(ref))
    both_null = pc.and_(pc.is_null(a), pc.is_null(b))
    equal = pc.fill_null(pc.equal(a, b), False)
    same = pc.or_(equal, both_null)
    return np.asarray(same.to_numpy(zero_copy_only=False), dtype=bool)


def compare(got: pa.Table, ref: pa.Table, columns: list[str]) -> dict[str, Any]:
    """Missing, duplicated and extra rows, and differing values per column."""
    n = ref.num_rows
    ref_ids = ref.column("row_id").to_numpy()
    if not np.array_equal(ref_ids, np.arange(n)):
        raise ValueError("the reference must hold row_id 0..n-1 in order")
    ids = got.column("row_id").to_numpy(zero_copy_only=False).astype(np.int64)
    known = (ids >= 0) & (ids < n)
    counts = np.bincount(ids[known], minlength=n)
    # The first occurrence of each row id in `got`, in reference order.
    order = np.argsort(ids, kind="stable")
    sorted_ids = ids[order]
    first = np.searchsorted(sorted_ids, np.arange(n))
    present = counts > 0
    take = order[first[present]]
    differing_rows = np.zeros(int(present.sum()), dtype=bool)
    per_column: dict[str, int] = {}
    for name in columns:
        if name not in got.column_names:
            per_column[name] = int(present.sum())
            differing_rows[:] = True
            continue
        a = got.column(name).combine_chunks().take(pa.array(take))
        b = ref.column(name).combine_chunks().filter(pa.array(present))
        diff = ~same_values(a, b)
        per_column[name] = int(diff.sum())
        differing_rows |= diff
    return {
        "rows_expected": n,
        "rows_returned": got.num_rows,
        "rows_missing": int((~present).sum()),
        "rows_duplicated": int((counts[counts > 1] - 1).sum()),
        "rows_unknown": int((~known).sum()),
        "rows_differing": int(differing_rows.sum()),
        "values_differing": int(sum(per_column.values())),
        "values_differing_per_column": per_column,
    }
