"""Render an AnalysisResult as Markdown and as one self-contained HTML file (inline CSS
and SVG, nothing fetched). Pure: strings in, strings out; the CLI writes the files."""

from __future__ import annotations

import time

from ctdrill.analysis.results import AnalysisResult, Estimate, Outcome
from ctdrill.report.safe import html_text
from ctdrill.report.svg import Interval, Line, interval_chart, xy_chart

PALETTE = ("#c0392b", "#2471a3", "#7d8c8d", "#b9770e", "#1e8449", "#6c3483")

Table = tuple[str, list[str], list[list[str]]]
OUTCOME_LABELS = {"passive_fill_ratio": "passive fill ratio",
                  "cancel_replace_per_min": "cancel/replace per min"}
SECTION_NAMES = {"passive_fill": "passive fill ratio", "cancel_replace": "cancel/replace",
                 "markout": "markout"}
LABELS = {"mean": "mean IS", "cdt_p95": "p95 IS (CDT p95)", "cdt_p99": "p99 IS (CDT p99)"}
QR_KEYS = {"mean": None, "cdt_p95": "p95", "cdt_p99": "p99"}


def _iso(t: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime(t))


def _num(v: float | None) -> str:
    return "n/a" if v is None else f"{v:+.2f}"


def _plain(v: float | None) -> str:
    return "n/a" if v is None else f"{v:.3g}"


def _ci(e: Estimate) -> str:
    if e.value is None:
        return "n/a"
    if e.lo is None or e.hi is None:
        return f"{e.value:+.2f}"
    return f"{e.value:+.2f} [{e.lo:+.2f}, {e.hi:+.2f}]"


def _span(span: list[float]) -> str:
    return f"{_iso(span[0])} .. {_iso(span[1])}" if len(span) == 2 else "n/a"


def tables(r: AnalysisResult) -> list[Table]:
    """Every table of the report as (title, header, rows): one source for MD and HTML."""
    inp = r.inputs
    out: list[Table] = [
        ("Inputs", ["", "value"], [
            ["execution log", f"{inp['log']} ({inp['orders']:,} orders, {inp['hosts']} hosts)"],
            ["log span", _span(inp["log_span"])],
            ["timeline", f"{inp['timeline']} ({inp['samples']:,} samples, "
                         f"{inp['timeline_hosts']} hosts)"],
            ["timeline span", _span(inp["timeline_span"])],
            ["hosts in both", str(inp["shared_hosts"])],
            ["pressure labels", ", ".join(f"{k} {v:,}" for k, v in r.labels.items())],
            *([["pressure features", f"{r.features['path']} ({r.features['rows']:,} orders, "
                                     f"{r.features['format']})"]] if r.features else []),
        ]),
        ("Incremental shortfall of high-pressure orders (bps, 95% CI)",
         ["metric", "naive high - low", "matched, host FE", "QuantReg host FE"],
         [[LABELS[k], _num(r.naive.get(k)), _ci(e),
           _ci(r.quantreg[q]) if (q := QR_KEYS[k]) else "-"]
          for k, e in r.matched.items()]),
    ]
    m = r.matching
    out.append((f"Matching ({m.method}): {m.matched_high:,} high orders matched to "
                f"{m.matched_low:,} low orders, {m.dropped_high:,} high dropped",
                ["covariate", "SMD before", "SMD after"],
                [[b.covariate, f"{b.smd_before:+.3f}", f"{b.smd_after:+.3f}"]
                 for b in m.balance]))
    if r.parts:
        out.append(("Decomposition: incremental mean per term (bps, 95% CI)",
                    ["term", "part of", "incremental mean"],
                    [[p.name, p.parent or "IS", _ci(p.estimate)] for p in r.parts]))
    if r.canary is not None:
        c = r.canary
        out.append((f"Canary cells (change at {_iso(c.change_at)})",
                    ["cell", "CDT mean", "CDT p95", "CDT p99", "IS p95 (all orders)"],
                    [[cell, *(_num(v.get(k)) for k in
                              ("cdt_mean", "cdt_p95", "cdt_p99", "is_p95"))]
                     for cell, v in c.cells.items()]))
        out.append(("Canary difference in differences (bps, 95% CI)", ["metric", "DiD"],
                    [[k, _ci(v)] for k, v in c.did.items()]))
    return out + _outcome_tables(r)


def outcome_label(o: Outcome) -> str:
    return f"{OUTCOME_LABELS.get(o.name, o.name)}, {o.comparison}"


def _outcome_tables(r: AnalysisResult) -> list[Table]:
    """Execution outcomes (matched like the CDT) and the sections the log could not feed."""
    oc = r.outcomes
    if oc is None:
        return []
    out: list[Table] = []
    if oc.outcomes:
        title = "Execution outcomes under pressure (matched, host FE, 95% CI)"
        if oc.orders:
            title += (f"; episode windows {oc.window_s:g} s: "
                      + ", ".join(f"{k} {v:,}" for k, v in oc.orders.items()) + " orders")
        out.append((title, ["outcome", "compared", "orders", "pressured", "matched stand-ins",
                            "naive gap", "matched gap"],
                    [[OUTCOME_LABELS.get(o.name, o.name), o.comparison,
                      f"{o.n_high:,} / {o.n_low:,}", _plain(o.high), _plain(o.low),
                      _num(o.naive), _ci(o.estimate) + (f" ({o.note})" if o.note else "")]
                     for o in oc.outcomes]))
    if oc.skipped:
        out.append(("Execution outcomes skipped (the log lacks the column)",
                    ["section", "missing"],
                    [[SECTION_NAMES.get(k, k), v] for k, v in oc.skipped.items()]))
    return out


def render_markdown(r: AnalysisResult) -> str:
    lines = ["# CDT analysis", "", f"**{r.verdict}**", ""]
    if r.canary is not None:
        lines += [f"Canary ({', '.join(r.canary.canary_hosts)} vs "
                  f"{len(r.canary.control_hosts)} control hosts): **{r.canary.verdict}**", ""]
    for title, header, rows in tables(r):
        lines += [f"## {title}", "", "| " + " | ".join(header) + " |",
                  "|" + "---|" * len(header)]
        lines += ["| " + " | ".join(c.replace("|", "/") for c in row) + " |" for row in rows]
        lines.append("")
    lines += ["Method: docs/ANALYSIS.md. Naive = all high minus all low orders, no matching. "
              f"QuantReg on {r.quantreg_rows:,} orders.", ""]
    return "\n".join(lines)


CSS = """body{font-family:sans-serif;max-width:980px;margin:2em auto;color:#222}
table{border-collapse:collapse;margin:.5em 0 1.5em}td,th{border:1px solid #ccc;
padding:3px 8px;text-align:left}th{background:#f4f4f4}.verdict{font-size:1.1em;
padding:.6em;border-left:4px solid #2471a3;background:#f4f8fb}svg{margin:.5em 0}"""


def _estimate_rows(r: AnalysisResult) -> list[Interval]:
    """Per metric: the naive difference, the matched estimate and QuantReg's."""
    rows: list[Interval] = []
    for k, e in r.matched.items():
        rows.append(Interval(f"{k}-naive", f"{LABELS[k]}: naive", r.naive.get(k), None,
                             None, PALETTE[2]))
        rows.append(Interval(f"{k}-matched", f"{LABELS[k]}: matched", e.value, e.lo, e.hi,
                             PALETTE[1]))
        if q := QR_KEYS[k]:
            qr = r.quantreg[q]
            rows.append(Interval(f"{k}-quantreg", f"{LABELS[k]}: QuantReg FE", qr.value,
                                 qr.lo, qr.hi, PALETTE[3]))
    return rows


def _canary_chart(r: AnalysisResult) -> str:
    assert r.canary is not None
    cells, metric = r.canary.cells, r.canary.metric
    lines = [Line(pool, pool, [(x, v if (v := cells[f"{pool}/{p}"][metric]) is not None
                                else float("nan"))
                               for x, p in ((0.0, "before"), (1.0, "after"))],
                  color, width=2, markers=True)
             for pool, color in (("canary", PALETTE[0]), ("control", PALETTE[1]))]
    return xy_chart(key="canary", title=f"Canary: {metric} before and after the change",
                    lines=lines, x_label="period", y_label=f"{metric} (bps)",
                    x_ticks={0.0: "before", 1.0: "after"})


def _charts(r: AnalysisResult) -> list[str]:
    curve = r.tail_curve
    qs = [q * 100 for q in curve["q"]]
    charts = [
        xy_chart(key="tail-curve",
                 title="IS quantiles: high-pressure orders vs their matched low-pressure "
                       "stand-ins",
                 lines=[Line("high", "high pressure", list(zip(qs, curve["high"], strict=True)),
                             PALETTE[0], width=2, markers=True),
                        Line("low", "matched low", list(zip(qs, curve["low"], strict=True)),
                             PALETTE[1], width=2, markers=True)],
                 x_label="quantile (%)", y_label="IS (bps)"),
        interval_chart(key="estimates", title="Incremental shortfall under pressure (95% CI)",
                       rows=_estimate_rows(r))]
    if r.parts:
        charts.append(interval_chart(
            key="decomposition", title="Decomposition: incremental mean per term (95% CI)",
            rows=[Interval(p.name, ("\u2514 " if p.parent else "") + p.name, p.estimate.value,
                           p.estimate.lo, p.estimate.hi, PALETTE[0] if p.parent else PALETTE[1])
                  for p in r.parts]))
    bal = [Interval(f"{b.covariate}-{when}", f"{b.covariate} {when}", v, None, None, color)
           for b in r.matching.balance
           for when, v, color in (("before", b.smd_before, PALETTE[2]),
                                  ("after", b.smd_after, PALETTE[4]))]
    charts.append(interval_chart(key="balance", unit="SMD", rows=bal,
                                 title="Covariate balance (standardized mean difference)"))
    if r.canary is not None:
        charts.append(_canary_chart(r))
    return charts + _outcome_charts(r)


def _outcome_charts(r: AnalysisResult) -> list[str]:
    """One forest plot per unit (ratio, per min, bps): the matched gaps and their CIs."""
    if r.outcomes is None:
        return []
    charts = []
    for unit in dict.fromkeys(o.unit for o in r.outcomes.outcomes):
        rows = [Interval(f"{o.name}-{o.comparison}", outcome_label(o), o.estimate.value,
                         o.estimate.lo, o.estimate.hi, PALETTE[i % len(PALETTE)])
                for i, o in enumerate(r.outcomes.outcomes) if o.unit == unit]
        charts.append(interval_chart(
            key=f"outcomes-{unit.replace(' ', '-')}", unit=unit, rows=rows,
            title=f"Execution outcomes: pressured minus matched calm ({unit}, 95% CI)"))
    return charts


def render_html(r: AnalysisResult) -> str:
    parts = ["<!doctype html><html><head><meta charset='utf-8'>",
             "<title>ctdrill CDT analysis</title>", f"<style>{CSS}</style></head><body>",
             "<h1>CDT analysis</h1>", f"<p class='verdict'>{html_text(r.verdict)}</p>"]
    if r.canary is not None:
        parts.append(f"<p class='verdict'>Canary: {html_text(r.canary.verdict)}</p>")
    parts.extend(_charts(r))
    for title, header, rows in tables(r):
        parts.append(f"<h2>{html_text(title)}</h2><table><tr>"
                     + "".join(f"<th>{html_text(h)}</th>" for h in header) + "</tr>")
        parts.extend("<tr>" + "".join(f"<td>{html_text(c)}</td>" for c in row) + "</tr>"
                     for row in rows)
        parts.append("</table>")
    parts.append(f"<p>QuantReg on {r.quantreg_rows:,} orders. Method and assumptions: "
                 "docs/ANALYSIS.md in the ctdrill repository.</p></body></html>")
    return "\n".join(parts)
