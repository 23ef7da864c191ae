"""The `skewless` commands of erasure (display only; the logic is in the library):
`forget` (a right-to-erasure request) and `vacuum` (guarded by saved training sets)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape

from skewless.cli.display import RepoOption, WideOption, out, print_table, run, table
from skewless.offline.erasure import (
    DELTA_RETENTION_HOURS,
    EntityKeys,
    ErasureReport,
    VacuumReport,
    erasable_view,
    read_keys,
)

if TYPE_CHECKING:
    from skewless.feature_store import FeatureStore


def _store(repo: Path) -> FeatureStore:
    from skewless.feature_store import FeatureStore  # noqa: PLC0415 - loads on demand

    return FeatureStore(repo)


def _keys(repo: Path, view: str, keys: Path) -> EntityKeys:
    """The request's keys, checked before anything is asked or deleted."""
    store = _store(repo)
    return read_keys(erasable_view(store.registry, view), keys)


def _forget(repo: Path, view: str, keys: Path) -> ErasureReport:
    return _store(repo).forget(view, keys)


def _vacuum(repo: Path, target: str, retain_hours: float, force: bool) -> VacuumReport:
    return _store(repo).vacuum(target, retain_hours, force)


def show_erasure(report: ErasureReport, *, wide: bool = False) -> None:
    counts = ("rows removed", "Delta version")
    shown = table(
        f"Forgotten: {report.keys} entities of feature view '{report.view}'",
        *("table", "name", *counts),
        right=counts,
    )
    for t in (*report.feature_tables, *report.training_sets):
        version = "no table" if t.delta_version < 0 else str(t.delta_version)
        shown.add_row(t.kind, escape(t.name), f"{t.rows_removed:,}", version)
    print_table(shown, wide=wide)
    online = report.online
    if online.skipped is None:
        out.print(f"Online store: {online.removed:,} of {online.keys:,} keys removed.")
    for note in report.notes():
        out.print(f"[yellow]{escape(note)}[/yellow]", highlight=False)


def show_vacuum(report: VacuumReport, *, wide: bool = False) -> None:
    shown = table(
        f"Vacuumed {report.kind} '{report.target}' ({report.retain_hours:g} h)",
        *("Delta table", "files deleted", "saved sets broken"),
        right=("files deleted",),
    )
    for t in report.tables:
        files = "?" if t.files_deleted is None else f"{t.files_deleted:,}"
        broken = ", ".join(sorted({p.training_set for p in t.broken}))
        shown.add_row(escape(t.location), files, escape(broken))
    print_table(shown, wide=wide)
    for note in report.notes():
        out.print(f"[yellow]{escape(note)}[/yellow]", highlight=False)


def register(app: typer.Typer) -> None:
    """Add this module's commands to `app`."""

    @app.command()
    def forget(
        view: Annotated[str, typer.Argument(help="The feature view whose entities to forget.")],
        keys: Annotated[
            Path,
            typer.Option(
                "--keys", help="CSV or Parquet file whose columns are the view's join keys."
            ),
        ],
        yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask to confirm.")] = False,
        repo: RepoOption = Path(),
        wide: WideOption = False,
    ) -> None:
        """Delete entities (a right-to-erasure request) from the view's Delta feature
        tables, the online store and saved training sets. The view's source is not
        touched; old Delta versions keep the rows until `skewless vacuum`."""
        wanted = run(lambda: _keys(repo, view, keys))
        if not yes:
            typer.confirm(
                f"Delete {len(wanted.rows):,} entities of feature view '{view}' from its "
                "feature tables, the online store and every saved training set using it? "
                "This cannot be undone",
                abort=True,
            )
        with out.status("Forgetting..."):
            report = run(lambda: _forget(repo, view, keys))
        show_erasure(report, wide=wide)

    @app.command()
    def vacuum(
        target: Annotated[
            str,
            typer.Argument(help="A feature view, a saved training set, or a Delta table's path."),
        ],
        retain_hours: Annotated[
            float,
            typer.Option(
                "--retain-hours",
                min=0,
                help="Keep the files that versions of the last H hours read (0 after forget).",
            ),
        ] = DELTA_RETENTION_HOURS,
        force: Annotated[
            bool,
            typer.Option("--force", help="Vacuum even versions that saved training sets pin."),
        ] = False,
        repo: RepoOption = Path(),
        wide: WideOption = False,
    ) -> None:
        """Delete the old files of Delta tables (Delta's VACUUM). Refused when it would
        delete a version a saved training set pins, unless --force."""
        with out.status("Vacuuming..."):
            report = run(lambda: _vacuum(repo, target, retain_hours, force))
        show_vacuum(report, wide=wide)
