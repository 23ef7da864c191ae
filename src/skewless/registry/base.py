"""Registry interfaces: what readers (serving, retrieval) see and what apply may do.

The serving path holds a `RegistryReader` and cannot mutate anything; only apply holds a
`Registry`. Every applied version of every object is kept, with its fingerprint, so a
training set can name exactly which definitions produced it.
"""

from __future__ import annotations

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


class Registry(RegistryReader, Protocol):
    def commit(self, base_version: int, writes: list[ObjectWrite], summary: str) -> int:
        """Record `writes` atomically as one apply. Raises RegistryConflictError unless the
        registry is still at `base_version`. Returns the new registry version."""
        ...

    def record_materialization(self, record: MaterializationRecord) -> None: ...

    def record_training_set(self, record: TrainingSetRecord) -> None:
        """Raises TrainingSetExistsError when the name is taken."""
        ...

    def record_erasure(self, name: str, erasure: ErasureRecord) -> None: ...

    def other_projects(self) -> list[str]:
        """The other projects the same registry holds."""
        ...

    def remove_project(self) -> list[str]:
        """Delete every record of this project at once; returns the projects left."""
        ...
