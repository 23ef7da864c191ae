"""What every command shares: the consoles, the --repo option, and the error boundary
that turns a SkewlessError into one red line and exit code 1 (`--debug` shows the
traceback instead)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated, TypeVar

import typer
from rich.console import Console
from rich.markup import escape

from skewless.errors import SkewlessError

out = Console()
err = Console(stderr=True)

STATE = {"debug": False}
T = TypeVar("T")

RepoOption = Annotated[
    Path,
    typer.Option("--repo", "-r", "--chdir", "-c", help="Feature repo folder.", show_default=True),
]


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
