"""The benchmark's row-by-row comparison: it must see every kind of wrong answer."""

from __future__ import annotations

import pyarrow as pa
from benchmarks.compare import compare

REF = pa.table(
    {
        "row_id": pa.array([0, 1, 2, 3], pa.int64()),
        "x": pa.array([1, None, 3, 4], pa.int64()),
        "y": pa.array([0.5, 1.5, None, 2.5], pa.float32()),
    }
)


def test_identical_result_has_no_differences() -> None:
    got = REF.take([3, 1, 0, 2])  # order does not matter
    out = compare(got, REF, ["x", "y"])
    assert out["rows_missing"] == out["rows_duplicated"] == out["values_differing"] == 0
    assert out["rows_differing"] == 0


def test_missing_duplicated_and_unknown_rows_are_counted() -> None:
    got = pa.concat_tables(
        [REF.take([0, 1, 1, 2]), REF.take([0]).set_column(0, "row_id", pa.array([9], pa.int64()))]
    )
    out = compare(got, REF, ["x"])
    assert (out["rows_missing"], out["rows_duplicated"], out["rows_unknown"]) == (1, 1, 1)


def test_differing_values_are_counted_per_column() -> None:
    got = REF.set_column(1, "x", pa.array([1, 2, 3, None], pa.int64()))
    out = compare(got, REF, ["x", "y"])
    assert out["values_differing_per_column"] == {"x": 2, "y": 0}
    assert out["rows_differing"] == 2


def test_pandas_style_widening_and_nan_for_missing_are_accepted() -> None:
    got = pa.table(
        {
            "row_id": REF.column("row_id"),
            "x": pa.array([1.0, float("nan"), 3.0, 4.0], pa.float64()),
            "y": pa.array([0.5, 1.5, float("nan"), 2.5], pa.float64()),
        }
    )
    assert compare(got, REF, ["x", "y"])["values_differing"] == 0


def test_a_missing_column_makes_every_row_differ() -> None:
    out = compare(REF.drop_columns(["y"]), REF, ["x", "y"])
    assert out["values_differing_per_column"]["y"] == 4
