"""Drift between two summaries of one feature: the statistics, the thresholds and the
verdict. Engine-free and small: it reads two summaries (summary.py), never the data.

Every distribution statistic is over the valid values (not null, not NaN); missing
values are judged apart, by the change in the missing rate.

- PSI, the Population Stability Index, sum((q_i - p_i) ln(q_i / p_i)) over the bins,
  p the reference's and q the current proportions. Empty-bin rule: a zero proportion is
  replaced by epsilon (1e-4) and that side is renormalized to sum to 1, so an empty bin
  costs a large but finite amount and a bin empty on both sides next to nothing.
- KS, the two-sample Kolmogorov-Smirnov statistic of the binned data: the greatest
  |F_ref(e) - F_cur(e)| over the edges e, F(e) the share of values below e. It is the
  exact KS statistic of the data rounded down to the bins (each value moved onto its
  bin's lower edge, those below the first edge onto one point below it), so it
  never exceeds the KS statistic of the raw data and falls short of it by at most the
  largest single bin's share on either side; when all values lie on edges the two agree.
- JS, the Jensen-Shannon distance in base 2: the square root of the JS divergence, in
  [0, 1], 0 for equal distributions and 1 for disjoint ones. Needs no empty-bin rule.
- Categorical features are binned as the union of both versions' top values plus one
  "other" bin per side. A value in one side's top and not in the other's counts 0 on
  the other side (its count there, if any, is inside that side's "other").
- New (vanished) categories: values in the current (reference) top list with a share of
  at least `Thresholds.category_min_share` (0.5%) there, that the other side provably had
  under that share: absent from its top list, and the most that list could hide in
  "other" (its smallest top count, when it was cut short) is under the share too. A value
  that could be hiding in the other side's "other" is not named; its change still shows
  in PSI and JS.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from skewless.stats.summary import CategoricalSummary, NumericSummary, Summary

PSI_EPSILON = 1e-4
OTHER = "<other>"

Verdict = Literal["stable", "warn", "drifted"]
VERDICT_RANK: dict[Verdict, int] = {"stable": 0, "warn": 1, "drifted": 2}


@dataclass(frozen=True)
class Thresholds:
    """When a statistic makes a feature `warn` or `drifted`: a value at or above the
    threshold crosses it.

    - PSI 0.1 / 0.25: the customary credit-scoring bands (below 0.1 no significant
      change, 0.1-0.25 moderate, above 0.25 significant).
    - KS 0.1 / 0.2 and JS 0.1 / 0.2: a tenth / a fifth of the mass moved; with the
      sample sizes of a materialization, sampling noise alone stays well below both.
    - Missing rate 0.05 / 0.1: the absolute change |current - reference| of
      (nulls + NaN) / rows, so 2% -> 20% is drifted and 1% -> 3% is stable.
    - Categories: a new or vanished value needs a share of at least 0.5% to be named
      (`category_min_share`); one with a share of at least 1% (`category_drifted_share`)
      makes the feature drifted, a smaller named one warns.
    """

    psi_warn: float = 0.1
    psi_drifted: float = 0.25
    ks_warn: float = 0.1
    ks_drifted: float = 0.2
    js_warn: float = 0.1
    js_drifted: float = 0.2
    missing_rate_warn: float = 0.05
    missing_rate_drifted: float = 0.1
    category_min_share: float = 0.005
    category_drifted_share: float = 0.01

    def __post_init__(self) -> None:
        pairs = {
            "psi": (self.psi_warn, self.psi_drifted),
            "ks": (self.ks_warn, self.ks_drifted),
            "js": (self.js_warn, self.js_drifted),
            "missing_rate": (self.missing_rate_warn, self.missing_rate_drifted),
            "category_share": (self.category_min_share, self.category_drifted_share),
        }
        for name, (warn, drifted) in pairs.items():
            if not 0 <= warn <= drifted:
                raise ValueError(f"{name}: need 0 <= warn ({warn}) <= drifted ({drifted})")


@dataclass(frozen=True)
class FeatureDrift:
    """How one feature changed from the reference to the current version.

    psi, ks and js are None when either side has no valid value; ks is None for
    categorical features. The null rates are missing rates: (nulls + NaN) / rows.
    `reasons` name each threshold crossed, e.g. "psi 0.31 >= 0.25 (drifted)"; `verdict`
    is the most severe of them."""

    feature: str
    kind: Literal["numeric", "categorical"]
    psi: float | None
    ks: float | None
    js: float | None
    null_rate_ref: float
    null_rate_cur: float
    new_categories: tuple[str, ...] = ()
    vanished_categories: tuple[str, ...] = ()
    verdict: Verdict = "stable"
    reasons: tuple[str, ...] = field(default=())

    @property
    def null_rate_change(self) -> float:
        """Current minus reference missing rate."""
        return self.null_rate_cur - self.null_rate_ref

    def to_json(self) -> dict[str, Any]:
        return {
            "feature": self.feature,
            "kind": self.kind,
            "psi": self.psi,
            "ks": self.ks,
            "js": self.js,
            "null_rate_ref": self.null_rate_ref,
            "null_rate_cur": self.null_rate_cur,
            "new_categories": list(self.new_categories),
            "vanished_categories": list(self.vanished_categories),
            "verdict": self.verdict,
            "reasons": list(self.reasons),
        }


def psi(
    ref_counts: Sequence[int], cur_counts: Sequence[int], epsilon: float = PSI_EPSILON
) -> float:
    """Population Stability Index over the same bins (empty-bin rule in the module doc)."""
    p, q = _proportions(ref_counts, cur_counts)
    p, q = _floor(p, epsilon), _floor(q, epsilon)
    return float(np.sum((q - p) * np.log(q / p)))


def ks_statistic(
    edges: Sequence[float], ref_counts: Sequence[int], cur_counts: Sequence[int]
) -> float:
    """The two-sample KS statistic of the binned data (see the module doc)."""
    if len(ref_counts) != len(edges) + 1:
        raise ValueError(f"{len(edges)} edges make {len(edges) + 1} bins, not {len(ref_counts)}")
    p, q = _proportions(ref_counts, cur_counts)
    # F(e_i) = share below e_i = the bins before it; the last cumulative sum is 1 on both.
    return float(np.max(np.abs(np.cumsum(p)[:-1] - np.cumsum(q)[:-1]), initial=0.0))


def js_distance(p_counts: Sequence[int], q_counts: Sequence[int]) -> float:
    """Jensen-Shannon distance, base 2, in [0, 1]."""
    p, q = _proportions(p_counts, q_counts)
    m = (p + q) / 2
    divergence = (_kl(p, m) + _kl(q, m)) / 2
    return math.sqrt(min(max(divergence, 0.0), 1.0))


def categorical_bins(
    ref: CategoricalSummary, cur: CategoricalSummary
) -> tuple[tuple[str, ...], tuple[int, ...], tuple[int, ...]]:
    """The shared bins of two categorical summaries: the union of both top lists (sorted)
    and a last bin OTHER, with each side's counts over them."""
    labels = tuple(sorted(set(ref.top) | set(cur.top)))

    def counts(s: CategoricalSummary) -> tuple[int, ...]:
        binned = tuple(s.top.get(v, 0) for v in labels)
        return (*binned, s.valid - sum(binned))

    return (*labels, OTHER), counts(ref), counts(cur)


def appeared(
    base: CategoricalSummary, other: CategoricalSummary, min_share: float
) -> dict[str, float]:
    """The values of `other`'s top list that `base` provably had under `min_share`, with
    their share in `other` (at least `min_share`); see the module doc."""
    if other.valid == 0:
        return {}
    hidden = min(base.other, min(base.top.values(), default=0)) if base.other else 0
    if base.valid and hidden / base.valid >= min_share:
        return {}
    found = {}
    for value, n in other.top.items():
        share = n / other.valid
        if value not in base.top and share >= min_share:
            found[value] = share
    return found


def compare(
    feature: str, ref: Summary, cur: Summary, thresholds: Thresholds | None = None
) -> FeatureDrift:
    """The drift of one feature from `ref` to `cur` and its verdict."""
    t = thresholds or Thresholds()
    reasons: list[tuple[Verdict, str]] = []
    new: dict[str, float] = {}
    gone: dict[str, float] = {}
    ks: float | None = None
    match ref, cur:
        case NumericSummary(), NumericSummary():
            # a side without valid values has nothing binned: no edges need agree
            if ref.edges != cur.edges and ref.valid and cur.valid:
                raise ValueError(f"feature {feature!r}: the two summaries have different bin edges")
            kind: Literal["numeric", "categorical"] = "numeric"
            ref_counts, cur_counts = ref.counts, cur.counts
        case CategoricalSummary(), CategoricalSummary():
            kind = "categorical"
            _, ref_counts, cur_counts = categorical_bins(ref, cur)
            new = appeared(ref, cur, t.category_min_share)
            gone = appeared(cur, ref, t.category_min_share)
        case _:
            raise ValueError(
                f"feature {feature!r}: cannot compare a {ref.kind} summary"
                f" with a {cur.kind} summary"
            )
    psi_value = js_value = None
    if ref.valid and cur.valid:
        psi_value = psi(ref_counts, cur_counts)
        js_value = js_distance(ref_counts, cur_counts)
        reasons += _crossed("psi", psi_value, t.psi_warn, t.psi_drifted)
        if isinstance(ref, NumericSummary):
            ks = ks_statistic(ref.edges, ref_counts, cur_counts)
            reasons += _crossed("ks", ks, t.ks_warn, t.ks_drifted)
        reasons += _crossed("js", js_value, t.js_warn, t.js_drifted)
    elif ref.valid or cur.valid:
        side = "current" if ref.valid else "reference"
        reasons.append(("drifted", f"no valid values in the {side} version"))
    change = cur.missing_rate - ref.missing_rate
    reasons += _crossed(
        "null rate change",
        abs(change),
        t.missing_rate_warn,
        t.missing_rate_drifted,
        shown=f"{change:+.3g}",
    )
    for label, found in (("new category", new), ("vanished category", gone)):
        for value, share in sorted(found.items(), key=lambda kv: (-kv[1], kv[0])):
            level: Verdict = "drifted" if share >= t.category_drifted_share else "warn"
            reasons.append((level, f"{label} {value!r} at {share:.1%}"))
    verdict: Verdict = max(
        (level for level, _ in reasons), key=VERDICT_RANK.__getitem__, default="stable"
    )
    return FeatureDrift(
        feature=feature,
        kind=kind,
        psi=psi_value,
        ks=ks,
        js=js_value,
        null_rate_ref=ref.missing_rate,
        null_rate_cur=cur.missing_rate,
        new_categories=tuple(sorted(new, key=lambda v: (-new[v], v))),
        vanished_categories=tuple(sorted(gone, key=lambda v: (-gone[v], v))),
        verdict=verdict,
        reasons=tuple(text for _, text in reasons),
    )


def severity_key(drift: FeatureDrift) -> tuple[int, float, str]:
    """Sorts a report most severe first: drifted, warn, stable; then by PSI, highest
    first (a feature without PSI last); then by name."""
    psi_value = -1.0 if drift.psi is None or math.isnan(drift.psi) else drift.psi
    return (-VERDICT_RANK[drift.verdict], -psi_value, drift.feature)


def by_severity(drifts: Iterable[FeatureDrift]) -> list[FeatureDrift]:
    return sorted(drifts, key=severity_key)


def level(value: float, warn: float, drifted: float) -> Verdict:
    """The verdict a statistic alone gives: at or above a threshold crosses it (a value
    computed as 0.09999999999999998 is the 0.1 it stands for)."""
    rounded = round(value, 12)
    if rounded >= drifted:
        return "drifted"
    if rounded >= warn:
        return "warn"
    return "stable"


def _crossed(
    name: str, value: float, warn: float, drifted: float, shown: str | None = None
) -> list[tuple[Verdict, str]]:
    text = f"{name} {shown or f'{value:.3g}'}"
    match level(value, warn, drifted):
        case "drifted":
            return [("drifted", f"{text} >= {drifted:g} (drifted)")]
        case "warn":
            return [("warn", f"{text} >= {warn:g} (warn)")]
        case _:
            return []


def _proportions(
    a: Sequence[int], b: Sequence[int]
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    x = np.asarray(a, dtype=np.float64)
    y = np.asarray(b, dtype=np.float64)
    if x.shape != y.shape or x.ndim != 1 or x.size == 0:
        raise ValueError(f"need two equally long lists of bin counts, got {x.shape} {y.shape}")
    if (x < 0).any() or (y < 0).any():
        raise ValueError("bin counts are not negative")
    if x.sum() == 0 or y.sum() == 0:
        raise ValueError("a side has no values: its distribution is undefined")
    return x / x.sum(), y / y.sum()


def _floor(p: npt.NDArray[np.float64], epsilon: float) -> npt.NDArray[np.float64]:
    floored = np.where(p == 0, epsilon, p)
    return np.asarray(floored / floored.sum(), dtype=np.float64)


def _kl(p: npt.NDArray[np.float64], m: npt.NDArray[np.float64]) -> float:
    nz = p > 0
    return float(np.sum(p[nz] * np.log2(p[nz] / m[nz])))
