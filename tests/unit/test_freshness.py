"""Per-view freshness (serving/freshness.py) and its gauges (grpc/metrics.py), without a
server: the rule over recorded runs, one read of a real SQLite registry, and the
collector's scrape when the registry reads and when it does not."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, Gauge, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from skewless import Entity, FeatureView, Field, FileSource, Float64, Int64
from skewless.errors import RegistryError
from skewless.fingerprint import feature_view_fingerprint
from skewless.grpc.metrics import FreshnessCollector, ServerMetrics
from skewless.registry import MaterializationRecord, SqliteRegistry
from skewless.serving.freshness import (
    FreshnessReader,
    ViewFreshness,
    read_freshness,
    view_freshness,
)
from skewless.timeutil import utc_micros

driver = Entity("driver", join_keys=["driver_id"])
NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)


def view(name: str = "stats", **kw: object) -> FeatureView:
    args: dict[str, object] = {
        "entities": [driver],
        "schema": [Field("driver_id", Int64), Field("rating", Float64)],
        "source": FileSource("data/stats.parquet", timestamp_field="ts"),
    }
    args.update(kw)
    return FeatureView(name, **args)


STATS = view()


def run(
    of: FeatureView = STATS,
    *,
    end: datetime,
    finished: datetime,
    start: datetime | None = None,
    kind: str = "incremental",
) -> MaterializationRecord:
    return MaterializationRecord(
        view=of.name,
        data_hash=feature_view_fingerprint(of).data_hash,
        kind="full" if kind == "full" else "incremental",
        start_us=None if start is None else utc_micros(start),
        end_us=utc_micros(end),
        arrival_watermark_us=None,
        delta_path=f"/lake/p/{of.name}",
        delta_version=1,
        rows_read=1,
        rows_written_offline=1,
        keys_offered_online=1,
        keys_written_online=1,
        seconds=1.0,
        finished_at=finished,
    )


def at(hours_ago: float) -> datetime:
    return NOW - timedelta(hours=hours_ago)


# --- the rule ----------------------------------------------------------------------------


def test_view_freshness_without_a_run_has_no_time() -> None:
    assert view_freshness([STATS], [], NOW) == [ViewFreshness("stats", None, None, None)]


def test_view_freshness_ignores_runs_of_an_older_definition_and_of_other_views() -> None:
    older = view(ttl=timedelta(hours=1))  # a data change: another data hash
    assert feature_view_fingerprint(older).data_hash != feature_view_fingerprint(STATS).data_hash
    records = [
        run(older, end=at(1), finished=at(0.5)),
        run(view("other"), end=at(1), finished=at(0.5)),
    ]
    assert view_freshness([STATS], records, NOW) == [ViewFreshness("stats", None, None, None)]


def test_view_freshness_takes_the_greatest_end_and_the_latest_finish() -> None:
    records = [
        run(STATS, end=at(2), finished=at(1.5), kind="full"),  # full, all history
        run(STATS, end=at(1), finished=at(0.9)),
        run(STATS, end=at(3), finished=at(0.5), kind="full"),  # a rerun of an older end
    ]
    assert view_freshness([STATS], records, NOW) == [
        ViewFreshness("stats", at(1), last_success=at(0.5), lag_seconds=3600.0)
    ]


def test_view_freshness_counts_a_backfill_chunk_only_when_its_end_is_the_newest() -> None:
    scheduled = run(STATS, end=at(1), finished=at(0.9))
    past = run(STATS, start=at(72), end=at(48), finished=at(0.2), kind="full")
    (got,) = view_freshness([STATS], [scheduled, past], NOW)
    assert (got.materialized_until, got.last_success) == (at(1), at(0.2))
    newest = run(STATS, start=at(1), end=at(0.25), finished=at(0.1), kind="full")
    (got,) = view_freshness([STATS], [scheduled, past, newest], NOW)
    assert (got.materialized_until, got.lag_seconds) == (at(0.25), 900.0)


def test_view_freshness_lag_is_negative_when_materialized_past_now() -> None:
    (got,) = view_freshness([STATS], [run(STATS, end=at(-0.5), finished=at(1))], NOW)
    assert got.lag_seconds == -1800.0


def test_view_freshness_leaves_out_views_not_served_online() -> None:
    offline = view("offline_only", online=False)
    records = [run(offline, end=at(1), finished=at(1)), run(STATS, end=at(1), finished=at(1))]
    assert [f.name for f in view_freshness([offline, STATS], records, NOW)] == ["stats"]


def test_view_freshness_takes_a_naive_finish_time_as_utc() -> None:
    naive = replace(run(STATS, end=at(1), finished=at(1)), finished_at=at(1).replace(tzinfo=None))
    aware = run(STATS, end=at(2), finished=at(2))
    (got,) = view_freshness([STATS], [naive, aware], NOW)
    assert got.last_success == at(1)


# --- the registry ------------------------------------------------------------------------


def test_read_freshness_reads_the_runs_recorded_in_the_registry(tmp_path: Path) -> None:
    registry = SqliteRegistry(tmp_path / "registry.db", "p")
    registry.record_materialization(run(STATS, end=at(2), finished=at(1.5)))
    other = view("other")
    assert read_freshness(registry, [STATS, other], NOW) == [
        ViewFreshness("stats", at(2), at(1.5), 7200.0),
        ViewFreshness("other", None, None, None),
    ]
    reader = FreshnessReader(registry, lambda: [STATS], lambda: utc_micros(at(1)))
    assert reader() == [ViewFreshness("stats", at(2), at(1.5), 3600.0)]


def test_read_freshness_reads_nothing_without_a_view_served_online(tmp_path: Path) -> None:
    unreadable = SqliteRegistry(tmp_path / "registry.db", "p")
    (tmp_path / "registry.db").write_bytes(b"not a database, and more than a few bytes")
    with pytest.raises(RegistryError):
        read_freshness(unreadable, [STATS], NOW)
    assert read_freshness(unreadable, [view("offline_only", online=False)], NOW) == []


# --- the gauges --------------------------------------------------------------------------

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(registry: CollectorRegistry) -> Samples:
    text = generate_latest(registry).decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def view_samples(samples: Samples) -> Samples:
    return {k: v for k, v in samples.items() if k[0].startswith("skewless_view_")}


def test_freshness_collector_exports_the_three_gauges_of_each_materialized_view() -> None:
    rows = [
        ViewFreshness("stats", at(2), at(1.5), 7200.0),
        ViewFreshness("never", None, None, None),  # no sample
    ]
    registry = CollectorRegistry()
    registry.register(FreshnessCollector(lambda: rows))
    stats = (("view", "stats"),)
    assert view_samples(scrape(registry)) == {
        ("skewless_view_materialized_until_seconds", stats): at(2).timestamp(),
        ("skewless_view_freshness_lag_seconds", stats): 7200.0,
        ("skewless_view_last_success_seconds", stats): at(1.5).timestamp(),
    }


def test_freshness_collector_reads_at_each_scrape() -> None:
    reads: list[int] = []

    def read() -> Sequence[ViewFreshness]:
        reads.append(1)
        return [ViewFreshness("stats", at(2), at(1.5), 7200.0 + len(reads))]

    metrics = ServerMetrics(0)
    metrics.watch_freshness(read)
    assert reads == []  # registering reads nothing
    lag = ("skewless_view_freshness_lag_seconds", (("view", "stats"),))
    assert scrape(metrics.registry)[lag] == 7201.0
    assert scrape(metrics.registry)[lag] == 7202.0


def test_freshness_collector_unreadable_registry_keeps_the_other_metrics_and_logs_each_error_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    outcomes: list[Exception | None] = [
        RegistryError("locked"),
        RegistryError("locked"),
        RegistryError("gone"),
        None,
        RegistryError("locked"),
    ]

    def read() -> Sequence[ViewFreshness]:
        outcome = outcomes.pop(0)
        if outcome is not None:
            raise outcome
        return [ViewFreshness("stats", at(2), at(1.5), 7200.0)]

    registry = CollectorRegistry()
    Gauge("skewless_online_serving", "serving", registry=registry).set(1)
    registry.register(FreshnessCollector(read))
    seen: list[Samples] = []
    with caplog.at_level(logging.INFO, logger="skewless.grpc.metrics"):
        for _ in range(5):
            seen.append(scrape(registry))
    assert [("skewless_online_serving", ()) in s for s in seen] == [True] * 5
    assert [len(view_samples(s)) for s in seen] == [0, 0, 0, 3, 0]
    assert [r.getMessage() for r in caplog.records] == [
        "view freshness left out of /metrics: cannot read the registry: RegistryError: locked",
        "view freshness left out of /metrics: cannot read the registry: RegistryError: gone",
        "view freshness: the registry is readable again",
        "view freshness left out of /metrics: cannot read the registry: RegistryError: locked",
    ]
