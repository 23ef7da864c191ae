"""The suite's report: `<date>-<scale>.json` with every figure, `<date>-<scale>.md` with
the tables, the targets and the ratios, and two PNG plots."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

GIB = 2**30

SYSTEM_LABELS = {
    "skewless_grpc": "skewless gRPC",
    "skewless_in_process": "skewless in process",
    "feast_grpc": "Feast gRPC server",
    "feast_sdk": "Feast SDK",
    "feast_http": "Feast HTTP server",
    "echo_floor": "bare grpc.aio echo (floor)",
    "redis_get_1_floor": "Redis GET (floor)",
    "redis_mget_100_floor": "Redis MGET 100 (floor)",
}


def _get(d: dict[str, Any], *path: str) -> Any:
    for key in path:
        if not isinstance(d, dict) or key not in d:
            return None
        d = d[key]
    return d


def _ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


def fastest_correct_feast(hist: dict[str, Any]) -> tuple[str, float] | None:
    """Feast's fastest store whose training set has no missing or differing rows."""
    best = None
    for store in ("feast_local", "feast_spark"):
        entry = hist.get(store) or {}
        c = entry.get("correctness") or {}
        ok = (
            entry.get("status") == "ok"
            and c
            and not (
                c["rows_missing"]
                or c["rows_duplicated"]
                or c["rows_differing"]
                or c["rows_unknown"]
            )
        )
        seconds = entry.get("warm_s") if entry.get("warm_s") is not None else entry.get("cold_s")
        if ok and seconds is not None and (best is None or seconds < best[1]):
            best = (store, float(seconds))
    return best


def materialize_rates(mat: dict[str, Any]) -> dict[str, float | None]:
    s = _get(mat, "skewless", "stats") or {}
    keys = s.get("keys_written_online")
    f = _get(mat, "feast", "views", "stats") or {}
    return {
        "skewless_keys_per_s_whole_run": _ratio(keys, s.get("wall_s")),
        "skewless_keys_per_s_online_phase": _ratio(keys, s.get("online_seconds")),
        "skewless_source_rows_per_s": _ratio(s.get("rows_read"), s.get("wall_s")),
        "feast_keys_per_s": _ratio(f.get("entity_rows"), f.get("seconds")),
    }


def targets(results: dict[str, Any]) -> list[dict[str, Any]]:
    """The issue's targets, each with the measured same-run ratio."""
    out: list[dict[str, Any]] = []

    def add(
        name: str,
        value: float | None,
        limit: float,
        higher_is_better: bool,
        how: str,
        interval: dict[str, Any] | None = None,
    ) -> None:
        met = None if value is None else _within(value, limit, higher_is_better)
        bounds = None if interval is None else (interval["low"], interval["high"])
        out.append(
            {
                "target": name,
                "measured": value,
                "limit": limit,
                "higher_is_better": higher_is_better,
                "met": met,
                "interval": bounds,
                "verdict": verdict(met, bounds, limit, higher_is_better),
                "how": how,
            }
        )

    hist = results.get("historical") or {}
    warm = _get(hist, "skewless", "warm_s")
    best = fastest_correct_feast(hist)
    scale = results.get("scale")
    if hist and scale in ("small", "tiny"):
        add(
            "historical: x faster than Feast's fastest correct store",
            _ratio(best[1], warm) if best else None,
            5.0,
            True,
            f"Feast {best[0].removeprefix('feast_')} store warm / skewless warm"
            if best
            else "no Feast store returned a correct result",
        )
    if hist and scale == "medium":
        c = _get(hist, "skewless", "correctness") or {}
        wrong = [c.get(k) for k in ("rows_missing", "rows_duplicated", "rows_differing")]
        add(
            "historical: completes medium scale; rows missing, duplicated or wrong",
            None if None in wrong else float(sum(w for w in wrong if w is not None)),
            0.0,
            False,
            "skewless's training set against DuckDB's, row by row",
        )
        add(
            "historical: skewless warm / DuckDB ASOF JOIN",
            _ratio(warm, _get(hist, "duckdb_asof", "seconds")),
            2.5,
            False,
            "same run, same data",
        )
    mat = results.get("materialize") or {}
    if mat:
        rates = materialize_rates(mat)
        add(
            "materialize: x Feast's entity rows/s",
            _ratio(rates["skewless_keys_per_s_whole_run"], rates["feast_keys_per_s"]),
            50.0,
            True,
            "keys written to Redis / wall seconds of the whole run, `stats` view, both systems",
        )
        add(
            "materialize: share of the raw redis-py pipelined SET rate",
            _ratio(
                rates["skewless_keys_per_s_online_phase"],
                mat.get("floor_redis_py_pipeline_keys_per_s"),
            ),
            0.4,
            True,
            "skewless online phase keys/s / floor keys/s (same value size)",
        )
    lat = _get(results, "online", "latency") or {}
    if lat:
        p99 = {(w, s): _get(lat, w, s, "p99_ms") for w in lat for s in lat[w]}
        intervals = _get(results, "online", "p99_intervals") or {}
        for workload, other, limit, how in (
            ("1x10", "echo_floor", 1.5, "echo answers the same number of bytes"),
            ("1x10", "feast_grpc", 1 / 3, "same client, same Redis"),
            ("100x10", "feast_grpc", 1 / 5, "same client, same Redis"),
        ):
            label = "bare gRPC echo" if other == "echo_floor" else "Feast gRPC server"
            add(
                f"online {workload}: p99 / {label} p99",
                _ratio(p99.get((workload, "skewless_grpc")), p99.get((workload, other))),
                limit,
                False,
                how,
                _get(intervals, workload, f"skewless_grpc/{other}"),
            )
    return out


def _within(value: float, limit: float, higher_is_better: bool) -> bool:
    return value >= limit if higher_is_better else value <= limit


def verdict(
    met: bool | None,
    interval: tuple[float, float] | None,
    limit: float,
    higher_is_better: bool,
) -> str:
    """ "met" or "missed", by the whole interval when there is one: an interval on both
    sides of the limit is "undecided" (this run's noise is larger than the distance to
    the target). "n/a" when nothing was measured."""
    if met is None:
        return "n/a"
    if interval is None:
        return "met" if met else "missed"
    sides = {_within(bound, limit, higher_is_better) for bound in interval}
    return "undecided" if len(sides) == 2 else "met" if True in sides else "missed"


def _f(value: Any, fmt: str = "{:.2f}") -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float | int):
        return fmt.format(value)
    return str(value)


def _n(value: Any) -> str:
    return _f(value, "{:,.0f}")


def _gib(value: Any) -> str:
    return "n/a" if not value else f"{value / GIB:.1f} GiB"


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(row) + " |" for row in rows]
    return [*out, ""]


def _label(system: str) -> str:
    return SYSTEM_LABELS.get(system, system)


def _header(results: dict[str, Any]) -> list[str]:
    m = results.get("machine", {})
    versions = dict(m.get("versions", {}))
    feast = versions.pop("feast_venv", None)
    text = ", ".join(f"{k} {val}" for k, val in versions.items())
    if isinstance(feast, dict):
        text += "; Feast's venv: " + ", ".join(f"{k} {val}" for k, val in feast.items())
    return [
        f"# skewless vs Feast vs the floor: {results['scale']} scale, {results['started'][:10]}",
        "",
        f"Reproduce: `{results['command']}` (see benchmarks/README.md). The run took "
        f"{_n(results.get('total_seconds'))} s; preparing Feast's virtual environment "
        f"{_n(results.get('feast_install_s'))} s of it.",
        "",
        f"Machine: {m.get('cpus')} CPUs ({m.get('cpu_model')}), {m.get('memory_gib')} GiB, "
        f"{m.get('platform')}, Python {m.get('python')}, {m.get('java')}. Everything runs on "
        "this one machine over loopback; wall-clock figures are noisy, only same-run ratios "
        "are comparable.",
        "",
        f"Versions: {text}.",
        "",
        f"Data: `{json.dumps(results.get('data'))}`",
        "",
    ]


_VERDICTS = {"met": "yes", "missed": "**no**", "undecided": "undecided", "n/a": "n/a"}


def _targets_md(results: dict[str, Any]) -> list[str]:
    rows = []
    for t in targets(results):
        limit = f"{'>=' if t['higher_is_better'] else '<='} {t['limit']:.2f}"
        bounds = t["interval"]
        interval = "" if bounds is None else f"{bounds[0]:.2f} - {bounds[1]:.2f}"
        rows.append(
            [t["target"], _f(t["measured"]), interval, limit, _VERDICTS[t["verdict"]], t["how"]]
        )
    if not rows:
        return []
    head = [
        "## Targets (same-run ratios)",
        "",
        "The p99 ratios of gRPC servers come with a 95% interval: a bootstrap that resamples"
        " the turns of 100 calls in which the servers took turns, each server's turn with the"
        " other's (benchmarks/intervals.py). A target is met or missed when its whole"
        " interval is; an interval on both sides of the limit leaves it undecided by this run.",
        "",
    ]
    return head + _table(["target", "measured", "95% interval", "limit", "met", "how"], rows)


def _historical_md(results: dict[str, Any]) -> list[str]:
    hist = results.get("historical")
    if not hist:
        return []
    d = results["data"]
    duck = _get(hist, "duckdb_asof", "seconds")
    lines = [
        "## Historical retrieval (point-in-time join)",
        "",
        f"{d['entity_rows']:,} entity rows x {d['feature_rows']:,} feature rows x "
        f"{d['features']} features, ttl {d['ttl_days']} days. Every result is compared with "
        "DuckDB's row by row, matched on `row_id` (benchmarks/compare.py).",
        "",
    ]
    duck_cold = _get(hist, "duckdb_asof", "cold_s")
    rows = [
        ["DuckDB ASOF JOIN (floor, reference)", "ok", _f(duck_cold), _f(duck), "1.00"] + [""] * 5
    ]
    systems = (
        ("skewless", "skewless (Spark local[2])"),
        ("feast_local", "Feast local (file) store"),
        ("feast_spark", "Feast Spark store"),
    )
    notes = []
    runs = {"DuckDB": _get(hist, "duckdb_asof", "warm_runs_s")}
    for key, label in systems:
        e = hist.get(key)
        if not e:
            continue
        runs[label] = e.get("warm_runs_s")
        if e.get("warm_equals_cold") is False:
            notes.append(f"{label}: a warm call's result differed from the cold call's.")
        c = e.get("correctness") or {}
        rows.append(
            [
                label,
                str(e.get("status")),
                _f(e.get("cold_s")),
                _f(e.get("warm_s")),
                _f(_ratio(e.get("warm_s"), duck)),
                _gib(e.get("peak_rss_bytes")),
                *(_n(c.get(k)) for k in ("rows_missing", "rows_duplicated", "rows_differing")),
                _n(c.get("values_differing")),
            ]
        )
        if e.get("status") not in (None, "ok"):
            notes.append(
                f"{label}: {e['status']} after {_n(e.get('seconds'))} s "
                f"(peak {_gib(e.get('peak_rss_bytes'))})."
            )
        per = c.get("values_differing_per_column")
        if per and any(per.values()):
            notes.append(f"{label}, differing values per column: `{json.dumps(per)}`.")
    header = ["system", "status", "cold s", "warm s", "warm / DuckDB", "peak RSS"]
    header += ["rows missing", "rows duplicated", "rows differing", "values differing"]
    lines += _table(header, rows)
    timed = [f"{k} {', '.join(_f(x) for x in v)}" for k, v in runs.items() if v]
    if timed:
        notes.insert(
            0,
            "cold is the first call in the process; warm is the best of the calls after it "
            f"(seconds: {'; '.join(timed)}).",
        )
    s = hist.get("skewless", {})
    notes.append(
        "skewless also built the training set from a Spark entity dataframe into a Delta "
        f"table (nothing collected to the driver) in {_f(s.get('spark_df_to_delta_s'))} s; "
        f"starting Spark took {_f(s.get('spark_startup_s'))} s. Of the best warm call, "
        f"{_f(s.get('warm_prepare_s'))} s went to moving the entity rows into Spark and "
        "planning, the rest to the join and bringing the result back."
    )
    return lines + [f"- {n}" for n in notes] + [""] + _jvm_profile_md(s.get("jvm_profile"))


def _jvm_profile_md(profile: dict[str, Any] | None) -> list[str]:
    if not profile:
        return []
    if "error" in profile:
        return [f"No JVM profile of the warm calls: {profile['error']}", ""]
    lines = [
        "### Where skewless's warm calls spend their time",
        "",
        f"JDK Flight Recorder samples of the Spark JVM during the warm calls "
        f"({profile['samples']:,} stacks; benchmarks/jvm_profile.py): each sample counts "
        "for the phase of its innermost frame that belongs to one. The driver's Python "
        "work (staging the entity rows, putting the result in input order) is not sampled.",
        "",
    ]
    lines += _table(
        ["phase", "share of samples"],
        [[p["phase"], f"{100 * p['share']:.0f}%"] for p in profile["phases"]],
    )
    tops = ", ".join(
        f"`{t['frame'].rsplit('.', 2)[-2]}.{t['frame'].rsplit('.', 1)[-1]}` {100 * t['share']:.0f}%"
        for t in profile["top_frames"][:5]
    )
    return [*lines, f"Most sampled methods (top of the stack): {tops}.", ""]


def _materialize_md(results: dict[str, Any]) -> list[str]:
    mat = results.get("materialize")
    if not mat:
        return []
    s = mat.get("skewless", {})
    rows = []
    for view in ("stats", "online10", "online50"):
        e = s.get(view) or {}
        keys = e.get("keys_written_online")
        rows.append(
            [
                f"skewless `{view}` (Delta + Redis)",
                _n(e.get("rows_read")),
                _n(keys),
                _f(e.get("wall_s")),
                _n(_ratio(keys, e.get("wall_s"))),
                _f(e.get("online_seconds")),
                _n(_ratio(keys, e.get("online_seconds"))),
            ]
        )
    feast = mat.get("feast") or {}
    for view, e in (feast.get("views") or {}).items():
        keys = e.get("entity_rows")
        secs = e.get("seconds")
        rows.append(
            [f"Feast `{view}` (Redis)", "", _n(keys), _f(secs), _n(_ratio(keys, secs)), "", ""]
        )
    if feast.get("status") not in (None, "ok"):
        rows.append(["Feast", feast["status"], "", _f(feast.get("seconds")), "", "", ""])
    header = ["system / view", "source rows", "keys written", "seconds", "keys/s"]
    header += ["online phase s", "online phase keys/s"]
    rb = mat.get("floor_redis_benchmark") or {}
    rates = {k: round(x) if x else x for k, x in materialize_rates(mat).items()}
    notes = [
        f"Floors, values of {mat.get('value_bytes')} bytes: a raw redis-py pipeline of plain "
        f"SETs wrote {_n(mat.get('floor_redis_py_pipeline_keys_per_s'))} keys/s; "
        f"`redis-benchmark {rb.get('command', '')}` {_n(rb.get('keys_per_s'))} keys/s.",
        "The online phase is the Spark job that keeps each entity's latest row plus the "
        "ordered writes from its Python workers. The writer alone (the same rows and code, "
        "in one process, no Spark) wrote "
        f"{_n(_get(s, 'stats', 'writer_alone', 'keys_per_s'))} keys/s.",
        f"Rates: `{json.dumps(rates)}`.",
    ]
    return [
        "## Materialization into Redis",
        "",
        *_table(header, rows),
        *[f"- {n}" for n in notes],
        "",
    ]


def _online_md(results: dict[str, Any]) -> list[str]:
    online = results.get("online")
    if not online:
        return []
    lines = [
        "## Online lookups",
        "",
        f"{online['calls']} timed calls after {online['warmup']} warm-up calls, one at a time. "
        "gRPC clients send pre-serialized requests and do not decode the answers "
        "(benchmarks/loadgen.py): the same client, in its own process, for every server. "
        "The gRPC servers (skewless, Feast, echo) take turns of 100 calls, so a passing "
        "disturbance of the machine falls on all of them alike.",
        "",
    ]
    for name, row in (online.get("latency") or {}).items():
        n, f = name.split("x")
        mine = _get(online, "skewless_answers", name) or {}
        theirs = _get(online, "feast_answers", name) or {}
        lines += [
            f"### {n} entities x {f} features",
            "",
            f"skewless answers {mine.get('response_bytes')} bytes with {mine.get('present')} "
            f"of {mine.get('values')} values present; Feast {theirs.get('response_bytes')} "
            f"bytes with {theirs.get('present_values')} of "
            f"{theirs.get('values')}.",
            "",
        ]
        stats = ("p50_ms", "p99_ms", "max_ms")
        rows = [[_label(k), *(_f(v.get(s), "{:.3f}") for s in stats)] for k, v in row.items()]
        lines += _table(["system", "p50 ms", "p99 ms", "max ms"], rows)
        handler = _get(online, "skewless_server_side", name) or {}
        if handler.get("calls"):
            ms = {k: _f(handler[k] * 1000, "{:.3f}") for k in ("mean_s", "p50_s", "p99_s")}
            lines += [
                f"skewless's server measured its own handler time over the same "
                f"{_n(handler['calls'])} calls (warm-up included; /metrics histogram, "
                f"quantiles interpolated within buckets): mean {ms['mean_s']} ms, "
                f"p50 {ms['p50_s']} ms, p99 {ms['p99_s']} ms. The rest of a call's "
                "latency is gRPC's transport, scheduling and the client.",
                "",
            ]
    tp = online.get("throughput") or {}
    if tp:
        clients = sorted({c for row in tp.values() for c in row}, key=int)
        rows = []
        for system, row in tp.items():
            cells = [
                f"{_n(_get(row, c, 'calls_per_s'))} "
                f"({_f(_get(row, c, 'latency_under_load', 'p99_ms'))})"
                for c in clients
            ]
            rows.append([_label(system), *cells])
        lines += ["### Throughput, 1 entity x 10 features: calls/s (p99 ms under load)", ""]
        lines += _table(["system", *(f"{c} clients" for c in clients)], rows)
    mem = online.get("memory") or {}
    if mem:
        rows = [
            [
                _label(system),
                f"{e['rss_before_bytes'] / 2**20:.0f} MiB",
                f"{e['rss_after_bytes'] / 2**20:.0f} MiB",
                e.get("load", "8 clients"),
                f"{e.get('loaded_seconds', e.get('sustained_seconds', 0.0)):.0f}",
                f"{e['calls']:,}",
                str(e["errors"]),
            ]
            for system, e in mem.items()
        ]
        header = ["server", "RSS before", "RSS after", "load", "loaded s", "calls", "errors"]
        lines += ["### Server memory under load (RSS before and after it)", ""]
        lines += _table(header, rows)
    for name, text in (online.get("profiles") or {}).items():
        lines += [f"### Where the time goes in process, {name} (cProfile, top by own time)", ""]
        lines += ["```", text, "```", ""]
    return lines


def markdown(results: dict[str, Any], plots: list[Path]) -> str:
    lines = _header(results)
    if results.get("failed"):
        lines += ["**The run failed**; the figures are partial:", "", "```"]
        lines += [results["failed"][-3000:], "```", ""]
    lines += _targets_md(results)
    lines += _historical_md(results)
    lines += _materialize_md(results)
    lines += _online_md(results)
    if plots:
        lines += ["## Plots", "", *(f"![{p.stem}]({p.name})" for p in plots), ""]
    return "\n".join(lines)


def system_colors(samples: dict[str, dict[str, list[float]]]) -> dict[str, str]:
    """One colour per system across every panel of the latency plot (the workloads do not
    all have the same systems, so colouring by position would change a system's colour
    from panel to panel)."""
    palette = [f"C{i}" for i in range(10)]
    systems = list(dict.fromkeys(s for row in samples.values() for s in row))
    return {s: palette[i % len(palette)] for i, s in enumerate(systems)}


def plot(
    results: dict[str, Any], samples: dict[str, dict[str, list[float]]], stem: Path
) -> list[Path]:
    import matplotlib  # noqa: PLC0415 - benchmark-only dependency

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415
    import matplotlib.ticker  # noqa: PLC0415
    import numpy as np  # noqa: PLC0415

    paths = []
    if samples:
        names = list(samples)
        colors = system_colors(samples)
        fig, axes = plt.subplots(1, len(names), figsize=(5 * len(names), 4.2), squeeze=False)
        for ax, name in zip(axes[0], names, strict=True):
            for system, values in samples[name].items():
                ms = np.sort(np.asarray(values) * 1000)
                ax.plot(
                    ms,
                    np.arange(1, ms.size + 1) / ms.size,
                    label=SYSTEM_LABELS.get(system, system),
                    color=colors[system],
                )
            ax.set_xscale("log")
            # Labels at 1, 2 and 5 of each decade, as plain numbers: a panel spanning less
            # than a decade otherwise gets labelled minor ticks that overlap.
            ax.xaxis.set_major_locator(matplotlib.ticker.LogLocator(subs=(1.0, 2.0, 5.0)))
            ax.xaxis.set_major_formatter(matplotlib.ticker.FormatStrFormatter("%g"))
            ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
            ax.set_xlabel("latency, ms (log)")
            ax.set_ylabel("share of calls")
            n, f = name.split("x")
            ax.set_title(f"{n} entities x {f} features")
            ax.grid(alpha=0.3)
            ax.legend(fontsize=7, loc="lower right")  # each panel shows other systems
        fig.tight_layout()
        path = stem.parent / f"{stem.name}-online-latency.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        paths.append(path)
    hist = results.get("historical")
    if hist:
        bars: list[tuple[str, float, str]] = [("DuckDB ASOF", hist["duckdb_asof"]["seconds"], "")]
        for key, label in (
            ("skewless", "skewless"),
            ("feast_local", "Feast local"),
            ("feast_spark", "Feast Spark"),
        ):
            e = hist.get(key)
            if not e:
                continue
            if e.get("status") == "ok":
                bad = (e.get("correctness") or {}).get("rows_differing", 0) + (
                    e.get("correctness") or {}
                ).get("rows_missing", 0)
                note = f"{bad:,} rows wrong" if bad else ""
                for attempt in ("cold", "warm"):
                    if e.get(f"{attempt}_s") is not None:
                        bars.append((f"{label} {attempt}", e[f"{attempt}_s"], note))
            else:
                bars.append((f"{label}", e.get("seconds") or 0, e.get("status", "")))
        fig, ax = plt.subplots(figsize=(8, 0.5 * len(bars) + 1.2))
        ax.barh(
            [b[0] for b in bars], [b[1] for b in bars], color=["#777"] + ["#48c"] * (len(bars) - 1)
        )
        for i, (_, value, note) in enumerate(bars):
            ax.text(value, i, f" {value:.1f} s {note}", va="center", fontsize=8)
        ax.invert_yaxis()
        ax.set_xlabel("seconds (lower is better)")
        ax.set_title(f"Point-in-time join, {results['scale']} scale")
        fig.tight_layout()
        path = stem.parent / f"{stem.name}-historical.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        paths.append(path)
    return paths


def write(
    results: dict[str, Any], samples: dict[str, dict[str, list[float]]], out_dir: Path
) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = out_dir / f"{results['started'][:10]}-{results['scale']}"
    results = {**results, "targets": targets(results)}
    plots = plot(results, samples, stem)
    stem.with_suffix(".json").write_text(json.dumps(results, indent=2, default=str) + "\n")
    stem.with_suffix(".md").write_text(markdown(results, plots))
    return [stem.with_suffix(".json"), stem.with_suffix(".md"), *plots]
