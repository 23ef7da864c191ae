"""Teardown: remove what a project put in the online and offline stores.

Online, every key of the project goes (`sk1|<project>|...`, online/codec.py) and no
other key: other projects may share the Redis. The repo's embedded server is stopped
afterwards; when it holds the online data, it is started if need be to delete the keys,
so a later `materialize` into it starts from nothing too.

Offline, what goes is only what skewless wrote for the project: the Delta feature tables
under `<offline store>/<project>/<view>/`, the tables of saved training sets, the tables
its registry records elsewhere, and then the project's records in the registry. The
registry file itself stays, even when no other project is left in it: another project
sharing it could apply between the removal of the records and the unlink of the file,
and its records would go with the file. The records go with the tables because they
describe them: kept alone, `materialize-incremental` would take up where a deleted
table left off.

A location holding source data of any definition (applied ones, every version, the
repo's current ones and the inputs saved training sets pinned) is never deleted, even
inside those folders, and neither is one that is not a local path. Either refuses the
offline deletion as a whole (TeardownRefusedError) before anything is removed: a table
kept while its records go would be written into again, stale rows and all, once the
project is applied and materialized anew, at the same `<project>/<view>/<data hash>`.
Offline deletion is asked for explicitly: a caller gets the full list first
(`OfflineData`) and says yes or no.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from skewless.config import RepoConfig, resolve_path
from skewless.definitions import FeatureView
from skewless.errors import SkewlessError, TeardownError, TeardownRefusedError
from skewless.offline.manifest import saved_manifest
from skewless.online.codec import key_prefix
from skewless.online.embedded import EmbeddedServer, embedded_dir
from skewless.online.redis import RedisOnlineStore
from skewless.registry import Registry
from skewless.repo import load_repo

TRAINING_SETS = "training_sets"  # the folder of saved sets' tables (batch/training_sets.py)


# --- online --------------------------------------------------------------------------


@dataclass(frozen=True)
class OnlineRemoval:
    """The online keys removed, per feature view, and from where."""

    where: str  # never holds a password
    keys: dict[str, int] = field(default_factory=dict)
    server_stopped: bool = False  # the embedded server was running and is stopped

    @property
    def total(self) -> int:
        return sum(self.keys.values())


def project_prefix(project: str) -> bytes:
    """What every online key of `project` starts with: b"sk1|<project>|"."""
    return key_prefix(project, "")[:-1]  # the prefix of the view named "" less its "|"


def _view_of(project: str) -> Callable[[bytes], str]:
    """The view name in a key of `project` (names are identifiers: no `|`)."""
    start = len(project_prefix(project))

    def view(key: bytes) -> str:
        return key[start:].split(b"|", 1)[0].decode(errors="replace")

    return view


def _shown(url: str) -> str:
    """A Redis URL without its credentials."""
    parts = urlsplit(url)
    if parts.scheme == "unix":
        return f"unix:{parts.path}"
    db = parts.path.lstrip("/") or "0"
    return f"{parts.hostname}:{parts.port or 6379}/{db}"


def remove_online(project: str, config: RepoConfig, embedded: EmbeddedServer) -> OnlineRemoval:
    """Remove every online key of `project` and stop the repo's embedded server, also
    when removing fails: teardown leaves no server running, one it started least of all."""
    cfg = config.online_store
    was_running = embedded.running()
    if cfg.url is None and not was_running and not embedded.data_dir.exists():
        return OnlineRemoval("the embedded online server (never started)")
    try:
        if cfg.url is None:
            url, where = embedded.ensure_running(), "the embedded online server"
        else:
            url, where = cfg.url, f"Redis at {_shown(cfg.url)}"
        store = RedisOnlineStore.from_url(cfg.connection_url(url), password=cfg.password)
        try:
            keys = store.delete_prefix(project_prefix(project), _view_of(project))
        finally:
            store.client.close()
    finally:
        if cfg.url is None or was_running:
            embedded.stop()
    return OnlineRemoval(where, dict(sorted(keys.items())), server_stopped=was_running)


# --- offline -------------------------------------------------------------------------


@dataclass(frozen=True)
class OfflineTable:
    """A Delta table teardown deletes, with what it holds on disk."""

    kind: Literal["feature table", "training set"]
    name: str  # the view's or the saved set's name
    location: str
    files: int
    bytes: int


@dataclass(frozen=True)
class KeptLocation:
    """A location teardown will not delete, why, and what to do about it."""

    location: str
    reason: str


@dataclass(frozen=True)
class RegistryRemoval:
    """The project's records in the registry file; the file itself stays."""

    path: str
    project: str
    other_projects: tuple[str, ...]  # their records stay in the file


@dataclass(frozen=True)
class OfflineData:
    """Exactly what deleting the offline data of a project removes; when it would keep
    anything (`kept`), the deletion is refused as a whole."""

    project: str
    tables: tuple[OfflineTable, ...]
    registry: RegistryRemoval
    kept: tuple[KeptLocation, ...] = ()
    notes: tuple[str, ...] = ()
    folders: tuple[str, ...] = ()  # project folders removed afterwards if left empty

    @property
    def files(self) -> int:
        return sum(t.files for t in self.tables)

    @property
    def bytes(self) -> int:
        return sum(t.bytes for t in self.tables)


def _local(location: str) -> str | None:
    """A local location as an absolute path without links; None for a URI."""
    if location.startswith("file:"):
        location = "/" + location[len("file:") :].lstrip("/")
    if "://" in location:
        return None
    return os.path.realpath(location)


def _overlaps(a: str, b: str) -> bool:
    """Whether one of two normalized paths is, or lies inside, the other."""
    return a == b or a.startswith(b.rstrip("/") + "/") or b.startswith(a.rstrip("/") + "/")


def _size(path: str) -> tuple[int, int]:
    files = size = 0
    for folder, _, names in os.walk(path):
        for name in names:
            files += 1
            size += os.lstat(os.path.join(folder, name)).st_size
    return files, size


def _subfolders(path: str) -> list[str]:
    if not os.path.isdir(path):
        return []
    return sorted(e.path for e in os.scandir(path) if e.is_dir(follow_symlinks=False))


def _sources(
    registry: Registry, repo_path: Path, view_names: Iterable[str]
) -> tuple[dict[str, str], list[str]]:
    """Every source location a definition names (normalized -> what reads it), and a
    note when the repo's own definitions could not be read."""
    found: dict[str, str] = {}
    notes: list[str] = []

    def add(location: str, what: str) -> None:
        local = _local(location)
        found.setdefault(local or location.rstrip("/"), what)

    for name in view_names:
        for record in registry.history("feature_view", name):
            view = record.definition()
            if isinstance(view, FeatureView):
                add(view.source.resolve(repo_path), f"feature view '{name}' v{record.version}")
    for saved in registry.training_sets():
        for pin in saved_manifest(saved).inputs:
            add(pin.location, f"an input of training set '{saved.name}'")
    try:
        contents = load_repo(repo_path)
    except SkewlessError as exc:  # teardown must still work on a repo that does not load
        notes.append(
            f"the repo's definitions did not load ({exc}); the sources of applied "
            "definitions are protected"
        )
    else:
        for view in contents.feature_views.values():
            add(view.source.resolve(repo_path), f"feature view '{view.name}' in the repo")
    return found, notes


def offline_data(registry: Registry, config: RepoConfig, repo_path: Path) -> OfflineData:
    """What deleting the project's offline data removes: nothing is deleted here."""
    project = config.project
    root = resolve_path(repo_path, config.offline_store.path)
    project_dir = _local(f"{root.rstrip('/')}/{project}")
    runs = registry.materializations()
    names = sorted({r.name for r in registry.current("feature_view")} | {r.view for r in runs})
    candidates: dict[str, tuple[Literal["feature table", "training set"], str]] = {}
    for run in runs:
        candidates.setdefault(run.delta_path, ("feature table", run.view))
    saved_sets = registry.training_sets()
    for saved in saved_sets:
        candidates.setdefault(saved.location, ("training set", saved.name))
    folders: list[str] = []
    if project_dir is not None:
        # tables a run stopped before its record wrote, and sets whose save failed
        for name in names:
            view_dir = os.path.join(project_dir, name)
            folders.append(view_dir)
            for table in _subfolders(view_dir):
                candidates.setdefault(table, ("feature table", name))
        sets_dir = os.path.join(project_dir, TRAINING_SETS)
        folders.append(sets_dir)
        by_location = {_local(s.location): s.name for s in saved_sets}
        for table in _subfolders(sets_dir):
            candidates.setdefault(table, ("training set", by_location.get(table, "(not saved)")))
        folders.append(project_dir)

    sources, notes = _sources(registry, repo_path, names)
    tables: dict[str, OfflineTable] = {}
    kept: list[KeptLocation] = []
    for location, (kind, name) in candidates.items():
        local = _local(location)
        if local is None:
            why = (
                "not a local path, which teardown leaves alone: delete it with its storage's tools"
            )
            kept.append(KeptLocation(location, why))
            continue
        if local in tables or not os.path.isdir(local):
            continue
        source = next((what for s, what in sources.items() if _overlaps(local, s)), None)
        if source is not None:
            why = f"it holds source data of {source}: move that data elsewhere"
            kept.append(KeptLocation(local, why))
            continue
        files, size = _size(local)
        tables[local] = OfflineTable(kind, name, local, files, size)
    registry_path = resolve_path(repo_path, config.registry.path)
    return OfflineData(
        project=project,
        tables=tuple(sorted(tables.values(), key=lambda t: (t.kind, t.name, t.location))),
        registry=RegistryRemoval(registry_path, project, tuple(registry.other_projects())),
        kept=tuple(kept),
        notes=tuple(notes),
        folders=tuple(folders),
    )


def refuse_kept(data: OfflineData) -> None:
    """Raise TeardownRefusedError when deleting `data` would keep any location."""
    if data.kept:
        raise TeardownRefusedError(data.project, [(k.location, k.reason) for k in data.kept])


def delete_offline(data: OfflineData, registry: Registry) -> None:
    """Delete the tables of `data`, then the project's records in the registry (one
    transaction; the file stays). Refused when `data` keeps any location. The registry
    goes last: if a table cannot be deleted, running teardown again finds what is left."""
    refuse_kept(data)
    for table in data.tables:
        try:
            shutil.rmtree(table.location)
        except FileNotFoundError:
            continue
        except OSError as exc:
            raise TeardownError(table.location, str(exc)) from None
    for folder in data.folders:  # empty project folders only, deepest first
        if os.path.isdir(folder) and not os.listdir(folder):
            os.rmdir(folder)
    registry.remove_project()


# --- both ----------------------------------------------------------------------------


@dataclass(frozen=True)
class TeardownReport:
    online: OnlineRemoval
    offline: OfflineData
    offline_deleted: bool


Confirm = Callable[[OfflineData], bool]


def teardown(
    registry: Registry,
    config: RepoConfig,
    repo_path: Path,
    offline: bool | Confirm = False,
) -> TeardownReport:
    """Remove the project's online keys and stop the embedded server; delete the offline
    data too when `offline` is True, or is a function that, shown the `OfflineData`,
    answers True (it is asked before anything is removed). Deleting offline data that
    would keep a location raises TeardownRefusedError before anything is removed, online
    keys included."""
    data = offline_data(registry, config, repo_path)
    # asked first: a caller that stops at the question (Ctrl-C) has changed nothing
    delete = offline(data) if callable(offline) else offline
    if delete:
        refuse_kept(data)
    online = remove_online(config.project, config, EmbeddedServer(embedded_dir(repo_path)))
    if delete:
        delete_offline(data, registry)
    return TeardownReport(online, data, delete)
