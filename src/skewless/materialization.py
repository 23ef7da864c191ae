"""Materialization runs: choose the views and intervals, run the Spark job per view,
record every run in the registry.

A full run takes the event-time interval [start, end]. An incremental run takes, per
view, what arrived (source file modification time) since that view's last recorded run,
plus rows whose event time lies past the last run's end, all up to `end`: rows that
arrive late with old event times still reach the offline table and the online store.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from skewless.batch.materialize import Interval, OnlineWriter, materialize_view, table_path
from skewless.config import resolve_path
from skewless.errors import FeatureViewNotFoundError, NothingAppliedError, SkewlessError
from skewless.fingerprint import feature_view_fingerprint
from skewless.registry import MaterializationRecord
from skewless.timeutil import utc_micros

if TYPE_CHECKING:
    from skewless.definitions import FeatureView
    from skewless.feature_store import FeatureStore


def parse_time(text: str) -> datetime:
    """An ISO-8601 date or time; naive means UTC. `now` is accepted."""
    if text == "now":
        return datetime.now(UTC)
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise SkewlessError(
            f"'{text}' is not an ISO-8601 date or time (e.g. 2026-01-31T12:00)"
        ) from None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _views(store: FeatureStore, names: Sequence[str] | None) -> list[FeatureView]:
    known = {v.name: v for v in store.list_feature_views()}
    if not known:
        raise NothingAppliedError(store.project)
    chosen = sorted(known) if names is None else list(names)
    for name in chosen:
        if name not in known:
            raise FeatureViewNotFoundError(name, known)
    return [known[n] for n in chosen]


def _interval(
    store: FeatureStore,
    view: FeatureView,
    data_hash: str,
    bounds: tuple[int | None, int],
    *,
    incremental: bool,
) -> Interval:
    start_us, end_us = bounds
    if not incremental:
        return Interval(end_us=end_us, start_us=start_us)
    previous = [r for r in store.registry.materializations(view.name) if r.data_hash == data_hash]
    if not previous:
        return Interval(end_us=end_us)  # first run: all history up to end
    watermarks = [r.arrival_watermark_us for r in previous if r.arrival_watermark_us is not None]
    return Interval(
        end_us=end_us,
        arrived_after_us=max(watermarks) if watermarks else 0,
        previous_end_us=max(r.end_us for r in previous),
    )


def materialize(
    store: FeatureStore,
    start: datetime | None,
    end: datetime | None,
    views: Sequence[str] | None,
    *,
    incremental: bool,
) -> list[MaterializationRecord]:
    url = store.config.online_store.connection_url(store.online_url())
    end_us = utc_micros(end or datetime.now(UTC))
    start_us = None if start is None else utc_micros(start)
    offline_root = resolve_path(store.repo_path, store.config.offline_store.path)
    records = []
    for view in _views(store, views):
        data_hash = feature_view_fingerprint(view).data_hash
        interval = _interval(store, view, data_hash, (start_us, end_us), incremental=incremental)
        writer = None
        if view.online:
            password = store.config.online_store.password
            writer = OnlineWriter.for_view(store.project, view, url, password)
        path = table_path(offline_root, store.project, view, data_hash)
        result = materialize_view(
            store.spark,
            view,
            store.repo_path,
            interval,
            writer=writer,
            delta_path=path,
            driver_write_max_keys=store.config.online_store.driver_write_max_keys,
        )
        record = MaterializationRecord(
            view=view.name,
            data_hash=data_hash,
            kind="incremental" if incremental else "full",
            start_us=interval.start_us,
            end_us=end_us,
            arrival_watermark_us=result.arrival_watermark_us,
            delta_path=path,
            delta_version=result.delta_version,
            rows_read=result.rows_read,
            rows_rejected=result.rows_rejected,
            rows_written_offline=result.rows_written_offline,
            keys_offered_online=result.keys_offered,
            keys_written_online=result.keys_written,
            seconds=result.seconds,
            online_seconds=result.online_seconds,
            finished_at=datetime.now(UTC),
        )
        if record.arrival_watermark_us is None and interval.arrived_after_us is not None:
            # Nothing new arrived: keep the previous watermark.
            record = replace(record, arrival_watermark_us=interval.arrived_after_us)
        store.registry.record_materialization(record)
        records.append(record)
    return records
