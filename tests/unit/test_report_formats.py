"""Markdown summary: the verdict line and tables a PR comment or CI summary shows.
(JUnit XML is checked against Jenkins' XSD in test_report_junit.py, the Prometheus
textfile by promtool in test_report_prom.py.)"""

from __future__ import annotations

import re

from ctdrill.report import build_report, render_markdown
from tests.unit.test_report_support import records, report

# --- Markdown ---------------------------------------------------------------------------


def _table_rows(md: str, header_start: str) -> list[list[str]]:
    lines = md.splitlines()
    i = next(n for n, line in enumerate(lines) if line.startswith(header_start))
    rows = []
    for line in lines[i + 2:]:
        if not line.startswith("|"):
            break
        cells = re.split(r"(?<!\\)\|", line.strip())[1:-1]
        rows.append([c.strip() for c in cells])
    return rows


def test_markdown_verdict_expectations_transitions_metrics_revert() -> None:
    md = render_markdown(report("table-pressure-replay"))
    first = md.splitlines()[0]
    assert first.startswith("### ✅") and "table-pressure-replay" in first and "PASSED" in first
    exp = _table_rows(md, "| | expectation")
    assert len(exp) == 10 and all(row[0] == "✅" for row in exp)
    trans = _table_rows(md, "| host | t | transition")
    assert [row[2] for row in trans] == ["CT_HEALTHY → CT_TIGHTENING",
                                          "CT_TIGHTENING → CT_PRESSURED",
                                          "CT_PRESSURED → CT_TIGHTENING",
                                          "CT_TIGHTENING → CT_HEALTHY"]
    (gw,) = _table_rows(md, "| host | CTR max")
    assert gw[0] == "gw" and gw[3] == "4818"
    assert "**Revert:** ✅ verified on gw, kernel." in md
    assert "e+" not in md  # big numbers are written out, not in exponent form


def test_markdown_failure_and_revert_failure() -> None:
    md = render_markdown(report("capacity-step"))
    assert md.startswith("### ❌") and "FAILED" in md.splitlines()[0]
    assert _table_rows(md, "| | expectation")[1][:2] == ["❌", "NFD falls as capacity rises"]
    assert "**Capacity steps**" in md
    md = render_markdown(report("revert-failed-recovered"))
    assert "REVERT NOT VERIFIED" in md.splitlines()[0]
    assert "NOT verified" in md and "ctdrill revert /runs/revert-failed-recovered" in md


def test_markdown_cells_cannot_break_the_table() -> None:
    recs = records("capacity-step")
    for rec in recs:
        if rec["type"] == "verdict":
            rec["name"] = "a | b\nc"
    md = render_markdown(build_report(recs))
    rows = _table_rows(md, "| | expectation")
    assert len(rows) == 5 and all(len(row) == 4 for row in rows)
    assert rows[0][1] == "a \\| b c"
