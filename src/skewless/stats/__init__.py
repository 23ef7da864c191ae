"""Feature statistics per data version and drift between versions, engine-free.

summary.py holds one feature's statistics over one data version (numeric: moments,
quantiles and a histogram over bin edges the reference version fixes; categorical: the
most frequent values), their JSON form, merging, and the numpy reference computation.
drift.py compares two summaries: PSI, KS, Jensen-Shannon distance, the change in the
missing rate, new and vanished categories, and a verdict from `Thresholds`.
report.py gathers a view's features into a DriftReport; html.py draws it as one
self-contained page.
"""

from skewless.stats.drift import (
    FeatureDrift,
    Thresholds,
    Verdict,
    by_severity,
    compare,
    js_distance,
    ks_statistic,
    psi,
    severity_key,
)
from skewless.stats.report import DriftReport, FailOn, FeatureComparison, Side, drift_report
from skewless.stats.summary import (
    QUANTILE_PROBS,
    CategoricalSummary,
    NumericSummary,
    Summary,
    edge_probabilities,
    merge,
    reference_edges,
    summarize_categorical,
    summarize_numeric,
    summary_from_json,
)

__all__ = [
    "QUANTILE_PROBS",
    "CategoricalSummary",
    "DriftReport",
    "FailOn",
    "FeatureComparison",
    "FeatureDrift",
    "NumericSummary",
    "Side",
    "Summary",
    "Thresholds",
    "Verdict",
    "by_severity",
    "compare",
    "drift_report",
    "edge_probabilities",
    "js_distance",
    "ks_statistic",
    "merge",
    "psi",
    "reference_edges",
    "severity_key",
    "summarize_categorical",
    "summarize_numeric",
    "summary_from_json",
]
