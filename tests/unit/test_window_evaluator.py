"""The online evaluator of windowed aggregations (serving/windows.py) against the
brute-force reference (tests/window_reference.py), bit for bit.

The reference works on source rows; the evaluator gets what the writer stores: each
entity's events (the identity rule already applied), sorted by (time, values). So the
tests build the stored lists from reference.events() and check the evaluator twice: from
the decoded lists, and from stored values read back through the codec (EventListReader,
numpy's reading of the arrays), and with the events of a time in another order.
"""

from __future__ import annotations

import math
import random
import struct
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from skewless.online.codec import CodecError, Record, decode_value, encode_value
from skewless.online.event_lists import EVENT_TS
from skewless.serving.window_events import EventListReader, EventLists
from skewless.serving.windows import WindowSpec, evaluate, newest_events
from skewless.types import Array, DType, UnixTimestamp, parse_dtype
from tests.window_reference import RefAggregation, events, window_value
from tests.window_strategies import KINDS, _random_value, window_case

SECOND = 1_000_000


def same(a: Any, b: Any) -> bool:
    """Equal to the bit: NaN is NaN, -0.0 is not +0.0, 1 is not True."""
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        if math.isnan(a) or math.isnan(b):
            return math.isnan(a) and math.isnan(b)
        return a == b and math.copysign(1.0, a) == math.copysign(1.0, b)
    return bool(a == b)


def _order(v: Any) -> tuple[int, Any]:
    """The writer's order of values: nulls first, NaN above every number."""
    if v is None:
        return (0, 0)
    if isinstance(v, float) and math.isnan(v):
        return (2, 0)
    return (1, v)


def stored_lists(
    evs: Sequence[Mapping[str, Any]], columns: Sequence[str], rnd: random.Random | None = None
) -> list[list[Any]]:
    """One entity's events as the writer stores them: event times, then each column,
    sorted by (time, values); with `rnd`, the events sharing a time in random order."""
    key = [(e["ts"], tuple(_order(e[c]) for c in columns)) for e in evs]
    order = sorted(range(len(evs)), key=lambda i: key[i])
    if rnd is not None:
        order = sorted(order, key=lambda i: (evs[i]["ts"], rnd.random()))
    return [[evs[i]["ts"] for i in order], *([evs[i][c] for i in order] for c in columns)]


def fields_of(inputs: Mapping[str, str]) -> list[tuple[str, DType]]:
    return [(EVENT_TS, Array(UnixTimestamp))] + [
        (c, Array(parse_dtype(k)))  # type: ignore[arg-type]
        for c, k in inputs.items()
    ]


def encoded(
    rows: Sequence[list[list[Any]] | None], inputs: Mapping[str, str]
) -> list[bytes | None]:
    dtypes = [d for _, d in fields_of(inputs)]
    return [
        None if r is None else encode_value(Record(max(r[0], default=0), None, tuple(r)), dtypes)
        for r in rows
    ]


def spec(a: RefAggregation, inputs: Mapping[str, str]) -> WindowSpec:
    return WindowSpec(a.column, a.function, a.window_us, inputs[a.column])


def check_case(
    rows: Sequence[list[list[Any]] | None],
    per_row: Sequence[Sequence[Mapping[str, Any]]],
    inputs: Mapping[str, str],
    aggregations: Sequence[RefAggregation],
    times: Sequence[int],
) -> None:
    """The evaluator equals the reference for every row and aggregation at each of
    `times`, from decoded lists and (every other time) from stored values read back."""
    specs = [spec(a, inputs) for a in aggregations]
    decoded = EventLists.of(rows, inputs)
    read = EventListReader(fields_of(inputs))(encoded(rows, inputs))
    for k, now in enumerate(times):
        got = evaluate(read if k % 2 else decoded, specs, now)
        for a, column in zip(aggregations, got, strict=True):
            for i, evs in enumerate(per_row):
                want = window_value(evs, a, inputs[a.column], now)
                assert same(column[i], want), (a, i, now, k % 2, column[i], want)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    case=window_case(kinds=KINDS, min_rows=20, max_rows=200, max_times=40),
    shuffle=st.booleans(),
)
def test_evaluator_equals_the_reference_bit_for_bit(case: Any, shuffle: bool) -> None:
    evs = events(case.rows, case.keys, case.inputs, case.has_created)
    by_key: dict[Any, list[dict[str, Any]]] = {}
    for e in evs:
        by_key.setdefault(e["driver_id"], []).append(e)
    rnd = random.Random(len(evs)) if shuffle else None
    keys = sorted(by_key)
    columns = list(case.inputs)
    # every entity, an entity with nothing stored, and one stored twice
    rows: list[list[list[Any]] | None] = [stored_lists(by_key[k], columns, rnd) for k in keys]
    rows += [None, rows[0] if rows else None]
    per_row = [by_key[k] for k in keys] + [[], by_key[keys[0]] if keys else []]
    # request times on the windows' edges (the case's), a few per example
    times = sorted({t for _, t in case.times})
    check_case(rows, per_row, case.inputs, case.aggregations, times[:: max(1, len(times) // 6)])


# --- the edges, one by one --------------------------------------------------------------

F64 = {"x": "float64"}
I64 = {"x": "int64"}
NOW = 1_704_067_200 * SECOND
W = 10 * SECOND


def one(
    function: str,
    times: Sequence[int],
    values: Sequence[Any],
    inputs: Mapping[str, str] = F64,
    now: int = NOW,
    window: int = W,
) -> Any:
    """`function` over one entity's events at `now`, checked against the reference."""
    rows: list[list[list[Any]] | None] = [[list(times), list(values)]]
    agg = RefAggregation("a", "x", function, window)
    evs = [{"ts": t, "x": v} for t, v in zip(times, values, strict=True)]
    check_case(rows, [evs], inputs, [agg], [now])
    return evaluate(EventLists.of(rows, inputs), [spec(agg, inputs)], now)[0][0]


def test_window_takes_an_event_at_now_and_not_one_at_now_minus_window() -> None:
    assert one("count", [NOW - W, NOW - W + 1, NOW, NOW + 1], [1.0] * 4) == 2
    assert one("sum", [NOW - W, NOW - W + 1, NOW, NOW + 1], [1.0, 2.0, 4.0, 8.0]) == 6.0


def test_empty_window_counts_zero_and_others_are_null() -> None:
    for function in ("count", "count_distinct"):
        assert one(function, [NOW - W], [1], I64) == 0
        assert one(function, [], [], I64) == 0
    for function in ("sum", "mean", "stddev", "min", "max", "last"):
        assert one(function, [NOW + 1], [1.0]) is None
        assert one(function, [], []) is None


def test_null_inputs_are_ignored() -> None:
    assert one("count", [NOW, NOW], [None, 2.0]) == 1
    assert one("mean", [NOW - 1, NOW], [4.0, None]) == 4.0
    assert one("last", [NOW - 1, NOW], [4.0, None]) == 4.0
    assert one("min", [NOW], [None]) is None


def test_integer_sum_is_exact_and_null_past_int64() -> None:
    big = 2**63 - 1
    assert one("sum", [NOW, NOW], [big, -1], I64) == big - 1
    assert one("sum", [NOW - 1, NOW], [big, 1], I64) is None
    assert one("sum", [NOW - 1, NOW], [-(2**63), -1], I64) is None
    assert one("sum", [NOW - 2, NOW - 1, NOW], [big, 1, -1], I64) == big  # the total counts
    assert one("mean", [NOW - 1, NOW], [big, big], I64) == float(2**63 - 1)
    assert one("sum", [NOW], [2**53 + 1], I64) == 2**53 + 1


def test_float_sum_folds_in_time_then_value_order_from_positive_zero() -> None:
    # 1e16 + 1 rounds back to 1e16 (ties to even): the order of the additions shows
    times = [NOW - 3, NOW - 2, NOW - 1, NOW]
    assert one("sum", times, [1e16, 1.0, 1.0, -1e16]) == 0.0
    assert one("sum", times, [1.0, 1.0, 1e16, -1e16]) == 2.0
    # at one time, by value: -1e16, 1, 1, 1e16, whatever order they are given in
    assert one("sum", [NOW] * 4, [1.0, 1e16, 1.0, -1e16]) == 0.0
    assert one("sum", [NOW - 1] * 3 + [NOW], [1.0, 1e16, 1.0, -1e16]) == 2.0
    assert math.copysign(1.0, one("sum", [NOW], [-0.0])) == 1.0
    assert math.copysign(1.0, one("sum", [NOW, NOW], [-0.0, -0.0])) == 1.0
    assert math.isnan(one("sum", [NOW, NOW], [math.inf, -math.inf]))


def test_stddev_of_a_single_value_is_null_and_of_two_the_sample_deviation() -> None:
    assert one("stddev", [NOW], [3.0]) is None
    assert one("stddev", [NOW - 1, NOW], [1.0, 3.0]) == math.sqrt(2.0)
    assert one("stddev", [NOW - 1, NOW], [1, 3], I64) == math.sqrt(2.0)


def test_min_max_last_take_nan_as_greatest_and_give_positive_zero() -> None:
    assert math.isnan(one("max", [NOW, NOW], [1.0, math.nan]))
    assert one("min", [NOW, NOW], [1.0, math.nan]) == 1.0
    assert math.isnan(one("min", [NOW], [math.nan]))
    assert math.isnan(one("last", [NOW, NOW], [2.0, math.nan]))
    assert one("last", [NOW - 1, NOW], [math.nan, 2.0]) == 2.0
    for function in ("min", "max", "last"):
        got = one(function, [NOW], [-0.0])
        assert got == 0.0 and math.copysign(1.0, got) == 1.0


def test_last_takes_the_greatest_value_among_the_latest() -> None:
    assert one("last", [NOW - 1, NOW, NOW], [9, 3, 5], I64) == 5
    assert one("last", [NOW, NOW], ["b", "a"], {"x": "string"}) == "b"
    assert one("last", [NOW, NOW], [True, False], {"x": "bool"}) is True
    assert one("last", [NOW, NOW], [b"\x80", b"\x7f"], {"x": "bytes"}) == b"\x80"


def test_strings_and_bytes_compare_by_code_point_and_unsigned_byte() -> None:
    s = {"x": "string"}
    assert one("min", [NOW, NOW, NOW], ["é", "z", "B"], s) == "B"
    assert one("max", [NOW, NOW], ["😀", "\uffff"], s) == "😀"
    assert one("count_distinct", [NOW, NOW, NOW, NOW], ["a", "a", "b", None], s) == 2


def test_timestamps_aggregate_as_microseconds() -> None:
    t = {"x": "unix_timestamp"}
    assert one("max", [NOW, NOW], [-1, 5], t) == 5
    assert one("count_distinct", [NOW - 1, NOW], [7, 7], t) == 1


def test_long_window_before_the_first_microsecond_of_int64() -> None:
    assert one("count", [NOW], [1.0], window=NOW + 2**63 - 1) == 1


def test_evaluator_pads_rows_of_very_different_lengths_in_groups() -> None:
    """A row of many events next to rows of few: the folds are per group of lengths."""
    rnd = random.Random(7)
    lengths = [0, 1, 2, 3, 500, 5, 70, 1]
    rows: list[list[list[Any]] | None] = []
    per_row = []
    for n in lengths:
        times = sorted(NOW - rnd.randrange(2 * W) for _ in range(n))
        values = [rnd.choice([1e16, -1e16, 1.0, 0.1, math.nan, None]) for _ in range(n)]
        rows.append([times, values])
        per_row.append([{"ts": t, "x": v} for t, v in zip(times, values, strict=True)])
    aggs = [RefAggregation(f, "x", f, W) for f in ("sum", "mean", "stddev", "last", "min")]
    check_case(rows, per_row, F64, aggs, [NOW])


def test_newest_events_is_the_latest_time_within_the_horizon() -> None:
    rows: list[list[list[Any]] | None] = [
        [[NOW - W, NOW - 5, NOW, NOW + 1], [1.0] * 4],
        [[NOW - W], [1.0]],
        None,
    ]
    lists = EventLists.of(rows, F64)
    assert newest_events(lists, NOW, W) == [NOW, None, None]
    assert newest_events(lists, NOW - 1, W) == [NOW - 5, NOW - W, None]


# --- reading stored lists ---------------------------------------------------------------


def same_lists(got: EventLists, want: EventLists) -> None:
    """Equal events: offsets, times, and each column's kind, nulls and values."""
    assert np.array_equal(got.offsets, want.offsets)
    assert np.array_equal(got.times, want.times)
    for name, column in want.columns.items():
        assert got.columns[name].kind == column.kind
        assert np.array_equal(got.columns[name].valid, column.valid), name
        values = zip(got.columns[name].values.tolist(), column.values.tolist(), strict=True)
        assert all(same(a, b) for (a, b), ok in zip(values, column.valid, strict=True) if ok)


@settings(max_examples=150, deadline=None)
@given(
    kinds=st.lists(st.sampled_from(KINDS), min_size=1, max_size=4),
    seed=st.integers(0, 2**32 - 1),
    rows=st.integers(0, 30),
)
def test_reader_reads_what_the_decoder_does(kinds: list[str], seed: int, rows: int) -> None:
    """numpy's reading of the stored arrays equals the codec's decoding, value for
    value, whatever the elements (edge values, nulls, empty lists, rows not stored)."""
    rnd = random.Random(seed)
    inputs = {f"c{i}": k for i, k in enumerate(kinds)}
    lists: list[list[list[Any]] | None] = []
    for _ in range(rows):
        if rnd.random() < 0.2:
            lists.append(None)
            continue
        n = rnd.choice([0, 1, 2, 5, 40, 200])
        times = sorted(
            rnd.choice([NOW, -1, 0, -(2**62), 2**62, NOW + rnd.randrange(W)]) for _ in range(n)
        )
        cols = [
            [None if rnd.random() < 0.2 else _random_value(k, rnd, True) for _ in range(n)]
            for k in kinds
        ]
        lists.append([times, *cols])
    read = EventListReader(fields_of(inputs))(encoded(lists, inputs))
    same_lists(read, EventLists.of(lists, inputs))


def test_reader_refuses_lists_of_different_lengths_naming_the_column() -> None:
    dtypes = [d for _, d in fields_of(F64)]
    bad = encode_value(Record(NOW, None, ([NOW, NOW], [1.0])), dtypes)
    with pytest.raises(CodecError, match="2 event times and 1 values of 'x'"):
        EventListReader(fields_of(F64))([bad] * 10)


def test_reader_refuses_a_value_of_another_codec_version() -> None:
    dtypes = [d for _, d in fields_of(F64)]
    good = encode_value(Record(NOW, None, ([NOW], [1.0])), dtypes)
    with pytest.raises(CodecError, match="codec version"):
        EventListReader(fields_of(F64))([b"\x02" + good[1:]] * 10)


def test_reader_reads_values_past_64_kib_with_4_byte_offsets() -> None:
    rnd = random.Random(3)
    n = 9000  # 72 KB of float64 alone
    big = [sorted(NOW - rnd.randrange(W) for _ in range(n)), [rnd.random() for _ in range(n)]]
    rows: list[list[list[Any]] | None] = [[[NOW], [1.0]], big, None, [[], []]] * 3
    same_lists(EventListReader(fields_of(F64))(encoded(rows, F64)), EventLists.of(rows, F64))


def test_reader_reads_an_unusual_but_valid_entry_as_the_decoder_does() -> None:
    """The null indices before the values: valid protobuf, not the writer's order."""
    dtypes = [d for _, d in fields_of(F64)]
    value = encode_value(Record(NOW, None, ([NOW - 1, NOW], [1.5, None])), dtypes)
    values_field = b"\x0a\x10" + struct.pack("<dd", 1.5, 0.0)
    nulls_field = b"\x12\x01\x01"
    assert value.count(values_field + nulls_field) == 1
    swapped = value.replace(values_field + nulls_field, nulls_field + values_field)
    assert decode_value(swapped, dtypes).values == ([NOW - 1, NOW], [1.5, None])
    lists = EventListReader(fields_of(F64))([swapped, None] * 6)
    assert lists.columns["x"].valid.tolist() == [True, False] * 6
    assert lists.columns["x"].values.tolist()[::2] == [1.5] * 6


def test_reader_refuses_a_corrupt_entry_as_the_decoder_does() -> None:
    dtypes = [d for _, d in fields_of(F64)]
    value = encode_value(Record(NOW, None, ([NOW], [1.5])), dtypes)
    corrupt = value.replace(
        b"\x0a\x08" + struct.pack("<d", 1.5), b"\x0a\x09" + struct.pack("<d", 1.5)
    )
    with pytest.raises(CodecError) as decoded:
        decode_value(corrupt, dtypes)
    with pytest.raises(CodecError) as read:
        EventListReader(fields_of(F64))([corrupt] * 10)
    assert str(read.value) == str(decoded.value)
