"""Statistics recorded by materialization and drift between versions, over real Spark,
Delta, Redis and a SQLite registry.

Three days of rides, written by pandas with its defaults and event times in São Paulo
time: day 1 is materialized in full, day 2 (same distributions) and day 3 (the fare's
mean shifted, a new payment method, the trip count's null rate jumped) incrementally.
Day 1 -> day 2 is stable on every feature; day 2 -> day 3 is drifted on exactly the
three shifted ones. A training set built on day 1 compares the same way.
"""

from __future__ import annotations

import json
import textwrap
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from pyspark.sql import SparkSession
from typer.testing import CliRunner

from skewless import FeatureStore, SavedTrainingSet, WholeTable
from skewless.batch import materialize as materialize_module
from skewless.cli.main import app
from skewless.errors import DriftSideError, StatisticsNotFoundError, TrainingSetNotFoundError
from skewless.stats import CategoricalSummary, NumericSummary, summarize_categorical
from skewless.stats.summary import summarize_numeric

DAY1 = datetime(2026, 3, 2, tzinfo=UTC)
DAY = timedelta(days=1)
DRIVERS = 500
PER_DAY = 8  # rides per driver and day
SHIFTED = {"fare", "payment", "trips"}
FEATURES = ("fare", "distance", "trips", "payment", "rated")

DEFS = """
from skewless import (
    Bool, Entity, FeatureView, Field, FileSource, Float64, Int64, String, UnixTimestamp,
)

driver = Entity("driver", join_keys=["driver_id"])
rides = FeatureView(
    "rides",
    entities=[driver],
    schema=[
        Field("fare", Float64),
        Field("distance", Float64),
        Field("trips", Int64),
        Field("payment", String),
        Field("rated", Bool),
        Field("pickup_at", UnixTimestamp),
    ],
    source=FileSource("data/rides", timestamp_field="ts"),
)
"""


def day_frame(day: int, *, shifted: bool, seed: int) -> pd.DataFrame:
    """A day of rides; `shifted`: the fare's mean +10, 15% paid by a new method, 30% of
    trip counts missing."""
    rng = np.random.default_rng(seed)
    n = DRIVERS * PER_DAY
    start = DAY1 + (day - 1) * DAY
    # distinct times per driver: each ride is its own (key, event time)
    seconds = np.concatenate([rng.choice(86_400, PER_DAY, replace=False) for _ in range(DRIVERS)])
    ts = pd.to_datetime([start + timedelta(seconds=int(s)) for s in seconds], utc=True)
    fare = rng.normal(30.0 if shifted else 20.0, 5.0, n)
    distance = rng.exponential(3.0, n)
    distance[rng.random(n) < 0.02] = np.nan
    trips = pd.array(rng.poisson(5, n), dtype="Int64")
    trips[rng.random(n) < (0.3 if shifted else 0.01)] = pd.NA
    methods = ["card", "cash", "wallet", "crypto"]
    weights = [0.5, 0.25, 0.1, 0.15] if shifted else [0.6, 0.3, 0.1, 0.0]
    payment = rng.choice(methods, n, p=weights).astype(object)
    payment[rng.random(n) < 0.01] = None
    return pd.DataFrame(
        {
            "driver_id": np.repeat(np.arange(DRIVERS, dtype=np.int64), PER_DAY),
            "ts": ts.tz_convert("America/Sao_Paulo"),
            "fare": fare,
            "distance": distance,
            "trips": trips,
            "payment": payment,
            "rated": rng.random(n) < 0.7,
            "pickup_at": ts,
        }
    )


@pytest.fixture(scope="module")
def days() -> dict[int, pd.DataFrame]:
    return {
        1: day_frame(1, shifted=False, seed=1),
        2: day_frame(2, shifted=False, seed=2),
        3: day_frame(3, shifted=True, seed=3),
    }


@pytest.fixture(scope="module")
def store(
    tmp_path_factory: pytest.TempPathFactory,
    redis_url: str,
    spark: SparkSession,
    days: dict[int, pd.DataFrame],
) -> FeatureStore:
    repo = tmp_path_factory.mktemp("drift") / "repo"
    (repo / "data" / "rides").mkdir(parents=True)
    (repo / "feature_store.yaml").write_text(
        textwrap.dedent(
            f"""
            project: d_{uuid.uuid4().hex[:8]}
            online_store: {{type: redis, url: '{redis_url}'}}
            """
        )
    )
    (repo / "defs.py").write_text(DEFS)
    fs = FeatureStore(repo)
    days[1].to_parquet(repo / "data" / "rides" / "day1.parquet")
    fs.apply()
    fs.materialize(end=DAY1 + DAY)  # version 0
    # the same run again changes nothing: no version, no statistics
    fs.materialize(end=DAY1 + DAY)
    entity = days[1][["driver_id", "ts"]].rename(columns={"ts": "event_timestamp"})
    job = fs.get_historical_features(entity, [f"rides:{f}" for f in FEATURES])
    fs.save_training_set("day1", job)
    for day in (2, 3):
        days[day].to_parquet(repo / "data" / "rides" / f"day{day}.parquet")
        fs.materialize_incremental(end=DAY1 + day * DAY)  # versions 1 and 2
    return fs


def test_materialization_records_statistics_per_committed_version(store: FeatureStore) -> None:
    versions = store.statistics_reader().versions(store.get_feature_view("rides"))
    assert [(s.delta_version, s.kind, s.rows) for s in versions] == [
        (0, "full", DRIVERS * PER_DAY),
        (1, "incremental", DRIVERS * PER_DAY),
        (2, "incremental", DRIVERS * PER_DAY),
    ]
    assert store.statistics("rides").delta_version == 2
    assert store.statistics("rides", 0) == versions[0]
    # a time resolves to the newest version committed by then
    assert store.statistics("rides", versions[1].recorded_at).delta_version == 1
    # every version bins over the reference edges the first one fixed
    for name in ("fare", "distance", "trips"):
        edges = {s.summaries[name].edges for s in versions}  # type: ignore[union-attr]
        assert len(edges) == 1
    assert "pickup_at" not in versions[0].summaries  # timestamps are not summarized


def test_recorded_statistics_equal_the_reference_computation(
    store: FeatureStore, days: dict[int, pd.DataFrame]
) -> None:
    recorded = store.statistics("rides", 1).summaries
    day = days[2]
    fare = recorded["fare"]
    assert isinstance(fare, NumericSummary)
    expected = summarize_numeric(day["fare"].to_numpy(), fare.edges)
    assert fare.counts == expected.counts
    assert (fare.count, fare.nulls, fare.nans, fare.min, fare.max) == (
        expected.count,
        expected.nulls,
        expected.nans,
        expected.min,
        expected.max,
    )
    assert fare.mean == pytest.approx(expected.mean, rel=1e-12)
    distance = recorded["distance"]
    assert isinstance(distance, NumericSummary)
    # pandas writes a float NaN to Parquet as null
    assert (distance.nulls, distance.nans) == (int(day["distance"].isna().sum()), 0)
    assert distance.nulls > 0
    trips = recorded["trips"]
    assert isinstance(trips, NumericSummary)
    assert trips.nulls == int(day["trips"].isna().sum()) > 0
    payment = recorded["payment"]
    assert isinstance(payment, CategoricalSummary)
    reference = summarize_categorical(list(day["payment"]))
    assert (payment.top, payment.nulls, payment.other) == (
        reference.top,
        reference.nulls,
        reference.other,
    )
    rated = recorded["rated"]
    assert isinstance(rated, CategoricalSummary)
    assert set(rated.top) == {"true", "false"}
    assert rated.top["true"] == int(day["rated"].sum())


def test_drift_of_a_fresh_sample_is_stable_everywhere(store: FeatureStore) -> None:
    report = store.drift("rides", reference=0, current=1)
    assert {f.drift.feature: f.drift.verdict for f in report.features} == dict.fromkeys(
        FEATURES, "stable"
    )
    assert report.verdict == "stable" and not report.fails("warn")
    assert report.skipped == {"pickup_at": "unix_timestamp is not summarized"}


def test_drift_flags_exactly_the_shifted_features(store: FeatureStore) -> None:
    report = store.drift("rides", reference=1, current="latest")
    verdicts = {f.drift.feature: f.drift.verdict for f in report.features}
    assert {f for f, v in verdicts.items() if v == "drifted"} == SHIFTED
    assert {f for f, v in verdicts.items() if v == "stable"} == set(FEATURES) - SHIFTED
    assert [f.drift.feature for f in report.features][:3] == sorted(
        SHIFTED, key=lambda f: -(report.drift(f).psi or 0)
    )
    assert report.drift("payment").new_categories == ("crypto",)
    trips = report.drift("trips")
    assert trips.null_rate_cur - trips.null_rate_ref == pytest.approx(0.29, abs=0.03)
    assert any(r.startswith("null rate change") for r in trips.reasons)
    fare = report.drift("fare")
    assert fare.psi is not None and fare.psi > 1 and fare.ks is not None and fare.ks > 0.5
    assert report.fails("drifted") and not report.fails("never")


def test_a_recorded_full_version_equals_its_table_read_whole(store: FeatureStore) -> None:
    report = store.drift("rides", reference=0, current=WholeTable(0))
    assert report.current.spec["rows"] == DRIVERS * PER_DAY
    for f in report.features:
        assert f.reference.to_json()["count"] == f.current.to_json()["count"]
        assert f.drift.psi == 0.0 and f.drift.verdict == "stable"
    # the whole table now holds three days: the shifted day shows, diluted
    whole = store.drift("rides", reference=0, current=WholeTable())
    assert whole.current.spec == {"kind": "table", "delta_version": 2, "rows": 3 * 4000}
    assert whole.drift("payment").new_categories == ("crypto",)


def test_training_set_against_serving_data(store: FeatureStore) -> None:
    stable = store.drift("rides", reference=SavedTrainingSet("day1"), current=1)
    assert stable.verdict == "stable"
    assert stable.reference.spec["kind"] == "training_set"
    assert stable.reference.spec["rows"] == DRIVERS * PER_DAY
    shifted = store.drift("rides", reference=SavedTrainingSet("day1"), current="latest")
    drifted = {f.drift.feature for f in shifted.features if f.drift.verdict == "drifted"}
    assert drifted == SHIFTED


def test_drift_sides_that_do_not_exist_are_named(store: FeatureStore) -> None:
    with pytest.raises(
        StatisticsNotFoundError, match=r"no statistics for Delta version 9.*0, 1, 2"
    ):
        store.drift("rides", reference=9)
    with pytest.raises(StatisticsNotFoundError, match="committed by 2020-01-01 00:00 UTC"):
        store.statistics("rides", datetime(2020, 1, 1, tzinfo=UTC))
    with pytest.raises(DriftSideError, match="versions 0 to 2"):
        store.drift("rides", reference=0, current=WholeTable(7))
    with pytest.raises(TrainingSetNotFoundError, match="no_such_set"):
        store.drift("rides", reference=SavedTrainingSet("no_such_set"))


def test_cli_drift_gates_and_writes_json_and_html(store: FeatureStore, tmp_path: Path) -> None:
    runner = CliRunner()
    repo = str(store.repo_path)
    html = tmp_path / "report.html"
    out = tmp_path / "report.json"
    args = ["drift", "rides", "--from", "1", "--to", "latest", "--repo", repo]
    result = runner.invoke(app, [*args, "--json", str(out), "--html", str(html)])
    assert result.exit_code == 3, result.output
    assert "3 drifted, 0 warn, 2 stable" in result.output
    data = json.loads(out.read_text())
    assert data["verdict"] == "drifted"
    assert {f["feature"] for f in data["features"] if f["verdict"] == "drifted"} == SHIFTED
    page = html.read_text()
    assert page.count("<svg") == len(FEATURES)
    assert "http://" not in page and "https://" not in page
    assert runner.invoke(app, [*args, "--fail-on", "never"]).exit_code == 0
    stable = runner.invoke(app, ["drift", "rides", "--from", "0", "--to", "1", "--repo", repo])
    assert stable.exit_code == 0, stable.output
    warn_gate = runner.invoke(app, [*args, "--fail-on", "sometimes"])
    assert warn_gate.exit_code == 1 and "expected warn, drifted or never" in warn_gate.output
    typo = runner.invoke(app, ["drift", "rides", "--form", "1", "--repo", repo])
    assert typo.exit_code == 2  # a usage error never reads as drift
    trained = runner.invoke(app, ["drift", "--training-set", "day1", "--repo", repo])
    assert trained.exit_code == 3, trained.output
    assert "training set 'day1'" in trained.output


def test_cli_stats_shows_a_version(store: FeatureStore) -> None:
    runner = CliRunner()
    repo = str(store.repo_path)
    shown = runner.invoke(app, ["stats", "rides", "--version", "0", "--repo", repo, "--wide"])
    assert shown.exit_code == 0, shown.output
    assert "Delta version 0: full run, 4,000 rows" in shown.output
    assert "'card'" in shown.output
    listed = runner.invoke(app, ["stats", "rides", "--list", "--repo", repo])
    assert listed.exit_code == 0 and "incremental" in listed.output
    as_json = runner.invoke(app, ["stats", "rides", "--json", "--repo", repo])
    shown_json = json.loads(as_json.stdout)
    assert (shown_json["delta_version"], shown_json["run"]) == (2, "incremental")
    assert shown_json["features"]["fare"]["kind"] == "numeric"
    listed_json = runner.invoke(app, ["stats", "rides", "--list", "--json", "--repo", repo])
    assert [v["delta_version"] for v in json.loads(listed_json.stdout)] == [0, 1, 2]


def test_a_failing_summary_leaves_the_run_whole_without_statistics(
    tmp_path: Path,
    redis_url: str,
    spark: SparkSession,
    days: dict[int, pd.DataFrame],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    repo = tmp_path / "repo"
    (repo / "data" / "rides").mkdir(parents=True)
    (repo / "feature_store.yaml").write_text(
        f"project: f_{uuid.uuid4().hex[:8]}\nonline_store: {{type: redis, url: '{redis_url}'}}\n"
    )
    (repo / "defs.py").write_text(DEFS)
    days[1].head(200).to_parquet(repo / "data" / "rides" / "day1.parquet")
    fs = FeatureStore(repo)
    fs.apply()

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("summary engine down")

    monkeypatch.setattr(materialize_module, "summarize_view_rows", broken)
    (record,) = fs.materialize(end=DAY1 + DAY)
    assert (record.delta_version, record.rows_written_offline) == (0, 200)
    assert "statistics of feature view 'rides' not recorded: summary engine down" in caplog.text
    with pytest.raises(StatisticsNotFoundError, match="versions with statistics: none"):
        fs.statistics("rides")
    online = fs.get_online_features(["rides:fare"], [{"driver_id": 0}]).to_dict()
    assert online["fare"][0] is not None  # the values still reached Redis
