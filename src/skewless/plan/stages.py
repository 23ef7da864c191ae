"""Plan stages: what an apply will do, as data.

`plan` prints these stages and `apply` executes the very same list, so the dry run is
exactly what runs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from skewless.fingerprint import Fingerprint
from skewless.registry import ObjectKind, ObjectRecord


@dataclass(frozen=True)
class AddObject:
    kind: ObjectKind
    name: str
    fingerprint: Fingerprint
    spec: dict[str, Any]

    @property
    def needs_materialization(self) -> bool:
        return self.kind == "feature_view"


@dataclass(frozen=True)
class UpdateObject:
    kind: ObjectKind
    name: str
    old: ObjectRecord
    fingerprint: Fingerprint
    spec: dict[str, Any]
    changed_fields: tuple[str, ...]

    @property
    def data_changed(self) -> bool:
        return self.fingerprint.data_hash != self.old.data_hash

    @property
    def needs_materialization(self) -> bool:
        return self.kind == "feature_view" and self.data_changed


@dataclass(frozen=True)
class RemoveObject:
    kind: ObjectKind
    name: str
    old: ObjectRecord

    needs_materialization = False


Stage = AddObject | UpdateObject | RemoveObject


@dataclass(frozen=True)
class Plan:
    project: str
    base_registry_version: int
    stages: list[Stage]
    unchanged: list[tuple[ObjectKind, str]] = field(default_factory=list)

    @property
    def has_changes(self) -> bool:
        return bool(self.stages)

    @property
    def views_to_materialize(self) -> list[str]:
        return [s.name for s in self.stages if s.needs_materialization]
