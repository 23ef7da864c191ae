"""A drift report: one view's features compared between two sides (a data version, or a
saved training set), with both sides' summaries so a reader (the HTML report) can draw
them. Engine-free: built from summaries, never from the data."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from skewless.errors import SummaryError
from skewless.stats.drift import (
    VERDICT_RANK,
    FeatureDrift,
    Thresholds,
    Verdict,
    by_severity,
    compare,
)
from skewless.stats.summary import Summary

FailOn = Literal["warn", "drifted", "never"]


@dataclass(frozen=True)
class Side:
    """One side of a comparison: `label` for people ("version 3 of driver_stats,
    committed 2026-12-01 10:00 UTC"), `spec` for machines (JSON: kind, version, time,
    training set, rows)."""

    label: str
    spec: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class FeatureComparison:
    """One feature's drift and the two summaries it was computed from."""

    drift: FeatureDrift
    reference: Summary
    current: Summary


@dataclass(frozen=True)
class DriftReport:
    """Every comparable feature of `view`, most severe first (`by_severity`). `skipped`
    names the features that could not be compared, each with the reason (a type
    statistics do not cover, or a feature one side lacks)."""

    view: str
    reference: Side
    current: Side
    features: tuple[FeatureComparison, ...]
    thresholds: Thresholds
    skipped: Mapping[str, str] = field(default_factory=dict)

    @property
    def verdict(self) -> Verdict:
        """The most severe feature verdict; stable when no feature was compared."""
        return max(
            (f.drift.verdict for f in self.features), key=VERDICT_RANK.__getitem__, default="stable"
        )

    def counts(self) -> dict[Verdict, int]:
        """How many features got each verdict."""
        out: dict[Verdict, int] = {"drifted": 0, "warn": 0, "stable": 0}
        for f in self.features:
            out[f.drift.verdict] += 1
        return out

    def fails(self, fail_on: FailOn) -> bool:
        """Whether a gate set at `fail_on` stops here: `warn` fails on warn or drifted,
        `drifted` on drifted only, `never` never."""
        if fail_on == "never":
            return False
        return VERDICT_RANK[self.verdict] >= VERDICT_RANK[fail_on]

    def drift(self, feature: str) -> FeatureDrift:
        for f in self.features:
            if f.drift.feature == feature:
                return f.drift
        raise KeyError(feature)

    def to_json(self) -> dict[str, Any]:
        return {
            "view": self.view,
            "verdict": self.verdict,
            "counts": self.counts(),
            "reference": {"label": self.reference.label, **self.reference.spec},
            "current": {"label": self.current.label, **self.current.spec},
            "thresholds": {
                name: getattr(self.thresholds, name)
                for name in self.thresholds.__dataclass_fields__
            },
            "features": [
                {
                    **f.drift.to_json(),
                    "reference": f.reference.to_json(),
                    "current": f.current.to_json(),
                }
                for f in self.features
            ],
            "skipped": dict(sorted(self.skipped.items())),
        }


def drift_report(
    view: str,
    reference: tuple[Side, Mapping[str, Summary]],
    current: tuple[Side, Mapping[str, Summary]],
    *,
    thresholds: Thresholds | None = None,
    order: Sequence[str] | None = None,
    skipped: Mapping[str, str] | None = None,
) -> DriftReport:
    """Compare every feature both sides summarize (in `order`, the view's feature order,
    when given); a feature only one side has is skipped with the reason."""
    t = thresholds or Thresholds()
    ref_side, ref = reference
    cur_side, cur = current
    names = list(order) if order is not None else sorted(set(ref) | set(cur))
    left_out = dict(skipped or {})
    compared: list[FeatureComparison] = []
    for name in names:
        if name in left_out:
            continue
        if name not in ref or name not in cur:
            if name in ref or name in cur:
                missing = "reference" if name not in ref else "current"
                left_out[name] = f"no statistics in the {missing} side"
            continue
        try:
            drift = compare(name, ref[name], cur[name], t)
        except ValueError as exc:
            raise SummaryError(
                f"feature '{name}' of view '{view}'",
                f"{exc} (two versions summarized over different edges: compare with a "
                "whole table, table:V, which is binned over the reference's)",
            ) from None
        compared.append(FeatureComparison(drift, ref[name], cur[name]))
    rank = {d.feature: i for i, d in enumerate(by_severity(c.drift for c in compared))}
    compared.sort(key=lambda c: rank[c.drift.feature])
    return DriftReport(view, ref_side, cur_side, tuple(compared), t, left_out)
