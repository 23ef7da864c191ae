"""`skewless stats` and `skewless drift` (display only; the logic is in
skewless.offline.drift and skewless.stats)."""

from __future__ import annotations

import json
import math
import os
import sys
from datetime import UTC
from pathlib import Path
from typing import Annotated

import typer

from skewless.cli.display import RepoOption, WideOption, out, print_table, run, table
from skewless.errors import DriftSideError
from skewless.feature_store import FeatureStore
from skewless.offline.drift import (
    DataSide,
    SavedTrainingSet,
    parse_side,
    parse_version,
    version_side,
)
from skewless.registry import VersionStatistics
from skewless.stats import CategoricalSummary, DriftReport, FailOn, NumericSummary

_VERDICT_STYLE = {"drifted": "bold red", "warn": "yellow", "stable": "green"}
# what `drift` exits with when the gate (--fail-on) stops: 1 is an error, 2 a usage
# error (a mistyped option must never read as drift)
GATE_EXIT = 3


def _num(value: float | None) -> str:
    if value is None:
        return ""
    if math.isnan(value) or math.isinf(value):
        return str(value)
    return f"{value:.4g}"


def _share(part: int, whole: int) -> str:
    return f"{part / whole:.1%}" if whole else ""


def show_statistics(recorded: VersionStatistics, *, wide: bool) -> None:
    out.print(
        f"[bold]{recorded.view}[/] Delta version {recorded.delta_version}: "
        f"{recorded.kind} run, {recorded.rows:,} rows, committed "
        f"{recorded.recorded_at.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC"
    )
    numeric = {n: s for n, s in recorded.summaries.items() if isinstance(s, NumericSummary)}
    if numeric:
        columns = ("count", "nulls", "NaN", "mean", "stddev", "min", "p50", "p99", "max")
        shown = table("Numeric features", "feature", *columns, "distinct~", right=columns)
        for name, s in numeric.items():
            shown.add_row(
                name,
                f"{s.count:,}",
                f"{s.nulls:,}",
                f"{s.nans:,}",
                _num(s.mean),
                _num(s.stddev),
                _num(s.min),
                _num(s.quantiles.get(0.5)),
                _num(s.quantiles.get(0.99)),
                _num(s.max),
                f"{s.distinct:,}",
            )
        print_table(shown, wide=wide)
    categorical = {n: s for n, s in recorded.summaries.items() if isinstance(s, CategoricalSummary)}
    if categorical:
        counts = ("count", "nulls", "distinct~")
        shown = table("Categorical features", "feature", *counts, "most frequent", right=counts)
        for name, c in categorical.items():
            top = ", ".join(
                f"{value!r} {_share(n, c.valid)}" for value, n in list(c.top.items())[:5]
            )
            shown.add_row(name, f"{c.count:,}", f"{c.nulls:,}", f"{c.distinct:,}", top)
        print_table(shown, wide=wide)
    if not recorded.summaries:
        out.print("No feature of a summarized type (numbers, strings, booleans).")


def show_report(report: DriftReport, *, wide: bool) -> None:
    out.print(f"[bold]Drift of {report.view}[/]")
    out.print(f"  reference: {report.reference.label}")
    out.print(f"  current:   {report.current.label}")
    columns = ("PSI", "KS", "JS", "null rate")
    shown = table(None, "feature", "kind", "verdict", *columns, "reasons", right=columns)
    for f in report.features:
        d = f.drift
        style = _VERDICT_STYLE[d.verdict]
        shown.add_row(
            d.feature,
            d.kind,
            f"[{style}]{d.verdict}[/]",
            _num(d.psi),
            _num(d.ks),
            _num(d.js),
            f"{d.null_rate_ref:.1%} -> {d.null_rate_cur:.1%}",
            "; ".join(d.reasons),
        )
    print_table(shown, wide=wide)
    for name, reason in sorted(report.skipped.items()):
        out.print(f"  skipped {name}: {reason}")
    counts = report.counts()
    style = _VERDICT_STYLE[report.verdict]
    out.print(
        f"[{style}]{report.verdict}[/]: {counts['drifted']} drifted, {counts['warn']} warn, "
        f"{counts['stable']} stable"
    )


def write_text(path: Path, text: str) -> None:
    """Write `text` to `path` whole or not at all (a temporary file renamed over it)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        partial.write_text(text, encoding="utf-8")
        partial.replace(path)
    finally:
        partial.unlink(missing_ok=True)


def _training_view(store: FeatureStore, name: str, view: str | None) -> str:
    """The view a training-set comparison is about: VIEW, or the training set's only
    view."""
    if view is not None:
        return view
    views = store.get_training_set(name).manifest.views
    if len(views) != 1:
        raise DriftSideError(
            "reference",
            f"training-set:{name}",
            f"the training set has features of {len(views)} views ({', '.join(views)}): "
            "name the view to compare",
        )
    return views[0]


def register(app: typer.Typer) -> None:
    """Add this module's commands to `app`."""

    @app.command()
    def stats(
        view: Annotated[str, typer.Argument(help="Feature view.")],
        *,
        version: Annotated[
            str,
            typer.Option(
                help="A Delta version, an ISO-8601 time (the newest version then), or latest."
            ),
        ] = "latest",
        list_versions: Annotated[
            bool, typer.Option("--list", help="List the versions that have statistics.")
        ] = False,
        as_json: Annotated[
            bool, typer.Option("--json", help="Print the statistics as JSON.")
        ] = False,
        repo: RepoOption = Path(),
        wide: WideOption = False,
    ) -> None:
        """Show the feature statistics a materialization recorded for a version of VIEW:
        counts, nulls, NaN, mean, spread, quantiles, distinct values, most frequent
        values."""
        store = run(lambda: FeatureStore(repo))
        if list_versions:
            found = run(lambda: store.statistics_reader().versions(store.get_feature_view(view)))
            if as_json:
                _print_json([version_side(s).spec for s in found])
                return
            shown = table(
                f"Statistics of {view}",
                "version",
                "run",
                "rows",
                "committed",
                right=("version", "rows"),
            )
            for s in found:
                shown.add_row(
                    str(s.delta_version),
                    s.kind,
                    f"{s.rows:,}",
                    f"{s.recorded_at.astimezone(UTC):%Y-%m-%d %H:%M:%S}",
                )
            print_table(shown, wide=wide)
            return
        recorded = run(lambda: store.statistics(view, parse_version(version)))
        if as_json:
            _print_json(
                {
                    "view": recorded.view,
                    "data_hash": recorded.data_hash,
                    **version_side(recorded).spec,
                    "features": {n: s.to_json() for n, s in recorded.summaries.items()},
                }
            )
            return
        show_statistics(recorded, wide=wide)

    @app.command()
    def drift(
        view: Annotated[
            str | None,
            typer.Argument(help="Feature view (with --training-set: defaults to its only view)."),
        ] = None,
        *,
        from_: Annotated[
            str | None,
            typer.Option(
                "--from",
                help="Reference: a Delta version, an ISO-8601 time, latest, table[:V] or "
                "training-set:NAME.",
            ),
        ] = None,
        to: Annotated[str, typer.Option("--to", help="Current side, same forms.")] = "latest",
        training_set: Annotated[
            str | None,
            typer.Option("--training-set", help="Reference: this saved training set."),
        ] = None,
        json_file: Annotated[
            Path | None, typer.Option("--json", help="Write the report as JSON ('-': stdout).")
        ] = None,
        html_file: Annotated[
            Path | None, typer.Option("--html", help="Write the report as one HTML file.")
        ] = None,
        fail_on: Annotated[
            str,
            typer.Option(
                help="Exit with code 3 when a feature is at least: warn, drifted or never."
            ),
        ] = "drifted",
        repo: RepoOption = Path(),
        wide: WideOption = False,
    ) -> None:
        """Compare VIEW's feature distributions between two sides: PSI, KS, JS distance,
        null-rate change, new and vanished categories, and a verdict per feature."""
        gate = run(lambda: _fail_on(fail_on))
        store = run(lambda: FeatureStore(repo))
        view_name, reference = run(lambda: _reference(store, view, from_, training_set))
        current = run(lambda: parse_side(to, "--to"))
        report = run(lambda: store.drift(view_name, reference, current))
        if json_file is not None:
            if str(json_file) == "-":
                _print_json(report.to_json())
            else:
                write_text(json_file, json.dumps(report.to_json(), indent=2) + "\n")
        if html_file is not None:
            from skewless.stats.html import render_html  # noqa: PLC0415

            write_text(html_file, render_html(report))
        if json_file is None or str(json_file) != "-":
            show_report(report, wide=wide)
            for written in (json_file, html_file):
                if written is not None:
                    out.print(f"wrote {written}")
        if report.fails(gate):
            raise typer.Exit(GATE_EXIT)


def _print_json(data: object) -> None:
    sys.stdout.write(json.dumps(data, indent=2) + "\n")


def _fail_on(value: str) -> FailOn:
    if value not in ("warn", "drifted", "never"):
        raise DriftSideError("--fail-on", value, "expected warn, drifted or never")
    gate: FailOn = value  # type: ignore[assignment]
    return gate


def _reference(
    store: FeatureStore, view: str | None, from_: str | None, training_set: str | None
) -> tuple[str, DataSide]:
    """The view compared and the reference side, from VIEW, --from and --training-set."""
    if training_set is not None:
        if from_ is not None:
            raise DriftSideError("--from", from_, "give either --from or --training-set")
        return _training_view(store, training_set, view), SavedTrainingSet(training_set)
    if from_ is None:
        raise DriftSideError("--from", "", "--from is required (or --training-set NAME)")
    reference = parse_side(from_, "--from")
    if isinstance(reference, SavedTrainingSet):
        return _training_view(store, reference.name, view), reference
    if view is None:
        raise DriftSideError("VIEW", "", "name the feature view to compare")
    return view, reference
