from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from skewless.online.codec import (
    CodecError,
    Record,
    decode_value,
    encode_entity_key,
    encode_value,
    entity_key,
    order_bytes,
)
from skewless.types import Array, Bool, Bytes, Float32, Float64, Int32, Int64, String, UnixTimestamp

I64 = st.integers(-(2**63), 2**63 - 1)
TS = st.integers(-(2**62), 2**62)  # microseconds; the offset-binary header holds all int64

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


@given(row=typed_rows(), ets=TS, cts=st.none() | TS)
def test_codec_value_round_trips(
    row: tuple[list[Any], list[Any]], ets: int, cts: int | None
) -> None:
    dtypes, values = row
    data = encode_value(Record(ets, cts, tuple(values)), dtypes)
    back = decode_value(data, dtypes)
    assert (back.event_ts_us, back.created_ts_us) == (ets, cts)
    assert all(same(a, b) for a, b in zip(back.values, values, strict=True))


@given(a=st.tuples(TS, st.none() | TS), b=st.tuples(TS, st.none() | TS))
def test_codec_header_bytes_order_like_event_then_created(
    a: tuple[int, int | None], b: tuple[int, int | None]
) -> None:
    def rank(t: tuple[int, int | None]) -> tuple[int, int, int]:
        return (t[0], 0 if t[1] is None else 1, t[1] or 0)

    assert (order_bytes(*a) < order_bytes(*b)) == (rank(a) < rank(b))
    assert (order_bytes(*a) == order_bytes(*b)) == (rank(a) == rank(b))


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
    with pytest.raises(CodecError, match="codec version 9"):
        decode_value(b"\x09" + good[1:], [Int64])
    with pytest.raises(CodecError, match="join key value 1.5"):
        encode_entity_key([1.5])
