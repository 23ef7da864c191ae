"""The `skewless training-sets` and `skewless reproduce` commands (display only; the
logic is in skewless.batch.training_sets)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import pandas as pd
import typer
from rich.markup import escape

from skewless.cli.display import RepoOption, WideOption, out, print_table, run, table
from skewless.errors import ManifestError, SkewlessError
from skewless.feature_store import FeatureStore
from skewless.offline.manifest import Manifest

if TYPE_CHECKING:
    from skewless.batch.training_sets import TrainingSet
    from skewless.offline.reproduce import ReproduceReport

sets = typer.Typer(help="Saved training sets.", no_args_is_help=True)


def _when(t: object) -> str:
    return t.strftime("%Y-%m-%d %H:%M:%S UTC") if hasattr(t, "strftime") else str(t)


@sets.command("list")
def list_sets(repo: RepoOption = Path(), wide: WideOption = False) -> None:
    """List the saved training sets."""
    found = run(lambda: FeatureStore(repo).list_training_sets())
    if not found:
        out.print("No training set saved yet (FeatureStore.save_training_set).")
        return
    shown = table(
        "Saved training sets",
        *("name", "saved at", "rows", "features", "registry version", "state"),
        right=("rows", "registry version"),
    )
    for s in found:
        shown.add_row(
            s.name,
            _when(s.created_at),
            f"{s.manifest.result.rows:,}",
            s.manifest.feature_service or f"{len(s.manifest.features)} features",
            str(s.manifest.registry_version),
            "erased" if s.erasures else "saved",
        )
    print_table(shown, wide=wide)


@sets.command("show")
def show(
    name: str,
    repo: RepoOption = Path(),
    as_json: Annotated[bool, typer.Option("--json", help="Print the manifest as JSON.")] = False,
    wide: WideOption = False,
) -> None:
    """Show a saved training set's manifest: definitions, pinned inputs, rows, code."""
    found = run(lambda: FeatureStore(repo).get_training_set(name))
    if as_json:
        print(found.manifest.to_json())  # plain JSON, for files and pipes
        return
    _show(found, wide=wide)


def _show(found: TrainingSet, *, wide: bool) -> None:
    m = found.manifest
    out.print(f"[bold]{escape(found.name)}[/] saved {_when(found.created_at)}")
    if found.description:
        out.print(f"  {escape(found.description)}")
    out.print(f"  rows: {m.result.rows:,} (digest {m.result.digest})")
    out.print(f"  table: {escape(found.location)} (Delta version {found.delta_version})")
    asked = m.feature_service or ", ".join(m.features)
    out.print(f"  features: {escape(asked)}; registry version {m.registry_version}")
    dirty = {None: "", True: " (uncommitted changes)", False: ""}[m.code.git_dirty]
    out.print(f"  code: git {m.code.git_commit or '(not a git checkout)'}{dirty}")
    env = m.environment
    out.print(
        f"  environment: Python {env.python}, skewless {env.skewless}, pyspark {env.pyspark}, "
        f"delta-spark {env.delta_spark}, Java {env.java}; lock {(env.lock_sha256 or '-')[:16]}"
    )
    defs = table("Definitions", "kind", "name", "version", "data hash")
    for d in m.definitions:
        defs.add_row(d.kind.replace("_", " "), d.name, str(d.version), d.data_hash)
    print_table(defs, wide=wide)
    inputs = table("Inputs as read", "feature view", "source", "pinned")
    for p in m.inputs:
        pinned = (
            f"Delta version {p.delta_version}"
            if p.delta_version is not None
            else f"{len(p.files or ()):,} files"
        )
        inputs.add_row(p.view, escape(p.path), pinned)
    print_table(inputs, wide=wide)
    for e in found.erasures:
        out.print(
            f"[yellow]erased {_when(e.erased_at)}: {e.rows_removed:,} rows of {e.keys:,} keys "
            f"of feature view '{escape(e.view)}'[/yellow]"
        )


def _entity_rows(path: Path | None) -> pd.DataFrame | None:
    """The entity rows of an unsaved set, from Parquet: CSV would lose their types, and
    with them the digest the manifest pins."""
    if path is None:
        return None
    if path.suffix.lower() == ".csv":
        raise ManifestError(str(path), "entity rows must be Parquet (CSV loses their types)")
    try:
        return pd.read_parquet(path)
    except (OSError, ValueError) as exc:
        raise ManifestError(str(path), f"the entity rows cannot be read: {exc}") from None


def _reproduce(repo: Path, target: str, entity_rows: Path | None) -> ReproduceReport:
    store = FeatureStore(repo)
    if target.endswith(".json") or Path(target).is_file():
        path = Path(target)
        try:
            text = path.read_bytes()
        except OSError as exc:
            raise ManifestError(target, str(exc)) from None
        manifest = Manifest.from_json(text, origin=target)
        return store.reproduce(manifest, _entity_rows(entity_rows), origin=target)
    if entity_rows is not None:
        raise SkewlessError("--entity-rows is for a manifest file; a saved set has its rows")
    return store.reproduce(target)


def register(app: typer.Typer) -> None:
    """Add this module's commands to `app`."""
    app.add_typer(sets, name="training-sets")

    @app.command()
    def reproduce(
        target: Annotated[
            str, typer.Argument(help="A saved training set's name, or a manifest JSON file.")
        ],
        entity_rows: Annotated[
            Path | None,
            typer.Option(help="The entity rows (Parquet) of a manifest of an unsaved set."),
        ] = None,
        repo: RepoOption = Path(),
    ) -> None:
        """Rebuild a training set from its manifest; exit 0 if identical, 1 if not."""
        with out.status(f"Rebuilding {target}..."):
            report = run(lambda: _reproduce(repo, target, entity_rows))
        for i, line in enumerate(report.lines()):
            style = "green" if report.identical else ("bold red" if i == 0 else "")
            out.print(f"[{style}]{escape(line)}[/]" if style else escape(line), highlight=False)
        if not report.identical:
            raise typer.Exit(1)
