"""Feature statistics of recorded data versions, and drift between two sides of a view's
data.

A side is one of:
- a Delta version of the view's table (`int`), the newest version committed at or
  before a time (`datetime`), or the newest version (`"latest"`): the statistics the
  run that committed the version recorded, over the rows it materialized;
- `WholeTable(version)`: every row of the table as of a version (the newest when None),
  summarized by Spark when asked (a full read of that version, by time travel);
- `SavedTrainingSet(name)`: the view's features in a saved training set, summarized by
  Spark when asked.

Numeric features of both sides are binned over the same edges: the definition's
reference edges, fixed by its first summarized version. A side summarized on demand
takes the other side's edges, or the definition's, so the two stay comparable.

A StatisticsReader is given what it needs (the registry, the engine that summarizes a
side on demand, the statistics settings), never the FeatureStore facade.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Literal, Protocol

from skewless.config import StatisticsConfig
from skewless.errors import DriftSideError, StatisticsNotFoundError
from skewless.fingerprint import feature_view_fingerprint
from skewless.registry import RegistryReader, VersionStatistics
from skewless.stats.drift import Thresholds
from skewless.stats.report import DriftReport, Side, drift_report
from skewless.stats.summary import NumericSummary, Summary, summary_kind
from skewless.timeutil import as_utc, from_micros, iso_utc

if TYPE_CHECKING:
    from skewless.definitions import FeatureView


@dataclass(frozen=True)
class WholeTable:
    """Every row of the view's Delta table as of `version` (None: the newest)."""

    version: int | None = None


@dataclass(frozen=True)
class SavedTrainingSet:
    """The view's features in the saved training set `name`."""

    name: str


DataSide = int | datetime | Literal["latest"] | WholeTable | SavedTrainingSet


def parse_side(text: str, which: str) -> DataSide:
    """A side as the CLI writes it: `latest`, a version number, an ISO-8601 time (naive:
    UTC), `table` or `table:V`, or `training-set:NAME`."""
    value = text.strip()
    if value == "latest":
        return "latest"
    if value.isdigit():
        return int(value)
    if value == "table":
        return WholeTable()
    if value.startswith("table:"):
        version = value.removeprefix("table:")
        if not version.isdigit():
            raise DriftSideError(which, text, "table:V takes a Delta version number")
        return WholeTable(int(version))
    if value.startswith("training-set:"):
        return SavedTrainingSet(value.removeprefix("training-set:"))
    try:
        return as_utc(datetime.fromisoformat(value))
    except ValueError:
        raise DriftSideError(
            which,
            text,
            "expected latest, a version number, an ISO-8601 time, table, table:V or "
            "training-set:NAME",
        ) from None


def parse_version(text: str, which: str = "--version") -> int | datetime | Literal["latest"]:
    """A recorded version as the CLI writes it: `latest`, a version number or an ISO-8601
    time (naive: UTC)."""
    side = parse_side(text, which)
    if isinstance(side, WholeTable | SavedTrainingSet):
        raise DriftSideError(which, text, "expected latest, a version number or an ISO-8601 time")
    return side


@dataclass(frozen=True)
class _Resolved:
    side: Side
    summaries: Mapping[str, Summary]


class OnDemandSummaries(Protocol):
    """The sides summarized when asked, by an engine (batch/drift_sides.py): numeric
    features over `edges` where given."""

    def table(
        self,
        view: FeatureView,
        data_hash: str,
        version: int | None,
        edges: Mapping[str, tuple[float, ...]],
    ) -> tuple[int, dict[str, Summary]]:
        """The view's table as of `version` (None: the newest): the version read and the
        summaries of its rows. A version the table lacks is a DriftSideError."""
        ...

    def training_set(
        self, name: str, view: FeatureView, which: str, edges: Mapping[str, tuple[float, ...]]
    ) -> tuple[Side, dict[str, Summary]]:
        """The view's features in the saved training set `name`. A training set without
        a feature of the view is a DriftSideError for side `which`."""
        ...


@dataclass(frozen=True)
class StatisticsReader:
    registry: RegistryReader
    on_demand: OnDemandSummaries  # Spark starts only for a side summarized on demand
    config: StatisticsConfig

    # --- recorded statistics -------------------------------------------------------

    def versions(self, view: FeatureView) -> list[VersionStatistics]:
        """The recorded statistics of the view's current definition, oldest first."""
        data_hash = feature_view_fingerprint(view).data_hash
        return sorted(self.registry.statistics(view.name, data_hash), key=lambda s: s.delta_version)

    def version(
        self, view: FeatureView, which: int | datetime | Literal["latest"] = "latest"
    ) -> VersionStatistics:
        """One version's statistics: a version number, the newest version a
        materialization of the current definition committed (`latest`), or the newest
        one whose run had finished by a time. A version without statistics (committed
        with statistics off, or its summary failed) is a StatisticsNotFoundError naming
        it: `latest` never falls back to an older version."""
        _refuse_aggregations(view)
        if isinstance(which, bool):
            raise DriftSideError("version", repr(which), "not a version")
        data_hash = feature_view_fingerprint(view).data_hash
        recorded = {s.delta_version: s for s in self.versions(view)}
        if isinstance(which, int):
            wanted, version = f"Delta version {which}", which
        else:
            # the versions materialization committed, from the run records
            committed = [
                r
                for r in self.registry.materializations(view.name)
                if r.data_hash == data_hash and r.rows_written_offline > 0
            ]
            if which == "latest":
                wanted = "its latest version"
            else:
                at = as_utc(which)
                committed = [r for r in committed if as_utc(r.finished_at) <= at]
                wanted = f"a version committed by {_minute(at)}"
            newest = max((r.delta_version for r in committed), default=None)
            if newest is None:
                raise StatisticsNotFoundError(view.name, wanted, sorted(recorded))
            wanted, version = f"{wanted} ({newest})", newest
        if version not in recorded:
            raise StatisticsNotFoundError(view.name, wanted, sorted(recorded))
        return recorded[version]

    # --- drift -----------------------------------------------------------------------

    def drift(
        self,
        view: FeatureView,
        reference: DataSide,
        current: DataSide = "latest",
        *,
        thresholds: Thresholds | None = None,
    ) -> DriftReport:
        """Compare the view's features between `reference` and `current`."""
        _refuse_aggregations(view)
        data_hash = feature_view_fingerprint(view).data_hash
        reference_edges = self.registry.statistics_edges(view.name, data_hash)
        sides: dict[str, _Resolved] = {}
        # the recorded sides first: a side summarized on demand bins over their edges
        order = sorted(
            (("reference", reference), ("current", current)), key=lambda p: _on_demand(p[1])
        )
        for which, spec in order:
            edges = dict(reference_edges)
            for other in sides.values():
                edges.update(_numeric_edges(other.summaries))
            sides[which] = self._side(view, data_hash, which, spec, edges)
        skipped = {}
        for f in view.stored:
            if summary_kind(f.dtype) is None:
                skipped[f.name] = f"{f.dtype} is not summarized"
            elif not any(f.name in side.summaries for side in sides.values()):
                skipped[f.name] = "in neither side"
        return drift_report(
            view.name,
            (sides["reference"].side, sides["reference"].summaries),
            (sides["current"].side, sides["current"].summaries),
            thresholds=thresholds or self.config.thresholds.to_thresholds(),
            order=view.stored_names,
            skipped=skipped,
        )

    def _side(
        self,
        view: FeatureView,
        data_hash: str,
        which: str,
        spec: DataSide,
        edges: Mapping[str, tuple[float, ...]],
    ) -> _Resolved:
        match spec:
            case WholeTable(version=version):
                return self._table(view, data_hash, version, edges)
            case SavedTrainingSet(name=name):
                return self._training(view, which, name, edges)
            case int() | datetime() | "latest":
                recorded = self.version(view, spec)
                return _Resolved(version_side(recorded), recorded.summaries)
            case _:
                raise DriftSideError(which, repr(spec), "not a side of a comparison")

    def _table(
        self,
        view: FeatureView,
        data_hash: str,
        version: int | None,
        edges: Mapping[str, tuple[float, ...]],
    ) -> _Resolved:
        at, summaries = self.on_demand.table(view, data_hash, version, edges)
        rows = _rows(summaries)
        side = Side(
            f"table of {view.name} at version {at} ({rows:,} rows)",
            {"kind": "table", "delta_version": at, "rows": rows},
        )
        return _Resolved(side, summaries)

    def _training(
        self, view: FeatureView, which: str, name: str, edges: Mapping[str, tuple[float, ...]]
    ) -> _Resolved:
        side, summaries = self.on_demand.training_set(name, view, which, edges)
        return _Resolved(side, summaries)


def _refuse_aggregations(view: FeatureView) -> None:
    if view.aggregations:
        raise DriftSideError(
            "view",
            view.name,
            "a view with aggregations records no statistics (its features are computed "
            "at request time)",
        )


def _on_demand(spec: DataSide) -> bool:
    return isinstance(spec, WholeTable | SavedTrainingSet)


def _numeric_edges(summaries: Mapping[str, Summary]) -> dict[str, tuple[float, ...]]:
    return {n: s.edges for n, s in summaries.items() if isinstance(s, NumericSummary)}


def _minute(t: datetime) -> str:
    return f"{as_utc(t):%Y-%m-%d %H:%M} UTC"


def _rows(summaries: Mapping[str, Summary]) -> int:
    return max((s.count for s in summaries.values()), default=0)


def version_side(recorded: VersionStatistics) -> Side:
    end = _minute(from_micros(recorded.end_us))
    span = (
        f"up to {end}"
        if recorded.start_us is None
        else f"over {_minute(from_micros(recorded.start_us))} .. {end}"
    )
    label = (
        f"version {recorded.delta_version}: {recorded.rows:,} rows written by "
        f"{'an incremental' if recorded.kind == 'incremental' else 'a full'} run {span}, "
        f"committed {_minute(recorded.recorded_at)}"
    )
    spec = {
        "kind": "version",
        "delta_version": recorded.delta_version,
        "run": recorded.kind,
        "rows": recorded.rows,
        "start": None if recorded.start_us is None else iso_utc(from_micros(recorded.start_us)),
        "end": iso_utc(from_micros(recorded.end_us)),
        "committed_at": iso_utc(recorded.recorded_at),
    }
    return Side(label, spec)
