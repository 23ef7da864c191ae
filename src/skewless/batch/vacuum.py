"""Delta's VACUUM of a view's feature tables, a saved training set's table or a Delta
path, refused when it would delete the files of a version a saved training set (not
erased) pins: its own rows, or a Delta input of its manifest."""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass
from pathlib import Path

from pyspark.sql import SparkSession

from skewless.batch.erasure import child_session, delta_schema, feature_tables, table_commits
from skewless.batch.feature_table import current_version
from skewless.errors import VacuumRefusedError, VacuumTargetError, closest
from skewless.offline.erasure import (
    DELTA_RETENTION_HOURS,
    TableVacuum,
    VacuumKind,
    VacuumReport,
    broken_pins,
    erasable_view,
    pins,
    same_location,
)
from skewless.registry.base import RegistryReader

_RETENTION_CHECK = "spark.databricks.delta.retentionDurationCheck.enabled"


@dataclass(frozen=True)
class VacuumTarget:
    """What a vacuum covers: a view's feature tables, a saved set's table, or a path."""

    name: str
    kind: VacuumKind
    locations: tuple[str, ...]


def _looks_like_path(target: str) -> bool:
    return "/" in target or os.sep in target or "://" in target or Path(target).exists()


def resolve_vacuum_target(
    target: str,
    *,
    registry: RegistryReader,
    spark: SparkSession,
    project: str,
    offline_root: str,
) -> VacuumTarget:
    """The tables `target` names: a saved training set's, a feature view's (every
    definition's), or the Delta table at a path (a relative path is relative to the
    working folder). A name that matches more than one, or none, is a VacuumTargetError."""
    found: list[VacuumTarget] = []
    record = registry.training_set(target)
    if record is not None:
        found.append(VacuumTarget(target, "training set", (record.location,)))
    if registry.history("feature_view", target):
        view = erasable_view(registry, target)
        tables = feature_tables(spark, registry, project, offline_root, view)
        paths = tuple(path for _, path, _ in tables)
        found.append(VacuumTarget(target, "feature view", paths))
    if _looks_like_path(target):
        location = target if "://" in target else os.path.abspath(target)
        if delta_schema(spark, location) is not None:
            found.append(VacuumTarget(target, "path", (location,)))
        elif not found:
            raise VacuumTargetError(target, f"{location} is not a Delta table")
    if len(found) > 1:
        shown = ", ".join(p for t in found for p in t.locations) or "none"
        kinds = " and ".join(f"a {t.kind}" for t in found)
        raise VacuumTargetError(
            target, f"it names {kinds}: give the Delta path of the table instead ({shown})"
        )
    if not found:
        names = [r.name for r in registry.current("feature_view")]
        names += [r.name for r in registry.training_sets()]
        best = closest(target, names)
        hint = f" Did you mean '{best}'?" if best else ""
        raise VacuumTargetError(
            target, f"it is not a feature view, a saved training set or a Delta table.{hint}"
        )
    return found[0]


def vacuum(
    target: str,
    *,
    registry: RegistryReader,
    spark: SparkSession,
    project: str,
    offline_root: str,
    retain_hours: float = DELTA_RETENTION_HOURS,
    force: bool = False,
) -> VacuumReport:
    """Vacuum the tables `target` names (resolve_vacuum_target) with vacuum_tables."""
    if math.isnan(retain_hours) or retain_hours < 0:
        raise VacuumTargetError(
            target, f"the retention must be 0 hours or more, not {retain_hours}"
        )
    resolved = resolve_vacuum_target(
        target, registry=registry, spark=spark, project=project, offline_root=offline_root
    )
    return vacuum_tables(
        resolved, registry=registry, spark=spark, retain_hours=retain_hours, force=force
    )


def vacuum_tables(
    target: VacuumTarget,
    *,
    registry: RegistryReader,
    spark: SparkSession,
    retain_hours: float = DELTA_RETENTION_HOURS,
    force: bool = False,
) -> VacuumReport:
    """Delete the files of the target's tables that no version of the last
    `retain_hours` reads (Delta's VACUUM; a retention below Delta's 168 hours is allowed
    for this call only). Refused with a VacuumRefusedError naming the saved training
    sets (not erased) that pin a version of a table whose files it would delete, unless
    `force`: then the report lists the sets it broke. Nothing is vacuumed when any
    table is refused."""
    every_pin = pins(registry.training_sets())
    cutoff_us = time.time_ns() // 1000 - int(retain_hours * 3_600_000_000)
    planned = []
    refused: dict[str, int] = {}
    refused_at: list[str] = []
    for location in target.locations:
        mine = [p for p in every_pin if same_location(p.location, location)]
        broken = broken_pins(mine, table_commits(spark, location), cutoff_us) if mine else []
        planned.append((location, tuple(broken)))
        if broken:
            refused_at.append(location)
            for pin in broken:
                refused[pin.training_set] = min(
                    pin.delta_version, refused.get(pin.training_set, pin.delta_version)
                )
    if refused and not force:
        raise VacuumRefusedError(", ".join(refused_at), refused, retain_hours)
    tables = tuple(
        TableVacuum(location, _vacuum_table(spark, location, retain_hours), broken)
        for location, broken in planned
    )
    return VacuumReport(target.name, target.kind, retain_hours, force, tables)


def _vacuum_table(spark: SparkSession, location: str, retain_hours: float) -> int | None:
    """Vacuum one table; the number of files deleted, as Delta's VACUUM END commit
    reports it (None when Delta logs no vacuum)."""
    from delta.tables import DeltaTable  # noqa: PLC0415 - needs the JVM

    before = current_version(spark, location)
    session = child_session(spark, {_RETENTION_CHECK: "false"})
    DeltaTable.forPath(session, location).vacuum(float(retain_hours))
    ends = [
        c
        for c in table_commits(spark, location, limit=10)
        if c.version > before and c.operation == "VACUUM END"
    ]
    if not ends or "numDeletedFiles" not in ends[0].metrics:
        return None
    return int(ends[0].metrics["numDeletedFiles"])
