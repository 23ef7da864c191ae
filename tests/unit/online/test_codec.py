from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from skewless.online.codec import (
    HEADER_SIZE,
    RANK_SLICE,
    CodecError,
    Record,
    column_decoder,
    decode_value,
    encode_entity_key,
    encode_value,
    entity_key,
    entity_keys,
    entry_gatherer,
    event_times,
    key_prefix,
)
from skewless.online.entries import NULL_ENTRY, encode_entry
from skewless.types import Array, Bool, Bytes, Float32, Float64, Int32, Int64, String, UnixTimestamp

I64 = st.integers(-(2**63), 2**63 - 1)
TS = st.integers(-(2**62), 2**62)  # microseconds; the offset-binary header holds all int64
TIE = st.integers(-(2**63), 2**63 - 1)

SCALARS: dict[Any, st.SearchStrategy[Any]] = {
    Int64: I64,
    Int32: st.integers(-(2**31), 2**31 - 1),
    Float64: st.floats(allow_nan=True),
    Float32: st.floats(width=32, allow_nan=True),
    String: st.text(),
    Bool: st.booleans(),
    Bytes: st.binary(),
    UnixTimestamp: I64,
}


@st.composite
def typed_rows(draw: st.DrawFn) -> tuple[list[Any], list[Any]]:
    dtypes: list[Any] = []
    values: list[Any] = []
    for _ in range(draw(st.integers(0, 8))):
        scalar = draw(st.sampled_from(list(SCALARS)))
        if draw(st.booleans()):
            dtypes.append(Array(scalar))
            values.append(draw(st.none() | st.lists(st.none() | SCALARS[scalar], max_size=4)))
        else:
            dtypes.append(scalar)
            values.append(draw(st.none() | SCALARS[scalar]))
    return dtypes, values


def same(a: Any, b: Any) -> bool:
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, float) and isinstance(b, float):
        return (math.isnan(a) and math.isnan(b)) or a == b
    return bool(a == b) and type(a) is type(b)


@given(row=typed_rows(), ets=TS, cts=st.none() | TS, tie=TIE)
def test_codec_value_round_trips(
    row: tuple[list[Any], list[Any]], ets: int, cts: int | None, tie: int
) -> None:
    dtypes, values = row
    data = encode_value(Record(ets, cts, tuple(values), tie), dtypes)
    back = decode_value(data, dtypes)
    assert (back.event_ts_us, back.created_ts_us, back.tie_hash) == (ets, cts, tie)
    assert all(same(a, b) for a, b in zip(back.values, values, strict=True))


@given(a=st.tuples(TS, st.none() | TS, TIE), b=st.tuples(TS, st.none() | TS, TIE))
def test_codec_header_rank_bytes_order_like_the_rank(
    a: tuple[int, int | None, int], b: tuple[int, int | None, int]
) -> None:
    """The bytes the online compare-and-set compares order values as the ranking rule
    orders rows: event time, created time (null lowest), tie hash."""

    def rank(t: tuple[int, int | None, int]) -> tuple[int, int, int, int]:
        return (t[0], 0 if t[1] is None else 1, t[1] or 0, t[2])

    def header(t: tuple[int, int | None, int]) -> bytes:
        return encode_value(Record(t[0], t[1], (), t[2]), [])[RANK_SLICE]

    assert (header(a) < header(b)) == (rank(a) < rank(b))
    assert (header(a) == header(b)) == (rank(a) == rank(b))


KEY_PART = st.none() | I64 | st.text(max_size=6) | st.binary(max_size=6) | st.booleans()


@given(a=st.lists(KEY_PART, min_size=1, max_size=3), b=st.lists(KEY_PART, min_size=1, max_size=3))
def test_codec_entity_keys_are_injective(a: list[Any], b: list[Any]) -> None:
    def typed(values: list[Any]) -> list[tuple[str, Any]]:
        return [(type(v).__name__, v) for v in values]

    assert (encode_entity_key(a) == encode_entity_key(b)) == (typed(a) == typed(b))


def test_codec_keys_never_collide_on_separators() -> None:
    assert encode_entity_key(["a|b", "c"]) != encode_entity_key(["a", "b|c"])
    assert encode_entity_key([1]) != encode_entity_key(["1"])
    assert entity_key("p", "v", [1]).startswith(b"sk1|p|v|")


def test_codec_rejects_bad_input() -> None:
    with pytest.raises(CodecError, match="2 values for 1 features"):
        encode_value(Record(0, None, (1, 2)), [Int64])
    with pytest.raises(CodecError, match="cannot encode 'x' as int64"):
        encode_value(Record(0, None, ("x",)), [Int64])
    good = encode_value(Record(0, None, (1,)), [Int64])
    with pytest.raises(CodecError, match="truncated"):
        decode_value(good[:-1], [Int64])
    with pytest.raises(CodecError, match="trailing"):
        decode_value(good + b"\x00", [Int64])
    with pytest.raises(CodecError, match="codec version 9: this skewless reads version 3"):
        decode_value(b"\x09" + good[1:], [Int64])
    with pytest.raises(CodecError, match="join key value 1.5"):
        encode_entity_key([1.5])


# --- batch decoding and keys ------------------------------------------------------------


@st.composite
def stored_batches(draw: st.DrawFn) -> tuple[list[Any], list[bytes | None], list[int]]:
    """A view's dtypes, a batch of its stored values (None: not stored) and positions.
    Batches run past the size that the vectorized readers take (codec._FEW)."""
    dtypes, _ = draw(typed_rows())
    fixed = [Int64, Int32, Float64, Float32, Bool, UnixTimestamp]
    layout = draw(st.sampled_from(["typed", "fixed", "runs"]))
    if layout == "fixed":
        dtypes = draw(st.lists(st.sampled_from(fixed), min_size=1, max_size=8))
    elif layout == "runs":
        dtypes = draw(st.lists(st.sampled_from([*fixed] * 4 + [String, Bytes]), max_size=20))
    batch: list[bytes | None] = []
    for _ in range(draw(st.integers(0, 14))):
        if draw(st.integers(0, 4)) == 0:
            batch.append(None)
            continue
        values = []
        for dtype in dtypes:
            strategy = (
                st.lists(st.none() | SCALARS[dtype.element], max_size=3)
                if hasattr(dtype, "element")
                else SCALARS[dtype]
            )
            values.append(draw(st.none() | strategy) if draw(st.booleans()) else draw(strategy))
        record = Record(draw(TS), draw(st.none() | TS), tuple(values), draw(TIE))
        batch.append(encode_value(record, dtypes))
    if not dtypes or draw(st.booleans()):  # any selection, in any order
        positions = draw(st.permutations(range(len(dtypes))))[: draw(st.integers(0, len(dtypes)))]
    else:  # a run of consecutive features (read through a slice), often the whole view
        first = draw(st.integers(0, len(dtypes) - 1))
        positions = range(first, draw(st.integers(first, len(dtypes))))
    return dtypes, batch, list(positions)


@given(case=stored_batches())
def test_column_decoder_equals_decode_value_row_by_row(
    case: tuple[list[Any], list[bytes | None], list[int]],
) -> None:
    dtypes, batch, positions = case
    event_ts, columns = column_decoder(dtypes, positions)(batch)
    assert len(event_ts) == len(batch)
    assert len(columns) == len(positions)
    assert event_ts == event_times(batch)
    for row, data in enumerate(batch):
        if data is None:
            assert event_ts[row] is None
            assert all(column[row] is None for column in columns)
            continue
        record = decode_value(data, dtypes)
        assert event_ts[row] == record.event_ts_us
        for column, pos in zip(columns, positions, strict=True):
            assert same(column[row], record.values[pos]), (pos, dtypes[pos])


@given(case=stored_batches())
def test_gather_concatenates_the_entries_of_the_decoded_values(
    case: tuple[list[Any], list[bytes | None], list[int]],
) -> None:
    """Per selected feature, the gathered bytes are the entries of every row's decoded
    value, re-encoded (a null entry for a row with nothing stored)."""
    dtypes, batch, positions = case
    gathered = entry_gatherer(dtypes, positions)(batch)
    records = [None if data is None else decode_value(data, dtypes) for data in batch]
    expected = [
        b"".join(NULL_ENTRY if r is None else encode_entry(r.values[p], dtypes[p]) for r in records)
        for p in positions
    ]
    assert gathered == expected


@given(case=stored_batches(), cut=st.integers(0, 40), junk=st.binary(min_size=1, max_size=3))
def test_column_decoder_and_gather_refuse_what_decode_value_refuses(
    case: tuple[list[Any], list[bytes | None], list[int]], cut: int, junk: bytes
) -> None:
    dtypes, batch, positions = case
    stored = [d for d in batch if d is not None]
    if not stored:
        return
    for bad in (stored[0][: max(0, len(stored[0]) - 1 - cut)], stored[0] + junk):
        with pytest.raises(CodecError) as alone:
            decode_value(bad, dtypes)
        with pytest.raises(CodecError) as batched:
            column_decoder(dtypes, positions)([*stored, bad])
        assert str(batched.value) == str(alone.value)
        with pytest.raises(CodecError) as gathered:
            entry_gatherer(dtypes, positions)([*stored, bad])
        assert str(gathered.value) == str(alone.value)


def test_column_decoder_and_gather_of_rows_with_nothing_stored() -> None:
    dtypes = [Float64, Int64, Bool, String]
    some = [None] * 11 + [encode_value(Record(1, None, (1.5, 2, True, "a")), dtypes)]
    for batch in ([None] * 12, some):
        event_ts, columns = column_decoder(dtypes, [0, 1, 2, 3])(batch)
        assert event_ts == [None] * 11 + [1 if batch is some else None]
        for column, value in zip(columns, (1.5, 2, True, "a"), strict=True):
            assert column == [None] * 11 + [value if batch is some else None]
        gathered = entry_gatherer(dtypes, [0, 3])(batch)
        last = (
            [encode_entry(1.5, Float64), encode_entry("a", String)]
            if batch is some
            else [NULL_ENTRY] * 2
        )
        assert gathered == [NULL_ENTRY * 11 + e for e in last]


def test_codec_refuses_other_versions_saying_to_materialize_again() -> None:
    record = Record(1, 5, (1.5, "a", None), -3)
    dtypes = [Float64, String, Int64]
    assert decode_value(encode_value(record, dtypes), dtypes) == record
    data = bytearray(encode_value(record, dtypes))
    for version in (1, 2, 4):
        data[0] = version
        message = f"codec version {version}: this skewless reads version 3 only; materialize"
        for batch in ([bytes(data)], [bytes(data)] * 10):
            with pytest.raises(CodecError, match=message):
                column_decoder(dtypes, [0])(batch)
            with pytest.raises(CodecError, match=message):
                entry_gatherer(dtypes, [0])(batch)
    data[0], data[1] = 3, 0x80
    with pytest.raises(CodecError, match="unknown flags 0x80"):
        decode_value(bytes(data), dtypes)


def test_codec_refuses_entries_its_encoder_never_writes() -> None:
    dtypes = [Bool, Int64]
    data = bytearray(encode_value(Record(1, None, (True, 1)), dtypes))
    bool_at = data.index(b"\x12\x02\x20\x01") + 3
    data[bool_at] = 2  # a bool of 2
    for batch in ([bytes(data)], [bytes(data)] * 12):
        with pytest.raises(CodecError, match="feature 0 \\(bool\\): a bool holds 2"):
            column_decoder(dtypes, [0, 1])(batch)
    data[bool_at - 1] = 0x08  # an int64's field where a bool belongs
    with pytest.raises(CodecError, match="field tag 0x8, not bool's"):
        decode_value(bytes(data), dtypes)
    with pytest.raises(CodecError, match="field tag 0x8"):
        entry_gatherer(dtypes, [0])([bytes(data)] * 12)


@pytest.mark.parametrize(
    ("dtype", "payload"),
    [
        (Int64, b"\x08"),  # the field's tag and no varint
        (Int64, b"\x08\x80\x80"),  # the last byte continues
        (Int64, b"\x08" + b"\xff" * 9 + b"\x02"),  # a tenth byte of more than one bit
        (Int64, b"\x08" + b"\xff" * 10 + b"\x01"),  # eleven bytes
        (Int32, b"\x38\x80\x80\x80\x80\x08"),  # 2**31, out of int32's range
        (UnixTimestamp, b"\x40\x81"),
        (Int32, b"\x38\x01\x00"),  # a byte after the varint
    ],
)
def test_column_decoder_refuses_malformed_varints_as_decode_value_does(
    dtype: Any, payload: bytes
) -> None:
    good = encode_value(Record(1, None, (5,)), [dtype])
    entry = b"\x12" + bytes([len(payload)]) + payload
    table_end = HEADER_SIZE + 2 * 2  # the header, then two 2-byte offsets
    bad = good[:HEADER_SIZE] + (table_end).to_bytes(2, "little")
    bad += (table_end + len(entry)).to_bytes(2, "little") + entry
    with pytest.raises(CodecError) as alone:
        decode_value(bad, [dtype])
    for batch in ([bad], [good] * 11 + [bad]):  # read one by one, and with numpy
        with pytest.raises(CodecError) as batched:
            column_decoder([dtype], [0])(batch)
        assert str(batched.value) == str(alone.value)
    assert column_decoder([dtype], [0])([good] * 12)[1] == [[5] * 12]


def test_codec_values_past_64_kib_take_4_byte_offsets() -> None:
    big = "x" * 70_000
    dtypes = [String, Int64]
    records = [Record(i, None, (big if i == 3 else "s", i)) for i in range(12)]
    batch = [encode_value(r, dtypes) for r in records]
    assert [data[1] for data in batch].count(1) == 1  # only the big one
    assert [decode_value(d, dtypes) for d in batch] == records
    assert column_decoder(dtypes, [0, 1])(batch)[1] == [
        [r.values[0] for r in records],
        list(range(12)),
    ]
    gathered = entry_gatherer(dtypes, [0])(batch)
    assert gathered == [b"".join(encode_entry(r.values[0], String) for r in records)]


KEY_VALUES = st.none() | st.booleans() | I64 | st.text(max_size=5) | st.binary(max_size=5)


@given(
    rows=st.lists(st.lists(KEY_VALUES, min_size=3, max_size=3), max_size=5), width=st.integers(0, 3)
)
def test_entity_keys_equal_entity_key_per_row(rows: list[list[Any]], width: int) -> None:
    rows = [row[:width] for row in rows]
    columns = [[row[i] for row in rows] for i in range(width)]
    keys = entity_keys(key_prefix("p", "v"), columns, len(rows))
    assert keys == [entity_key("p", "v", row) for row in rows]
