"""The rides demo, end to end: generate data, plan, apply, build training sets,
materialize, look values up online, and see what changed in the last day's data.

Run from the repository root or from inside feature_repo/:

    python feature_repo/demo/run_demo.py

The first run applies every definition; later runs find nothing to change, since the
registry (feature_repo/data/registry.db) remembers what was applied.
"""

from __future__ import annotations

import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from skewless import FeatureService, FeatureStore
from skewless.cli.stats import show_report
from skewless.client import OnlineClient
from skewless.grpc import running_server
from skewless.plan import explain
from skewless.stats.html import render_html

# generate_data.py sits next to this file; make it importable however we are started.
sys.path.insert(0, str(Path(__file__).resolve().parent))
from generate_data import generate

REPO = Path(__file__).resolve().parent.parent
SERVICE = "trip_completion_model_v1"
# On-demand features: computed at request time from `distance_km`, a request value.
ON_DEMAND = ["trip_context:expected_fare", "trip_context:long_trip_for_busy_driver"]
# Windowed aggregations: exact at each trip's time offline, at the request's time online.
AGGREGATED = [
    "driver_trip_stats:trips_1h",
    "driver_trip_stats:trips_1d",
    "driver_trip_stats:trips_7d",
    "driver_trip_stats:mean_fare_7d",
]
SAMPLE_ROWS = 8
DAYS = 3

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
    if _missing(value):
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
    # Deterministic values; times anchored so the data ends now, so the online store
    # below serves fresh values: the shortest ttl (zone_demand, 1 hour) leaves the last
    # snapshot fresh for 45 minutes, whenever in the hour the demo runs.
    anchor = datetime.now(UTC).replace(microsecond=0) - timedelta(days=DAYS)
    counts = generate(repo, days=DAYS, anchor=anchor)
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
        "driver_hourly_stats:earnings_per_online_hour",
        "driver_hourly_stats:local_hour",
        "driver_profile:languages",
        "driver_profile:seats",
        "customer_daily_profile:preferred_payment",
        "zone_demand:avg_wait_minutes",
        "zone_demand:is_raining",
        *ON_DEMAND,
        *AGGREGATED,
    ]
    started = time.perf_counter()
    entity_columns = ["trip_id", "driver_id", "customer_id", "city", "zone_id", "event_timestamp"]
    extra = store.get_historical_features(
        trips[[*entity_columns, "distance_km"]],
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

    materialize_and_serve(store, trips)


def materialize_and_serve(store: FeatureStore, trips: pd.DataFrame) -> None:
    console.rule("[bold]6. Materialize into Delta and the online store")
    # As a pipeline would: the history up to a day ago first, then the last day.
    now = datetime.now(UTC)
    for end, what in ((now - timedelta(days=1), "history to a day ago"), (now, "the last day")):
        console.print(f"  {what}:")
        for r in store.materialize_incremental(end):
            console.print(
                f"  {r.view:<24} {r.rows_read:>6,} rows read, {r.rows_written_offline:>6,} "
                f"written to Delta v{r.delta_version}, {r.keys_written_online:>5,} keys "
                f"online ({r.seconds:.1f}s)"
            )
    console.print(f"  online store: {store.config.online_store.url or 'embedded server'}")

    console.rule("[bold]7. Online lookups over gRPC, next to the offline values")
    if not compare_online_offline(store, trips):
        raise SystemExit(1)
    show_drift(store, "zone_demand")
    if not store.config.online_store.url:
        console.print(
            "  the embedded online server keeps running for the next commands "
            "(`skewless serve --repo feature_repo`); stop it with "
            "`skewless online-stop --repo feature_repo`"
        )


def show_drift(store: FeatureStore, view: str) -> None:
    """The last day's data against the days before, from the statistics each run
    recorded, and the report as one HTML file."""
    console.rule(f"[bold]8. Drift of {view}: the last day against the days before")
    recorded = store.statistics_reader().versions(store.get_feature_view(view))
    if len(recorded) < 2:
        console.print(
            f"  {view} has {len(recorded)} version(s) with statistics: nothing to compare"
        )
        return
    before, last = recorded[-2].delta_version, recorded[-1].delta_version
    report = store.drift(view, reference=before, current=last)
    show_report(report, wide=False)
    path = store.repo_path / "data" / f"drift_{view}.html"
    path.write_text(render_html(report), encoding="utf-8")
    console.print(
        f"  Delta v{before} -> v{last}: {report.verdict}; the report: {path} (or "
        f"`skewless drift {view} --from {before} --to {last} --html drift.html`)"
    )


def compare_online_offline(store: FeatureStore, trips: pd.DataFrame) -> bool:
    """Serve over gRPC, look a few entities up, and print them beside the offline
    point-in-time values for the same entities at the same instant."""
    keys = ["driver_id", "customer_id", "city", "zone_id"]
    rows = (
        trips[trips["driver_id"] < 1_000_000][[*keys, "distance_km"]]
        .drop_duplicates("driver_id")
        .head(4)
    )
    entity_rows = [
        {k: (v.item() if hasattr(v, "item") else v) for k, v in r.items()}
        for r in rows[keys].to_dict("records")
    ]
    # the request value on-demand features read, one per entity row
    request = {"distance_km": rows["distance_km"].tolist()}
    with running_server(store.repo_path) as server, OnlineClient(server.target) as client:
        started = time.perf_counter()
        served = client.get_online_features(SERVICE, entity_rows)
        millis = (time.perf_counter() - started) * 1000
        on_demand = client.get_online_features(ON_DEMAND, entity_rows, request_data=request)
        windows = client.get_online_features(AGGREGATED, entity_rows)
        at = datetime.now(UTC)
    offline_df = rows.assign(event_timestamp=pd.Timestamp(at))
    offline = store.get_historical_features(
        offline_df, [*store.get_feature_service(SERVICE).refs, *ON_DEMAND, *AGGREGATED]
    ).to_pandas()
    console.print(
        f"  gRPC server on {server.target}; {len(entity_rows)} entities in {millis:.1f} ms; "
        f"on-demand features from the request's distance_km: {', '.join(ON_DEMAND)}; "
        f"windowed aggregations at the request's time: {', '.join(AGGREGATED)}"
    )
    table = Table(box=box.SIMPLE_HEAD, show_edge=False)
    for col in ("driver", "feature", "online (gRPC)", "status", "offline (point-in-time)", ""):
        table.add_column(col)
    mismatches = 0
    answers = [
        *[(served, f) for f in served.features],
        *[(on_demand, f) for f in on_demand.features],
        *[(windows, f) for f in windows.features],
    ]
    for i, entity in enumerate(entity_rows):
        for online, feature in answers:
            got, want = online.values[feature][i], offline[feature].iloc[i]
            same = _same(got, want)
            mismatches += not same
            table.add_row(
                str(entity["driver_id"]) if feature == served.features[0] else "",
                feature,
                _cell(got),
                online.statuses[feature][i].value,
                _cell(want) if same else Text(repr(want), style="red"),
                "" if same else Text("DIFFERS", style="bold red"),
            )
    console.print(table)
    verdict = "[green]yes[/green]" if not mismatches else f"[red]NO ({mismatches})[/red]"
    console.print(f"  online values equal the offline point-in-time values: {verdict}")
    return not mismatches


def _missing(value: object) -> bool:
    """None, pd.NA, NaT, or a NaN of any float type (a float32 column's NaN is a
    np.float32, which is not a Python float)."""
    if isinstance(value, list | tuple | np.ndarray):
        return False
    return bool(pd.isna(value))


def _same(online: object, offline: object) -> bool:
    if _missing(online) or _missing(offline):
        return _missing(online) and _missing(offline)
    if isinstance(online, float) and isinstance(offline, float | np.floating):
        return bool(np.float32(online) == np.float32(offline)) or online == offline
    return bool(online == offline)


if __name__ == "__main__":
    main()
