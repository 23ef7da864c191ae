"""The rides demo, end to end: generate data, plan, apply, build training sets.

Run from the repository root or from inside feature_repo/:

    python feature_repo/demo/run_demo.py

The first run applies every definition; later runs find nothing to change, since the
registry (feature_repo/data/registry.db) remembers what was applied.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from skewless import FeatureService, FeatureStore
from skewless.plan import explain

# generate_data.py sits next to this file; make it importable however we are started.
sys.path.insert(0, str(Path(__file__).resolve().parent))
from generate_data import generate

REPO = Path(__file__).resolve().parent.parent
SERVICE = "trip_completion_model_v1"
SAMPLE_ROWS = 8

# Piped into a file or a CI log, rich assumes 80 columns; the tables need a little more.
console = Console()
if not console.is_terminal:
    console.width = 120

# Why a feature of each view can be null in the training set.
NULL_CAUSES = {
    "driver_hourly_stats": "early trip, unknown driver, no row in the last 2h; "
    "rates: no offers in 24h",
    "driver_profile": "early trip, unknown driver; rating: under 20 rated trips",
    "customer_daily_profile": "early trip, guest, signed up since the last nightly run",
    "zone_demand": "early trip, unmapped zone, no snapshot in the last hour",
}


def _cell(value: object) -> Text:
    """A table cell: missing values as a dim 'null', floats rounded, lists joined."""
    if isinstance(value, list | tuple | np.ndarray):
        return Text("[" + ", ".join(str(v) for v in value) + "]")
    if value is None or value is pd.NA or (isinstance(value, float) and np.isnan(value)):
        return Text("null", style="dim")
    if isinstance(value, float | np.floating):
        return Text(f"{value:.3f}")
    if isinstance(value, pd.Timestamp):
        return Text(value.strftime("%m-%d %H:%M"))
    return Text(str(value))


def show_rows(frame: pd.DataFrame, title: str) -> None:
    """Rows of `frame` as the columns of a table (one line per column of `frame`)."""
    table = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD, padding=0)
    table.add_column("column", style="bold", no_wrap=True)
    for index in frame.index:
        table.add_column(f"row {index}", justify="right", no_wrap=True, min_width=11)
    for column in frame.columns:
        table.add_row(column, *(_cell(v) for v in frame[column]))
    console.print(table)


def show_nulls(frame: pd.DataFrame, service: FeatureService) -> None:
    """Null count of every feature of `service`, with the reasons a value can be missing."""
    table = Table(title="Missing feature values", title_justify="left", box=box.SIMPLE_HEAD)
    table.add_column("view")
    table.add_column("feature")
    table.add_column("nulls", justify="right")
    table.add_column("why a value can be null", style="dim")
    for part in service.features:
        for i, feature in enumerate(part.features):
            nulls = int(frame[feature].isna().sum())
            first = i == 0
            table.add_row(
                part.view if first else "",
                feature,
                f"{nulls:,} ({nulls / len(frame):.1%})",
                NULL_CAUSES.get(part.view, "") if first else "",
            )
    console.print(table)


def main(repo_path: Path | None = None) -> None:
    repo = (repo_path or REPO).resolve()

    console.rule("[bold]1. Generate data")
    counts = generate(repo)
    for file, rows in counts.items():
        console.print(f"  {rows:>6,} rows  {file}")

    console.rule("[bold]2. Plan")
    store = FeatureStore(repo)
    plan = store.plan()
    for style, text in explain(plan):
        console.print(f"  [{style}]{text}[/{style}]")

    console.rule("[bold]3. Apply")
    _, version = store.apply(plan)
    console.print(f"  registry of '{store.project}' is at version {version}")
    views = ", ".join(v.name for v in store.list_feature_views())
    services = ", ".join(s.name for s in store.list_feature_services())
    console.print(f"  feature views: {views}")
    console.print(f"  feature services: {services}")

    console.rule(f"[bold]4. Training set from the service '{SERVICE}'")
    trips = pd.read_parquet(repo / "data" / "trips.parquet")
    console.print(
        f"  entity dataframe: {len(trips):,} trips, "
        f"{trips['event_timestamp'].min():%Y-%m-%d %H:%M} .. "
        f"{trips['event_timestamp'].max():%Y-%m-%d %H:%M} UTC"
    )
    started = time.perf_counter()
    _ = store.spark  # start Spark first, so the retrieval time below is the join alone
    spark_seconds = time.perf_counter() - started

    started = time.perf_counter()
    job = store.get_historical_features(trips, SERVICE)
    training = job.to_pandas()
    seconds = time.perf_counter() - started
    console.print(
        f"  shape {training.shape[0]:,} rows x {training.shape[1]} columns in {seconds:.1f}s "
        f"(+ {spark_seconds:.1f}s Spark start-up)"
    )
    show_rows(training.iloc[:: len(training) // SAMPLE_ROWS + 1], "Sample of the training set")
    show_nulls(training, store.get_feature_service(SERVICE))

    # Point-in-time retrieval never drops or repeats an entity row.
    same_rows = len(training) == len(trips) and training["trip_id"].tolist() == (
        trips["trip_id"].tolist()
    )
    verdict = "[green]yes[/green]" if same_rows else "[red]NO[/red]"
    console.print(f"  every trip came back exactly once, in order: {verdict}")

    console.rule("[bold]5. Explicit feature references")
    refs = [
        "driver_hourly_stats:earnings_last_hour",
        "driver_hourly_stats:is_on_shift",
        "driver_profile:languages",
        "driver_profile:seats",
        "customer_daily_profile:preferred_payment",
        "zone_demand:avg_wait_minutes",
        "zone_demand:is_raining",
    ]
    started = time.perf_counter()
    extra = store.get_historical_features(
        trips[["trip_id", "driver_id", "customer_id", "city", "zone_id", "event_timestamp"]],
        refs,
        full_feature_names=True,
    ).to_pandas()
    seconds = time.perf_counter() - started
    console.print(
        f"  shape {extra.shape[0]:,} rows x {extra.shape[1]} columns in {seconds:.1f}s; "
        "full_feature_names=True names columns view__feature"
    )
    show_rows(extra.iloc[1000:1006], "Rows 1000 to 1005")

    if not (same_rows and len(extra) == len(trips)):
        console.print("[red]the training set does not have one row per trip[/red]")
        raise SystemExit(1)


if __name__ == "__main__":
    main()
