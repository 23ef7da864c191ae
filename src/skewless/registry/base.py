"""Registry interfaces: what readers (serving, retrieval) see and what apply may do.

The serving path holds a `RegistryReader` and cannot mutate anything; apply, materialize
and the scheduler's runner hold a `Registry`. Every applied version of every object is
kept, with its fingerprint, so a training set can name exactly which definitions produced
it.

Runners coordinate through leases: a named, expiring claim (a view's, "view:<view>") with
a fencing token. Every write a runner makes under a lease is checked against the stored
lease in the same transaction, so a runner whose lease another runner took records
nothing (LeaseLostError), however late its work finishes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, Protocol

from skewless.definitions import (
    AnyDefinition,
    Entity,
    FeatureService,
    FeatureView,
    OnDemandFeatureView,
)
from skewless.errors import RegistryError
from skewless.stats.summary import Summary

ObjectKind = Literal["entity", "feature_view", "on_demand_feature_view", "feature_service"]
# parents before children: an on-demand view reads feature views, a service lists both
KINDS: tuple[ObjectKind, ...] = (
    "entity",
    "feature_view",
    "on_demand_feature_view",
    "feature_service",
)


@dataclass(frozen=True)
class ObjectRecord:
    """One applied version of one object."""

    kind: ObjectKind
    name: str
    version: int  # 1, 2, ... for each applied change (data or metadata)
    data_version: int  # bumps only when the data hash changes
    data_hash: str
    metadata_hash: str
    spec: dict[str, Any]
    registry_version: int  # the apply that wrote it
    applied_at: datetime
    removed: bool = False

    def definition(self) -> AnyDefinition:
        """The stored definition, rebuilt by validation from JSON (never unpickled)."""
        models: dict[str, type[AnyDefinition]] = {
            "entity": Entity,
            "feature_view": FeatureView,
            "on_demand_feature_view": OnDemandFeatureView,
            "feature_service": FeatureService,
        }
        model = models[self.kind]
        try:
            return model.model_validate(self.spec)
        except Exception as exc:
            raise RegistryError(
                f"registry holds an unreadable {self.kind} '{self.name}' v{self.version}: {exc}"
            ) from exc


@dataclass(frozen=True)
class ObjectWrite:
    """A new version to record (or a removal), as decided by a plan."""

    kind: ObjectKind
    name: str
    data_hash: str
    metadata_hash: str
    spec: dict[str, Any]
    data_changed: bool
    removed: bool = False


@dataclass(frozen=True)
class ApplyRecord:
    registry_version: int
    applied_at: datetime
    summary: str


@dataclass(frozen=True)
class MaterializationRecord:
    """One materialization run of one view: what it read, wrote and left behind."""

    view: str
    data_hash: str  # the view definition it ran for
    kind: Literal["full", "incremental"]
    start_us: int | None  # event-time interval, inclusive; None: from the beginning
    end_us: int
    arrival_watermark_us: int | None  # newest source file modification time read
    delta_path: str
    delta_version: int
    rows_read: int
    rows_written_offline: int  # rows inserted or updated in the Delta table
    keys_offered_online: int
    keys_written_online: int  # the rest were already as new or newer online
    seconds: float
    finished_at: datetime
    online_seconds: float = 0.0  # of `seconds`, the reduction to one row per entity + Redis
    rows_rejected: int = 0  # of rows_read: a null join key or event time, never written
    # Source files (path, modification time in microseconds, size) modified within the
    # overlap before the arrival watermark whose rows up to `end_us` this run (or the run
    # it started from) took: the next incremental run does not list them again
    # (batch/materialize.py interval_rows).
    seen_files: tuple[tuple[str, int, int], ...] = ()
    # rows_written_offline as inserted and updated rows (the Delta commit's metrics);
    # None where a record does not hold them
    rows_inserted_offline: int | None = None
    rows_updated_offline: int | None = None


@dataclass(frozen=True)
class MaterializedUntil:
    """Of one view definition's successful runs: the greatest interval end (event time,
    microseconds) and the latest finish."""

    view: str
    data_hash: str
    end_us: int
    finished_at: datetime


@dataclass(frozen=True)
class ErasureRecord:
    """One right-to-erasure request's effect on one saved training set."""

    view: str  # the view whose entities were forgotten
    keys: int  # how many entity keys the request named
    rows_removed: int  # rows deleted from the saved set's table
    delta_version: int  # the saved table's version after the deletion
    erased_at: datetime


@dataclass(frozen=True)
class TrainingSetRecord:
    """A saved training set: its rows (a Delta table at a version) and its manifest."""

    name: str
    location: str  # the Delta table
    delta_version: int  # the version holding the rows as saved
    manifest: dict[str, Any]  # Manifest JSON (skewless.offline.manifest parses it)
    created_at: datetime
    description: str = ""
    erasures: tuple[ErasureRecord, ...] = ()  # oldest first; any: not reproducible


RunStatus = Literal["running", "succeeded", "failed", "skipped", "abandoned"]
RunTrigger = Literal["schedule", "once", "backfill", "manual"]
RUN_STATUSES: tuple[RunStatus, ...] = ("running", "succeeded", "failed", "skipped", "abandoned")
RUN_TRIGGERS: tuple[RunTrigger, ...] = ("schedule", "once", "backfill", "manual")


def view_lease(view: str) -> str:
    """The name of the lease that guards runs of `view`."""
    return f"view:{view}"


@dataclass(frozen=True)
class Lease:
    """A runner's claim on a name until `expires_at`. `token` grows by one each time the
    name is taken anew (from another holder, or after a release), never goes back, and
    is what every write under the lease is checked against."""

    name: str  # what it guards, e.g. "view:driver_hourly_stats"
    holder: str  # the runner's id
    token: int
    expires_at: datetime  # UTC; the epoch once released


@dataclass(frozen=True)
class RunRecord:
    """One run of one view, as the scheduler records it: "running" from its start, then
    one terminal status. A skipped record stands for ticks that were not run."""

    id: int
    view: str
    trigger: RunTrigger
    tick_us: int | None  # the schedule tick served (None: not scheduled)
    start_us: int | None  # event-time interval: None = from the beginning / incremental
    end_us: int
    status: RunStatus
    attempt: int  # 1, 2, ...
    started_at: datetime
    finished_at: datetime | None
    runner: str
    lease_token: int | None  # the token of the view's lease it ran under (None: no lease)
    rows_read: int | None = None
    rows_written_offline: int | None = None
    keys_written_online: int | None = None
    delta_version: int | None = None
    error: str = ""
    note: str = ""  # e.g. what a skipped record skipped
    backfill: str = ""  # the backfill's id for its chunks ("" otherwise)


@dataclass(frozen=True)
class VersionStatistics:
    """The feature statistics of one Delta version of one view definition: the rows the
    run that committed the version materialized (every row of the interval it read, one
    per key and event time: for a full run over all history the whole table, for an
    incremental run what arrived since the run before)."""

    view: str
    data_hash: str
    delta_version: int
    kind: Literal["full", "incremental"]
    start_us: int | None  # the run's event-time interval (None: from the beginning)
    end_us: int
    rows: int
    recorded_at: datetime
    summaries: Mapping[str, Summary]  # by feature name, in the view's feature order


class RegistryReader(Protocol):
    def registry_version(self) -> int: ...

    def current(self, kind: ObjectKind | None = None) -> list[ObjectRecord]:
        """The live (not removed) latest version of every object, optionally of one kind."""
        ...

    def get(self, kind: ObjectKind, name: str) -> ObjectRecord | None: ...

    def history(self, kind: ObjectKind, name: str) -> list[ObjectRecord]: ...

    def applies(self) -> list[ApplyRecord]: ...

    def materializations(self, view: str | None = None) -> list[MaterializationRecord]:
        """Recorded runs, oldest first, optionally of one view."""
        ...

    def materialized_until(self) -> list[MaterializedUntil]:
        """Per view and definition (data hash) with a recorded run: its greatest end and
        latest finish, aggregated by the database rather than decoded record by record in
        Python (a metrics scrape calls it)."""
        ...

    def current_at(
        self, registry_version: int, kind: ObjectKind | None = None
    ) -> list[ObjectRecord]:
        """The live objects as they were right after apply `registry_version`."""
        ...

    def version_at(self, when: datetime) -> int:
        """The registry version current at `when` (0 before the first apply)."""
        ...

    def training_sets(self) -> list[TrainingSetRecord]:
        """Every saved training set, oldest first."""
        ...

    def training_set(self, name: str) -> TrainingSetRecord | None: ...

    def runs(self, view: str | None = None, last: int | None = None) -> list[RunRecord]:
        """Recorded scheduler runs, oldest first, optionally of one view; with `last`,
        only the newest `last` of them."""
        ...

    def lease(self, name: str) -> Lease | None:
        """The stored lease of `name`, expired or not; None if it was never taken."""
        ...

    def statistics(self, view: str, data_hash: str | None = None) -> list[VersionStatistics]:
        """The recorded statistics of `view`'s Delta versions (of one definition when
        `data_hash` is given), oldest version first."""
        ...

    def statistics_edges(self, view: str, data_hash: str) -> dict[str, tuple[float, ...]]:
        """The histogram edges the first summarized version of the definition fixed, by
        numeric feature: every later version is binned over them."""
        ...


class Registry(RegistryReader, Protocol):
    def commit(self, base_version: int, writes: list[ObjectWrite], summary: str) -> int:
        """Record `writes` atomically as one apply. Raises RegistryConflictError unless the
        registry is still at `base_version`. Returns the new registry version."""
        ...

    def record_materialization(
        self,
        record: MaterializationRecord,
        lease: Lease | None = None,
        statistics: VersionStatistics | None = None,
    ) -> None:
        """Record a materialization run and, in the same transaction, the statistics of
        the Delta version it committed (their edges become the definition's reference
        edges for the features that have none yet); under `lease` (the view's), only
        while it is still this holder's (else LeaseLostError, nothing written)."""
        ...

    def record_training_set(self, record: TrainingSetRecord) -> None:
        """Raises TrainingSetExistsError when the name is taken."""
        ...

    def record_erasure(self, name: str, erasure: ErasureRecord) -> None: ...

    def acquire_lease(self, name: str, holder: str, ttl_s: float, now: datetime) -> Lease | None:
        """Take `name` for `ttl_s` seconds from `now`, or extend it when `holder` already
        holds it (same token); None while another holder's lease is live."""
        ...

    def renew_lease(self, lease: Lease, ttl_s: float, now: datetime) -> Lease:
        """Extend `lease` to `now` + `ttl_s`. Raises LeaseLostError when another holder
        took it (or it was taken anew)."""
        ...

    def release_lease(self, lease: Lease) -> None:
        """Give `lease` up; nothing happens when it is already lost."""
        ...

    def start_run(
        self,
        view: str,
        trigger: RunTrigger,
        *,
        tick_us: int | None,
        start_us: int | None,
        end_us: int,
        attempt: int,
        runner: str,
        lease: Lease | None,
        now: datetime,
        backfill: str = "",
    ) -> RunRecord:
        """Record a "running" run (fenced by `lease` when given)."""
        ...

    def finish_run(
        self,
        run_id: int,
        status: RunStatus,
        *,
        lease: Lease | None,
        now: datetime,
        rows_read: int | None = None,
        rows_written_offline: int | None = None,
        keys_written_online: int | None = None,
        delta_version: int | None = None,
        error: str = "",
        note: str = "",
    ) -> RunRecord:
        """Give a running run its terminal status and figures (fenced by `lease` when
        given). Raises RegistryError when the run is unknown or already finished."""
        ...

    def other_projects(self) -> list[str]:
        """The other projects the same registry holds."""
        ...

    def remove_project(self) -> list[str]:
        """Delete every record of this project at once; returns the projects left."""
        ...
