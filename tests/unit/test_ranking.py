"""The ranking rule's engine-free parts: the tie hash's inputs and the rank as bytes."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from skewless.rules.ranking import (
    RANK_BYTES,
    HashAtom,
    hash_atoms,
    rank_bytes,
    rank_bytes_many,
    rank_from_bytes,
)
from skewless.types import Array, Float64, Int64, String

I64 = st.integers(-(2**63), 2**63 - 1)
CREATED = st.integers(-(2**63) + 1, 2**63 - 1)  # -2**63 would be a null (rank_bytes)


def test_ranking_hash_atoms_mark_nulls_and_array_sizes() -> None:
    atoms = hash_atoms([("trips", Int64), ("tags", Array(String)), ("rating", Float64)])
    assert atoms == (
        HashAtom("is_null", "trips"),
        HashAtom("value", "trips"),
        HashAtom("is_null", "tags"),
        HashAtom("size", "tags"),
        HashAtom("elements", "tags"),
        HashAtom("is_null", "rating"),
        HashAtom("value", "rating"),
    )


@given(a=st.tuples(I64, st.none() | CREATED, I64), b=st.tuples(I64, st.none() | CREATED, I64))
def test_ranking_rank_bytes_order_as_the_rank(
    a: tuple[int, int | None, int], b: tuple[int, int | None, int]
) -> None:
    def key(t: tuple[int, int | None, int]) -> tuple[int, bool, int, int]:
        return (t[0], t[1] is not None, t[1] or 0, t[2])

    assert len(rank_bytes(*a)) == RANK_BYTES
    assert (rank_bytes(*a) < rank_bytes(*b)) == (key(a) < key(b))
    assert (rank_bytes(*a) == rank_bytes(*b)) == (key(a) == key(b))
    assert rank_from_bytes(rank_bytes(*a)) == a


@given(st.lists(st.tuples(I64, st.none() | CREATED, I64), max_size=20))
def test_ranking_rank_bytes_many_equals_rank_bytes_per_row(
    rows: list[tuple[int, int | None, int]],
) -> None:
    events = np.array([r[0] for r in rows], dtype=np.int64)
    created = np.array([r[1] or 0 for r in rows], dtype=np.int64)
    valid = np.array([r[1] is not None for r in rows], dtype=np.bool_)
    ties = np.array([r[2] for r in rows], dtype=np.int64)
    many = rank_bytes_many(events, created, valid, ties)
    assert many.shape == (len(rows), RANK_BYTES)
    assert [bytes(row) for row in many] == [rank_bytes(*r) for r in rows]
