"""Which row wins: the one ranking rule of skewless. Engine-free.

The rows of one entity (equal join keys) that a lookup at time t may use are those with
an event time <= t (and >= t - ttl when the view has a ttl). The winner is the greatest
by its rank:

    1. the event time;
    2. the created time, a null created time ranking below every time;
    3. the tie hash: a signed 64-bit hash of the row's feature values (all of the
       view's features in schema order, whatever a caller requested);
    4. the feature values themselves, ordered as Spark orders a struct of them.

Steps 1 to 3 are what every store compares: the point-in-time join and
materialization's deduplication on Spark (batch/ranking.py builds their columns from
this module), the condition of the Delta MERGE into a feature table, and the online
store, whose values carry the three in their header as `rank_bytes` and whose
compare-and-set inside Redis compares those bytes (online/header.py, online/redis.py).
Step 4 decides only between rows that differ while their tie hashes are equal: a 64-bit
hash collision between two rows of one entity with equal event and created times. The
offline join still decides those by the values; the online store keeps the row it
stored first.

The tie hash is Spark's xxhash64 with seed 42 over a sequence of atoms (hash_atoms):
for each feature in schema order, whether it is null, then its value; for an array, its
size and then each element as a pair (is the element null, the element). xxhash64
skips null inputs, so without the markers (null, 1) and (1, null) would hash alike, and
without the sizes ([x], []) and ([], [x]) would. Spark hashes -0.0 as 0.0 and every NaN
alike, as it orders them: values that Spark considers equal hash equal.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt

from skewless.types import ArrayType, DType

# rank_bytes(): three big-endian unsigned 64-bit numbers.
RANK_BYTES = 24
_SIGN = 1 << 63
NULL_CREATED = 0  # a null created time, below every offset time


AtomKind = Literal["is_null", "size", "value", "elements"]


@dataclass(frozen=True, slots=True)
class HashAtom:
    """One input of the tie hash, taken from one feature.

    is_null:  whether the feature is null (a boolean, never null itself)
    size:     the number of elements of an array feature (null when it is null)
    value:    a scalar feature's value
    elements: an array feature's elements, each as (is the element null, the element)
    """

    kind: AtomKind
    feature: str


def hash_atoms(features: Sequence[tuple[str, DType]]) -> tuple[HashAtom, ...]:
    """The tie hash's inputs for a view's features (name, type), in schema order."""
    atoms: list[HashAtom] = []
    for name, dtype in features:
        atoms.append(HashAtom("is_null", name))
        if isinstance(dtype, ArrayType):
            atoms += [HashAtom("size", name), HashAtom("elements", name)]
        else:
            atoms.append(HashAtom("value", name))
    return tuple(atoms)


def rank_bytes(event_ts_us: int, created_ts_us: int | None, tie_hash: int) -> bytes:
    """The rank's first three fields as 24 bytes whose order (compared as unsigned
    bytes) is the rank's order: each signed number offset by 2**63 and stored
    big-endian; a null created time as 0, which is also where a created time of -2**63
    microseconds would go (290,000 years BC: Spark's timestamps start at year 1)."""
    created = NULL_CREATED if created_ts_us is None else created_ts_us + _SIGN
    return b"".join(n.to_bytes(8, "big") for n in (event_ts_us + _SIGN, created, tie_hash + _SIGN))


def rank_from_bytes(data: bytes) -> tuple[int, int | None, int]:
    """rank_bytes() read back: (event time, created time or None, tie hash)."""
    if len(data) != RANK_BYTES:
        raise ValueError(f"a rank is {RANK_BYTES} bytes, not {len(data)}")
    event, created, tie = (int.from_bytes(data[i : i + 8], "big") for i in (0, 8, 16))
    return event - _SIGN, None if created == NULL_CREATED else created - _SIGN, tie - _SIGN


def rank_bytes_many(
    event_ts_us: npt.NDArray[np.int64],
    created_ts_us: npt.NDArray[np.int64],
    created_valid: npt.NDArray[np.bool_],
    tie_hash: npt.NDArray[np.int64],
) -> npt.NDArray[np.uint8]:
    """rank_bytes() of every row, as a (rows, 24) array."""
    rows = len(event_ts_us)
    sign = np.uint64(_SIGN)
    created = created_ts_us.view(np.uint64) ^ sign
    created[~created_valid] = NULL_CREATED
    words = np.empty((rows, 3), dtype=">u8")
    words[:, 0] = event_ts_us.view(np.uint64) ^ sign
    words[:, 1] = created
    words[:, 2] = tie_hash.view(np.uint64) ^ sign
    return words.view(np.uint8).reshape(rows, RANK_BYTES)
