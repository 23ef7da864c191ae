"""How fresh each served view is online: up to which event time its values are
materialized, and when its last successful run finished. Transport-free: the online
server's metrics (grpc/metrics.py) export it as gauges.

Only runs of a view's current definition count (a record whose data hash is the view's
fingerprint): a run of an earlier definition wrote another table and other values.

A view is materialized up to the greatest end of any successful run of its current
definition, whatever the run's kind or start. Runs over all history (incremental, or
full without a start) are what a schedule makes, and they move it forward. A full run
with a start (a backfill chunk) counts too: backfills usually fill the past, so their
ends lie before the scheduled runs' and change nothing, while a view filled only by a
backfill (oldest chunk first) shows how far it has come. The online store keeps per
entity the highest ranked row ever written, so a run never takes a value back to an
older one. What this does not see is a gap: a chunk that failed between two that
succeeded. That is completeness, not freshness; the run history says which runs failed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

from skewless.definitions import FeatureView
from skewless.fingerprint import feature_view_fingerprint
from skewless.registry import RegistryReader
from skewless.timeutil import from_micros, utc_micros


@dataclass(frozen=True)
class ViewFreshness:
    """One view's freshness at `now` (all None: no successful run of its current
    definition)."""

    name: str
    materialized_until: datetime | None  # online values take every event up to it
    last_success: datetime | None  # when the last successful run finished
    lag_seconds: float | None  # now - materialized_until (negative if that is ahead)


class SuccessfulRun(Protocol):
    """What freshness needs of a run: a MaterializationRecord, or the registry's
    per-definition MaterializedUntil."""

    @property
    def view(self) -> str: ...
    @property
    def data_hash(self) -> str: ...
    @property
    def end_us(self) -> int: ...
    @property
    def finished_at(self) -> datetime: ...


def view_freshness(
    views: Iterable[FeatureView],
    records: Sequence[SuccessfulRun],
    now: datetime,
    *,
    online_only: bool = True,
) -> list[ViewFreshness]:
    """The freshness of every view among `views` (in their order; only those with
    `online=True` unless `online_only` is False), from the recorded successful runs
    `records` (any views, any definitions); `now` is aware."""
    until_us: dict[tuple[str, str], int] = {}
    finished: dict[tuple[str, str], datetime] = {}
    for r in records:
        key = (r.view, r.data_hash)
        until_us[key] = max(until_us.get(key, r.end_us), r.end_us)
        # naive means UTC, as everywhere in skewless
        at = r.finished_at if r.finished_at.tzinfo else r.finished_at.replace(tzinfo=UTC)
        latest = finished.get(key)
        finished[key] = at if latest is None else max(latest, at)
    now_us = utc_micros(now)
    out: list[ViewFreshness] = []
    for view in views:
        if online_only and not view.online:
            continue
        key = (view.name, feature_view_fingerprint(view).data_hash)
        end_us = until_us.get(key)
        if end_us is None:
            out.append(ViewFreshness(view.name, None, None, None))
            continue
        out.append(
            ViewFreshness(
                view.name,
                materialized_until=from_micros(end_us),
                last_success=finished[key],
                lag_seconds=(now_us - end_us) / 1e6,
            )
        )
    return out


def read_freshness(
    registry: RegistryReader, views: Iterable[FeatureView], now: datetime
) -> list[ViewFreshness]:
    """view_freshness() over the registry's recorded runs, read once (not at all when no
    view is served online)."""
    online = [v for v in views if v.online]
    if not online:
        return []
    return view_freshness(online, registry.materialized_until(), now)


@dataclass(frozen=True)
class FreshnessReader:
    """read_freshness() of the views `views()` gives at the time `clock()` gives
    (microseconds since the epoch), each time it is called: what a scrape calls."""

    registry: RegistryReader
    views: Callable[[], Iterable[FeatureView]]
    clock: Callable[[], int]

    def __call__(self) -> list[ViewFreshness]:
        return read_freshness(self.registry, self.views(), from_micros(self.clock()))
