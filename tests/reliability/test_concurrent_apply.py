"""Several `skewless apply` at once against one registry, each with other definitions:
each applies or fails with a retryable error in one line, and the registry's history
stays whole."""

from __future__ import annotations

from pathlib import Path

import pytest
from benchmarks.reliability.applies import concurrent_applies
from benchmarks.reliability.repo import RepoShape, build_repo
from benchmarks.reliability.variants import Variant

from tests.reliability.conftest import VARIANTS


@pytest.mark.parametrize("variant", VARIANTS)
def test_concurrent_applies_apply_or_fail_retryably(variant: Variant, tmp_path: Path) -> None:
    base = build_repo(tmp_path / "base", "redis://127.0.0.1:1/0", RepoShape(drivers=10))
    result = concurrent_applies(
        base,
        tmp_path / "work",
        "redis://127.0.0.1:1/0",
        processes=variant.apply_processes,
        rounds=variant.apply_rounds,
    )
    assert len(result.rounds) == variant.apply_rounds
    for n, rnd in enumerate(result.rounds):
        outcomes = [(a.variant, a.outcome, a.message) for a in rnd.applies]
        assert {a.outcome for a in rnd.applies} <= {"applied", "conflict", "locked"}, outcomes
        assert not any(a.traceback for a in rnd.applies + rnd.retries)
        made = sorted(a.version for a in rnd.applies if a.version is not None)
        assert made, f"round {n}: no apply succeeded: {outcomes}"
        # one registry version per successful apply, numbered on from the round's start
        start = rnd.version_before
        assert made == list(range(start + 1, start + 1 + len(made)))
        assert rnd.after_concurrent.version == start + len(made)
        # every failed apply succeeds when run again: the error was a retryable one
        assert [a.outcome for a in rnd.retries] == ["applied"] * len(rnd.retries)
        final = rnd.after_retries
        assert final.version == start + variant.apply_processes
        assert final.apply_versions == list(range(1, final.version + 1))
        assert final.gaps == []
        # what is applied last is what the registry holds
        assert "No changes" in rnd.last_plan, rnd.last_plan
        assert len(final.current_views) == 3  # stats, zones and the last variant's view
