"""The Markdown summary (pure): short enough for a pull request comment or a chat
message, complete enough to decide whether to open the HTML report.

Every value from the journal goes through `cell` (inline text) or `md_code` (a code
span), so a spec or host string shows verbatim and can add no HTML, link, emphasis or
table cell."""

from __future__ import annotations

from ctdrill.report.model import Report
from ctdrill.report.safe import md_code, md_text

ICON = {True: "✅", False: "❌", None: "⏭️"}
HEADLINE = {"passed": "PASSED", "failed": "FAILED (expectations not met)",
            "aborted": "ABORTED", "revert_failed": "REVERT NOT VERIFIED",
            "refused": "REFUSED (nothing was changed)", "incomplete": "INCOMPLETE"}


def cell(text: object) -> str:
    """Inline text, also safe as a table cell: pipes escaped, newlines flattened, raw
    HTML and Markdown syntax shown as text."""
    return md_text(text)


def _n(value: float | None, digits: int = 4) -> str:
    """Significant digits, but never an exponent for a large number."""
    if value is None:
        return "\u2013"
    return f"{value:.{digits}g}" if abs(value) < 10 ** digits else f"{value:.0f}"


def render_markdown(r: Report) -> str:
    """Verdict line, expectations, transitions, key metrics, revert verdict."""
    ok = r.status == "passed"
    c = r.counts()
    lines = [f"### {'✅' if ok else '❌'} ctdrill {md_code(r.drill)}: {HEADLINE[r.status]}", ""]
    meta = [f"run {md_code(r.run_id)}",
            f"{len(r.expectations)} expectations: {c['passed']} passed, {c['failed']} failed"
            + (f", {c['not_judged']} not judged" if c["not_judged"] else ""),
            f"{r.duration_s:.1f} s"]
    if r.exit_code is not None:
        meta.append(f"exit {r.exit_code}")
    lines += [" · ".join(meta), ""]
    if r.reason and not ok:
        lines += [f"> {cell(r.reason)}", ""]
    if r.expectations:
        lines += ["| | expectation | observed | detail |", "|---|---|---:|---|"]
        lines += [f"| {ICON[e.passed]} | {cell(e.name)} | {_n(e.observed)} | {cell(e.detail)} |"
                  for e in r.expectations]
        lines.append("")
    if r.transitions:
        lines += ["**Regime transitions**", "",
                  "| host | t | transition | signal | value / threshold |",
                  "|---|---:|---|---|---:|"]
        lines += [f"| {cell(t.host)} | {t.t:.1f} s | {cell(t.from_state)} → {cell(t.to_state)} "
                  f"| {cell(t.signal)} | {_n(t.value)} / {_n(t.threshold)} |"
                  for t in r.transitions]
        lines.append("")
    hosts = {h: m for h, m in r.key_metrics.items() if h != "probe"}
    if hosts:
        lines += ["**Key metrics**", "",
                  "| host | CTR max | HCP95 max | NFD/s max | drops | table-full events |",
                  "|---|---:|---:|---:|---:|---:|"]
        lines += [f"| {cell(h)} | {_n(m.get('ctr_max'), 3)} | {_n(m.get('hcp95_max'), 3)} "
                  f"| {_n(m.get('nfd_per_s_max'))} | {_n(m.get('drops'), 9)} "
                  f"| {_n(m.get('table_full_events'), 9)} |" for h, m in hosts.items()]
        lines.append("")
    lines += _slab_lines(r)
    probe = r.key_metrics.get("probe")
    if probe:
        lines += [f"Probe: {_n(probe.get('messages'), 9)} messages, "
                  f"{_n(probe.get('timeouts'), 9)} timeouts, ack dwell p50 "
                  f"{_n(probe.get('dwell_ms_p50'), 3)} ms / p99 {_n(probe.get('dwell_ms_p99'), 3)}"
                  f" ms, OSD p99 {_n(probe.get('osd_ms_p99'), 3)} ms, CDT p95 "
                  f"{_n(probe.get('cdt_p95_bps'), 3)} bps", ""]
    if r.steps:
        host = r.timelines[0].host if r.timelines else ""
        lines += [f"**Capacity steps** ({cell(host)})", "",
                  "| step | NFD/s mean | CTR mean | HCP95 max | probe cost p95 bps |",
                  "|---|---:|---:|---:|---:|"]
        for st in r.steps:
            h = next((x for x in st.hosts if x.host == host), None)
            lines.append(f"| {cell(st.name)} | {_n(h.nfd_mean if h else None)} "
                         f"| {_n(h.ctr_mean if h else None, 3)} "
                         f"| {_n(h.hcp95_max if h else None, 3)} "
                         f"| {_n(st.probe_cost_p95_bps, 3)} |")
        lines.append("")
    lines.append(_revert_line(r))
    return "\n".join(lines).rstrip() + "\n"


def _slab_lines(r: Report) -> list[str]:
    """The conntrack slab cache per host (last, peak); none when no agent could read it."""
    by_host = r.slab_by_host()
    if not by_host:
        return []
    mib = 2.0 ** 20
    return ["**Conntrack slab cache** (kernel-wide; bytes = objects x object size)", "",
            "| host | objects last | objects peak | MiB last | MiB peak |",
            "|---|---:|---:|---:|---:|",
            *(f"| {cell(h)} | {s.objects_last} | {s.objects_max} "
              f"| {s.bytes_last / mib:.2f} | {s.bytes_max / mib:.2f} |"
              for h, s in by_host.items()), ""]


def _revert_line(r: Report) -> str:
    verified = r.revert_verified
    if verified is None:
        return "**Revert:** nothing to revert (no change was planned)."
    if verified:
        hosts = ", ".join(x.host for x in r.reverts)
        later = " (by a later `ctdrill revert`)" if r.recovered else ""
        return f"**Revert:** ✅ verified on {cell(hosts)}{later}."
    bad = [x for x in r.reverts if not x.verified]
    why = "; ".join(f"{x.host}: {', '.join(x.problems) or 'not verified'}" for x in bad)
    if not r.reverts:
        why = "no revert was recorded"
    return (f"**Revert:** ❌ NOT verified ({cell(why)}). Run "
            f"{md_code('ctdrill revert ' + (r.journal or 'JOURNAL'))}.")
