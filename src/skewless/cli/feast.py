"""Feast's CLI commands that skewless names differently or does not have: each is a
hidden command that says what to run instead (one red line, exit code 1), rather than
typer's "No such command"."""

from __future__ import annotations

import typer

from skewless.cli.display import run
from skewless.errors import FeastCommandError
from skewless.feast_names import COMMANDS, advice


def _refuse(command: str) -> None:
    detail = advice(
        COMMANDS, command, f"`{command}` is a Feast command that skewless does not have"
    )
    assert detail is not None  # every command registered here is in the table

    def fail() -> None:
        raise FeastCommandError(command, detail)

    run(fail)


def register(app: typer.Typer) -> None:
    """Add a hidden command for each of Feast's commands in feast_names.COMMANDS."""
    for command in COMMANDS:

        def refuse(ctx: typer.Context, command: str = command) -> None:
            _refuse(command)

        app.command(
            command,
            hidden=True,
            add_help_option=False,
            context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
        )(refuse)
