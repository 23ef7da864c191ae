"""The `skewless` commands of erasure (display only; the logic is in the library)."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add this module's commands to `app`."""
