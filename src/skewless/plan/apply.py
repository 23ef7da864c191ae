"""Execute a Plan: the one code path behind `apply`."""

from __future__ import annotations

from skewless.plan.stages import AddObject, Plan, RemoveObject, UpdateObject
from skewless.registry import ObjectWrite, Registry


def to_writes(plan: Plan) -> list[ObjectWrite]:
    writes: list[ObjectWrite] = []
    for stage in plan.stages:
        match stage:
            case AddObject(kind=kind, name=name, fingerprint=fp, spec=spec):
                writes.append(
                    ObjectWrite(kind, name, fp.data_hash, fp.metadata_hash, spec, data_changed=True)
                )
            case UpdateObject(kind=kind, name=name, fingerprint=fp, spec=spec):
                writes.append(
                    ObjectWrite(
                        kind,
                        name,
                        fp.data_hash,
                        fp.metadata_hash,
                        spec,
                        data_changed=stage.data_changed,
                    )
                )
            case RemoveObject(kind=kind, name=name, old=old):
                writes.append(
                    ObjectWrite(
                        kind,
                        name,
                        old.data_hash,
                        old.metadata_hash,
                        old.spec,
                        data_changed=False,
                        removed=True,
                    )
                )
    return writes


def summarize(plan: Plan) -> str:
    counts = {"added": 0, "changed": 0, "removed": 0}
    for stage in plan.stages:
        match stage:
            case AddObject():
                counts["added"] += 1
            case UpdateObject():
                counts["changed"] += 1
            case RemoveObject():
                counts["removed"] += 1
    return ", ".join(f"{n} {k}" for k, n in counts.items())


def apply_plan(plan: Plan, registry: Registry) -> int:
    """Record the plan's stages in one registry transaction. Raises RegistryConflictError
    if another apply landed since the plan was made. Returns the new registry version,
    or the current one when there is nothing to do."""
    if not plan.has_changes:
        return plan.base_registry_version
    return registry.commit(plan.base_registry_version, to_writes(plan), summarize(plan))
