"""A drift report (report.py) as one self-contained HTML document, for a person deciding
whether a feature drifted: the verdicts, a table of every feature most severe first, and
per feature both versions' histograms as an inline SVG plot, the statistics, the reasons
and the two summaries side by side.

Self-contained: no network reference of any kind (no external style sheet, script, font
or image), no JavaScript; the style is inline and the plots are SVG drawn here. Every
string the user controls (view, side labels, feature names, category values, reasons)
is HTML-escaped.
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from html import escape
from typing import Literal

from skewless.stats.drift import (
    OTHER,
    PSI_EPSILON,
    Thresholds,
    Verdict,
    categorical_bins,
    level,
)
from skewless.stats.report import DriftReport, FeatureComparison
from skewless.stats.summary import CategoricalSummary, NumericSummary, Summary

MAX_CATEGORIES = 25
"""Categories a plot shows at most (by their greatest share on either side); the rest
join the "other" bar, in the plot only."""

DASH = "\u2014"
MINUS = "\u2212"  # the typographic minus, for -inf


def render_html(report: DriftReport) -> str:
    """The report as one HTML document (a string), with no external reference."""
    anchors = _anchors(f.drift.feature for f in report.features)
    body = "\n".join(
        [
            _header(report),
            _summary_section(report, anchors),
            *(
                _feature_section(f, a, report.thresholds)
                for f, a in zip(report.features, anchors, strict=True)
            ),
            _skipped_section(report.skipped),
            _footnote(report.thresholds),
        ]
    )
    title = f"Drift report: {report.view}"
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{_e(title)}</title>\n<style>{_CSS}</style>\n</head>\n"
        f"<body>\n<main>\n{body}\n</main>\n</body>\n</html>\n"
    )


# --- Formatting -------------------------------------------------------------------------


def _e(text: str) -> str:
    """HTML-escaped text, quotes included (safe in text and in attribute values)."""
    return escape(text, quote=True)


def fmt_number(value: float | None) -> str:
    """Three significant digits; a dash for None; NaN and infinities spelled out.
    Thousands up to a million are shown whole (12,345), very large or small values in
    short scientific form (1.23e7, 4.5e-5)."""
    if value is None:
        return DASH
    if not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("∞" if value > 0 else f"{MINUS}∞")
    magnitude = abs(value)
    if magnitude == 0:
        text = "0"
    elif magnitude >= 1e6 or magnitude < 1e-3:
        text = _tidy_exponent(f"{value:.3g}")
    elif magnitude >= 1000:
        text = f"{value:,.0f}"
    else:
        text = f"{value:.3g}"
    return text


def fmt_short(value: float) -> str:
    """A compact axis label: 1.5k, 2.3M, 0.012, 1e-5."""
    if not math.isfinite(value):
        return fmt_number(value)
    magnitude = abs(value)
    for scale, suffix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if magnitude >= scale:
            return f"{value / scale:.3g}{suffix}"
    if magnitude == 0 or magnitude >= 1e-3:
        return f"{value:.3g}"
    return _tidy_exponent(f"{value:.2g}")


def fmt_percent(rate: float) -> str:
    """A share as a percentage with one decimal: 0.0123 -> 1.2%."""
    if not math.isfinite(rate):
        return fmt_number(rate)
    return f"{rate * 100:.1f}%"


def fmt_points(change: float) -> str:
    """A change of shares in percentage points, signed: +18.0 pp (0.0 pp for none)."""
    if not math.isfinite(change):
        return fmt_number(change)
    shown = f"{change * 100:+.1f}"
    return f"{'0.0' if shown in ('+0.0', '-0.0') else shown} pp"


def _fmt_count(n: int) -> str:
    return f"{n:,}"


def _fmt_edge(value: float) -> str:
    """A bin edge for a tooltip: enough digits to tell neighbouring edges apart."""
    return _tidy_exponent(f"{value:.6g}")


def _tidy_exponent(text: str) -> str:
    """1.23e+07 -> 1.23e7, 4.5e-05 -> 4.5e-5."""
    return re.sub(r"e([+-])0*(\d)", lambda m: f"e{'-' if m[1] == '-' else ''}{m[2]}", text)


def _level(value: float | None, warn: float, drifted: float) -> Verdict | None:
    """Which threshold a statistic crosses (None when it has no value)."""
    if value is None or math.isnan(value):
        return None
    return level(value, warn, drifted)


def _badge(verdict: Verdict, big: bool = False) -> str:
    size = " big" if big else ""
    return f'<span class="badge {verdict}{size}">{verdict}</span>'


def _anchors(names: Iterable[str]) -> list[str]:
    """One id per feature: its position and a slug of its name, unique and safe."""
    out = []
    for i, name in enumerate(names, start=1):
        slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:48]
        out.append(f"f{i}-{slug}" if slug else f"f{i}")
    return out


def _num_cell(text: str, level: Verdict | None = None, title: str | None = None) -> str:
    cls = f"num lvl-{level}" if level else "num"
    tip = f' title="{_e(title)}"' if title else ""
    return f'<td class="{cls}"{tip}>{_e(text)}</td>'


def _category_list(values: Sequence[str], limit: int = 3) -> str:
    shown = ", ".join(f"<code>{_e(v)}</code>" for v in values[:limit])
    rest = len(values) - limit
    return shown + (f' <span class="muted">+{rest} more</span>' if rest > 0 else "")


# --- Header and summary table ------------------------------------------------------------


def _header(report: DriftReport) -> str:
    counts = report.counts()
    pills = " ".join(
        f'<span class="pill {v}"><strong>{counts[v]}</strong> {v}</span>'
        for v in ("drifted", "warn", "stable")
    )
    return (
        '<header class="card">\n'
        '<div class="title-row">'
        f'<h1>Drift report: <span class="view">{_e(report.view)}</span></h1>'
        f"{_badge(report.verdict, big=True)}</div>\n"
        '<dl class="sides">'
        f'<dt><span class="swatch ref"></span>Reference</dt><dd>{_e(report.reference.label)}</dd>'
        f'<dt><span class="swatch cur"></span>Current</dt><dd>{_e(report.current.label)}</dd>'
        "</dl>\n"
        f'<p class="counts">{len(report.features)} features compared: {pills}</p>\n'
        f"{_thresholds_table(report.thresholds)}\n"
        "</header>"
    )


def _thresholds_table(t: Thresholds) -> str:
    columns = [
        ("PSI", fmt_number(t.psi_warn), fmt_number(t.psi_drifted)),
        ("KS", fmt_number(t.ks_warn), fmt_number(t.ks_drifted)),
        ("JS", fmt_number(t.js_warn), fmt_number(t.js_drifted)),
        (
            "null rate change",
            fmt_points(t.missing_rate_warn).removeprefix("+"),
            fmt_points(t.missing_rate_drifted).removeprefix("+"),
        ),
        (
            "new / vanished category share",
            fmt_percent(t.category_min_share),
            fmt_percent(t.category_drifted_share),
        ),
    ]
    head = "".join(f'<th class="num">{_e(name)}</th>' for name, _, _ in columns)
    warn = "".join(_num_cell(f"≥ {w}") for _, w, _ in columns)
    drifted = "".join(_num_cell(f"≥ {d}") for _, _, d in columns)
    return (
        '<table class="thresholds"><caption>Thresholds</caption>'
        f"<thead><tr><th></th>{head}</tr></thead><tbody>"
        f"<tr><th>{_badge('warn')}</th>{warn}</tr>"
        f"<tr><th>{_badge('drifted')}</th>{drifted}</tr>"
        "</tbody></table>"
    )


def _summary_section(report: DriftReport, anchors: Sequence[str]) -> str:
    if not report.features:
        return (
            '<section class="card" id="summary"><h2>Features</h2>'
            '<p class="muted">No feature was compared.</p></section>'
        )
    rows = "\n".join(
        _summary_row(f, a, report.thresholds) for f, a in zip(report.features, anchors, strict=True)
    )
    head = (
        "<tr><th>Feature</th><th>Kind</th><th>Verdict</th>"
        '<th class="num">PSI</th><th class="num">KS</th><th class="num">JS</th>'
        '<th class="num">Null rate ref → cur</th><th class="num">Change</th>'
        "<th>Categories new / vanished</th></tr>"
    )
    return (
        '<section class="card" id="summary"><h2>Features, most severe first</h2>\n'
        f'<div class="scroll"><table class="summary"><thead>{head}</thead>\n'
        f"<tbody>\n{rows}\n</tbody></table></div></section>"
    )


def _summary_row(f: FeatureComparison, anchor: str, t: Thresholds) -> str:
    d = f.drift
    categories = []
    if d.new_categories:
        categories.append(f'<span class="new">new</span> {_category_list(d.new_categories)}')
    if d.vanished_categories:
        categories.append(
            f'<span class="gone">vanished</span> {_category_list(d.vanished_categories)}'
        )
    change = d.null_rate_change
    return (
        f'<tr class="{d.verdict}"><td><a href="#{anchor}">{_e(d.feature)}</a></td>'
        f'<td class="muted">{d.kind}</td><td>{_badge(d.verdict)}</td>'
        + _num_cell(fmt_number(d.psi), _level(d.psi, t.psi_warn, t.psi_drifted))
        + _num_cell(fmt_number(d.ks), _level(d.ks, t.ks_warn, t.ks_drifted))
        + _num_cell(fmt_number(d.js), _level(d.js, t.js_warn, t.js_drifted))
        + _num_cell(f"{fmt_percent(d.null_rate_ref)} → {fmt_percent(d.null_rate_cur)}")
        + _num_cell(
            fmt_points(change),
            _level(abs(change), t.missing_rate_warn, t.missing_rate_drifted),
        )
        + f"<td>{'<br>'.join(categories) or DASH}</td></tr>"
    )


# --- One feature -------------------------------------------------------------------------


def _feature_section(f: FeatureComparison, anchor: str, t: Thresholds) -> str:
    d = f.drift
    return (
        f'<section class="card feature" id="{anchor}">\n'
        f'<h2><span class="name">{_e(d.feature)}</span> {_badge(d.verdict)}'
        f' <span class="kind">{d.kind}</span>'
        '<a class="up" href="#summary" title="back to the summary table">↑ summary</a></h2>\n'
        '<div class="grid">\n'
        f"<div><figure>{plot_svg(f.reference, f.current)}</figure>\n{_statistics(f, t)}</div>\n"
        f"<div>{_reasons(f)}\n{_summaries_table(f.reference, f.current)}</div>\n"
        "</div></section>"
    )


def _reasons(f: FeatureComparison) -> str:
    if not f.drift.reasons:
        return '<h3>Why</h3><p class="muted reasons">No threshold crossed.</p>'
    items = "".join(f"<li>{_e(r)}</li>" for r in f.drift.reasons)
    return f'<h3>Why</h3><ul class="reasons">{items}</ul>'


def _statistics(f: FeatureComparison, t: Thresholds) -> str:
    d = f.drift
    ks_note = "numeric only" if d.kind == "categorical" else f"≥ {t.ks_warn:g} / ≥ {t.ks_drifted:g}"
    rows = [
        _stat_row(
            "PSI", d.psi, t.psi_warn, t.psi_drifted, f"≥ {t.psi_warn:g} / ≥ {t.psi_drifted:g}"
        ),
        _stat_row("KS", d.ks, t.ks_warn, t.ks_drifted, ks_note),
        _stat_row(
            "JS distance", d.js, t.js_warn, t.js_drifted, f"≥ {t.js_warn:g} / ≥ {t.js_drifted:g}"
        ),
        "<tr><th>Null rate</th>"
        + _num_cell(
            fmt_points(d.null_rate_change),
            _level(abs(d.null_rate_change), t.missing_rate_warn, t.missing_rate_drifted),
        )
        + f'<td class="muted">{fmt_percent(d.null_rate_ref)} → {fmt_percent(d.null_rate_cur)}'
        "</td></tr>",
    ]
    for label, values in (
        ("New categories", d.new_categories),
        ("Vanished", d.vanished_categories),
    ):
        if values:
            rows.append(
                f'<tr><th>{label}</th><td colspan="2">{_category_list(values, limit=8)}</td></tr>'
            )
    return (
        '<table class="stats"><thead><tr><th>Statistic</th><th class="num">Value</th>'
        '<th class="muted">warn / drifted at</th></tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table>"
    )


def _stat_row(name: str, value: float | None, warn: float, drifted: float, note: str) -> str:
    return (
        f"<tr><th>{name}</th>{_num_cell(fmt_number(value), _level(value, warn, drifted))}"
        f'<td class="muted">{_e(note)}</td></tr>'
    )


def _summary_rows(s: Summary) -> list[tuple[str, str]]:
    if isinstance(s, NumericSummary):
        return [
            ("rows", _fmt_count(s.count)),
            ("nulls", _fmt_count(s.nulls)),
            ("NaN", _fmt_count(s.nans)),
            ("valid", _fmt_count(s.valid)),
            ("mean", fmt_number(s.mean)),
            ("stddev", fmt_number(s.stddev)),
            ("min", fmt_number(s.min)),
            ("p50", fmt_number(s.quantiles.get(0.5))),
            ("p95", fmt_number(s.quantiles.get(0.95))),
            ("max", fmt_number(s.max)),
            ("distinct", _fmt_count(s.distinct)),
        ]
    return [
        ("rows", _fmt_count(s.count)),
        ("nulls", _fmt_count(s.nulls)),
        ("valid", _fmt_count(s.valid)),
        ("distinct", _fmt_count(s.distinct)),
        ("top values kept", _fmt_count(len(s.top))),
        ("in other values", _fmt_count(s.other)),
    ]


def _summaries_table(ref: Summary, cur: Summary) -> str:
    left, right = dict(_summary_rows(ref)), dict(_summary_rows(cur))
    labels = [*left, *(k for k in right if k not in left)]
    rows = "".join(
        f"<tr><th>{_e(k)}</th>{_num_cell(left.get(k, DASH))}{_num_cell(right.get(k, DASH))}</tr>"
        for k in labels
    )
    return (
        '<table class="sums"><thead><tr><th>Summary</th>'
        '<th class="num"><span class="swatch ref"></span>reference</th>'
        '<th class="num"><span class="swatch cur"></span>current</th></tr></thead>'
        f"<tbody>{rows}</tbody></table>"
    )


# --- The plot ----------------------------------------------------------------------------


@dataclass(frozen=True)
class _Bins:
    """What a plot draws: each bin's description (for its tooltip), both sides' counts,
    and the x axis: labels at the inner bin boundaries (`edges`, one fewer than bins) or
    under each bar (`bars`). `other` is the index of the merged "other" bar, if any."""

    names: tuple[str, ...]
    ref: tuple[int, ...]
    cur: tuple[int, ...]
    axis: Literal["edges", "bars"]
    ticks: tuple[str, ...]
    other: int | None = None


def numeric_bins(ref: NumericSummary, cur: NumericSummary) -> _Bins:
    """The left-closed bins [-inf, e0), [e0, e1), ..., [e_last, +inf] of the side with
    valid values (both sides share them whenever both have some)."""
    if not ref.valid and cur.valid and ref.edges != cur.edges:
        # an empty reference binned over no edges of its own: all zeros over cur's
        ref = replace(ref, edges=cur.edges, counts=(0,) * len(cur.counts))
    elif not cur.valid and ref.edges != cur.edges:
        cur = replace(cur, edges=ref.edges, counts=(0,) * len(ref.counts))
    edges = ref.edges
    if not edges:
        return _Bins(("all valid values",), ref.counts, cur.counts, "bars", ("all values",))
    if len(edges) == 2 and edges[1] == math.nextafter(edges[0], math.inf):
        # One reference value v: the bins are below v, exactly v and above v.
        v, short = _fmt_edge(edges[0]), fmt_short(edges[0])
        names = (f"below {v}", f"exactly {v}", f"above {v}")
        ticks = (f"< {short}", f"= {short}", f"> {short}")
        return _Bins(names, ref.counts, cur.counts, "bars", ticks)
    bounds = [_fmt_edge(e) for e in edges]
    spans = (
        f"[{MINUS}∞, {bounds[0]})",
        *(f"[{a}, {b})" for a, b in itertools.pairwise(bounds)),
        f"[{bounds[-1]}, +∞]",
    )
    return _Bins(spans, ref.counts, cur.counts, "edges", tuple(fmt_short(e) for e in edges))


def category_bins(
    ref: CategoricalSummary, cur: CategoricalSummary, limit: int = MAX_CATEGORIES
) -> _Bins:
    """Both top lists' values (drift.categorical_bins), the `limit` with the greatest share
    on either side first, the rest merged into the "other" bar (dropped when empty)."""
    labels, ref_counts, cur_counts = categorical_bins(ref, cur)
    values = labels[:-1]
    ref_share = _shares(ref_counts)
    cur_share = _shares(cur_counts)
    ranked = sorted(range(len(values)), key=lambda i: (-max(ref_share[i], cur_share[i]), values[i]))
    keep, rest = ranked[:limit], ranked[limit:]
    ref_other = ref_counts[-1] + sum(ref_counts[i] for i in rest)
    cur_other = cur_counts[-1] + sum(cur_counts[i] for i in rest)
    names = [values[i] for i in keep]
    ticks = list(names)
    refs = [ref_counts[i] for i in keep]
    curs = [cur_counts[i] for i in keep]
    other = None
    if ref_other or cur_other or not keep:
        other = len(names)
        merged = f" (and {len(rest)} less frequent values)" if rest else ""
        names.append(f"{OTHER}: values outside the top lists{merged}")
        ticks.append(OTHER)
        refs.append(ref_other)
        curs.append(cur_other)
    return _Bins(tuple(names), tuple(refs), tuple(curs), "bars", tuple(ticks), other)


def _shares(counts: Sequence[int]) -> list[float]:
    total = sum(counts)
    return [c / total if total else 0.0 for c in counts]


_WIDTH = 480
_LEFT, _RIGHT, _TOP = 44, 10, 26
_PLOT_H = 106
_CHAR_W = 5.6  # average glyph width at the 10px axis font
_MAX_LABEL = 14


def plot_svg(ref: Summary, cur: Summary) -> str:
    """Both versions' histograms as proportions of their valid values, side by side per
    bin, as an inline SVG (about 480 x 160; taller for rotated category labels)."""
    if isinstance(ref, NumericSummary) and isinstance(cur, NumericSummary):
        if len(ref.counts) != len(cur.counts):
            return _svg_message("the two histograms have different bins")
        return _draw(numeric_bins(ref, cur))
    if isinstance(ref, CategoricalSummary) and isinstance(cur, CategoricalSummary):
        return _draw(category_bins(ref, cur))
    return _svg_message(f"cannot plot a {ref.kind} against a {cur.kind} summary")


def _svg_message(text: str) -> str:
    return (
        f'<svg class="plot" width="{_WIDTH}" height="60" viewBox="0 0 {_WIDTH} 60" role="img">'
        f'<text x="{_WIDTH / 2}" y="34" text-anchor="middle" class="note">{_e(text)}</text></svg>'
    )


def _draw(bins: _Bins) -> str:
    n = len(bins.names)
    plot_w = _WIDTH - _LEFT - _RIGHT
    slot = plot_w / n
    labels = [_truncate(t) for t in bins.ticks]
    rotate = bins.axis == "bars" and max(len(t) for t in labels) * _CHAR_W > slot - 4
    bottom = int(12 + max(len(t) for t in labels) * _CHAR_W * 0.72) if rotate else 28
    height = _TOP + _PLOT_H + bottom
    ref_p, cur_p = _shares(bins.ref), _shares(bins.cur)
    top = _nice_ceiling(max([*ref_p, *cur_p, 0.0]))
    base = _TOP + _PLOT_H

    def y(p: float) -> float:
        return _TOP + _PLOT_H * (1 - p / top)

    parts = [
        f'<svg class="plot" width="{_WIDTH}" height="{height}" viewBox="0 0 {_WIDTH} {height}"'
        ' role="img" aria-label="histograms of the reference and current versions">'
    ]
    for frac in (0.0, 0.5, 1.0):
        gy = y(top * frac)
        parts.append(
            f'<line class="grid" x1="{_LEFT}" x2="{_WIDTH - _RIGHT}" y1="{gy:.1f}" y2="{gy:.1f}"/>'
            f'<text class="axis" x="{_LEFT - 5}" y="{gy + 3.5:.1f}" text-anchor="end">'
            f"{_axis_percent(top * frac)}</text>"
        )
    pad = slot * 0.14
    bar_w = min((slot - 2 * pad) / 2, 26.0)
    for i, name in enumerate(bins.names):
        center = _LEFT + slot * (i + 0.5)
        for side, shares, counts, x in (
            ("ref", ref_p, bins.ref, center - bar_w),
            ("cur", cur_p, bins.cur, center),
        ):
            who = "reference" if side == "ref" else "current"
            h = base - y(shares[i])
            parts.append(
                f'<rect class="{side}" x="{x:.1f}" y="{base - h:.1f}" width="{bar_w:.1f}"'
                f' height="{h:.1f}"><title>{_e(name)}, {who}: {fmt_percent(shares[i])}'
                f" ({_fmt_count(counts[i])})</title></rect>"
            )
    parts.append(
        f'<line class="baseline" x1="{_LEFT}" x2="{_WIDTH - _RIGHT}" y1="{base}" y2="{base}"/>'
    )
    parts.extend(_x_labels(bins, labels, slot, base, rotate))
    parts.append(_legend(sum(bins.ref), sum(bins.cur)))
    if not sum(bins.ref) and not sum(bins.cur):
        parts.append(
            f'<text class="note" x="{_LEFT + plot_w / 2}" y="{_TOP + _PLOT_H / 2}"'
            ' text-anchor="middle">no valid values on either side</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def _x_labels(
    bins: _Bins, labels: Sequence[str], slot: float, base: float, rotate: bool
) -> list[str]:
    out = []
    if bins.axis == "edges":
        most = max(1, int((_WIDTH - _LEFT - _RIGHT) // 46))
        step = max(1, math.ceil(len(labels) / most))
        for k in range(0, len(labels), step):
            x = _LEFT + slot * (k + 1)
            out.append(
                f'<line class="tick" x1="{x:.1f}" x2="{x:.1f}" y1="{base}" y2="{base + 4}"/>'
                f'<text class="axis" x="{x:.1f}" y="{base + 15}" text-anchor="middle">'
                f"{_e(labels[k])}</text>"
            )
        return out
    for i, label in enumerate(labels):
        x = _LEFT + slot * (i + 0.5)
        cls = "axis other" if i == bins.other else "axis"
        tip = f"<title>{_e(bins.names[i])}</title>"
        if rotate:
            out.append(
                f'<text class="{cls}" x="{x:.1f}" y="{base + 10}" text-anchor="end"'
                f' transform="rotate(-45 {x:.1f} {base + 10})">{tip}{_e(label)}</text>'
            )
        else:
            out.append(
                f'<text class="{cls}" x="{x:.1f}" y="{base + 15}" text-anchor="middle">'
                f"{tip}{_e(label)}</text>"
            )
    return out


def _legend(ref_total: int, cur_total: int) -> str:
    out = []
    x = float(_LEFT)
    for side, total in (("reference", ref_total), ("current", cur_total)):
        text = side if total else f"{side} (no valid values)"
        cls = "ref" if side == "reference" else "cur"
        out.append(
            f'<rect class="{cls}" x="{x:.1f}" y="8" width="10" height="10"/>'
            f'<text class="legend" x="{x + 14:.1f}" y="17">{text}</text>'
        )
        x += 14 + len(text) * 6.2 + 14
    out.append(
        f'<text class="axis" x="{_WIDTH - _RIGHT}" y="17" text-anchor="end">'
        "share of valid values</text>"
    )
    return "".join(out)


def _truncate(label: str) -> str:
    return label if len(label) <= _MAX_LABEL else label[: _MAX_LABEL - 1] + "…"


def _nice_ceiling(value: float) -> float:
    """The least of 1, 2, 2.5, 5 times a power of ten at or above `value` (1 for 0)."""
    if value <= 0 or not math.isfinite(value):
        return 1.0
    power = 10.0 ** math.floor(math.log10(value))
    for m in (1.0, 2.0, 2.5, 5.0, 10.0):
        if m * power >= value * (1 - 1e-9):
            return min(m * power, 1.0) if value <= 1 else m * power
    return 10 * power


def _axis_percent(share: float) -> str:
    return f"{share * 100:.3g}%"


# --- Skipped features and the footnote ---------------------------------------------------


def _skipped_section(skipped: Mapping[str, str]) -> str:
    if not skipped:
        return ""
    rows = "".join(
        f"<tr><th>{_e(name)}</th><td>{_e(reason)}</td></tr>"
        for name, reason in sorted(skipped.items())
    )
    return (
        '<section class="card" id="skipped"><h2>Not compared</h2>'
        f'<table class="skipped"><thead><tr><th>Feature</th><th>Why</th></tr></thead>'
        f"<tbody>{rows}</tbody></table></section>"
    )


def _footnote(t: Thresholds) -> str:
    items = [
        (
            "PSI",
            "the Population Stability Index, Σ (q - p) ln(q / p) over the shared bins"
            " (p the reference's, q the current proportions); a bin empty on one side counts"
            f" as ε = {PSI_EPSILON:g} there and that side is renormalized to sum to 1, so an"
            " emptied bin costs a large but finite amount;"
            f" warn at ≥ {t.psi_warn:g}, drifted at ≥ {t.psi_drifted:g}.",
        ),
        (
            "KS",
            "the two-sample Kolmogorov-Smirnov statistic of the binned data: the largest gap"
            " between the two cumulative shares at any bin edge (numeric features only; never"
            " more than the raw data's KS);"
            f" warn at ≥ {t.ks_warn:g}, drifted at ≥ {t.ks_drifted:g}.",
        ),
        (
            "JS",
            "the Jensen-Shannon distance in base 2, in [0, 1]: 0 for equal distributions,"
            " 1 for disjoint ones;"
            f" warn at ≥ {t.js_warn:g}, drifted at ≥ {t.js_drifted:g}.",
        ),
        (
            "Null rate",
            "(nulls + NaN) / rows on each side; its change is current minus reference in"
            " percentage points, judged by its size:"
            f" warn at ≥ {fmt_percent(t.missing_rate_warn)}, drifted at"
            f" ≥ {fmt_percent(t.missing_rate_drifted)} (absolute).",
        ),
        (
            "Categories",
            "a new (vanished) value is in the current (reference) top list with a share of at"
            f" least {fmt_percent(t.category_min_share)} that the other side provably had"
            f" below it; one at ≥ {fmt_percent(t.category_drifted_share)} makes the feature"
            " drifted, a smaller one warns.",
        ),
        (
            "Bins",
            f"numeric bins are fixed by the reference and left-closed, [{MINUS}∞, e₀), [e₀, e₁), …,"
            " [eₙ, +∞]; categorical bins are both sides' top values plus <other>; the plots"
            " show each bin's share of that side's valid (non-null, non-NaN) values.",
        ),
        (
            "Verdict",
            "a feature's verdict is the most severe threshold it crosses; the report's is the"
            " most severe of its features'.",
        ),
    ]
    rows = "".join(f"<dt>{_e(name)}</dt><dd>{_e(text)}</dd>" for name, text in items)
    return f'<footer class="card"><h2>How to read this</h2><dl class="howto">{rows}</dl></footer>'


_CSS = """
:root { color-scheme: light; --ref: #4c78a8; --cur: #e8853a; --line: #e4e7eb;
  --muted: #667085; --text: #1d2939; }
* { box-sizing: border-box; }
body { margin: 0; background: #f5f6f8; color: var(--text); line-height: 1.45;
  font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial,
  "Noto Sans", sans-serif; }
main { max-width: 1000px; margin: 0 auto; padding: 24px 16px 40px; }
.card { background: #fff; border: 1px solid var(--line); border-radius: 10px;
  padding: 16px 20px; margin: 0 0 16px; }
h1 { font-size: 22px; margin: 0; font-weight: 600; }
h2 { font-size: 17px; margin: 0 0 12px; font-weight: 600; }
h3 { font-size: 13px; margin: 12px 0 4px; color: var(--muted); font-weight: 600;
  text-transform: uppercase; letter-spacing: .04em; }
a { color: #175cd3; text-decoration: none; }
a:hover { text-decoration: underline; }
code { font: 12.5px ui-monospace, SFMono-Regular, Menlo, Consolas, monospace;
  background: #f2f4f7; padding: 0 4px; border-radius: 4px; }
.muted { color: var(--muted); }
.title-row { display: flex; align-items: center; gap: 14px; flex-wrap: wrap; }
.view { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; }
.sides { display: grid; grid-template-columns: max-content 1fr; gap: 2px 12px;
  margin: 12px 0 8px; }
.sides dt { color: var(--muted); }
.sides dd { margin: 0; }
.counts { margin: 8px 0 12px; }
.pill { display: inline-block; margin-right: 6px; padding: 1px 10px; border-radius: 999px;
  font-size: 13px; border: 1px solid var(--line); }
.pill.drifted { background: #fef3f2; color: #b42318; border-color: #fecdca; }
.pill.warn { background: #fffaeb; color: #b54708; border-color: #fedf89; }
.pill.stable { background: #ecfdf3; color: #067647; border-color: #abefc6; }
.badge { display: inline-block; padding: 0 8px; border-radius: 999px; font-size: 12px;
  font-weight: 600; line-height: 20px; vertical-align: middle; border: 1px solid; }
.badge.big { font-size: 14px; padding: 2px 12px; line-height: 22px; }
.badge.drifted { background: #fef3f2; color: #b42318; border-color: #fda29b; }
.badge.warn { background: #fffaeb; color: #b54708; border-color: #fec84b; }
.badge.stable { background: #ecfdf3; color: #067647; border-color: #75e0a7; }
.swatch { display: inline-block; width: 10px; height: 10px; border-radius: 2px;
  margin-right: 6px; vertical-align: baseline; }
.swatch.ref { background: var(--ref); }
.swatch.cur { background: var(--cur); }
table { border-collapse: collapse; font-size: 13px; }
caption { text-align: left; color: var(--muted); font-size: 12px; padding-bottom: 4px; }
th, td { padding: 5px 10px; border-bottom: 1px solid var(--line); text-align: left;
  vertical-align: top; }
thead th { color: var(--muted); font-weight: 600; font-size: 12px;
  border-bottom: 1px solid #d0d5dd; vertical-align: bottom; }
tbody th { font-weight: 500; }
tbody tr:last-child > * { border-bottom: none; }
.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
.lvl-drifted { color: #b42318; font-weight: 600; }
.lvl-warn { color: #b54708; font-weight: 600; }
.scroll { overflow-x: auto; }
table.summary { width: 100%; }
table.summary td:first-child { font-weight: 500; overflow-wrap: break-word; }
table.thresholds th, table.thresholds td { padding: 3px 10px; }
.feature h2 { display: flex; align-items: center; gap: 8px; flex-wrap: wrap; }
.feature h2 .name { overflow-wrap: anywhere; }
.feature .kind { color: var(--muted); font-size: 13px; font-weight: 400; }
.feature .up { margin-left: auto; font-size: 12px; font-weight: 400; }
.grid { display: grid; grid-template-columns: 480px 1fr; gap: 8px 24px; }
@media (max-width: 900px) { .grid { grid-template-columns: 1fr; } }
figure { margin: 0; }
table.stats, table.sums { width: 100%; margin: 10px 0 4px; }
table.stats th, table.stats td, table.sums th, table.sums td { padding: 4px 10px; }
ul.reasons { margin: 0 0 4px; padding-left: 18px; }
p.reasons { margin: 0 0 4px; }
.grid h3:first-child { margin-top: 0; }
.new { color: #b42318; font-size: 12px; }
.gone { color: #b54708; font-size: 12px; }
svg.plot { display: block; max-width: 100%; height: auto; font-family: inherit; }
svg .ref { fill: var(--ref); }
svg .cur { fill: var(--cur); }
svg .grid { stroke: #eaecf0; stroke-width: 1; }
svg .baseline { stroke: #98a2b3; stroke-width: 1; }
svg .tick { stroke: #98a2b3; }
svg .axis { font-size: 10px; fill: #667085; }
svg .axis.other { font-style: italic; }
svg .legend { font-size: 11px; fill: #344054; }
svg .note { font-size: 12px; fill: #667085; }
.howto { display: grid; grid-template-columns: max-content 1fr; gap: 4px 14px; margin: 0;
  font-size: 13px; }
.howto dt { font-weight: 600; }
.howto dd { margin: 0; color: #475467; }
"""
