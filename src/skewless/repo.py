"""Loading a feature repo: import its Python files, collect and cross-check definitions.

Every `*.py` file below the repo folder is imported, except files and folders whose name
starts with `_` or `.`, the `data/` folder, and paths matched by a line of
`.skewlessignore` (shell patterns, relative to the repo). Top-level module variables
holding an Entity, FeatureView or FeatureService are the repo's definitions.
"""

from __future__ import annotations

import fnmatch
import hashlib
import importlib.util
import sys
import traceback
from dataclasses import dataclass, field
from pathlib import Path

from skewless.definitions import Entity, FeatureService, FeatureView
from skewless.errors import DefinitionError, RepoLoadError, SkewlessError

IGNORE_FILE = ".skewlessignore"
ALWAYS_IGNORED = ("data", "spark-warehouse")


@dataclass
class RepoContents:
    entities: dict[str, Entity] = field(default_factory=dict)
    feature_views: dict[str, FeatureView] = field(default_factory=dict)
    feature_services: dict[str, FeatureService] = field(default_factory=dict)
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
    f = repo_path / IGNORE_FILE
    if not f.is_file():
        return []
    lines = (ln.strip() for ln in f.read_text().splitlines())
    return [ln.rstrip("/") for ln in lines if ln and not ln.startswith("#")]


def _matches(rel: str, pattern: str) -> bool:
    return fnmatch.fnmatch(rel, pattern) or rel.startswith(pattern + "/")


def load_repo(repo_path: Path) -> RepoContents:
    """Import the repo's files and return its validated definitions."""
    repo_path = repo_path.resolve()
    contents = RepoContents()
    tag = hashlib.sha1(str(repo_path).encode(), usedforsecurity=False).hexdigest()[:10]
    sys.path.insert(0, str(repo_path))
    try:
        for path in repo_files(repo_path):
            rel = path.relative_to(repo_path).as_posix()
            module_vars = _import(path, f"_skewless_repo_{tag}." + rel[:-3].replace("/", "."))
            for value in module_vars.values():
                if isinstance(value, Entity | FeatureView | FeatureService):
                    _add(contents, value, rel)
    finally:
        sys.path.remove(str(repo_path))
    _add_implicit_entities(contents)
    validate_repo(contents)
    return contents


def _import(path: Path, module_name: str) -> dict[str, object]:
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise RepoLoadError(str(path), "cannot be imported")
    module = importlib.util.module_from_spec(spec)
    # Registered while it runs, as a normal import would be (dataclasses, pickling of
    # user classes and relative lookups need it); removed again afterwards.
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except DefinitionError as exc:
        raise exc.located(str(path)) from None
    except SkewlessError:
        raise
    except Exception as exc:
        frames = traceback.extract_tb(exc.__traceback__)
        line = next((f.lineno for f in reversed(frames) if f.filename == str(path)), None)
        at = f" (line {line})" if line else ""
        raise RepoLoadError(str(path), f"{type(exc).__name__}{at}: {exc}") from exc
    finally:
        sys.modules.pop(module_name, None)
    return dict(vars(module))


def _add(contents: RepoContents, obj: Entity | FeatureView | FeatureService, file: str) -> None:
    table: dict[str, Entity] | dict[str, FeatureView] | dict[str, FeatureService]
    if isinstance(obj, Entity):
        table = contents.entities
    elif isinstance(obj, FeatureView):
        table = contents.feature_views
    else:
        table = contents.feature_services
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
    """Cross-object rules: services reference existing views and features."""
    for svc in contents.feature_services.values():
        file = contents.origin.get(("feature_service", svc.name))
        for proj in svc.features:
            view = contents.feature_views.get(proj.view)
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
