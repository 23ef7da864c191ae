from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st

from skewless.timeutil import from_micros, from_micros_shared, utc_micros

# Python's datetime range, in microseconds since the epoch.
MICROS = st.integers(
    utc_micros(datetime(1, 1, 1, tzinfo=UTC)), utc_micros(datetime(9999, 12, 31, tzinfo=UTC))
)


@given(st.lists(st.one_of(st.none(), MICROS)), st.lists(MICROS))
def test_from_micros_shared_equals_from_micros_and_shares_objects(
    values: list[int | None], earlier: list[int]
) -> None:
    shared: dict[int, datetime] = {}
    before = from_micros_shared(earlier, shared)
    got = from_micros_shared(values, shared)
    assert got == [None if t is None else from_micros(t) for t in values]
    assert all(t is None or t.tzinfo is UTC for t in got)
    seen = {id(t) for t in before}
    for t, when in zip(values, got, strict=True):
        if t is not None:
            assert when is shared[t]  # one object per distinct time
            if t in earlier:
                assert id(when) in seen  # across calls that pass the same dict
