"""CLI orchestration: each command as a function over the library, returning data.

main.py only parses arguments and displays what these return.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from skewless.feature_store import FeatureStore
from skewless.plan import Plan
from skewless.registry import MaterializationRecord, ObjectRecord
from skewless.scaffold import scaffold
from skewless.timeutil import parse_time

if TYPE_CHECKING:
    from skewless.teardown import Confirm, TeardownReport

__all__ = ["Confirm", "parse_time"]


@dataclass(frozen=True)
class ApplyResult:
    plan: Plan
    registry_version: int


def plan(repo: Path) -> Plan:
    return FeatureStore(repo).plan()


def apply(repo: Path, the_plan: Plan) -> ApplyResult:
    """Apply exactly `the_plan` (the one just shown): no re-planning behind the user's back."""
    store = FeatureStore(repo)
    _, version = store.apply(the_plan)
    return ApplyResult(the_plan, version)


def list_objects(repo: Path) -> list[ObjectRecord]:
    return FeatureStore(repo).registry.current()


def describe(repo: Path, name: str) -> list[ObjectRecord]:
    return FeatureStore(repo).describe(name)


def project_name(path: Path) -> str:
    """A project name from a folder's: an identifier (letters, digits and _)."""
    name = re.sub(r"[^A-Za-z0-9_]+", "_", path.resolve().name).strip("_").lower()
    name = name or "my_project"
    return f"p_{name}" if name[0].isdigit() else name


def init(path: Path, project: str) -> list[Path]:
    return scaffold(path, project)


def view_names(repo: Path, views: list[str] | None) -> list[str]:
    store = FeatureStore(repo)
    known = sorted(v.name for v in store.list_feature_views())
    return list(views) if views else known


def materialize_view(
    repo: Path, view: str, start: datetime | None, end: datetime | None, *, incremental: bool
) -> MaterializationRecord:
    store = FeatureStore(repo)
    if incremental:
        (record,) = store.materialize_incremental(end, [view])
    else:
        assert end is not None
        (record,) = store.materialize(start, end, [view])
    return record


def stop_embedded(repo: Path) -> bool:
    from skewless.online.embedded import EmbeddedServer  # noqa: PLC0415

    return EmbeddedServer(FeatureStore(repo).embedded_dir).stop()


def teardown(repo: Path, confirm: Confirm) -> TeardownReport:
    """Stop the embedded server and remove the project's online keys; `confirm` is shown
    the offline data and answers whether to delete it."""
    return FeatureStore(repo).teardown(offline=confirm)
