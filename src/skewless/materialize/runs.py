"""Materialization runs: choose the views and intervals, run the Spark job per view,
record every run in the registry.

A full run takes the event-time interval [start, end]. An incremental run takes, per
view, what arrived (source file modification time) since its base, that view's last run
over all of its history (an incremental run, or a full run without a start), plus rows
of older files whose event time lies past the base's end, all up to `end`: rows that
arrive late with old event times still reach the offline table and the online store. A
view's first incremental run (no such earlier run of its current definition) takes all
of its history up to `end`. A full run with a start is never a base: it skipped older
rows.

A Materializer is given what it needs (the registry, the Spark session, where the
offline tables and the online store are), never the FeatureStore facade.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from skewless.batch.feature_table import table_path
from skewless.batch.materialize import Interval, OnlineWriter, StatisticsRequest, materialize_view
from skewless.batch.window_materialize import materialize_window_view
from skewless.config import DRIVER_WRITE_MAX_KEYS, StatisticsConfig
from skewless.definitions import FeatureView
from skewless.errors import FeatureViewNotFoundError, NothingAppliedError
from skewless.fingerprint import feature_view_fingerprint
from skewless.registry import (
    Lease,
    MaterializationRecord,
    Registry,
    RegistryReader,
    VersionStatistics,
)
from skewless.timeutil import utc_micros

if TYPE_CHECKING:
    from pyspark.sql import SparkSession


@dataclass(frozen=True)
class OnlineTarget:
    """Where materialized values go online: a Redis URL (TLS already applied) and its
    password, and how many entities the driver writes itself before the executors do."""

    url: str
    password: str | None = None
    driver_write_max_keys: int = DRIVER_WRITE_MAX_KEYS


def applied_views(
    registry: RegistryReader, project: str, names: Sequence[str] | None
) -> list[FeatureView]:
    """The applied views called `names` (all of them, by name, when None)."""
    known: dict[str, FeatureView] = {}
    for record in registry.current("feature_view"):
        view = record.definition()
        if isinstance(view, FeatureView):
            known[view.name] = view
    if not known:
        raise NothingAppliedError(project)
    chosen = sorted(known) if names is None else list(names)
    for name in chosen:
        if name not in known:
            raise FeatureViewNotFoundError(name, known)
    return [known[n] for n in chosen]


@dataclass(frozen=True)
class Materializer:
    project: str
    repo_path: Path  # relative source paths resolve against it
    registry: Registry
    spark: SparkSession
    offline_root: str  # the Delta tables' root folder or URI
    online: OnlineTarget | None  # None: offline only
    statistics: StatisticsConfig | None = None  # None: no feature statistics

    def run(
        self,
        views: Sequence[FeatureView],
        start: datetime | None,
        end: datetime | None,
        *,
        incremental: bool,
        lease: Lease | None = None,
    ) -> list[MaterializationRecord]:
        """Materialize each view over [start, end] (event time; no start: all history;
        no end: now), or incrementally up to `end`; naive datetimes mean UTC. Every run
        is recorded in the registry as it finishes, fenced by `lease` when given (a
        scheduler's: the record, which the next incremental run starts from, is refused
        once another runner has taken the view)."""
        end_us = utc_micros(end or datetime.now(UTC))
        start_us = None if start is None else utc_micros(start)
        return [self._view(view, start_us, end_us, incremental, lease) for view in views]

    def _interval(
        self,
        view: FeatureView,
        data_hash: str,
        start_us: int | None,
        end_us: int,
        incremental: bool,
    ) -> Interval:
        if not incremental:
            return Interval(end_us=end_us, start_us=start_us)
        covering = [
            r
            for r in self.registry.materializations(view.name)
            if r.data_hash == data_hash and r.start_us is None
        ]
        if not covering:
            return Interval(end_us=end_us, records_seen=True)  # first: all history to end
        # The base is the last run over all history, as recorded: its watermark, end and
        # seen files describe one state (each carries its own base's forward), whatever
        # order earlier runs' ends came in.
        base = covering[-1]
        return Interval(
            end_us=end_us,
            arrived_after_us=base.arrival_watermark_us or 0,
            previous_end_us=base.end_us,
            seen_files=base.seen_files,
            records_seen=True,
        )

    def _view(
        self,
        view: FeatureView,
        start_us: int | None,
        end_us: int,
        incremental: bool,
        lease: Lease | None,
    ) -> MaterializationRecord:
        data_hash = feature_view_fingerprint(view).data_hash
        interval = self._interval(view, data_hash, start_us, end_us, incremental)
        writer = None
        if view.online and self.online is not None:
            writer = OnlineWriter.for_view(
                self.project, view, self.online.url, self.online.password
            )
        path = table_path(self.offline_root, self.project, view, data_hash)
        # a view with aggregations stores its events and, online, per entity its recent
        # events (batch/window_materialize.py)
        max_keys = (
            DRIVER_WRITE_MAX_KEYS if self.online is None else self.online.driver_write_max_keys
        )
        if view.aggregations:
            result = materialize_window_view(
                self.spark,
                view,
                self.repo_path,
                interval,
                writer=writer,
                delta_path=path,
                driver_write_max_keys=max_keys,
            )
        else:
            result = materialize_view(
                self.spark,
                view,
                self.repo_path,
                interval,
                writer=writer,
                delta_path=path,
                driver_write_max_keys=max_keys,
                statistics=self._statistics_request(view.name, data_hash),
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
            rows_inserted_offline=result.rows_inserted_offline,
            rows_updated_offline=result.rows_updated_offline,
            keys_offered_online=result.keys_offered,
            keys_written_online=result.keys_written,
            seconds=result.seconds,
            online_seconds=result.online_seconds,
            finished_at=datetime.now(UTC),
            seen_files=result.seen_files,
        )
        if record.arrival_watermark_us is None and interval.arrived_after_us is not None:
            # Nothing new arrived: keep the previous watermark and what it had seen.
            record = replace(
                record,
                arrival_watermark_us=interval.arrived_after_us,
                seen_files=interval.seen_files,
            )
        statistics = None
        if result.statistics is not None:
            statistics = VersionStatistics(
                view=view.name,
                data_hash=data_hash,
                delta_version=result.delta_version,
                kind=record.kind,
                start_us=interval.start_us,
                end_us=end_us,
                rows=result.rows_written_offline,
                recorded_at=record.finished_at,
                summaries=result.statistics,
            )
        self.registry.record_materialization(record, lease=lease, statistics=statistics)
        return record

    def _statistics_request(self, view: str, data_hash: str) -> StatisticsRequest | None:
        if self.statistics is None:
            return None
        return StatisticsRequest(
            self.registry.statistics_edges(view, data_hash),
            bins=self.statistics.bins,
            top_k=self.statistics.top_k,
        )
