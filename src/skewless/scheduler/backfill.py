"""Backfills: a view's history materialized in chunks of event time, resumable.

`skewless backfill VIEW --start S --end E --chunk 1d` runs full materializations of
[S, S + 1d), [S + 1d, S + 2d), ... up to E (the last chunk ends at E, inclusive), oldest
first. Each chunk is a run in the history, tagged with the backfill's id: the view, its
definition's data hash and the command's interval and chunk size. Running the same
command again skips the chunks that succeeded, so a backfill stopped by a failure or a
kill resumes where it stopped; after a change of definition the id differs and every
chunk runs again.

A chunk holds the view's lease like a scheduled run (a backfill and the runner never
write one view at once), waiting for it while a runner holds it. Chunks write Delta
with the same merge as any run and Redis with ordered writes, so a chunk of old history
never replaces a newer online value. A chunk is a full run with a start: it is never
the base of an incremental run, whose watermark it leaves alone.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from skewless.definitions import FeatureView
from skewless.errors import BackfillFailedError, LeaseLostError, SkewlessError
from skewless.registry import Lease, MaterializationRecord, Registry, RunRecord, view_lease
from skewless.scheduler.clock import Clock
from skewless.scheduler.leases import renewed, wait_for_lease
from skewless.scheduler.runner import RunnerSettings
from skewless.timeutil import as_utc, utc_micros

log = logging.getLogger(__name__)

# runs one full materialization of a view over [start, end], fenced by `lease`
MaterializeRange = Callable[[FeatureView, datetime, datetime, Lease], MaterializationRecord]
_US = timedelta(microseconds=1)


@dataclass(frozen=True)
class Chunk:
    start: datetime
    end: datetime  # inclusive: the next chunk's start minus a microsecond, or the end


def chunks(start: datetime, end: datetime, size: timedelta) -> list[Chunk]:
    """[start, end] cut into chunks of `size`, oldest first; the last one ends at `end`
    (inclusive), so a range that is a whole number of chunks has that many."""
    if size <= timedelta(0):
        raise SkewlessError(f"--chunk must be a positive duration, not {size}")
    start, end = as_utc(start), as_utc(end)
    if end < start:
        raise SkewlessError(
            f"the backfill ends ({end.isoformat()}) before it starts ({start.isoformat()})"
        )
    out: list[Chunk] = []
    at = start
    while True:
        following = at + size
        if following >= end:
            out.append(Chunk(at, end))
            return out
        out.append(Chunk(at, following - _US))
        at = following


def backfill_id(view: str, data_hash: str, start: datetime, size: timedelta) -> str:
    """A backfill's chunk grid: the view's definition, the start (in UTC) and the chunk
    size. Its end is not part of it: the same command with a later end (`--end now`)
    resumes the same backfill and goes further."""
    return f"{view}@{data_hash[:12]}:{as_utc(start).isoformat()}/{size}"


@dataclass(frozen=True)
class BackfillReport:
    id: str
    chunks: int
    skipped: int  # already done by an earlier run of the same backfill
    runs: tuple[RunRecord, ...]  # this call's runs, failed attempts included


def backfill(
    registry: Registry,
    view: FeatureView,
    *,
    data_hash: str,
    start: datetime,
    end: datetime,
    size: timedelta,
    materialize: MaterializeRange,
    runner: str,
    clock: Clock,
    settings: RunnerSettings,
) -> BackfillReport:
    """Materialize `view` over [start, end] in chunks of `size`, skipping the chunks an
    earlier run of the same backfill finished. Raises BackfillFailedError once a chunk
    has failed settings.max_attempts times in this call."""
    ident = backfill_id(view.name, data_hash, start, size)
    planned = chunks(start, end, size)
    reached: dict[int | None, int] = {}  # chunk start -> the furthest end a run reached
    for r in registry.runs(view.name):
        if r.backfill == ident and r.status == "succeeded":
            reached[r.start_us] = max(reached.get(r.start_us, r.end_us), r.end_us)
    todo = [c for c in planned if reached.get(utc_micros(c.start), -1) < utc_micros(c.end)]
    runs: list[RunRecord] = []
    for i, chunk in enumerate(todo):
        for attempt in range(1, settings.max_attempts + 1):
            record = _chunk(
                registry,
                view,
                chunk,
                attempt=attempt,
                ident=ident,
                materialize=materialize,
                runner=runner,
                clock=clock,
                settings=settings,
            )
            runs.append(record)
            if record.status == "succeeded":
                break
            if attempt == settings.max_attempts:
                done = len(planned) - len(todo) + i
                raise BackfillFailedError(
                    view.name,
                    chunk.start,
                    chunk.end,
                    attempts=attempt,
                    error=record.error,
                    done=done,
                    left=len(planned) - done,
                )
            clock.wait(settings.backoff(attempt).total_seconds(), threading.Event())
    return BackfillReport(ident, len(planned), len(planned) - len(todo), tuple(runs))


def _chunk(
    registry: Registry,
    view: FeatureView,
    chunk: Chunk,
    *,
    attempt: int,
    ident: str,
    materialize: MaterializeRange,
    runner: str,
    clock: Clock,
    settings: RunnerSettings,
) -> RunRecord:
    ttl = settings.lease_seconds
    name = view_lease(view.name)
    lease = wait_for_lease(
        registry, name, holder=runner, ttl_s=ttl, clock=clock, stop=threading.Event()
    )
    assert lease is not None  # never stopped
    with renewed(registry, lease, ttl, clock) as held:
        run = registry.start_run(
            view.name,
            "backfill",
            tick_us=None,
            start_us=utc_micros(chunk.start),
            end_us=utc_micros(chunk.end),
            attempt=attempt,
            runner=runner,
            lease=held.lease,
            now=clock.now(),
            backfill=ident,
        )
        try:
            result = materialize(view, chunk.start, chunk.end, held.lease)
        except LeaseLostError:
            raise
        except Exception as exc:  # recorded; the caller retries or gives up
            log.warning("%s: backfill chunk %s failed: %s", view.name, chunk.start, exc)
            error = f"{type(exc).__name__}: {exc}"
            return registry.finish_run(
                run.id, "failed", lease=held.lease, now=clock.now(), error=error
            )
        return registry.finish_run(
            run.id,
            "succeeded",
            lease=held.lease,
            now=clock.now(),
            rows_read=result.rows_read,
            rows_written_offline=result.rows_written_offline,
            keys_written_online=result.keys_written_online,
            delta_version=result.delta_version,
        )
