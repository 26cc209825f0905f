"""The HTML report (pure): one self-contained file, inline CSS and inline SVG, no script.

Everything that came from the journal (host names, messages, rules) is escaped: a
journal holds text that targets produced.
"""

from __future__ import annotations

from ctdrill import __version__
from ctdrill.report.model import REGIMES, HostTimeline, Report, StepRow, utc_text
from ctdrill.report.safe import html_text
from ctdrill.report.svg import Bar, Line, Mark, Shade, bar_chart, step_chart, time_chart

REGIME_FILL = {"CT_HEALTHY": "#eef7f0", "CT_TIGHTENING": "#fcf1c9",
               "CT_PRESSURED": "#f9d9c4", "CT_SAFE_CONTAIN": "#f3c3cf"}
REGIME_INK = {"CT_HEALTHY": "#2e7d4f", "CT_TIGHTENING": "#9a6b00",
              "CT_PRESSURED": "#b4491b", "CT_SAFE_CONTAIN": "#a3213f"}
COLORS = {"ctr": "#2f6db5", "hcp95": "#7a4fb0", "nfd": "#c0392b", "surge": "#8a8f98",
          "achieved": "#5f6670", "new_flows": "#9aa3ad", "dwell": "#c0392b", "osd": "#2f6db5",
          "slab": "#8a5a00", "slab_active": "#d4a017", "slab_bytes": "#5f6670"}
MIB = 2.0 ** 20
NA = "\u2013"  # shown for a value the run did not produce
STATUS = {
    "passed": ("PASSED", "#1e7d45", "#e2f3e7"),
    "failed": ("FAILED", "#b3261e", "#fbe3e1"),
    "aborted": ("ABORTED", "#8a5a00", "#fbefd2"),
    "revert_failed": ("REVERT NOT VERIFIED", "#ffffff", "#a3213f"),
    "refused": ("REFUSED", "#4a5056", "#e8eaed"),
    "incomplete": ("INCOMPLETE", "#4a5056", "#e8eaed"),
}

CSS = """
:root{--ink:#22272b;--muted:#5f6670;--line:#e3e5e8;--bg:#f6f7f5;--card:#fff}
*{box-sizing:border-box}
body{margin:0;background:var(--bg);color:var(--ink);
 font:14px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif}
main{max-width:1100px;margin:0 auto;padding:28px 24px 48px}
h1{font-size:24px;margin:0 0 4px;font-weight:650}
h2{font-size:17px;margin:0 0 12px;font-weight:620}
h3{font-size:14px;margin:18px 0 8px;font-weight:600;color:var(--muted)}
p{margin:6px 0}
.muted{color:var(--muted)}
.card{background:var(--card);border:1px solid var(--line);border-radius:10px;
 padding:18px 20px;margin:16px 0}
.head{display:flex;gap:16px;align-items:flex-start;justify-content:space-between}
.badge{display:inline-block;padding:6px 14px;border-radius:999px;font-weight:700;
 letter-spacing:.04em;font-size:13px;white-space:nowrap}
.meta{display:grid;grid-template-columns:max-content 1fr;gap:2px 14px;margin-top:12px;
 font-size:13px}
.meta dt{color:var(--muted)}.meta dd{margin:0;word-break:break-all}
.tiles{display:grid;grid-template-columns:repeat(auto-fit,minmax(150px,1fr));gap:10px}
.tile{border:1px solid var(--line);border-radius:8px;padding:10px 12px;background:#fbfbfa}
.tile b{display:block;font-size:20px;font-weight:650}
.tile span{color:var(--muted);font-size:12px}
table{border-collapse:collapse;width:100%;font-size:13px}
th,td{text-align:left;padding:6px 8px;border-bottom:1px solid var(--line);vertical-align:top}
th{color:var(--muted);font-weight:600;background:#fafaf9;white-space:nowrap}
td.num,th.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
.pass{color:#1e7d45;font-weight:650}.fail{color:#b3261e;font-weight:650}
.skip{color:#8a8f98;font-weight:650}
.pill{display:inline-block;padding:1px 8px;border-radius:999px;font-size:12px;
 font-weight:600;white-space:nowrap}
.callout{border-left:4px solid #c0392b;background:#fdf1ef;padding:10px 14px;
 border-radius:6px;margin:12px 0}
.callout.info{border-color:#8a8f98;background:#f3f4f5}
.legend{display:flex;gap:14px;flex-wrap:wrap;font-size:12px;color:var(--muted);
 margin:4px 0 8px}
.legend i{display:inline-block;width:14px;height:10px;border-radius:2px;
 margin-right:5px;vertical-align:-1px;border:1px solid rgba(0,0,0,.08)}
.chart{display:block;margin:6px 0 10px}
.grid2{display:grid;grid-template-columns:1fr 1fr;gap:4px 18px}
pre{background:#f4f5f6;border:1px solid var(--line);border-radius:6px;padding:8px 10px;
 font-size:12px;white-space:pre-wrap;word-break:break-all;margin:0}
code{font-size:12.5px}
footer{color:var(--muted);font-size:12px;margin-top:24px}
"""


def _v(value: float | None, digits: int = 4, unit: str = "") -> str:
    if value is None:
        return NA
    text = f"{value:.{digits}g}" if abs(value) < 10 ** digits else f"{value:,.0f}"
    return f"{text}{unit}"


def _utc(t: float | None) -> str:
    return utc_text(t) or NA


def _pill(regime: str | None) -> str:
    if not regime:
        return NA
    return (f'<span class="pill" style="background:{REGIME_FILL.get(regime, "#eee")};'
            f'color:{REGIME_INK.get(regime, "#333")}">{html_text(regime)}</span>')


def _verdict(passed: bool | None) -> str:
    if passed is None:
        return '<span class="skip">\u2013 not judged</span>'
    return '<span class="pass">✓ pass</span>' if passed else '<span class="fail">✗ fail</span>'


def _header(r: Report) -> str:
    label, fg, bg = STATUS[r.status]
    meta = [("run", r.run_id), ("started", _utc(r.started_at)),
            ("duration", f"{r.duration_s:.1f} s (observed {r.observed_s:.1f} s)"),
            ("exit code", NA if r.exit_code is None else str(r.exit_code)),
            ("spec", r.spec_path), ("inventory", r.inventory),
            ("orchestrator", r.orchestrator), ("journal", r.journal)]
    rows = "".join(f"<dt>{html_text(k)}</dt><dd>{html_text(v or NA)}</dd>" for k, v in meta)
    reason = (f'<div class="callout"><b>Why:</b> {html_text(r.reason)}</div>'
              if r.reason and r.status != "passed" else "")
    desc = f'<p class="muted">{html_text(r.description)}</p>' if r.description else ""
    return (f'<section class="card"><div class="head"><div><h1>{html_text(r.drill)}</h1>{desc}'
            f'</div><span class="badge" id="status" data-status="{html_text(r.status)}" '
            f'style="color:{fg};background:{bg}">{label}</span></div>{reason}'
            f'<dl class="meta">{rows}</dl></section>')


def _tiles(r: Report) -> str:
    c = r.counts()
    total = len(r.expectations)
    tiles = [(f"{c['passed']}/{total}", "expectations passed")]
    rv = r.revert_verified
    tiles.append((NA if rv is None else "yes" if rv else "NO", "revert verified"))
    for host, m in r.key_metrics.items():
        if host == "probe":
            tiles.append((_v(m.get("dwell_ms_p99"), 3, " ms"), "probe ack dwell p99"))
            tiles.append((_v(m.get("cdt_p95_bps"), 3, " bps"), "slippage tail CDT p95"))
            continue
        tiles.append((_v(m.get("ctr_max"), 3), f"peak CTR · {host}"))
        tiles.append((_v(m.get("nfd_per_s_max"), 4), f"peak NFD/s · {host}"))
        tiles.append((_v(m.get("hcp95_max"), 3), f"max HCP95 · {host}"))
    for tl in r.timelines:
        tiles.append((tl.final_regime or NA, f"final regime · {tl.host}"))
    body = "".join(f'<div class="tile"><b>{html_text(v)}</b><span>{html_text(k)}</span></div>'
                   for v, k in tiles)
    return f'<section class="card"><div class="tiles">{body}</div></section>'


def _expectations(r: Report) -> str:
    if not r.expectations:
        return ('<section class="card" id="expectations"><h2>Expectations</h2>'
                '<p class="muted">No expectations were judged.</p></section>')
    rows = "".join(
        f'<tr class="expectation" data-passed="{e.passed}"><td>{_verdict(e.passed)}</td>'
        f"<td>{html_text(e.name)}</td><td class=num>{_v(e.observed)}</td>"
        f"<td class=muted>{html_text(e.detail)}</td></tr>" for e in r.expectations)
    return ('<section class="card" id="expectations"><h2>Expectations</h2><table>'
            '<tr><th>verdict</th><th>expectation</th><th class=num>observed</th>'
            f"<th>detail</th></tr>{rows}</table></section>")


def _shades(tl: HostTimeline) -> list[Shade]:
    return [Shade(b.start, b.end, REGIME_FILL.get(b.regime, "#eee"), b.regime)
            for b in tl.bands]


def _regime_legend() -> str:
    items = "".join(f'<span><i style="background:{REGIME_FILL[g]}"></i>{g}</span>'
                    for g in REGIMES)
    return f'<div class="legend">{items}</div>'


def _surge_lines(r: Report, tl: HostTimeline) -> list[Line]:
    s = r.surge
    lines = []
    if s is not None and s.requested:
        lines.append(Line("surge-requested", "surge requested/s", list(s.requested),
                          COLORS["surge"], axis="right", dash="5 3", width=1.4))
    if s is not None and s.achieved:
        pts: list[tuple[float, float]] = []
        for ph in s.achieved:
            pts += [(ph.start, ph.rate), (ph.end, ph.rate), (ph.end, 0.0)]
        lines.append(Line("surge-achieved", "surge achieved/s (mean)", pts,
                          COLORS["achieved"], axis="right", width=1.2, area=True))
    if not lines:
        lines.append(Line("new-flows", "new flows/s (measured)",
                          [(w.t - r.origin, w.new_flows_per_s) for w in tl.windows],
                          COLORS["new_flows"], axis="right", width=1.0, area=True))
    return lines


def _step_marks(r: Report) -> list[Mark]:
    return [Mark(st.start, st.name, "#6b7079") for st in r.steps]


def _timeline(r: Report) -> str:
    if not r.timelines:
        return ('<section class="card" id="timeline"><h2>Timeline</h2>'
                '<p class="muted">No telemetry was recorded.</p></section>')
    parts = ['<section class="card" id="timeline"><h2>Timeline</h2>',
             '<p class="muted">Seconds since the observation started. Shading: the regime '
             "the host was in; grey (right axis): the surge profile.</p>", _regime_legend()]
    marks = _step_marks(r)
    for tl in r.timelines:
        rel = [(w.t - r.origin, w) for w in tl.windows]
        shades = _shades(tl)
        surge = _surge_lines(r, tl)
        th = r.thresholds
        parts.append(f"<h3>{html_text(tl.host)}</h3>")
        parts.append(time_chart(
            key=f"ctr-{tl.host}", title=f"CTR (count / max) · {tl.host}", x_max=r.observed_s,
            lines=[Line("ctr", "CTR", [(t, w.ctr) for t, w in rel], COLORS["ctr"]), *surge],
            shades=shades, vmarks=marks, right_label="flows/s",
            hmarks=[Mark(v, f"{n} {v:g}", "#b08a2e") for n, v in th.get("ctr", ())]))
        parts.append(time_chart(
            key=f"hcp95-{tl.host}", title=f"HCP95 (modelled p95 hash-chain length) · {tl.host}",
            x_max=r.observed_s,
            lines=[Line("hcp95", "HCP95", [(t, w.hcp95) for t, w in rel], COLORS["hcp95"]),
                   *surge],
            shades=shades, vmarks=marks, right_label="flows/s",
            hmarks=[Mark(v, f"{n} {v:g}", "#b08a2e") for n, v in th.get("hcp95", ())]))
        parts.append(time_chart(
            key=f"nfd-{tl.host}", title=f"NFD (kernel new-flow drops per second) · {tl.host}",
            x_max=r.observed_s,
            lines=[Line("nfd", "NFD/s", [(t, w.nfd_per_s) for t, w in rel], COLORS["nfd"]),
                   *surge],
            shades=shades, vmarks=marks, right_label="flows/s"))
    if r.surge is not None:
        parts.append(_surge_table(r))
    parts.append(_transitions(r))
    parts.append("</section>")
    return "".join(parts)


def _slab_chart(r: Report, tl: HostTimeline) -> str:
    """One host's slab cache over the run: objects (left), MiB held (right)."""
    pts = [(p.t - r.origin, p) for p in tl.slab]
    return time_chart(
        key=f"slab-{tl.host}", title=f"conntrack slab cache (kernel-wide) · {tl.host}",
        x_max=r.observed_s, shades=_shades(tl), vmarks=_step_marks(r),
        y_label="objects", right_label="MiB",
        lines=[Line("slab-objects", "objects (num_objs)", [(t, p.objects) for t, p in pts],
                    COLORS["slab"]),
               Line("slab-active", "active objects", [(t, p.active_objects) for t, p in pts],
                    COLORS["slab_active"], dash="4 2"),
               Line("slab-bytes", "MiB (objects x size)", [(t, p.bytes / MIB) for t, p in pts],
                    COLORS["slab_bytes"], axis="right", width=1.0, area=True)])


def _slab(r: Report) -> str:
    """The conntrack slab cache per host: last and peak, and a chart; nothing when no
    host's agent could read /proc/slabinfo."""
    by_host = r.slab_by_host()
    if not by_host:
        return ""
    rows = "".join(
        f'<tr class="slab"><td>{html_text(h)}</td><td class=num>{s.objects_last:,}</td>'
        f"<td class=num>{s.objects_max:,}</td><td class=num>{s.active_objects_last:,}</td>"
        f"<td class=num>{s.bytes_last / MIB:,.2f}</td><td class=num>{s.bytes_max / MIB:,.2f}"
        f"</td><td class=num>{s.object_size}</td><td class=num>{s.samples:,}</td></tr>"
        for h, s in by_host.items())
    charts = "".join(_slab_chart(r, tl) for tl in r.timelines if tl.slab)
    return ('<section class="card" id="slab"><h2>Conntrack memory (slab cache)</h2>'
            '<p class="muted">The kernel\'s <code>nf_conntrack</code> slab cache from '
            "/proc/slabinfo: kernel-wide, so hosts sharing a kernel show the same cache. "
            "Bytes = objects (num_objs) x object size: what the cache holds, free slots in "
            "its slabs included.</p>"
            "<table><tr><th>host</th><th class=num>objects last</th><th class=num>objects "
            "peak</th><th class=num>active last</th><th class=num>MiB last</th>"
            "<th class=num>MiB peak</th><th class=num>object bytes</th>"
            f"<th class=num>samples</th></tr>{rows}</table>{charts}</section>")


def _surge_table(r: Report) -> str:
    s = r.surge
    assert s is not None
    rows = "".join(
        f"<tr><td>{html_text(p.name)}</td><td class=num>{p.start:.1f}\u2013{p.end:.1f} s</td>"
        f"<td class=num>{NA if p.requested is None else f'{p.requested:,.0f}'}</td>"
        f"<td class=num>{p.flows:,}</td>"
        f"<td class=num>{_v(p.rate, 6)}</td></tr>" for p in s.achieved)
    res = s.result
    extra = ", ".join(f"{k} {html_text(str(res[k]))}" for k in
                      ("shortfall", "errors", "enobufs", "backlog_drops", "stopped")
                      if k in res)
    err = (f'<div class="callout">load error: {html_text(str(res["error"]))}</div>'
           if res.get("error") else "")
    note = f'<p class="muted">{html_text(s.note)}</p>' if s.note else ""
    table = ("<table><tr><th>phase</th><th class=num>span</th><th class=num>requested "
             "flows</th><th class=num>sent</th><th class=num>achieved flows/s</th></tr>"
             f"{rows}</table>") if rows else ""
    return (f"<h3>Load: {html_text(s.kind)} ({html_text(s.shape)})</h3>{table}"
            f'<p class="muted">{extra}</p>{note}{err}')


def _transitions(r: Report) -> str:
    if not r.transitions:
        return '<h3>Regime transitions</h3><p class="muted">None: the regime never changed.</p>'
    rows = "".join(
        f'<tr class="transition"><td>{html_text(t.host)}</td><td class=num>{t.t:.1f} s</td>'
        f"<td>{_pill(t.from_state)} → {_pill(t.to_state)}</td>"
        f"<td>{html_text(t.signal)}</td><td class=num>{_v(t.value)}</td>"
        f"<td class=num>{_v(t.threshold)}</td>"
        f"<td>{html_text(t.advice)}<br><span class=muted>{html_text('; '.join(t.actions))}</span>"
        "</td></tr>" for t in r.transitions)
    return ("<h3>Regime transitions</h3><table><tr><th>host</th><th class=num>t</th>"
            "<th>from → to</th><th>signal</th><th class=num>value</th>"
            f"<th class=num>threshold</th><th>advice</th></tr>{rows}</table>")


def _probe(r: Report) -> str:
    if not r.probe_windows:
        return ""
    first = r.timelines[0] if r.timelines else None
    shades = _shades(first) if first is not None else []
    mid = [(w.start + w.width / 2, w) for w in r.probe_windows if w.messages > 0]
    chart = time_chart(
        key="probe", title=f"Order probe per {r.probe_windows[0].width:g}-s window "
        f"(log scale){' · bands: ' + first.host if first else ''}",
        x_max=r.observed_s, log=True, y_label="ms", vmarks=_step_marks(r), shades=shades,
        lines=[Line("dwell-p99", "ack dwell p99", [(t, w.dwell_ms.p99) for t, w in mid
                                                   if w.dwell_ms.p99 is not None],
                    COLORS["dwell"]),
               Line("osd-p99", "order state skew p99", [(t, w.osd_ms.p99) for t, w in mid
                                                        if w.osd_ms.p99 is not None],
                    COLORS["osd"], dash="4 2")])
    parts = ['<section class="card" id="probe"><h2>Order-flow probe</h2>', chart]
    s = r.probe_summary
    if s:
        counts = [html_text(s.get(k, 0)) for k in ("messages", "timeouts", "retried",
                                                   "lost_reports")]
        parts.append(f'<p class="muted">{counts[0]} messages, {counts[1]} timeouts, '
                     f"{counts[2]} retried, {counts[3]} lost fill reports.</p>")
    if r.probe_by_regime:
        groups = [g.regime for g in r.probe_by_regime]
        parts.append("<h3>Ack dwell and order state skew (OSD) per regime: median window "
                     "p50 and p99, worst window p99</h3>")
        parts.append(bar_chart(
            key="probe-regimes", title="per regime (median window p50, p99; worst window p99)",
            groups=groups,
            group_colors=[REGIME_FILL.get(g, "#eee") for g in groups],
            bars=[Bar("dwell-p50", "dwell p50", "#e6a39b"),
                  Bar("dwell-p99", "dwell p99", COLORS["dwell"]),
                  Bar("dwell-worst", "dwell worst p99", "#7d1f16"),
                  Bar("osd-p99", "OSD p99", COLORS["osd"]),
                  Bar("osd-worst", "OSD worst p99", "#1c3f6e")],
            values=[[g.dwell_p50_ms, g.dwell_p99_ms, g.dwell_worst_p99_ms, g.osd_p99_ms,
                     g.osd_worst_p99_ms] for g in r.probe_by_regime]))
        rows = "".join(
            f'<tr class="regime-probe"><td>{_pill(g.regime)}</td><td class=num>{g.windows}</td>'
            f"<td class=num>{g.messages}</td><td class=num>{g.timeouts}</td>"
            f"<td class=num>{_v(g.dwell_p50_ms, 3)}</td><td class=num>{_v(g.dwell_p99_ms, 3)}"
            f"</td><td class=num>{_v(g.dwell_worst_p99_ms, 3)}</td>"
            f"<td class=num>{_v(g.osd_p50_ms, 3)}</td><td class=num>{_v(g.osd_p99_ms, 3)}</td>"
            f"<td class=num>{_v(g.osd_worst_p99_ms, 3)}</td></tr>" for g in r.probe_by_regime)
        parts.append(
            "<table><tr><th>regime</th><th class=num>windows</th><th class=num>messages</th>"
            "<th class=num>timeouts</th><th class=num>dwell p50 ms</th>"
            "<th class=num>dwell p99 ms</th><th class=num>worst p99</th>"
            "<th class=num>OSD p50 ms</th><th class=num>OSD p99 ms</th>"
            f"<th class=num>worst p99</th></tr>{rows}</table>"
            '<p class="muted">Each window is labelled with the worst regime of the observed '
            "hosts at its middle; p50/p99 columns are the median window's, 'worst' the "
            "highest window p99 (the journal keeps per-window quantiles).</p>")
    parts.append("</section>")
    return "".join(parts)


def _steps(r: Report) -> str:
    if not r.steps:
        return ""
    names = [st.name for st in r.steps]
    host = r.timelines[0].host if r.timelines else ""

    def pick(st: StepRow, attr: str) -> float | None:
        h = next((x for x in st.hosts if x.host == host), None)
        return None if h is None else getattr(h, attr)

    charts = [
        step_chart(key="step-nfd", title=f"NFD/s mean · {host}", steps=names,
                   values=[pick(st, "nfd_mean") for st in r.steps], color=COLORS["nfd"],
                   width=500),
        step_chart(key="step-ctr", title=f"CTR mean · {host}", steps=names,
                   values=[pick(st, "ctr_mean") for st in r.steps], color=COLORS["ctr"],
                   width=500),
        step_chart(key="step-hcp95", title=f"HCP95 max · {host}", steps=names,
                   values=[pick(st, "hcp95_max") for st in r.steps], color=COLORS["hcp95"],
                   width=500),
        step_chart(key="step-cost", title="probe cost p95 (IS proxy, bps)", steps=names,
                   values=[st.probe_cost_p95_bps for st in r.steps], color="#2b7a78",
                   width=500),
    ]
    rows = []
    for st in r.steps:
        settings = "<br>".join(
            f"{html_text(h)}: {html_text(k.rsplit('.', 1)[-1].removeprefix('nf_conntrack_'))} = "
            f"{html_text(v)}" for h, k, v in st.settings) or NA
        for i, h in enumerate(st.hosts or ()):
            lead = (f"<td rowspan={len(st.hosts)}>{html_text(st.name)}</td>"
                    f"<td rowspan={len(st.hosts)}>{settings}</td>") if i == 0 else ""
            tail = (f"<td class=num rowspan={len(st.hosts)}>{st.probe_messages}</td>"
                    f"<td class=num rowspan={len(st.hosts)}>{_v(st.probe_dwell_p99_ms, 3)}</td>"
                    f"<td class=num rowspan={len(st.hosts)}>{_v(st.probe_cost_p95_bps, 3)}"
                    "</td>") if i == 0 else ""
            rows.append(f'<tr class="step">{lead}<td>{html_text(h.host)}</td>'
                        f"<td class=num>{_v(h.ctr_mean, 3)}</td>"
                        f"<td class=num>{_v(h.nfd_mean, 4)}</td>"
                        f"<td class=num>{_v(h.hcp95_max, 3)}</td>{tail}</tr>")
    return ('<section class="card" id="steps"><h2>Capacity steps: response curve</h2>'
            f'<div class="grid2">{"".join(charts)}</div>'
            "<table><tr><th>step</th><th>settings</th><th>host</th><th class=num>CTR mean</th>"
            "<th class=num>NFD/s mean</th><th class=num>HCP95 max</th>"
            "<th class=num>probe msgs</th><th class=num>dwell p99 ms</th>"
            f"<th class=num>cost p95 bps</th></tr>{''.join(rows)}</table>"
            '<p class="muted">Per step: telemetry windows wholly inside the step (as the '
            "judge counts them); probe figures are the median over the step's windows.</p>"
            "</section>")


def _changes(r: Report) -> str:
    if not r.changes:
        return ('<section class="card" id="changes"><h2>What changed</h2>'
                '<p class="muted">Nothing: the run changed no host.</p></section>')
    rows = []
    for c in r.changes:
        where = html_text(c.host) + (" <span class=muted>(kernel owner)</span>"
                                  if c.kernel_owner else "")
        when = html_text(c.step) if c.step else "whole drill"
        for s in c.sysctl:
            rows.append(f'<tr class="change"><td>{where}</td><td>{when}</td>'
                        f"<td><code>{html_text(s.key)}</code></td>"
                        f"<td class=num>{html_text(s.before or NA)}</td>"
                        f"<td class=num>{html_text(s.after)}</td></tr>")
        if c.nft_rules:
            rows.append(f'<tr class="change"><td>{where}</td><td>{when}</td>'
                        f"<td>nftables table <code>{html_text(c.nft_table or '')}</code></td>"
                        "<td class=num>absent</td><td class=num>added</td></tr>"
                        f'<tr><td colspan=5><pre>{html_text(c.nft_rules)}</pre></td></tr>')
    return ('<section class="card" id="changes"><h2>What changed (plan: before → after)</h2>'
            "<table><tr><th>host</th><th>when</th><th>setting</th><th class=num>before</th>"
            f"<th class=num>after</th></tr>{''.join(rows)}</table></section>")


def _reverts(r: Report) -> str:
    rv = r.revert_verified
    if rv is None:
        return ('<section class="card" id="revert"><h2>Revert verification</h2>'
                '<p class="muted">Nothing to revert: no change was planned.</p></section>')
    head = ('<p class="pass">✓ every host verified equal to its snapshot</p>' if rv else
            '<div class="callout"><b>Not verified.</b> Run <code>ctdrill revert '
            f"{html_text(r.journal or 'JOURNAL')}</code> to revert from the journal.</div>")
    if r.recovered:
        head += '<p class="muted">Completed later by <code>ctdrill revert</code>.</p>'
    rows = "".join(
        f'<tr class="revert" data-verified="{x.verified}"><td>{html_text(x.host)}</td>'
        f"<td>{_verdict(x.verified)}</td>"
        f"<td>{'<br>'.join(f'<code>{html_text(k)}</code> {html_text(a)} → {html_text(b)}' for k, a, b in x.restored) or NA}"  # noqa: E501
        f"{'<br>deleted: ' + html_text(', '.join(x.deleted)) if x.deleted else ''}</td>"
        f"<td>{html_text(x.deadman)}</td><td>{html_text(x.source)}</td>"
        f"<td class=fail>{'<br>'.join(html_text(p) for p in x.problems)}</td></tr>"
        for x in r.reverts)
    if not r.reverts:
        rows = '<tr><td colspan=6 class=fail>no revert was recorded</td></tr>'
    return ('<section class="card" id="revert"><h2>Revert verification</h2>' + head +
            "<table><tr><th>host</th><th>verified</th><th>restored (found → restored)</th>"
            f"<th>dead-man</th><th>by</th><th>problems</th></tr>{rows}</table></section>")


def _footer(r: Report) -> str:
    timings = ", ".join(f"{html_text(k)} {v:.1f} s" for k, v in r.timings.items())
    problems = "".join(f'<div class="callout info">{html_text(p)}</div>' for p in r.problems)
    return (f"{problems}<footer>Timings: {timings or NA}. Generated by ctdrill "
            f"{html_text(__version__)} from the run's journal.</footer>")


def render_html(r: Report) -> str:
    """The whole report page."""
    label = STATUS[r.status][0]
    body = "".join([_header(r), _tiles(r), _expectations(r), _timeline(r), _slab(r), _probe(r),
                    _steps(r), _changes(r), _reverts(r), _footer(r)])
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            f"<title>{html_text(r.drill)} · {label} · ctdrill</title>"
            f"<style>{CSS}</style></head><body><main>{body}</main></body></html>\n")

