"""The scheduler's commands (display only; the logic is in skewless.scheduler):
`skewless schedule run|once`, `skewless backfill`, `skewless runs` and `skewless status`."""

from __future__ import annotations

import logging
import signal
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import FrameType
from typing import Annotated

import typer
from rich.markup import escape

from skewless.cli.display import RepoOption, WideOption, out, print_table, run, table
from skewless.config import parse_duration
from skewless.feature_store import FeatureStore
from skewless.registry import RunRecord
from skewless.scheduler.status import ViewStatus
from skewless.timeutil import from_micros, parse_time

schedule = typer.Typer(help="Run materialization on each view's schedule.", no_args_is_help=True)


def _when(t: datetime | None) -> str:
    return "" if t is None else t.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


def _us(t: int | None) -> str:
    return "" if t is None else _when(from_micros(t))


def _span(d: timedelta | None) -> str:
    if d is None:
        return ""
    seconds = int(d.total_seconds())
    sign, seconds = ("-" if seconds < 0 else ""), abs(seconds)
    days, rest = divmod(seconds, 86_400)
    hours, rest = divmod(rest, 3_600)
    minutes, seconds = divmod(rest, 60)
    parts = [(days, "d"), (hours, "h"), (minutes, "m"), (seconds, "s")]
    shown = "".join(f"{n}{u}" for n, u in parts if n)[:8] or "0s"
    return sign + shown


_STATUS_STYLE = {
    "succeeded": "green",
    "failed": "red",
    "running": "yellow",
    "skipped": "magenta",
    "abandoned": "red",
}


def show_runs(runs: list[RunRecord], *, title: str, wide: bool) -> None:
    counts = ("attempt", "rows read", "rows written", "keys online", "Delta version")
    shown = table(
        title,
        *("run", "view", "trigger", "tick", "interval end", "status"),
        *counts,
        *("started", "finished", "error / note"),
        right=("run", *counts),
    )
    for r in runs:
        style = _STATUS_STYLE.get(r.status, "")
        shown.add_row(
            str(r.id),
            r.view,
            r.trigger,
            _us(r.tick_us),
            _us(r.end_us),
            f"[{style}]{r.status}[/]" if style else r.status,
            str(r.attempt),
            "" if r.rows_read is None else f"{r.rows_read:,}",
            "" if r.rows_written_offline is None else f"{r.rows_written_offline:,}",
            "" if r.keys_written_online is None else f"{r.keys_written_online:,}",
            "" if r.delta_version is None else str(r.delta_version),
            _when(r.started_at),
            _when(r.finished_at),
            escape(" ".join(x for x in (r.error, r.note) if x)),
        )
    print_table(shown, wide=wide)


def show_status(found: list[ViewStatus], *, wide: bool) -> None:
    shown = table(
        "Freshness (UTC)",
        *("view", "schedule", "materialized until", "lag", "expected", "state"),
        *("last success", "last run", "next tick"),
        right=("lag", "expected"),
    )
    for s in found:
        sched = "" if s.schedule is None else s.schedule.cron
        if s.schedule is not None and s.schedule.timezone != "UTC":
            sched += f" ({s.schedule.timezone})"
        if s.stale:
            state = "[bold red]STALE[/]" if s.materialized_until else "[bold red]never run[/]"
        elif s.expected is None:
            state = "not scheduled" if s.materialized_until is None else "no expectation"
        else:
            state = "[green]fresh[/]"
        last = s.last_run
        shown.add_row(
            s.view,
            sched,
            _when(s.materialized_until),
            _span(s.lag),
            _span(s.expected),
            state,
            _when(s.last_success),
            "" if last is None else f"{last.status} (run {last.id}, {_when(last.started_at)})",
            _when(s.next_tick),
        )
    print_table(shown, wide=wide)


@schedule.command("run")
def schedule_run(repo: RepoOption = Path()) -> None:
    """Keep every scheduled view materialized, until SIGTERM or Ctrl-C (the run under way
    finishes first; a second signal stops at once, and the run is marked abandoned by the
    next runner)."""
    from skewless.scheduler.repo import repo_runner  # noqa: PLC0415 - pyspark on demand

    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    store = FeatureStore(repo)
    # PySpark installs its own Ctrl-C handler when its context starts: start it first,
    # so ours (finish the run, then stop) is the one in place
    run(lambda: store.spark)
    runner = run(lambda: repo_runner(store))
    signals = {"n": 0}

    def stop(signum: int, frame: FrameType | None) -> None:
        signals["n"] += 1
        if signals["n"] > 1:
            raise SystemExit(128 + signum)
        logging.getLogger(__name__).info("stopping after the current run (signal %d)", signum)
        runner.stop.set()

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
    out.print(f"Runner [bold]{runner.id}[/] on {repo} (SIGTERM or Ctrl-C to stop)")
    run(runner.run_forever)


@schedule.command("once")
def schedule_once(
    repo: RepoOption = Path(),
    at: Annotated[
        str | None,
        typer.Option(
            help="Run what was due at this time (ISO-8601, e.g. an orchestrator's logical "
            "date) instead of now."
        ),
    ] = None,
    wide: WideOption = False,
) -> None:
    """Run whatever is due now (missed ticks within each schedule's catch_up), then exit:
    for cron, Airflow or a Kubernetes CronJob. Exits with 1 while a view's latest tick
    ended in a failed run (with --at, retried at once rather than after the backoff)."""
    from skewless.scheduler.repo import repo_runner  # noqa: PLC0415 - pyspark on demand

    when = run(lambda: parse_time(at)) if at else None
    runner = run(lambda: repo_runner(FeatureStore(repo)))
    done = run(lambda: runner.run_due("once", when))
    if done:
        show_runs(done, title="Runs", wide=wide)
    else:
        out.print("Nothing was due.")
        for view, tick, retry_at in run(runner.retries):
            out.print(f"{view}: the tick of {_when(tick)} is retried from {_when(retry_at)} UTC")
    failed = run(lambda: runner.failed_ticks(when))
    for view, tick in failed:
        out.print(f"[bold red]{view}: the tick of {_when(tick)} failed[/]")
    if failed or any(r.status == "failed" for r in done):
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    """Add this module's commands to `app`."""
    app.add_typer(schedule, name="schedule")

    @app.command()
    def backfill(
        view: Annotated[str, typer.Argument(help="Feature view.")],
        *,
        start: Annotated[str, typer.Option(help="Start of the event-time interval (ISO-8601).")],
        end: Annotated[str, typer.Option(help="End of the interval, inclusive (ISO-8601, now).")],
        chunk: Annotated[
            str, typer.Option(help="Chunk length: 90s, 10m, 6h, 1d, PT6H or seconds.")
        ] = "1d",
        repo: RepoOption = Path(),
        wide: WideOption = False,
    ) -> None:
        """Materialize VIEW's history in chunks, oldest first; run it again to resume
        after a failure (finished chunks are skipped)."""
        from skewless.scheduler.repo import repo_backfill  # noqa: PLC0415 - pyspark

        logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
        start_t = run(lambda: parse_time(start))
        end_t = run(lambda: parse_time(end))
        size = run(lambda: parse_duration(chunk, "--chunk"))
        report = run(lambda: repo_backfill(FeatureStore(repo), view, start_t, end_t, size))
        if report.runs:
            show_runs(list(report.runs), title=f"Backfill {report.id}", wide=wide)
        out.print(
            f"{report.chunks} chunk(s): {report.chunks - report.skipped} run now, "
            f"{report.skipped} done before."
        )

    @app.command()
    def runs(
        view: Annotated[str | None, typer.Argument(help="Only this feature view.")] = None,
        limit: Annotated[int, typer.Option(help="The newest N runs.")] = 20,
        repo: RepoOption = Path(),
        wide: WideOption = False,
    ) -> None:
        """List the materialization runs the scheduler, `schedule once` and backfills
        recorded, newest last."""
        found = run(lambda: FeatureStore(repo).registry.runs(view))
        if not found:
            out.print("No run recorded yet.")
            return
        show_runs(found[-limit:], title="Runs" + (f" of {view}" if view else ""), wide=wide)

    @app.command()
    def status(
        repo: RepoOption = Path(),
        fail_if_stale: Annotated[
            bool, typer.Option("--fail-if-stale", help="Exit with code 2 when a view is stale.")
        ] = False,
        wide: WideOption = False,
    ) -> None:
        """Per view: materialized until when, the lag, its expected freshness, and whether
        it is stale."""
        from skewless.scheduler.repo import repo_status  # noqa: PLC0415

        found = run(lambda: repo_status(FeatureStore(repo), datetime.now(UTC)))
        show_status(found, wide=wide)
        stale = [s.view for s in found if s.stale]
        if stale:
            out.print(f"[bold red]stale:[/] {', '.join(stale)}")
            if fail_if_stale:
                raise typer.Exit(2)
