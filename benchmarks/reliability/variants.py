"""How big each scenario runs: SHORT in CI (every scenario within five minutes in all on
two cores), LONG behind the `reliability_long` marker and in the report."""

from __future__ import annotations

from dataclasses import dataclass

from benchmarks.reliability.kills import POINTS
from benchmarks.reliability.repo import RepoShape


@dataclass(frozen=True)
class Variant:
    name: str
    outage_clients: int  # clients under which Redis is killed or frozen
    outage_down_s: float  # Redis stays away at least this long
    outage_after_s: float  # load after every client had an answer again
    load_clients: int  # sustained load
    load_seconds: float
    fuzz_structured: int  # fuzzed requests
    fuzz_raw: int
    kill_chains: tuple[tuple[str, ...], ...]  # kill points, each chain in a fresh repo
    kill_shape: RepoShape  # the killed materialization's data
    apply_processes: int  # applies started at once
    apply_rounds: int


SHORT = Variant(
    name="short",
    outage_clients=16,
    outage_down_s=2.0,
    outage_after_s=1.0,
    load_clients=16,
    load_seconds=8.0,
    fuzz_structured=1_200,
    fuzz_raw=800,
    # A chain reaches both stores' partial states in two runs: orphaned Delta files,
    # then a committed table with half of its keys in Redis.
    kill_chains=(("delta-files", "redis-partial"),),
    kill_shape=RepoShape(drivers=20_000, rows_per_driver=2),
    apply_processes=4,
    apply_rounds=1,
)

LONG = Variant(
    name="long",
    outage_clients=32,
    outage_down_s=5.0,
    outage_after_s=5.0,
    load_clients=32,
    load_seconds=60.0,
    fuzz_structured=8_000,
    fuzz_raw=4_000,
    kill_chains=(
        *((point,) for point in POINTS),
        ("reading", "delta-files", "delta-commit", "redis-partial"),
    ),
    kill_shape=RepoShape(drivers=100_000, rows_per_driver=3),
    apply_processes=8,
    apply_rounds=4,
)
