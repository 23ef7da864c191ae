"""The `skewless teardown` command (display only; the logic is in skewless.teardown)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape

from skewless.cli import commands
from skewless.cli.display import RepoOption, WideOption, out, print_table, run, table

if TYPE_CHECKING:
    from skewless.teardown import OfflineData, OnlineRemoval, TeardownReport


def _size(n: int) -> str:
    if n < 1024:
        return f"{n:,} B"
    size, unit = n / 1024, "KB"
    for bigger in ("MB", "GB"):
        if size < 1024:
            break
        size, unit = size / 1024, bigger
    return f"{size:,.1f} {unit}"


def show_offline(data: OfflineData, *, wide: bool) -> None:
    """Everything deleting the offline data removes, and what it keeps."""
    what = f"{len(data.tables)} Delta tables, {data.files:,} files, {_size(data.bytes)}"
    shown = table(
        f"Offline data of project '{data.project}' ({what})",
        "kind",
        "name",
        "files",
        "size",
        "location",
        right=("files", "size"),
    )
    for t in data.tables:
        shown.add_row(t.kind, escape(t.name), f"{t.files:,}", _size(t.bytes), escape(t.location))
    if data.tables:
        print_table(shown, wide=wide)
    else:
        out.print(f"No Delta table of project '{data.project}' exists.")
    reg = data.registry
    others = ", ".join(reg.other_projects)
    left = f"with the records of {escape(others)}" if others else "an empty registry then"
    out.print(
        f"And the records of project '{reg.project}' in the registry {escape(reg.path)} "
        f"(the file stays, {left}).",
        highlight=False,
        soft_wrap=True,
    )
    for kept in data.kept:
        out.print(
            f"[yellow]Kept {escape(kept.location)}: {escape(kept.reason)}.[/]",
            highlight=False,
            soft_wrap=True,
        )
    for note in data.notes:
        out.print(f"[yellow]{escape(note)}[/]", highlight=False, soft_wrap=True)


def stdin_is_terminal() -> bool:
    """Whether a person can be asked: stdin is a terminal."""
    return sys.stdin.isatty()


def _ask(yes: bool, wide: bool) -> commands.Confirm:
    def confirm(data: OfflineData) -> bool:
        show_offline(data, wide=wide)
        if yes:
            return True  # refused by the library (TeardownRefusedError) if anything is kept
        if data.kept:
            out.print(
                "Offline data kept: teardown deletes it only when it can delete all of it "
                "(a kept table would be written into again after the next apply); deal "
                "with each kept location above, then run `skewless teardown` again.",
                highlight=False,
                soft_wrap=True,
            )
            return False
        if not stdin_is_terminal():
            out.print(
                "Offline data kept: no terminal to ask (stdin is not one); "
                "`skewless teardown --yes` deletes it."
            )
            return False
        return typer.confirm(
            "Delete this offline data? It cannot be undone (the online keys of the project "
            "are removed either way)",
            default=False,
        )

    return confirm


def show_online(online: OnlineRemoval) -> None:
    per_view = ", ".join(f"{view}: {n:,}" for view, n in online.keys.items())
    out.print(
        f"Online: removed {online.total:,} keys from {escape(online.where)}"
        + (f" ({escape(per_view)})." if per_view else "."),
        highlight=False,
        soft_wrap=True,
    )
    if online.server_stopped:
        out.print("Stopped the embedded online server.")


def show_teardown(report: TeardownReport) -> None:
    show_online(report.online)
    data = report.offline
    if report.offline_deleted:
        out.print(
            f"[bold green]Deleted[/] the offline data of project '{data.project}': "
            f"{len(data.tables)} Delta tables ({_size(data.bytes)}) and its registry records.",
            highlight=False,
        )
    else:
        out.print(f"The offline data of project '{data.project}' and its registry are kept.")


def register(app: typer.Typer) -> None:
    """Add this module's commands to `app`."""

    @app.command()
    def teardown(
        yes: Annotated[
            bool, typer.Option("--yes", "-y", help="Delete the offline data without asking.")
        ] = False,
        repo: RepoOption = Path(),
        wide: WideOption = False,
    ) -> None:
        """Remove the project's online keys and stop the embedded online server; then,
        once confirmed, delete its Delta feature tables, saved training sets and registry
        records (the registry file stays). Source data is never deleted; nothing is when
        some of the offline data would have to be kept."""
        report = run(lambda: commands.teardown(repo, _ask(yes, wide)))
        show_teardown(report)
