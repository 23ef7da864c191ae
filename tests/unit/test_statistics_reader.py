"""Which data each side of a drift comparison reads, without an engine: recorded versions
by number, `latest` and time (never an older version standing in for one without
statistics), sides summarized on demand binned over the recorded side's edges, and the
features left out with the reason."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from skewless import Entity, FeatureView, Field, FileSource, Float64, String, UnixTimestamp
from skewless.config import StatisticsConfig
from skewless.definitions import Aggregation
from skewless.errors import DriftSideError, StatisticsNotFoundError
from skewless.fingerprint import feature_view_fingerprint
from skewless.offline.drift import SavedTrainingSet, StatisticsReader, WholeTable
from skewless.registry import MaterializationRecord, SqliteRegistry, VersionStatistics
from skewless.stats import NumericSummary, Side, Summary, summarize_categorical, summarize_numeric

T0 = datetime(2026, 5, 1, 8, tzinfo=UTC)
EDGES = (10.0, 20.0, 30.0)

VIEW = FeatureView(
    "rides",
    entities=[Entity("driver", join_keys=["driver_id"])],
    schema=[
        Field("fare", Float64),
        Field("payment", String),
        Field("pickup_at", UnixTimestamp),
    ],
    source=FileSource("data/rides.parquet", timestamp_field="ts"),
)
DATA_HASH = feature_view_fingerprint(VIEW).data_hash


@dataclass
class OnDemand:
    """Summarizes sides from fixed values, recording the edges it was asked to use."""

    fares: list[float]
    asked: list[Mapping[str, tuple[float, ...]]] = field(default_factory=list)

    def _summaries(self, edges: Mapping[str, tuple[float, ...]]) -> dict[str, Summary]:
        self.asked.append(dict(edges))
        return {
            "fare": summarize_numeric(np.array(self.fares), edges.get("fare", ())),
            "payment": summarize_categorical(["card"] * len(self.fares)),
        }

    def table(
        self,
        view: FeatureView,
        data_hash: str,
        version: int | None,
        edges: Mapping[str, tuple[float, ...]],
    ) -> tuple[int, dict[str, Summary]]:
        return (7 if version is None else version), self._summaries(edges)

    def training_set(
        self, name: str, view: FeatureView, which: str, edges: Mapping[str, tuple[float, ...]]
    ) -> tuple[Side, dict[str, Summary]]:
        summaries = self._summaries(edges)
        del summaries["payment"]  # the training set did not ask for it
        return Side(f"training set {name}", {"kind": "training_set"}), summaries


def record(reg: SqliteRegistry, version: int, fares: list[float] | None, minutes: int) -> None:
    """A run that committed `version`; with statistics over `fares` unless None."""
    finished = T0 + timedelta(minutes=minutes)
    run = MaterializationRecord(
        view="rides",
        data_hash=DATA_HASH,
        kind="incremental",
        start_us=None,
        end_us=1,
        arrival_watermark_us=None,
        delta_path="/lake",
        delta_version=version,
        rows_read=3,
        rows_written_offline=3,
        keys_offered_online=0,
        keys_written_online=0,
        seconds=1.0,
        finished_at=finished,
    )
    stats = None
    if fares is not None:
        values = np.array(fares, dtype=object)
        known = reg.statistics_edges("rides", DATA_HASH).get("fare", EDGES)
        stats = VersionStatistics(
            view="rides",
            data_hash=DATA_HASH,
            delta_version=version,
            kind="incremental",
            start_us=None,
            end_us=1,
            rows=len(fares),
            recorded_at=finished,
            summaries={
                "fare": summarize_numeric(
                    values, known if any(v is not None for v in fares) else ()
                ),
                "payment": summarize_categorical(["card"] * len(fares)),
            },
        )
    reg.record_materialization(run, statistics=stats)


@pytest.fixture
def reg(tmp_path: Path) -> SqliteRegistry:
    return SqliteRegistry(tmp_path / "r.db", "p")


def reader(reg: SqliteRegistry, fares: list[float] | None = None) -> StatisticsReader:
    return StatisticsReader(reg, OnDemand(fares or [15.0, 25.0]), StatisticsConfig())


def test_statistics_reader_resolves_numbers_latest_and_times(reg: SqliteRegistry) -> None:
    record(reg, 0, [5.0, 15.0, 25.0], minutes=0)
    record(reg, 1, [15.0, 25.0, 35.0], minutes=60)
    r = reader(reg)
    assert r.version(VIEW, 0).delta_version == 0
    assert r.version(VIEW).delta_version == 1
    assert r.version(VIEW, T0 + timedelta(minutes=59)).delta_version == 0
    assert r.version(VIEW, T0 + timedelta(minutes=60)).delta_version == 1
    with pytest.raises(StatisticsNotFoundError, match="committed by 2026-05-01 07:00 UTC"):
        r.version(VIEW, T0 - timedelta(hours=1))
    with pytest.raises(StatisticsNotFoundError, match=r"Delta version 5: .*statistics: 0, 1"):
        r.version(VIEW, 5)


def test_statistics_reader_latest_never_falls_back_past_a_version_without_statistics(
    reg: SqliteRegistry,
) -> None:
    record(reg, 0, [5.0, 15.0, 25.0], minutes=0)
    record(reg, 1, None, minutes=60)  # committed, its summary failed or was off
    r = reader(reg)
    with pytest.raises(StatisticsNotFoundError, match=r"its latest version \(1\)"):
        r.version(VIEW)
    with pytest.raises(StatisticsNotFoundError, match=r"latest version \(1\)"):
        r.drift(VIEW, reference=0, current="latest")
    assert r.version(VIEW, T0 + timedelta(minutes=30)).delta_version == 0


def test_statistics_reader_a_side_summarized_on_demand_takes_the_recorded_edges(
    reg: SqliteRegistry,
) -> None:
    record(reg, 0, [5.0, 15.0, 25.0], minutes=0)
    on_demand = OnDemand([15.0, 25.0])
    r = StatisticsReader(reg, on_demand, StatisticsConfig())
    report = r.drift(VIEW, reference=0, current=WholeTable())
    assert on_demand.asked == [{"fare": EDGES}]
    fare = report.features[[f.drift.feature for f in report.features].index("fare")]
    assert isinstance(fare.current, NumericSummary) and fare.current.edges == EDGES
    assert report.current.spec == {"kind": "table", "delta_version": 7, "rows": 2}


def test_statistics_reader_names_every_feature_left_out(reg: SqliteRegistry) -> None:
    record(reg, 0, [5.0, 15.0, 25.0], minutes=0)
    report = reader(reg).drift(VIEW, reference=SavedTrainingSet("june"), current=0)
    assert report.skipped == {
        "pickup_at": "unix_timestamp is not summarized",
        "payment": "no statistics in the reference side",
    }
    assert [f.drift.feature for f in report.features] == ["fare"]


def test_statistics_reader_an_empty_first_version_fixes_no_edges(reg: SqliteRegistry) -> None:
    record(reg, 0, [None, None], minutes=0)  # type: ignore[list-item]
    assert reg.statistics_edges("rides", DATA_HASH) == {}
    record(reg, 1, [1.0, 1000.0, 5.0], minutes=60)
    record(reg, 2, [2000.0, 3000.0, 4000.0], minutes=120)
    assert reg.statistics_edges("rides", DATA_HASH) == {"fare": EDGES}
    r = reader(reg)
    first = r.drift(VIEW, reference=0, current=1).drift("fare")
    assert first.verdict == "drifted" and "no valid values in the reference" in first.reasons[0]
    assert r.drift(VIEW, reference=1, current=2).drift("fare").verdict == "drifted"


def test_statistics_reader_refuses_views_with_aggregations(reg: SqliteRegistry) -> None:
    windowed = FeatureView(
        "trips",
        entities=[Entity("driver", join_keys=["driver_id"])],
        schema=[Field("fare", Float64)],
        source=FileSource("data/trips.parquet", timestamp_field="ts"),
        aggregations=[Aggregation(column="fare", function="sum", time_window=timedelta(days=1))],
    )
    with pytest.raises(DriftSideError, match="records no statistics"):
        reader(reg).version(windowed)
    with pytest.raises(DriftSideError, match="records no statistics"):
        reader(reg).drift(windowed, reference=0)
