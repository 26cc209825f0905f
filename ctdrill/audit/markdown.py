"""audit.md: the audit as Markdown (pure). Every value that came from a host or the
inventory goes through report/safe.py (md_text, md_code), numbers are formatted here."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ctdrill.audit.model import HostAudit
from ctdrill.report.safe import md_code, md_text


def _num(value: Any) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:,.4g}" if abs(value) < 1000 else f"{value:,.0f}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return md_text(value)


def _table(header: list[str], rows: Iterable[list[str]]) -> list[str]:
    body = ["| " + " | ".join(r) + " |" for r in rows]
    if not body:
        return ["None.", ""]
    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header), *body, ""]


def _evidence(ev: dict[str, Any]) -> str:
    parts = []
    for key, value in ev.items():
        if isinstance(value, dict):
            value = ", ".join(f"{k} {v}" for k, v in value.items()) or "none"
        parts.append(f"{md_text(key)} {_num(value)}")
    return "; ".join(parts)


def _findings(a: HostAudit) -> list[str]:
    if not a.findings:
        return ["No findings.", ""]
    rows = []
    for i, (f, s) in enumerate(zip(a.findings, a.specs, strict=True), 1):
        spec = md_code(s.filename, in_table=True) if s.filename else md_text(s.problem or "")
        rows.append([str(i), md_text(f.kind), md_text(f.title), _num(f.headroom),
                     md_text(f.advice), spec])
    out = _table(["#", "kind", "finding", "headroom (entries)", "fix", "drill"], rows)
    for i, f in enumerate(a.findings, 1):
        out.append(f"{i}. evidence: {_evidence(f.evidence)}")
        if f.caveat:
            out.append(f"   {md_text(f.caveat)}")
    return [*out, ""]


def _composition(a: HostAudit) -> list[str]:
    c = a.composition
    assert c is not None
    out = ["**Entries by protocol and state**", ""]
    out += _table(["kind", "entries", "share"],
                  ([md_text(k), _num(n), f"{c.share(n):.1%}"] for k, n in c.by_kind.items()))
    out += ["**Stale residency**", ""]
    out += _table(["class", "entries", "share", "mean left (s)", "max left (s)"],
                  ([md_text(k), _num(r.count), f"{c.share(r.count):.1%}",
                    _num(round(r.mean_left_s, 1)), _num(r.left_max)]
                   for k, r in c.residency.items()))
    for title, shares in (("Top sources (/24, /64)", c.sources),
                          ("Top destinations", c.destinations), ("Top ports", c.ports)):
        out += [f"**{title}**", ""]
        out += _table(["key", "entries", "share"],
                      ([md_code(s.key, in_table=True), _num(s.entries), f"{s.share:.1%}"]
                       for s in shares))
    return out


def _host(a: HostAudit) -> list[str]:
    out = [f"## {md_text(a.host)}", "", f"Reached as {md_code(a.where)}.", ""]
    if a.error:
        return [*out, f"Not audited: {md_text(a.error)}", ""]
    t = a.table_json()
    out += _table(["max", "buckets", "count (kernel)", "listed", "chain length at max",
                   "memory at max (bytes)", "listing (s)"],
                  [[_num(t.get("max")), _num(t.get("buckets")), _num(t.get("count")),
                    _num(t.get("listed")), _num(t.get("chain_length_at_max")),
                    _num(t.get("memory_at_max_bytes")), _num(t.get("listing_s"))]])
    out += [f"- {md_text(n)}" for n in a.notes] + ([""] if a.notes else [])
    return [*out, "### Findings (ranked by headroom)", "", *_findings(a),
            "### Composition", "", *_composition(a)]


def render_markdown(audits: Iterable[HostAudit]) -> str:
    lines = ["# conntrack hygiene audit", ""]
    for a in audits:
        lines += _host(a)
    return "\n".join(lines).rstrip() + "\n"
