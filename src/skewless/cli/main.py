"""The `skewless` command line: argument parsing and display only.

One error boundary turns a SkewlessError into one red line and exit code 1; `--debug`
shows the traceback instead.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import timedelta
from functools import partial
from pathlib import Path
from typing import Annotated

import typer
from pydantic import TypeAdapter
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from skewless import __version__
from skewless.cli import commands, erasure, feast, history, schedule, stats, teardown, training
from skewless.cli.display import STATE, RepoOption, WideOption, out, print_table, run, table
from skewless.expr.functions import render
from skewless.expr.nodes import from_data
from skewless.plan import Plan, explain
from skewless.registry import MaterializationRecord, ObjectRecord

app = typer.Typer(
    name="skewless",
    help="Feature store without training-serving skew.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _version(shown: bool) -> None:
    if shown:
        out.print(f"skewless {__version__}", highlight=False)
        raise typer.Exit


@app.callback()
def main(
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks.")] = False,
    version: Annotated[
        bool,
        typer.Option(
            "--version", help="Show the version and exit.", callback=_version, is_eager=True
        ),
    ] = False,
) -> None:
    STATE["debug"] = debug


@app.command()
def init(
    path: Annotated[Path, typer.Argument(help="Folder to create.")] = Path("feature_repo"),
    project: Annotated[
        str | None, typer.Option(help="Project name (default: the folder's name).")
    ] = None,
) -> None:
    """Scaffold a feature repo with an example entity, view, service and data."""
    files = run(lambda: commands.init(path, project or commands.project_name(path)))
    for f in files:
        out.print(f"[green]created[/] {f}")
    out.print(f"Next: [bold]cd {path} && skewless plan && skewless apply[/]")


def _show_plan(repo: Path) -> Plan:
    def planned() -> Plan:
        # the spinner stops before an error is printed, so it never shares its line
        with out.status("Loading definitions and checking sources..."):
            return commands.plan(repo)

    the_plan = run(planned)
    out.print(f"Project [bold]{the_plan.project}[/] (registry v{the_plan.base_registry_version})")
    for style, line in explain(the_plan):
        out.print(f"[{style}]{line}[/]", highlight=False)
    return the_plan


@app.command()
def plan(repo: RepoOption = Path()) -> None:
    """Show what apply would change: added, changed (data or metadata only), removed."""
    _show_plan(repo)


@app.command()
def apply(repo: RepoOption = Path()) -> None:
    """Apply the plan shown (the same plan object: what you see is what runs)."""
    the_plan = _show_plan(repo)
    if not the_plan.has_changes:
        return
    result = run(lambda: commands.apply(repo, the_plan))
    out.print(f"[bold green]Applied[/]: registry is now at v{result.registry_version}")


def _records_table(records: list[ObjectRecord], title: str) -> Table:
    shown = table(title, "kind", "name", "version", "data version", "data hash", "applied at")
    for r in records:
        shown.add_row(
            r.kind.replace("_", " "),
            r.name,
            str(r.version) + (" (removed)" if r.removed else ""),
            str(r.data_version),
            r.data_hash,
            r.applied_at.strftime("%Y-%m-%d %H:%M:%S UTC"),
        )
    return shown


@app.command("list")
def list_(repo: RepoOption = Path(), wide: WideOption = False) -> None:
    """List the applied entities, feature views and feature services."""
    records = run(lambda: commands.list_objects(repo))
    if not records:
        out.print("Nothing applied yet: run [bold]skewless apply[/].")
        return
    print_table(_records_table(records, "Applied objects"), wide=wide)


@app.command()
def describe(name: str, repo: RepoOption = Path(), wide: WideOption = False) -> None:
    """Show an object's current definition and every recorded version."""
    history = run(lambda: commands.describe(repo, name))
    print_table(_records_table(history, f"History of '{name}'"), wide=wide)
    derived = _expressions_table(history[-1])
    if derived is not None:
        print_table(derived, wide=wide)
    windows = _aggregations_table(history[-1])
    if windows is not None:
        print_table(windows, wide=wide)
    out.print_json(json.dumps(history[-1].spec))


def _expressions_table(record: ObjectRecord) -> Table | None:
    """The features an expression computes, with the expression as Python text (the JSON
    below holds it as data)."""
    fields = [f for f in record.spec.get("schema_") or [] if isinstance(f, dict) and f.get("expr")]
    if not fields:
        return None
    shown = table("Derived features", "feature", "type", "expression")
    for f in fields:
        shown.add_row(str(f["name"]), str(f["dtype"]), render(from_data(f["expr"])))
    return shown


def _aggregations_table(record: ObjectRecord) -> Table | None:
    """A view's aggregations: each feature with its function, column and window."""
    aggregations = [a for a in record.spec.get("aggregations") or [] if isinstance(a, dict)]
    if not aggregations:
        return None
    shown = table("Aggregations", "feature", "function", "column", "window")
    for a in aggregations:
        window = TypeAdapter(timedelta).validate_python(a["time_window"])
        shown.add_row(str(a["name"]), str(a["function"]), str(a["column"]), str(window))
    return shown


def _materialize(
    repo: Path,
    views: list[str] | None,
    start: str | None,
    end: str | None,
    *,
    incremental: bool,
    wide: bool,
) -> None:
    start_t = run(lambda: commands.parse_time(start)) if start else None
    end_t = run(lambda: commands.parse_time(end)) if end else None
    names = run(lambda: commands.view_names(repo, views))
    records: list[MaterializationRecord] = []
    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("views"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=out, transient=True) as progress:
        task = progress.add_task("materializing", total=len(names))
        for name in names:
            progress.update(task, description=f"materializing {name}")
            records.append(
                run(
                    partial(
                        commands.materialize_view,
                        repo,
                        name,
                        start_t,
                        end_t,
                        incremental=incremental,
                    )
                )
            )
            progress.advance(task)
    counts = (
        "rows read",
        "rows rejected",
        "rows written offline",
        "keys written online",
        "keys already newer",
        "Delta version",
        "seconds",
    )
    shown = table(
        "Materialization" + (" (incremental)" if incremental else ""),
        "view",
        *counts,
        right=counts,
    )
    for r in records:
        shown.add_row(
            r.view,
            f"{r.rows_read:,}",
            f"{r.rows_rejected:,}",
            f"{r.rows_written_offline:,}",
            f"{r.keys_written_online:,}",
            f"{r.keys_offered_online - r.keys_written_online:,}",
            str(r.delta_version),
            f"{r.seconds:.1f}",
        )
    print_table(shown, wide=wide)
    for r in records:
        if r.rows_rejected:
            out.print(
                f"[yellow]{r.view}: {r.rows_rejected:,} source rows have a null join key or "
                "event time; they were counted and not written.[/yellow]"
            )


ViewsOption = Annotated[
    list[str] | None, typer.Option("--views", "-v", help="Views to materialize (default all).")
]


@app.command()
def materialize(
    start: Annotated[
        str, typer.Argument(help="Start of the event-time interval (ISO-8601, UTC if naive).")
    ],
    end: Annotated[str, typer.Argument(help="End of the interval, inclusive (ISO-8601 or 'now').")],
    views: ViewsOption = None,
    repo: RepoOption = Path(),
    wide: WideOption = False,
) -> None:
    """Materialize [START, END] into the Delta feature tables and the online store."""
    _materialize(repo, views, start, end, incremental=False, wide=wide)


@app.command("materialize-incremental")
def materialize_incremental(
    end: Annotated[str, typer.Argument(help="Up to this event time (default now).")] = "now",
    views: ViewsOption = None,
    repo: RepoOption = Path(),
    wide: WideOption = False,
) -> None:
    """Materialize what arrived since each view's last run, late rows included."""
    _materialize(repo, views, None, end, incremental=True, wide=wide)


@app.command()
def serve(
    repo: RepoOption = Path(),
    port: Annotated[int, typer.Option("--port", "-p", help="Port to listen on.")] = 6566,
    host: Annotated[
        str, typer.Option(help="Address to bind (0.0.0.0: every interface).")
    ] = "127.0.0.1",
    metrics_port: Annotated[
        int | None,
        typer.Option(help="Serve Prometheus metrics at http://HOST:PORT/metrics (off if unset)."),
    ] = None,
    http_port: Annotated[
        int | None,
        typer.Option(
            help="Also serve HTTP/JSON (Feast's POST /get-online-features, GET /health) on "
            "this port (off if unset)."
        ),
    ] = None,
) -> None:
    """Serve online features over gRPC, with health checking and reflection, until Ctrl-C;
    with --http-port, over HTTP/JSON too."""
    from skewless.grpc import serve as serve_grpc  # noqa: PLC0415 - grpc loads on demand

    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )

    def started(bound: int) -> None:
        out.print(f"Serving [bold]{repo}[/] on {host}:{bound} (Ctrl-C to stop)")

    run(
        lambda: serve_grpc(
            repo,
            port,
            host,
            on_started=started,
            metrics_port=metrics_port,
            http_port=http_port,
        )
    )


@app.command("online-stop")
def online_stop(repo: RepoOption = Path()) -> None:
    """Stop the repo's embedded online server (its data stays in data/online/)."""
    stopped = run(lambda: commands.stop_embedded(repo))
    out.print("stopped" if stopped else "the embedded online server was not running")


for _group in (training, history, erasure, feast, teardown, schedule, stats):
    _group.register(app)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(app())
