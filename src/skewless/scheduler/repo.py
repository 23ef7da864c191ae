"""The scheduler over a feature repo: its scheduled views, a runner, a backfill.

This is where the runner meets the repo's registry, Spark session and online store
(FeatureStore); the runner itself only sees a registry, the views and a function that
materializes one. The Spark session starts at the first run and stays up between runs,
so a run pays no JVM start.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from skewless.definitions import FeatureView
from skewless.errors import FeatureViewNotFoundError
from skewless.fingerprint import feature_view_fingerprint
from skewless.registry import Lease, MaterializationRecord
from skewless.scheduler.backfill import BackfillReport, backfill
from skewless.scheduler.clock import Clock, SystemClock
from skewless.scheduler.cron import schedule_of
from skewless.scheduler.runner import Runner, RunnerSettings, Scheduled, runner_id
from skewless.scheduler.status import ViewStatus, view_status

if TYPE_CHECKING:
    from skewless.feature_store import FeatureStore
    from skewless.materialize import Materializer


def applied_feature_views(store: FeatureStore) -> list[FeatureView]:
    views = [r.definition() for r in store.registry.current("feature_view")]
    return sorted((v for v in views if isinstance(v, FeatureView)), key=lambda v: v.name)


def scheduled_views(store: FeatureStore) -> list[Scheduled]:
    """The applied views with a schedule (their own, else the project's default)."""
    out = []
    for view in applied_feature_views(store):
        schedule = schedule_of(view, store.config)
        if schedule is not None:
            out.append(Scheduled(view, schedule))
    return out


def runner_settings(store: FeatureStore) -> RunnerSettings:
    cfg = store.config.scheduler
    return RunnerSettings(
        lease_seconds=cfg.lease_seconds,
        max_attempts=cfg.max_attempts,
        backoff_seconds=cfg.backoff_seconds,
        max_backoff_seconds=cfg.max_backoff_seconds,
        poll_seconds=cfg.poll_seconds,
    )


def _materializer(store: FeatureStore) -> Callable[[], Materializer]:
    """The repo's Materializer, built at first use and kept (one Spark session)."""
    held: list[Materializer] = []

    def get() -> Materializer:
        if not held:
            held.append(store.materializer())
        return held[0]

    return get


def repo_runner(
    store: FeatureStore, *, clock: Clock | None = None, runner: str | None = None
) -> Runner:
    """A runner of the repo's scheduled views (re-read from the registry at every pass,
    so an apply takes effect without a restart)."""
    materializer = _materializer(store)

    def materialize(view: FeatureView, end: datetime, lease: Lease) -> MaterializationRecord:
        (record,) = materializer().run([view], None, end, incremental=True, lease=lease)
        return record

    def cancel() -> None:  # the lease is gone: stop this process's Spark jobs
        store.spark.sparkContext.cancelAllJobs()

    return Runner(
        store.registry,
        lambda: scheduled_views(store),
        materialize,
        settings=runner_settings(store),
        clock=clock,
        runner=runner,
        on_lease_lost=cancel,
    )


def repo_backfill(
    store: FeatureStore,
    view_name: str,
    start: datetime,
    end: datetime,
    chunk: timedelta,
    *,
    clock: Clock | None = None,
    runner: str | None = None,
) -> BackfillReport:
    """Materialize one applied view over [start, end] in chunks, resumable."""
    views = {v.name: v for v in applied_feature_views(store)}
    if view_name not in views:
        raise FeatureViewNotFoundError(view_name, views)
    view = views[view_name]
    materializer = _materializer(store)

    def materialize(
        view: FeatureView, start: datetime, end: datetime, lease: Lease
    ) -> MaterializationRecord:
        (record,) = materializer().run([view], start, end, incremental=False, lease=lease)
        return record

    return backfill(
        store.registry,
        view,
        data_hash=feature_view_fingerprint(view).data_hash,
        start=start,
        end=end,
        size=chunk,
        materialize=materialize,
        runner=runner or runner_id(),
        clock=clock or SystemClock(),
        settings=runner_settings(store),
    )


def repo_status(store: FeatureStore, now: datetime) -> list[ViewStatus]:
    """Every applied view's freshness at `now`."""
    ends = store.registry.materialized_until()
    runs = store.registry.runs()
    return [
        view_status(view, schedule_of(view, store.config), ends, runs, now)
        for view in applied_feature_views(store)
    ]
