"""Loading a feature repo: import its Python files, collect and cross-check definitions.

Every `*.py` file below the repo folder is imported, except files and folders whose name
starts with `_` or `.`, the `data/` folder, and paths matched by a line of
`.skewlessignore` or `.feastignore` (shell patterns, relative to the repo). Top-level
module variables holding an Entity, FeatureView, OnDemandFeatureView or FeatureService
are the repo's definitions.

Files may import each other by plain name (`from entities import driver`). Every load
reads the files as they are on disk at that moment:

- repo files are compiled from their source, never from `__pycache__` (Python trusts a
  cached file whose source has the same size and the same whole-second modification
  time, so an edit such as `hours=1` -> `hours=3` saved within a second of the previous
  load would be served stale), and no bytecode is written into the repo;
- a sibling import inside one load gets that load's file, not a module a previous load
  (of this repo or of a copy of it elsewhere) left behind: the modules a load imports
  from the repo are removed from `sys.modules` afterwards, and modules of the repo the
  caller had imported are set aside during the load and put back after it.
"""

from __future__ import annotations

import fnmatch
import hashlib
import importlib.abc
import importlib.machinery
import importlib.util
import os
import sys
import threading
import traceback
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import CodeType, ModuleType

from skewless.definitions import Entity, FeatureService, FeatureView, OnDemandFeatureView
from skewless.errors import DefinitionError, RepoLoadError, SkewlessError

# A ported Feast repo's .feastignore keeps working; both files apply.
IGNORE_FILES = (".skewlessignore", ".feastignore")
ALWAYS_IGNORED = ("data", "spark-warehouse")
# sys.path, sys.meta_path and sys.modules are process-wide: one load at a time.
_load_lock = threading.Lock()


@dataclass
class RepoContents:
    entities: dict[str, Entity] = field(default_factory=dict)
    feature_views: dict[str, FeatureView] = field(default_factory=dict)
    feature_services: dict[str, FeatureService] = field(default_factory=dict)
    on_demand_views: dict[str, OnDemandFeatureView] = field(default_factory=dict)
    origin: dict[tuple[str, str], str] = field(default_factory=dict)

    def file_of(self, kind: str, name: str) -> str | None:
        return self.origin.get((kind, name))


def repo_files(repo_path: Path) -> list[Path]:
    patterns = _ignore_patterns(repo_path)
    files = []
    for path in sorted(repo_path.rglob("*.py")):
        rel = path.relative_to(repo_path)
        parts = rel.parts
        if any(p.startswith(("_", ".")) for p in parts) or parts[0] in ALWAYS_IGNORED:
            continue
        rel_s = rel.as_posix()
        if any(_matches(rel_s, pat) for pat in patterns):
            continue
        files.append(path)
    return files


def _ignore_patterns(repo_path: Path) -> list[str]:
    patterns = []
    for name in IGNORE_FILES:
        f = repo_path / name
        if f.is_file():
            lines = (ln.strip() for ln in f.read_text().splitlines())
            patterns += [ln.rstrip("/") for ln in lines if ln and not ln.startswith("#")]
    return patterns


def _matches(rel: str, pattern: str) -> bool:
    return fnmatch.fnmatch(rel, pattern) or rel.startswith(pattern + "/")


def load_repo(repo_path: Path) -> RepoContents:
    """Import the repo's files and return its validated definitions."""
    repo_path = repo_path.resolve()
    contents = RepoContents()
    tag = hashlib.sha1(str(repo_path).encode(), usedforsecurity=False).hexdigest()[:10]
    with _load_lock, _fresh_imports(repo_path):
        for path in repo_files(repo_path):
            rel = path.relative_to(repo_path).as_posix()
            module_vars = _import(path, rel, f"_skewless_repo_{tag}." + rel[:-3].replace("/", "."))
            for value in module_vars.values():
                if isinstance(value, Entity | FeatureView | OnDemandFeatureView | FeatureService):
                    _add(contents, value, rel)
    _add_implicit_entities(contents)
    validate_repo(contents)
    return contents


class _SourceOnlyLoader(importlib.machinery.SourceFileLoader):
    """Compiles the file from its source on every import: no cached bytecode is read
    (see the module docstring) or written."""

    def get_code(self, fullname: str) -> CodeType:
        path = self.get_filename(fullname)
        return self.source_to_code(self.get_data(path), path)


def _prefix(root: Path) -> str:
    """What the paths of the (resolved) repo folder's files start with: a string test, as
    it runs for every loaded module of the process, twice per load."""
    return str(root) + os.sep


class _RepoFinder(importlib.abc.MetaPathFinder):
    """Finds plain-name imports of the repo's own files (top-level names are searched in
    the repo folder first, as the front of sys.path would) and loads them from source."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.prefix = _prefix(root)

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        search = [str(self.root)] if path is None else list(path)
        found = importlib.machinery.PathFinder.find_spec(fullname, search)
        if found is None or found.origin is None:
            return None  # not found, or a namespace folder: the path finder handles it
        origin = found.origin
        if not origin.endswith(".py") or not origin.startswith(self.prefix):
            return None
        return importlib.util.spec_from_file_location(
            fullname,
            origin,
            loader=_SourceOnlyLoader(fullname, origin),
            submodule_search_locations=found.submodule_search_locations,
        )


def _from_repo(module: object, prefix: str) -> bool:
    file = getattr(module, "__file__", None)
    return isinstance(file, str) and file.startswith(prefix)


@contextmanager
def _fresh_imports(root: Path) -> Iterator[None]:
    """Sibling imports during the load resolve to the repo's files as they are now; the
    process's module table is left as it was found."""
    prefix = _prefix(root)
    set_aside = {n: m for n, m in sys.modules.items() if _from_repo(m, prefix)}
    for name in set_aside:
        del sys.modules[name]
    finder = _RepoFinder(root)
    sys.meta_path.insert(0, finder)
    sys.path.insert(0, str(root))
    try:
        yield
    finally:
        sys.path.remove(str(root))
        sys.meta_path.remove(finder)
        for name in [n for n, m in sys.modules.items() if _from_repo(m, prefix)]:
            del sys.modules[name]
        sys.modules.update(set_aside)


def _import(path: Path, rel: str, module_name: str) -> dict[str, object]:
    """The module variables of the repo file at `path`; its errors name it `rel`, its path
    in the repo, as every error about a definition does."""
    spec = importlib.util.spec_from_file_location(
        module_name, path, loader=_SourceOnlyLoader(module_name, str(path))
    )
    if spec is None or spec.loader is None:
        raise RepoLoadError(rel, "cannot be imported")
    module = importlib.util.module_from_spec(spec)
    # Registered while it runs, as a normal import would be (dataclasses, pickling of
    # user classes and relative lookups need it); removed again afterwards.
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except DefinitionError as exc:
        raise exc.located(rel) from None
    except SkewlessError:
        raise
    except Exception as exc:
        frames = traceback.extract_tb(exc.__traceback__)
        line = next((f.lineno for f in reversed(frames) if f.filename == str(path)), None)
        at = f" (line {line})" if line else ""
        raise RepoLoadError(rel, f"{type(exc).__name__}{at}: {exc}") from exc
    finally:
        sys.modules.pop(module_name, None)
    return dict(vars(module))


def _add(
    contents: RepoContents,
    obj: Entity | FeatureView | OnDemandFeatureView | FeatureService,
    file: str,
) -> None:
    table: (
        dict[str, Entity]
        | dict[str, FeatureView]
        | dict[str, OnDemandFeatureView]
        | dict[str, FeatureService]
    )
    if isinstance(obj, Entity):
        table = contents.entities
    elif isinstance(obj, FeatureView):
        table = contents.feature_views
    elif isinstance(obj, OnDemandFeatureView):
        table = contents.on_demand_views
    else:
        table = contents.feature_services
    clash = _name_taken(contents, obj)
    if clash is not None:
        raise DefinitionError(
            f"has the name of {clash}: feature views and on-demand views share one namespace",
            object_kind=obj.kind.replace("_", " "),
            object_name=obj.name,
            file=file,
        )
    existing = table.get(obj.name)
    if existing is not None and existing != obj:
        first = contents.origin[(obj.kind, obj.name)]
        raise DefinitionError(
            f"defined twice with different contents (also in {first})",
            object_kind=obj.kind.replace("_", " "),
            object_name=obj.name,
            file=file,
        )
    table[obj.name] = obj  # type: ignore[assignment]
    contents.origin.setdefault((obj.kind, obj.name), file)


def _name_taken(
    contents: RepoContents, obj: Entity | FeatureView | OnDemandFeatureView | FeatureService
) -> str | None:
    """What else holds `obj`'s name among the views (a ref "view:feature" names either)."""
    if isinstance(obj, FeatureView) and obj.name in contents.on_demand_views:
        where = contents.origin[("on_demand_feature_view", obj.name)]
        return f"on-demand feature view '{obj.name}' ({where})"
    if isinstance(obj, OnDemandFeatureView) and obj.name in contents.feature_views:
        return f"feature view '{obj.name}' ({contents.origin[('feature_view', obj.name)]})"
    return None


def _add_implicit_entities(contents: RepoContents) -> None:
    for view in contents.feature_views.values():
        file = contents.origin[("feature_view", view.name)]
        for ent in view.entities:
            known = contents.entities.get(ent.name)
            if known is None:
                contents.entities[ent.name] = ent
                contents.origin[("entity", ent.name)] = file
            elif known.join_keys != ent.join_keys:
                raise DefinitionError(
                    f"uses entity '{ent.name}' with join keys {list(ent.join_keys)}, but the "
                    f"repo defines it with {list(known.join_keys)}",
                    object_kind="feature view",
                    object_name=view.name,
                    field="entities",
                    file=file,
                )


def validate_repo(contents: RepoContents) -> None:
    """Cross-object rules: services reference existing views and features; on-demand
    views read features the repo's views have, with the types they have."""
    fields: dict[str, tuple[str, str]] = {}  # request field -> (its type, where)
    for odfv in contents.on_demand_views.values():
        _check_on_demand_inputs(contents, odfv)
        for source in odfv.request_sources:
            for f in source.schema_:
                where = f"request source '{source.name}' of on-demand view '{odfv.name}'"
                known = fields.setdefault(f.name, (f.dtype.name, where))
                if known[0] != f.dtype.name:
                    # one lookup or training set may read both: the values sent are one
                    raise DefinitionError(
                        f"request field '{f.name}' is {f.dtype.name} here but {known[0]} in "
                        f"{known[1]}: a request field has one type across the repo",
                        object_kind="on-demand feature view",
                        object_name=odfv.name,
                        field="sources",
                        file=contents.origin.get(("on_demand_feature_view", odfv.name)),
                    )
    for svc in contents.feature_services.values():
        file = contents.origin.get(("feature_service", svc.name))
        for proj in svc.features:
            view: FeatureView | OnDemandFeatureView | None = contents.feature_views.get(
                proj.view
            ) or contents.on_demand_views.get(proj.view)
            missing = (
                [] if view is None else [f for f in proj.features if f not in view.feature_names]
            )
            if view is None or missing:
                detail = (
                    f"references feature view '{proj.view}', which the repo does not define"
                    if view is None
                    else f"feature view '{view.name}' has no feature '{missing[0]}'"
                )
                raise DefinitionError(
                    detail,
                    object_kind="feature service",
                    object_name=svc.name,
                    field="features",
                    file=file,
                )


def _check_on_demand_inputs(contents: RepoContents, odfv: OnDemandFeatureView) -> None:
    file = contents.origin.get(("on_demand_feature_view", odfv.name))
    for source in odfv.view_inputs:
        view = contents.feature_views.get(source.view)
        problem = None
        if view is None:
            problem = f"reads feature view '{source.view}', which the repo does not define"
        else:
            for f in source.features:
                if f.name not in view.feature_names:
                    problem = f"feature view '{view.name}' has no feature '{f.name}'"
                    break
                if view.feature(f.name).dtype != f.dtype:
                    problem = (
                        f"reads '{view.name}:{f.name}' as {f.dtype.name}, but the view "
                        f"declares it {view.feature(f.name).dtype.name}"
                    )
                    break
        if problem is not None:
            raise DefinitionError(
                problem,
                object_kind="on-demand feature view",
                object_name=odfv.name,
                field="sources",
                file=file,
            )
