"""The sides of a drift comparison that Spark summarizes when asked (offline/drift.py):
a view's Delta table as of a version, read whole by time travel, and a saved training
set's columns of one view."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F  # noqa: N812

from skewless.batch.feature_stats import summarize_frame
from skewless.batch.sources import latest_delta_version
from skewless.batch.training_sets import TrainingSet
from skewless.definitions import FeatureView
from skewless.errors import DriftSideError, SkewlessError
from skewless.stats.report import Side
from skewless.stats.summary import Summary
from skewless.timeutil import iso_utc


@dataclass(frozen=True)
class SparkSummaries:
    session: Callable[[], SparkSession]
    table_location: Callable[[FeatureView, str], str]  # (view, data hash) -> its table
    training_sets: Callable[[str], TrainingSet]  # by name; TrainingSetNotFoundError
    bins: int
    top_k: int

    def table(
        self,
        view: FeatureView,
        data_hash: str,
        version: int | None,
        edges: Mapping[str, tuple[float, ...]],
    ) -> tuple[int, dict[str, Summary]]:
        from delta.tables import DeltaTable  # noqa: PLC0415 - needs the JVM

        spark = self.session()
        location = self.table_location(view, data_hash)
        shown = "table" if version is None else f"table:{version}"
        if not DeltaTable.isDeltaTable(spark, location):
            raise DriftSideError(
                "side",
                shown,
                f"feature view '{view.name}' has no table for its current definition yet "
                f"({location}): materialize it first",
            )
        newest = latest_delta_version(spark, location)
        at = newest if version is None else version
        if not 0 <= at <= newest:
            raise DriftSideError(
                "side", shown, f"the table of '{view.name}' has versions 0 to {newest}"
            )
        try:
            frame = spark.read.format("delta").option("versionAsOf", at).load(location)
            return at, self._summarize(frame, view, view.stored_names, edges)
        except Exception as exc:  # a vacuumed version's files, an unreadable table
            if isinstance(exc, SkewlessError):
                raise
            raise DriftSideError(
                "side",
                shown,
                f"version {at} of the table of '{view.name}' ({location}) cannot be read: "
                f"{_first_line(exc)}",
            ) from exc

    def training_set(
        self, name: str, view: FeatureView, which: str, edges: Mapping[str, tuple[float, ...]]
    ) -> tuple[Side, dict[str, Summary]]:
        saved = self.training_sets(name)
        manifest = saved.manifest
        wanted = [
            ref.split(":", 1)[1] for ref in manifest.features if ref.split(":", 1)[0] == view.name
        ]
        columns = {
            f: (f"{view.name}__{f}" if manifest.full_feature_names else f)
            for f in wanted
            if f in view.stored_names
        }
        if not columns:
            raise DriftSideError(
                which,
                f"training-set:{name}",
                f"the training set has no feature of view '{view.name}' (its views: "
                f"{', '.join(manifest.views) or 'none'})",
            )
        try:
            frame = saved.to_spark().select(
                *[F.col(f"`{column}`").alias(feature) for feature, column in columns.items()]
            )
            summaries = self._summarize(frame, view, list(columns), edges)
        except Exception as exc:  # a vacuumed or deleted saved table
            if isinstance(exc, SkewlessError):
                raise
            raise DriftSideError(
                which,
                f"training-set:{name}",
                f"its rows at {saved.location} cannot be read: {_first_line(exc)}",
            ) from exc
        rows = max((s.count for s in summaries.values()), default=0)
        pin = next(
            (p for p in manifest.definitions if p.kind == "feature_view" and p.name == view.name),
            None,
        )
        definition = "" if pin is None else f", view definition v{pin.version}"
        side = Side(
            f"training set '{name}' ({rows:,} rows, created {iso_utc(saved.created_at)}"
            f"{definition})",
            {
                "kind": "training_set",
                "name": name,
                "rows": rows,
                "created_at": iso_utc(saved.created_at),
                "view_version": None if pin is None else pin.version,
            },
        )
        return side, summaries

    def _summarize(
        self,
        frame: DataFrame,
        view: FeatureView,
        names: Sequence[str],
        edges: Mapping[str, tuple[float, ...]],
    ) -> dict[str, Summary]:
        dtypes = {f.name: f.dtype for f in view.stored}
        return summarize_frame(
            frame, [(n, dtypes[n]) for n in names], edges, bins=self.bins, top_k=self.top_k
        )


def _first_line(exc: Exception) -> str:
    """A Spark error's first line (its Java stack trace follows)."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
