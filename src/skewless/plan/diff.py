"""Diff the repo's definitions against the registry into a Plan."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from skewless.definitions import Entity, FeatureService, FeatureView, OnDemandFeatureView
from skewless.fingerprint import fingerprint
from skewless.plan.stages import AddObject, Plan, RemoveObject, Stage, UpdateObject
from skewless.registry import KINDS, ObjectKind, RegistryReader
from skewless.repo import RepoContents
from skewless.source_schema import check_view_source


def _objects(
    contents: RepoContents,
) -> dict[ObjectKind, dict[str, Entity | FeatureView | OnDemandFeatureView | FeatureService]]:
    return {
        "entity": dict(contents.entities),
        "feature_view": dict(contents.feature_views),
        "on_demand_feature_view": dict(contents.on_demand_views),
        "feature_service": dict(contents.feature_services),
    }


def check_sources(contents: RepoContents, repo_path: Path) -> RepoContents:
    """Plan-time schema checks of every view's source (reads footers/logs, no Spark).

    Returns the contents to plan: each view as it is to be recorded, with the source's
    type for every join key its schema does not pin (source_schema.with_key_types).
    """
    views = {
        name: check_view_source(view, repo_path, contents.file_of("feature_view", name))
        for name, view in contents.feature_views.items()
    }
    return dataclasses.replace(contents, feature_views=views)


def make_plan(contents: RepoContents, registry: RegistryReader, project: str) -> Plan:
    base = registry.registry_version()
    current = {(r.kind, r.name): r for r in registry.current()}
    desired = _objects(contents)
    stages: list[Stage] = []
    unchanged: list[tuple[ObjectKind, str]] = []
    views: dict[str, FeatureView | OnDemandFeatureView] = {
        **contents.feature_views,
        **contents.on_demand_views,
    }
    for kind in KINDS:  # entities, then views, then services: parents first
        for name, obj in sorted(desired[kind].items()):
            fp = fingerprint(obj, views)
            spec = obj.model_dump(mode="json")
            old = current.get((kind, name))
            if old is None:
                stages.append(AddObject(kind, name, fp, spec))
            elif (old.data_hash, old.metadata_hash) != (fp.data_hash, fp.metadata_hash):
                stages.append(UpdateObject(kind, name, old, fp, spec, _changed(old.spec, spec)))
            else:
                unchanged.append((kind, name))
    for kind in reversed(KINDS):  # removals: children first
        for (k, name), old in sorted(current.items()):
            if k == kind and name not in desired[kind]:
                stages.append(RemoveObject(kind, name, old))
    return Plan(project, base, stages, unchanged)


def _changed(old: dict[str, Any], new: dict[str, Any]) -> tuple[str, ...]:
    """Paths of what differs, e.g. `ttl` or `schema[rating].description`."""
    return tuple(_diff(old, new, ""))


def _label(key: str) -> str:
    return "schema" if key == "schema_" else key


def _diff(old: Any, new: Any, path: str) -> list[str]:
    if old == new:
        return []
    if isinstance(old, dict) and isinstance(new, dict):
        out: list[str] = []
        for key in sorted(set(old) | set(new)):
            sub = f"{path}.{_label(key)}" if path else _label(key)
            if key == "expr":  # an expression's data tree: its inner paths would say little
                out += [] if old.get(key) == new.get(key) else [sub]
                continue
            out += _diff(old.get(key), new.get(key), sub)
        return out
    if isinstance(old, list) and isinstance(new, list) and _named(old) and _named(new):
        before = {item["name"]: item for item in old}
        after = {item["name"]: item for item in new}
        if list(before) != list(after):
            return [path]  # added, removed or reordered items
        out = []
        for name, item in after.items():
            out += _diff(before[name], item, f"{path}[{name}]")
        return out
    return [path]


def _named(items: list[Any]) -> bool:
    return all(isinstance(i, dict) and isinstance(i.get("name"), str) for i in items)
