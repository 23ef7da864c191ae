"""The registry: every applied version of every definition."""

from pathlib import Path

from skewless.config import RepoConfig, resolve_path
from skewless.registry.base import (
    KINDS,
    RUN_STATUSES,
    RUN_TRIGGERS,
    ApplyRecord,
    ErasureRecord,
    Lease,
    MaterializationRecord,
    MaterializedUntil,
    ObjectKind,
    ObjectRecord,
    ObjectWrite,
    Registry,
    RegistryReader,
    RunRecord,
    RunStatus,
    RunTrigger,
    TrainingSetRecord,
    VersionStatistics,
    view_lease,
)
from skewless.registry.sqlite import SqliteRegistry


def open_registry(config: RepoConfig, repo_path: Path) -> Registry:
    match config.registry.type:
        case "sqlite":
            return SqliteRegistry(resolve_path(repo_path, config.registry.path), config.project)


__all__ = [
    "KINDS",
    "RUN_STATUSES",
    "RUN_TRIGGERS",
    "ApplyRecord",
    "ErasureRecord",
    "Lease",
    "MaterializationRecord",
    "MaterializedUntil",
    "ObjectKind",
    "ObjectRecord",
    "ObjectWrite",
    "Registry",
    "RegistryReader",
    "RunRecord",
    "RunStatus",
    "RunTrigger",
    "SqliteRegistry",
    "TrainingSetRecord",
    "VersionStatistics",
    "open_registry",
    "view_lease",
]
