"""How sure a same-run latency ratio is: a paired block bootstrap over the load
generator's turns.

The gRPC servers are measured in turns (loadgen.interleaved_latencies): a turn of
TURN_CALLS calls to one server, then the next server's turn, and so on. A disturbance of
the shared machine (another tenant, a page-cache flush) lasts longer than a call, so
neighbouring calls are not independent: resampling single calls would give intervals far
too narrow. The turn is the unit instead. A bootstrap draw picks turn indices with
replacement and takes, for both servers, the turns of those indices, which were measured
side by side; the ratio of the two servers' percentiles over the drawn calls is one
replicate, and the interval is the central `level` share of the replicates.

A ratio whose whole interval lies within a target meets it, one whose whole interval lies
beyond misses it, and one whose interval straddles the limit is undecided by this run:
the machine's noise is larger than the distance to the target.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from benchmarks.loadgen import TURN_CALLS


@dataclasses.dataclass(frozen=True)
class RatioInterval:
    """percentile(a) / percentile(b) over every call, and its bootstrap interval."""

    ratio: float
    low: float
    high: float
    level: float
    turns: int
    draws: int

    def as_dict(self) -> dict[str, float | int]:
        return dataclasses.asdict(self)


def _turns(samples: Sequence[float], turn_calls: int) -> npt.NDArray[np.float64]:
    """The samples as one row per turn, the last (shorter) turn padded with NaN."""
    values = np.asarray(samples, dtype=np.float64)
    turns = -(-values.size // turn_calls)
    padded = np.full(turns * turn_calls, np.nan)
    padded[: values.size] = values
    return padded.reshape(turns, turn_calls)


def percentile_ratio_interval(
    a: Sequence[float],
    b: Sequence[float],
    *,
    percentile: float = 99.0,
    level: float = 0.95,
    draws: int = 2000,
    turn_calls: int = TURN_CALLS,
    seed: int = 0,
) -> RatioInterval:
    """The ratio of `a`'s to `b`'s `percentile` and its `level` interval, from `draws`
    paired resamples of the turns. `a` and `b` are one server's and another's latencies
    from the same interleaved run, in the order they were taken (so the k-th turn of each
    lies at the same positions). Deterministic for a given `seed`."""
    if len(a) != len(b):
        raise ValueError(f"paired samples differ in length: {len(a)} calls against {len(b)}")
    if not len(a):
        raise ValueError("no samples")
    if not 0 < level < 1:
        raise ValueError(f"level must lie in (0, 1), not {level}")
    if turn_calls < 1 or draws < 1:
        raise ValueError(f"turn_calls ({turn_calls}) and draws ({draws}) must be positive")
    turns_a, turns_b = _turns(a, turn_calls), _turns(b, turn_calls)
    turns = turns_a.shape[0]
    picks = np.random.default_rng(seed).integers(0, turns, size=(draws, turns))
    drawn_a = turns_a[picks].reshape(draws, -1)  # (draws, turns * turn_calls), NaN-padded
    drawn_b = turns_b[picks].reshape(draws, -1)
    replicates = np.nanpercentile(drawn_a, percentile, axis=1) / np.nanpercentile(
        drawn_b, percentile, axis=1
    )
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(replicates, [tail, 100 - tail])
    ratio = float(np.percentile(a, percentile) / np.percentile(b, percentile))
    return RatioInterval(ratio, float(low), float(high), level, turns, draws)
