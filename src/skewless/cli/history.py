"""The `skewless` commands of history (display only; the logic is in the library):
`history VIEW`, `rollback VIEW --to N` and `lineage NAME`."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich import box
from rich.markup import escape
from rich.table import Column, Table
from rich.tree import Tree

from skewless.cli.display import RepoOption, WideOption, out, print_table, run, table
from skewless.feature_store import FeatureStore
from skewless.offline.lineage import Lineage, LineageNode
from skewless.plan import Rollback, explain, repo_drift
from skewless.registry.history import DataVersion, DefinitionVersion, ViewHistory

HASH_CHARS = 8  # hashes are shown by their start, as git shows commits


def _when(t: datetime | None) -> str:
    return "-" if t is None else t.strftime("%Y-%m-%d %H:%M")


def _count(n: int | None) -> str:
    return "-" if n is None else f"{n:,}"


def _short(data_hash: str | None) -> str:
    return "-" if data_hash is None else data_hash[:HASH_CHARS]


# --- history -------------------------------------------------------------------------

# how the history tables look; their cells, like every table's, are never cut short
_LOOK: dict[str, Any] = {
    "box": box.SIMPLE_HEAD,
    "title_justify": "left",
    "caption_justify": "left",
    "padding": (0, 1),
    "collapse_padding": True,
}


def _definitions_table(history: ViewHistory) -> Table:
    shown = table(
        f"Definition versions of '{escape(history.view)}'",
        *("v", "data v", "applied at", "registry"),
        # hashes by their first HASH_CHARS characters, as git shows commits: the table
        # tells versions apart; `skewless list`/`describe` show them whole
        *("data", "metadata"),
        Column("change", ratio=1, overflow="fold"),
        right=("v", "data v", "registry"),
        **_LOOK,
        caption="data v: bumps when the data hash changes; applied at: UTC",
    )
    for d in history.definitions:
        shown.add_row(
            str(d.version),
            str(d.data_version),
            _when(d.applied_at),
            f"v{d.registry_version}",
            _short(d.data_hash),
            _short(d.metadata_hash),
            _change(d),
            style="dim" if d.removed else None,
        )
    return shown


def _change(d: DefinitionVersion) -> str:
    head = {
        "added": "[green]added[/]",
        "removed": "[red]removed[/]",
        "re-added": "[green]added again[/]",
        "changed": "[yellow]data change[/]" if d.data_changed else "metadata only",
    }[d.event]
    if d.same_as is not None:
        head += f" (the definition of v{d.same_as})"
    return "\n".join([head] + [escape(str(c)) for c in d.changes])


def _runs_table(history: ViewHistory) -> Table:
    counts = ("read", "inserted", "updated", "rejected", "online")
    shown = table(
        f"Data versions of '{escape(history.view)}' (materialization runs)",
        *("run", "for", "event times", "finished", "Delta", *counts),
        right=("for", "Delta", *counts),
        **_LOOK,
        caption=(
            "for: the definition version a run ran for; event times (from, to) and finished: "
            "UTC; online: keys written"
        ),
    )
    for r in history.runs:
        shown.add_row(
            f"{r.run} {'incr.' if r.kind == 'incremental' else r.kind}",
            "-" if r.definition_version is None else f"v{r.definition_version}",
            f"{'all history' if r.start is None else _when(r.start)}\n{_when(r.end)}",
            _when(r.finished_at).replace(" ", "\n"),
            f"v{r.delta_version}" if r.delta_version >= 0 else "-",
            _count(r.rows_read),
            _inserted(r),
            _count(r.rows_updated),
            _count(r.rows_rejected),
            _count(r.keys_written_online),
        )
    return shown


def _inserted(r: DataVersion) -> str:
    if r.rows_inserted is None:  # a record without the split: its total, marked
        return f"{r.rows_written:,}*"
    return _count(r.rows_inserted)


def show_history(history: ViewHistory, *, wide: bool = False) -> None:
    print_table(_definitions_table(history), wide=wide)
    if not history.runs:
        out.print(f"No materialization of '{escape(history.view)}' is recorded.")
        return
    print_table(_runs_table(history), wide=wide)
    if any(r.rows_inserted is None for r in history.runs):
        out.print("* rows inserted or updated: the run's record does not tell them apart")
    out.print("[bold]Feature tables[/] (one per data hash):")
    for t in history.tables:
        versions = ", ".join(f"v{v}" for v in t.definition_versions) or "-"
        runs = f"{t.runs} run{'s' if t.runs != 1 else ''}"
        out.print(
            f"  {_short(t.data_hash)}  definition {versions} [dim]·[/] last Delta version "
            f"{t.last_delta_version} [dim]·[/] {runs}",
            highlight=False,
        )
        out.print(f"    {escape(t.delta_path)}", highlight=False, soft_wrap=True)


# --- rollback ------------------------------------------------------------------------


def show_rollback_plan(rollback: Rollback) -> None:
    now = "removed" if rollback.current is None else f"at v{rollback.current.version}"
    out.print(
        f"Roll feature view [bold]{escape(rollback.view)}[/] back to "
        f"v{rollback.target.version} (applied {_when(rollback.target.applied_at)} UTC); "
        f"it is {now}. Registry v{rollback.plan.base_registry_version}.",
        highlight=False,
    )
    for style, line in explain(rollback.plan):
        out.print(f"[{style}]{escape(line)}[/]", highlight=False)


def show_rematerialization(rollback: Rollback) -> None:
    need = rollback.rematerialization
    view = escape(rollback.view)
    if not need.needed:
        out.print("Only metadata changes: the data stays as it is, nothing to re-materialize.")
        return
    if rollback.view_is_online:
        # Online values are kept per view and entity, replaced only by higher-ranked
        # rows: a value the newer definition wrote with a later event time outranks
        # what the rolled-back definition materializes.
        out.print(
            f"[yellow]Online: values the newer definition wrote for '{view}' stay in the "
            "online store wherever their event time is later than the rolled-back "
            "definition's rows; materializing does not replace them.[/]",
            highlight=False,
            soft_wrap=True,
        )
    was = "-" if rollback.current is None else _short(rollback.current.data_hash)
    out.print(
        f"[bold]Re-materialization[/]: the data hash changes ({was} -> {_short(need.data_hash)}).",
        highlight=False,
    )
    if need.table is not None:
        out.print(
            f"  Its Delta table exists from earlier runs: {escape(need.table.delta_path)}\n"
            f"  (last Delta version {need.table.delta_version}, last run "
            f"{_when(need.table.finished_at)} UTC). Bring it up to date:\n"
            f"  [bold]skewless materialize-incremental --views {view}[/]",
            highlight=False,
            soft_wrap=True,
        )
        return
    out.print(
        "  No Delta table of that data hash exists: a full materialization is needed:\n"
        f"  [bold]skewless materialize START END --views {view}[/] (or "
        "materialize-incremental, which takes all history the first time)",
        highlight=False,
        soft_wrap=True,
    )


def _rollback(repo: Path, view: str, to_version: int, yes: bool) -> None:
    store = run(lambda: FeatureStore(repo))
    rb = run(lambda: store.plan_rollback(view, to_version))
    show_rollback_plan(rb)
    if not yes and not typer.confirm("Apply this plan?", default=False):
        out.print("Rollback cancelled: nothing was applied.")
        raise typer.Exit(1)
    _, version = run(lambda: store.rollback(view, to_version, rb))
    recorded = run(lambda: store.registry.get("feature_view", view))
    as_new = "" if recorded is None else f", recorded as v{recorded.version}"
    out.print(
        f"[bold green]Rolled back[/]: '{escape(view)}' has the definition of "
        f"v{to_version} again{as_new}; registry is now at v{version}",
        highlight=False,
    )
    show_rematerialization(rb)
    drift = repo_drift(rb, store.repo_path)
    if drift is not None:
        out.print(f"[yellow]Warning: {escape(drift.detail)}[/]", highlight=False)


# --- lineage -------------------------------------------------------------------------

_KIND = {
    "training_set": "training set",
    "feature_service": "feature service",
    "feature_view": "feature view",
    "source": "source",
    "feature_table": "feature table",
}


def _details(node: LineageNode) -> list[str]:
    """What a lineage node shows after its name: versions, pins, counts."""
    match node.kind:
        case "training_set":
            parts = [
                f"{_count(node.rows)} rows",
                f"registry v{node.registry_version}",
                f"saved {_when(node.when)} UTC",
            ]
            if node.erasures:
                parts.append(f"[red]{node.erasures} erasure(s): not reproducible[/]")
            return parts
        case "feature_service" | "feature_view":
            parts = ["v?" if node.version is None else f"v{node.version}"]
            parts.append(f"data {_short(node.data_hash)}")
            if node.features:
                parts.append("features " + escape(", ".join(node.features)))
            return parts
        case "source":
            if node.delta_version is not None:
                pinned = [f"Delta version {node.delta_version}"]
            elif node.files is not None:
                pinned = [f"{node.files} file{'s' if node.files != 1 else ''}"]
            else:
                pinned = []
            return pinned + ([node.format] if node.format else [])
        case "feature_table":
            return [f"Delta version {node.delta_version}", f"last run {_when(node.when)} UTC"]


def _label(node: LineageNode) -> str:
    name = escape(node.name)
    match node.kind:
        case "source":
            head = f"[bold]source[/] {name}"
        case "feature_table":  # its (long) path on a line of its own
            head = "[bold]feature table[/]"
        case _:
            head = f"[bold]{_KIND[node.kind]}[/] '{name}'"
    label = " [dim]·[/] ".join([head, *_details(node)])
    if node.kind == "training_set":  # where its rows are
        label += f"\nDelta table {escape(node.location or '')}, version {node.delta_version}"
    if node.kind == "feature_table":
        label += f"\n{name}"
    return label


def lineage_tree(graph: Lineage) -> Tree:
    """The named node at the root; under each node what it was built from (a view's
    feature table too, marked as what the view was materialized into)."""
    root = graph.node(graph.root)
    tree = Tree(_label(root), guide_style="dim")

    def grow(branch: Tree, node: LineageNode) -> None:
        for parent in graph.upstream(node.id):
            grow(branch.add(_label(parent)), parent)
        for child in graph.downstream(node.id):
            if child.kind == "feature_table":
                branch.add("[dim]materialized into[/] " + _label(child))

    grow(tree, root)
    return tree


# --- commands ------------------------------------------------------------------------


def register(app: typer.Typer) -> None:
    """Add this module's commands to `app`."""

    @app.command()
    def history(
        view: Annotated[str, typer.Argument(help="Feature view.")],
        repo: RepoOption = Path(),
        wide: WideOption = False,
    ) -> None:
        """Show a view's definition versions (with what changed) and its data versions."""
        found = run(lambda: FeatureStore(repo).history(view))
        show_history(found, wide=wide)

    @app.command()
    def rollback(
        view: Annotated[str, typer.Argument(help="Feature view.")],
        to: Annotated[int, typer.Option("--to", help="The definition version to restore.")],
        yes: Annotated[bool, typer.Option("--yes", "-y", help="Apply without asking.")] = False,
        repo: RepoOption = Path(),
    ) -> None:
        """Re-apply an earlier definition version of a view, through plan and apply."""
        _rollback(repo, view, to, yes)

    @app.command("lineage")
    def lineage_(
        name: Annotated[str, typer.Argument(help="Saved training set, feature service or view.")],
        repo: RepoOption = Path(),
    ) -> None:
        """Show where a training set, service or view comes from: sources, views, versions."""
        graph = run(lambda: FeatureStore(repo).lineage(name))
        what = "as pinned by its manifest" if graph.pinned else "current versions"
        out.print(lineage_tree(graph))
        out.print(f"[dim]({what})[/]")
