"""The drift report as HTML (skewless/stats/html.py): a well-formed, self-contained
document (no network reference, no script), one plot per feature, the summary table in
severity order, every user-controlled string escaped, the numbers shown, and the edge
cases (no valid values, NaN and infinite statistics, one bin, no feature at all).
Pure numpy, no Spark."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from html.parser import HTMLParser

import numpy as np
import pytest

from skewless.stats.html import (
    MAX_CATEGORIES,
    fmt_number,
    fmt_percent,
    fmt_points,
    fmt_short,
    render_html,
)
from skewless.stats.report import DriftReport, Side, drift_report
from skewless.stats.summary import (
    Summary,
    edge_probabilities,
    reference_edges,
    summarize_categorical,
    summarize_numeric,
)

HOSTILE_NAME = "<script>alert(1)</script>"
HOSTILE_VALUE = 'o"brien & <co>'
VOID = frozenset({"meta", "br", "hr", "img", "input", "link", "col", "wbr", "area", "source"})


@dataclass
class Node:
    tag: str
    attrs: dict[str, str]
    children: list[Node | str] = field(default_factory=list)

    def text(self) -> str:
        return "".join(c if isinstance(c, str) else c.text() for c in self.children)

    def find_all(self, tag: str, cls: str | None = None) -> list[Node]:
        found = []
        for c in self.children:
            if isinstance(c, Node):
                if c.tag == tag and (cls is None or cls in c.attrs.get("class", "").split()):
                    found.append(c)
                found.extend(c.find_all(tag, cls))
        return found

    def by_id(self, ident: str) -> Node | None:
        for c in self.children:
            if isinstance(c, Node):
                if c.attrs.get("id") == ident:
                    return c
                inner = c.by_id(ident)
                if inner is not None:
                    return inner
        return None


class TreeBuilder(HTMLParser):
    """A strict little DOM: every non-void element must be closed, in order."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root = Node("#document", {})
        self.stack = [self.root]
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        node = Node(tag, {k: v or "" for k, v in attrs})
        self.urls += [v for k, v in node.attrs.items() if k in ("href", "src", "xlink:href")]
        self.stack[-1].children.append(node)
        if tag not in VOID:
            self.stack.append(node)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        node = Node(tag, {k: v or "" for k, v in attrs})
        self.stack[-1].children.append(node)

    def handle_endtag(self, tag: str) -> None:
        if tag in VOID:
            return
        open_tag = self.stack[-1].tag
        if open_tag != tag:
            raise AssertionError(f"</{tag}> closes <{open_tag}>")
        self.stack.pop()

    def handle_data(self, data: str) -> None:
        self.stack[-1].children.append(data)


def parse(document: str) -> tuple[Node, list[str]]:
    builder = TreeBuilder()
    builder.feed(document)
    builder.close()
    assert [n.tag for n in builder.stack] == ["#document"], "unclosed elements"
    return builder.root, builder.urls


def _edges(values: np.ndarray) -> tuple[float, ...]:
    valid = values[~np.isnan(values)]
    if not valid.size:
        return ()
    cuts = np.quantile(valid, edge_probabilities(), method="inverted_cdf")
    return reference_edges(list(cuts), float(valid.min()), float(valid.max()))


def _with_nulls(values: np.ndarray, null_rate: float, rng: np.random.Generator) -> np.ndarray:
    out = values.astype(object)
    out[rng.random(values.size) < null_rate] = None
    return out


def _summaries() -> tuple[dict[str, Summary], dict[str, Summary]]:
    """A shifted numeric, a new category, a null-rate jump and a stable numeric."""
    rng = np.random.default_rng(11)
    ref: dict[str, Summary] = {}
    cur: dict[str, Summary] = {}
    base = rng.normal(10.0, 2.0, 4000)
    edges = _edges(base)
    ref["shifted"] = summarize_numeric(base, edges)
    cur["shifted"] = summarize_numeric(rng.normal(12.0, 2.0, 4000), edges)
    stable = rng.normal(0.0, 1.0, 4000)
    edges = _edges(stable)
    ref["stable"] = summarize_numeric(stable, edges)
    cur["stable"] = summarize_numeric(rng.normal(0.0, 1.0, 4000), edges)
    rating = rng.normal(4.5, 0.3, 3000)
    edges = _edges(rating)
    ref["nullish"] = summarize_numeric(_with_nulls(rating, 0.01, rng), edges)
    cur["nullish"] = summarize_numeric(_with_nulls(rng.normal(4.5, 0.3, 3000), 0.30, rng), edges)
    colours = ["red", "green", HOSTILE_VALUE]
    ref["colour"] = summarize_categorical(
        [str(v) for v in rng.choice(colours, 3000, p=[0.6, 0.3, 0.1])]
    )
    cur["colour"] = summarize_categorical(
        [str(v) for v in rng.choice([*colours, "blue"], 3000, p=[0.5, 0.2, 0.1, 0.2])]
    )
    return ref, cur


def _report(
    ref: Mapping[str, Summary],
    cur: Mapping[str, Summary],
    skipped: Mapping[str, str] | None = None,
    view: str = "driver_stats",
) -> DriftReport:
    return drift_report(
        view,
        (Side("version 3 of driver_stats"), ref),
        (Side("version 4 of driver_stats"), cur),
        skipped=skipped,
    )


@pytest.fixture(scope="module")
def report() -> DriftReport:
    ref, cur = _summaries()
    return _report(ref, cur, skipped={"embedding": "type array<float> has no statistics"})


@pytest.fixture(scope="module")
def document(report: DriftReport) -> str:
    return render_html(report)


def _summary_rows(root: Node) -> list[Node]:
    table = root.find_all("table", "summary")
    assert len(table) == 1
    return table[0].find_all("tbody")[0].find_all("tr")


def _cells(row: Node) -> list[str]:
    return [c.text().strip() for c in row.children if isinstance(c, Node)]


def _label(text: Node) -> str:
    """An SVG text's own words, without its tooltip (<title>)."""
    return "".join(c for c in text.children if isinstance(c, str))


def test_the_fixture_covers_every_verdict(report: DriftReport) -> None:
    verdicts = {f.drift.feature: f.drift.verdict for f in report.features}
    assert verdicts == {
        "shifted": "drifted",
        "colour": "drifted",
        "nullish": "drifted",
        "stable": "stable",
    }
    assert report.drift("colour").new_categories == ("blue",)


def test_document_is_well_formed_and_self_contained(document: str) -> None:
    root, urls = parse(document)
    assert document.startswith("<!DOCTYPE html>")
    assert "http://" not in document
    assert "https://" not in document
    assert not re.search(r"<(script|link|img|iframe|object|embed)\b", document, re.I)
    assert "url(" not in document
    assert "@import" not in document
    assert all(u.startswith("#") for u in urls), urls
    assert len(root.find_all("style")) == 1
    assert root.find_all("title")[0].text() == "Drift report: driver_stats"


def test_one_plot_per_feature_with_both_sides(report: DriftReport, document: str) -> None:
    root, _ = parse(document)
    plots = root.find_all("svg")
    assert len(plots) == len(report.features) == 4
    for feature, plot in zip(report.features, plots, strict=True):
        bins = len(feature.reference.counts) if feature.reference.kind == "numeric" else None
        refs, curs = plot.find_all("rect", "ref"), plot.find_all("rect", "cur")
        # one bar per bin and side, plus one legend swatch per side
        assert len(refs) == len(curs)
        if bins is not None:
            assert len(refs) == bins + 1
        assert "reference" in plot.text() and "current" in plot.text()


def test_summary_rows_follow_severity_and_link_to_sections(
    report: DriftReport, document: str
) -> None:
    root, _ = parse(document)
    rows = _summary_rows(root)
    names = [_cells(r)[0] for r in rows]
    assert names == [f.drift.feature for f in report.features]
    assert names[-1] == "stable"
    for row in rows:
        (link,) = row.find_all("a")
        section = root.by_id(link.attrs["href"].removeprefix("#"))
        assert section is not None and section.tag == "section"
        assert section.find_all("span", "name")[0].text() == link.text()


def test_summary_row_shows_formatted_statistics(report: DriftReport, document: str) -> None:
    root, _ = parse(document)
    cells = {_cells(r)[0]: _cells(r) for r in _summary_rows(root)}
    shifted = report.drift("shifted")
    assert shifted.psi is not None and shifted.ks is not None and shifted.js is not None
    name, kind, verdict, psi, ks, js, rates, change, categories = cells["shifted"]
    assert (name, kind, verdict) == ("shifted", "numeric", "drifted")
    assert (rates, change, categories) == ("0.0% → 0.0%", "0.0 pp", "\u2014")
    assert psi == f"{shifted.psi:.3g}"
    assert ks == f"{shifted.ks:.3g}"
    assert js == f"{shifted.js:.3g}"
    assert cells["colour"][4] == "\u2014"  # no KS for a categorical feature
    assert "blue" in cells["colour"][-1]
    nullish = report.drift("nullish")
    assert cells["nullish"][6] == (
        f"{nullish.null_rate_ref * 100:.1f}% → {nullish.null_rate_cur * 100:.1f}%"
    )
    assert cells["nullish"][7] == f"{nullish.null_rate_change * 100:+.1f} pp"


def test_header_shows_verdict_sides_counts_and_thresholds(document: str) -> None:
    root, _ = parse(document)
    header = root.find_all("header")[0]
    assert header.find_all("span", "big")[0].text() == "drifted"
    text = header.text()
    assert "version 3 of driver_stats" in text and "version 4 of driver_stats" in text
    pills = [p.text() for p in header.find_all("span", "pill")]
    assert pills == ["3 drifted", "0 warn", "1 stable"]
    thresholds = header.find_all("table", "thresholds")[0].text()
    assert "≥ 0.25" in thresholds and "≥ 10.0 pp" in thresholds


def test_feature_section_shows_reasons_and_both_summaries(
    report: DriftReport, document: str
) -> None:
    root, _ = parse(document)
    sections = root.find_all("section", "feature")
    assert len(sections) == len(report.features)
    nullish = next(s for s in sections if s.find_all("span", "name")[0].text() == "nullish")
    reasons = [li.text() for li in nullish.find_all("ul", "reasons")[0].find_all("li")]
    assert reasons == list(report.drift("nullish").reasons)
    sums = nullish.find_all("table", "sums")[0]
    rows = {_cells(r)[0]: _cells(r)[1:] for r in sums.find_all("tbody")[0].find_all("tr")}
    assert set(rows) >= {"rows", "nulls", "NaN", "mean", "stddev", "min", "max", "p50", "p95"}
    compared = next(f for f in report.features if f.drift.feature == "nullish")
    assert rows["nulls"] == [f"{compared.reference.nulls:,}", f"{compared.current.nulls:,}"]
    assert compared.current.nulls > 10 * compared.reference.nulls
    stable = next(s for s in sections if s.find_all("span", "name")[0].text() == "stable")
    assert "No threshold crossed." in stable.text()


def test_hostile_names_and_values_are_escaped() -> None:
    ref, cur = _summaries()
    ref[HOSTILE_NAME], cur[HOSTILE_NAME] = ref["shifted"], cur["shifted"]
    document = render_html(
        drift_report(
            '<b>view</b> & "co"',
            (Side("<i>ref</i>"), ref),
            (Side("cur & 'more'"), cur),
            skipped={"<img src=x>": "<reason>"},
        )
    )
    root, _ = parse(document)
    assert HOSTILE_NAME not in document
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in document
    assert not root.find_all("script")
    assert not root.find_all("b") and not root.find_all("i") and not root.find_all("img")
    assert "o&quot;brien &amp; &lt;co&gt;" in document
    assert HOSTILE_VALUE not in document
    text = root.text()
    assert HOSTILE_NAME in text and HOSTILE_VALUE in text and "<img src=x>" in text
    assert '<b>view</b> & "co"' in root.find_all("h1")[0].text()
    ids = [n.attrs["id"] for n in root.find_all("section") if n.attrs.get("id", "").startswith("f")]
    assert all(re.fullmatch(r"[a-z0-9-]+", i) for i in ids), ids
    assert len(set(ids)) == len(ids) == 5


def test_no_valid_values_on_one_side() -> None:
    edges = _edges(np.arange(100.0))
    ref = {"gone": summarize_numeric(np.arange(100.0), edges)}
    cur = {"gone": summarize_numeric(np.array([None] * 50, dtype=object), edges)}
    report = _report(ref, cur)
    assert report.drift("gone").psi is None
    root, _ = parse(render_html(report))
    (row,) = _summary_rows(root)
    assert _cells(row)[3:6] == ["\u2014", "\u2014", "\u2014"]
    (plot,) = root.find_all("svg")
    assert "current (no valid values)" in plot.text()
    heights = [float(r.attrs["height"]) for r in plot.find_all("rect", "cur")[:-1]]
    assert heights and all(h == 0 for h in heights)
    assert any(float(r.attrs["height"]) > 0 for r in plot.find_all("rect", "ref"))


def test_no_valid_values_on_either_side() -> None:
    empty = summarize_categorical([None, None])
    root, _ = parse(render_html(_report({"c": empty}, {"c": empty})))
    (plot,) = root.find_all("svg")
    assert "no valid values on either side" in plot.text()


@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")
def test_nan_and_infinite_statistics_are_spelled_out() -> None:
    edges = (0.0, 1.0)
    ref = {"x": summarize_numeric(np.array([0.5, 2.0, 3.0]), edges)}
    cur = {"x": summarize_numeric(np.array([0.5, math.inf, -math.inf, math.nan]), edges)}
    assert cur["x"].mean is not None and math.isnan(cur["x"].mean)
    root, _ = parse(render_html(_report(ref, cur)))
    sums = root.find_all("table", "sums")[0]
    rows = {_cells(r)[0]: _cells(r)[1:] for r in sums.find_all("tbody")[0].find_all("tr")}
    assert rows["mean"][1] == "NaN"
    assert rows["max"][1] == "∞"
    assert rows["min"][1] == "\u2212∞"
    assert rows["NaN"] == ["0", "1"]


def test_single_bin_histogram() -> None:
    ref = {"x": summarize_numeric(np.array([1.0, 2.0]), ())}
    cur = {"x": summarize_numeric(np.array([5.0]), ())}
    root, _ = parse(render_html(_report(ref, cur)))
    (plot,) = root.find_all("svg")
    # one bar per side (and a legend swatch each)
    assert len(plot.find_all("rect", "ref")) == 2
    assert len(plot.find_all("rect", "cur")) == 2
    assert "all values" in plot.text()


def test_single_value_reference_is_below_exactly_above() -> None:
    edges = _edges(np.full(10, 3.0))
    ref = {"x": summarize_numeric(np.full(10, 3.0), edges)}
    cur = {"x": summarize_numeric(np.array([2.0, 3.0, 4.0]), edges)}
    root, _ = parse(render_html(_report(ref, cur)))
    labels = [_label(t) for t in root.find_all("svg")[0].find_all("text", "axis")]
    assert {"< 3", "= 3", "> 3"} <= set(labels)


def test_many_categories_are_capped_in_the_plot_only() -> None:
    values = [f"v{i:02d}" for i in range(40) for _ in range(i + 1)]
    ref = {"c": summarize_categorical(values)}
    cur = {"c": summarize_categorical([*values, "v00"])}
    report = _report(ref, cur)
    root, _ = parse(render_html(report))
    (plot,) = root.find_all("svg")
    labels = [_label(t) for t in plot.find_all("text", "axis") if t.find_all("title")]
    assert len(labels) == MAX_CATEGORIES + 1
    assert labels[0] == "v39" and labels[-1] == "<other>"
    assert "v00" not in labels  # the least frequent values went into <other>
    assert len(plot.find_all("rect", "ref")) == MAX_CATEGORIES + 2
    sums = root.find_all("table", "sums")[0].text()
    assert "40" in sums  # the summary still counts every distinct value


def test_empty_report() -> None:
    report = _report({}, {}, skipped={"a": "no statistics in the current side"})
    document = render_html(report)
    root, _ = parse(document)
    assert not root.find_all("svg")
    assert "No feature was compared." in root.text()
    assert root.find_all("span", "big")[0].text() == "stable"
    skipped = root.by_id("skipped")
    assert skipped is not None and "no statistics in the current side" in skipped.text()


def test_footnote_explains_each_statistic(document: str) -> None:
    root, _ = parse(document)
    footer = root.find_all("footer")[0]
    terms = [dt.text() for dt in footer.find_all("dt")]
    assert {"PSI", "KS", "JS", "Null rate"} <= set(terms)
    text = footer.text()
    assert "0.0001" in text and "base 2" in text and "(nulls + NaN) / rows" in text


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        (None, "\u2014"),
        (0.0, "0"),
        (0.31234, "0.312"),
        (-2.5, "-2.5"),
        (12345.6, "12,346"),
        (2.5e7, "2.5e7"),
        (4.5e-5, "4.5e-5"),
        (math.nan, "NaN"),
        (-math.inf, "\u2212∞"),
    ],
)
def test_fmt_number(value: float | None, shown: str) -> None:
    assert fmt_number(value) == shown


@pytest.mark.parametrize(
    ("value", "shown"),
    [(1500.0, "1.5k"), (2.34e6, "2.34M"), (0.01234, "0.0123"), (-7.0, "-7"), (1e-5, "1e-5")],
)
def test_fmt_short(value: float, shown: str) -> None:
    assert fmt_short(value) == shown


def test_percentages() -> None:
    assert fmt_percent(0.0123) == "1.2%"
    assert fmt_points(0.188) == "+18.8 pp"
    assert fmt_points(-0.0001) == "0.0 pp"
    assert fmt_points(-0.05) == "-5.0 pp"
