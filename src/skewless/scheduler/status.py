"""Per view: how fresh its materialized values are, and whether that is late.

A view's values are complete up to the end of its newest successful materialization of
its current definition (any run: scheduled, manual or a backfill chunk); its lag is the
time since then. It is stale when the lag exceeds its expected freshness: the view's
`expected_freshness`, else, with a schedule, the time since the interval end of the tick
before the latest one (the latest tick's run may be under way; the one before it must
have succeeded: scheduler/cron.expected_freshness), else nothing is expected. A view
with a schedule or an expected freshness that was never materialized is stale.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from skewless.definitions import FeatureView, Schedule
from skewless.registry import RunRecord
from skewless.scheduler.cron import expected_freshness, next_tick
from skewless.serving.freshness import SuccessfulRun, view_freshness


@dataclass(frozen=True)
class ViewStatus:
    view: str
    schedule: Schedule | None
    materialized_until: datetime | None  # event time the values are complete up to
    last_success: datetime | None  # when that run finished
    lag: timedelta | None  # now - materialized_until
    expected: timedelta | None
    stale: bool
    last_run: RunRecord | None  # the newest run in the history, any status
    next_tick: datetime | None


def view_status(
    view: FeatureView,
    schedule: Schedule | None,
    ends: Sequence[SuccessfulRun],
    runs: Sequence[RunRecord],
    now: datetime,
) -> ViewStatus:
    """`ends`: the registry's materialized_until() (or MaterializationRecords)."""
    (fresh,) = view_freshness([view], ends, now, online_only=False)
    until = fresh.materialized_until
    lag = None if until is None else now - until
    expected = expected_freshness(schedule, view.expected_freshness, now)
    stale = False if expected is None else lag is None or lag > expected
    mine = [r for r in runs if r.view == view.name]
    return ViewStatus(
        view=view.name,
        schedule=schedule,
        materialized_until=until,
        last_success=fresh.last_success,
        lag=lag,
        expected=expected,
        stale=stale,
        last_run=max(mine, key=lambda r: r.id, default=None),
        next_tick=None if schedule is None else next_tick(schedule, now),
    )
