"""What every command shares: the consoles, the --repo and --wide options, tables that
never cut a name, and the error boundary that turns a SkewlessError into one red line
and exit code 1 (`--debug` shows the traceback instead)."""

from __future__ import annotations

from collections.abc import Callable, Collection
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Column, Table

from skewless.errors import SkewlessError

out = Console()
err = Console(stderr=True)

STATE = {"debug": False}
T = TypeVar("T")

RepoOption = Annotated[
    Path,
    typer.Option("--repo", "-r", "--chdir", "-c", help="Feature repo folder.", show_default=True),
]

_WIDEST = 1_000_000  # columns: wider than any row a table holds

WideOption = Annotated[
    bool,
    typer.Option(
        "--wide", "-w", help="Print each table row on one line, whatever the terminal's width."
    ),
]


def table(
    title: str | None, *columns: str | Column, right: Collection[str] = (), **options: Any
) -> Table:
    """A table that never cuts a cell short: text wraps at spaces, and a word longer than
    its column (a name, a path, a hash) folds onto the next lines instead of ending in an
    ellipsis. Columns named in `right` are right-justified; a Column is taken as it is."""
    made = [
        c
        if isinstance(c, Column)
        else Column(c, justify="right" if c in right else "left", overflow="fold")
        for c in columns
    ]
    return Table(*made, title=title, **options)


def print_table(shown: Table, *, wide: bool = False) -> None:
    """Print a table on stdout; `wide`: at the width its rows need to stay on one line
    each, past the terminal's edge if need be (for pipes, grep and wide scrollback)."""
    if not wide:
        out.print(shown)
        return
    unbounded = out.options.update_width(_WIDEST)
    width = max(out.width, out.measure(shown, options=unbounded).maximum)
    Console(
        file=out.file,
        width=width,
        force_terminal=out.is_terminal,
        no_color=out.no_color,
        highlight=False,
    ).print(shown)


def run(fn: Callable[[], T]) -> T:
    """The error boundary of every command."""
    try:
        return fn()
    except SkewlessError as exc:
        if STATE["debug"]:
            raise
        # escaped: a path or value in the message may hold rich markup such as "[x]"
        err.print(f"[bold red]Error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
        raise typer.Exit(1) from None
