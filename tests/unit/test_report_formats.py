"""Markdown summary, JUnit XML and Prometheus textfile: each checked against the rules
of its format (JUnit: the testsuites/testsuite/testcase shape CI tools read, counts
matching; Prometheus: the text exposition format, line by line)."""

from __future__ import annotations

import math
import re
import xml.etree.ElementTree as ET
from dataclasses import replace

import pytest

from ctdrill.report import build_report, render_junit, render_markdown, render_prom
from ctdrill.report.model import Report, RevertRow
from tests.unit.test_report_support import records, report

ALL = ["table-pressure-replay", "capacity-step", "revert-failed-recovered", "refused-locked"]

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


# --- JUnit ------------------------------------------------------------------------------

# element -> (required attributes, allowed children in this order)
JUNIT_SHAPE: dict[str, tuple[set[str], list[str]]] = {
    "testsuites": ({"name", "tests", "failures", "errors", "time"}, ["testsuite"]),
    "testsuite": ({"name", "tests", "failures", "errors", "skipped", "time", "timestamp",
                   "hostname"}, ["properties", "testcase", "system-out", "system-err"]),
    "properties": (set(), ["property"]),
    "property": ({"name", "value"}, []),
    "testcase": ({"name", "classname", "time"},
                 ["skipped", "error", "failure", "system-out", "system-err"]),
    "failure": ({"message", "type"}, []),
    "error": ({"message", "type"}, []),
    "skipped": (set(), []),
    "system-out": (set(), []),
    "system-err": (set(), []),
}


def check_junit_shape(el: ET.Element) -> None:
    required, children = JUNIT_SHAPE[el.tag]
    assert required <= set(el.attrib), (el.tag, required - set(el.attrib))
    order = [children.index(c.tag) for c in el]  # ValueError: a child not allowed here
    assert order == sorted(order), f"{el.tag}: children out of order"
    if el.tag == "testcase":
        assert sum(c.tag in ("failure", "error", "skipped") for c in el) <= 1
    for key in ("time", "tests", "failures", "errors", "skipped"):
        if key in el.attrib:
            assert float(el.attrib[key]) >= 0
    if "timestamp" in el.attrib:
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d", el.attrib["timestamp"])
    for child in el:
        check_junit_shape(child)


def _junit(r: Report) -> ET.Element:
    text = render_junit(r)
    assert text.startswith('<?xml version="1.0" encoding="UTF-8"?>')
    root = ET.fromstring(text.encode())
    assert root.tag == "testsuites"
    check_junit_shape(root)
    suites = root.findall("testsuite")
    assert len(suites) == 1
    cases = suites[0].findall("testcase")
    for el in (root, suites[0]):
        assert int(el.attrib["tests"]) == len(cases)
        assert int(el.attrib["failures"]) == sum(c.find("failure") is not None for c in cases)
        assert int(el.attrib["errors"]) == sum(c.find("error") is not None for c in cases)
    assert int(suites[0].attrib["skipped"]) == sum(c.find("skipped") is not None for c in cases)
    for outcome in root.iter():
        if outcome.tag in ("failure", "error"):
            assert outcome.attrib["message"]
    return suites[0]


@pytest.mark.parametrize("name", ALL)
def test_junit_shape_and_counts(name: str) -> None:
    _junit(report(name))


def test_junit_one_case_per_expectation_plus_the_revert() -> None:
    r = report("capacity-step")
    suite = _junit(r)
    cases = suite.findall("testcase")
    assert suite.attrib["name"] == "ctdrill.capacity-step"
    assert [c.attrib["name"] for c in cases[:-1]] == [e.name for e in r.expectations]
    assert all(c.attrib["classname"] == "ctdrill.capacity-step.expectations"
               for c in cases[:-1])
    failed = [c for c in cases if c.find("failure") is not None]
    assert [c.attrib["name"] for c in failed] == ["NFD falls as capacity rises"]
    failure = failed[0].find("failure")
    assert failure is not None and "max-4k=2282" in failure.attrib["message"]
    revert = cases[-1]
    assert revert.attrib["classname"] == "ctdrill.capacity-step.revert"
    assert revert.find("failure") is None and float(revert.attrib["time"]) > 0
    props = {p.attrib["name"]: p.attrib["value"] for p in suite.iter("property")}
    assert props["status"] == "failed" and props["exit_code"] == "1"


def test_junit_revert_failure_is_a_failed_testcase() -> None:
    suite = _junit(report("revert-failed-recovered"))
    revert = suite.findall("testcase")[-1]
    failure = revert.find("failure")
    assert failure is not None and failure.attrib["type"] == "RevertNotVerified"
    assert "ctdrill revert" in failure.attrib["message"] and "gw" in (failure.text or "")
    run = suite.findall("testcase")[0]
    error = run.find("error")
    assert run.attrib["name"] == "drill run completes" and error is not None
    assert "telemetry" in error.attrib["message"]
    assert len([c for c in suite.findall("testcase") if c.find("skipped") is not None]) == 9


def test_junit_refused_run_is_an_error_not_green() -> None:
    suite = _junit(report("refused-locked"))
    first = suite.findall("testcase")[0]
    error = first.find("error")
    assert error is not None and "locked" in error.attrib["message"]
    assert int(suite.attrib["errors"]) == 1 and int(suite.attrib["skipped"]) == 9


def test_junit_strips_characters_xml_cannot_carry() -> None:
    r = report("capacity-step")
    bad = replace(r, reverts=(RevertRow("gw\x01", False, (), (), ("bell\x07 <&>",), "run",
                                        "not armed"),))
    suite = _junit(bad)
    failure = suite.findall("testcase")[-1].find("failure")
    assert failure is not None and "bell <&>" in (failure.text or "")


# --- Prometheus text exposition ----------------------------------------------------------

NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
LABEL = r"[a-zA-Z_][a-zA-Z0-9_]*"
VALUE = r'"((?:[^"\\\n]|\\\\|\\"|\\n)*)"'
SAMPLE = re.compile(rf"({NAME})(?:\{{((?:{LABEL}={VALUE},?)*)\}})? (\S+)( -?\d+)?")
FLOAT = re.compile(r"[+-]?(Inf|NaN|(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?)")


def _unescape(v: str) -> str:
    return re.sub(r"\\(.)", lambda m: {"n": "\n", "\\": "\\", '"': '"'}[m.group(1)], v)


def parse_exposition(text: str) -> dict[str, list[tuple[dict[str, str], float]]]:
    """Parse a textfile strictly by the exposition rules; any violation fails."""
    assert text.endswith("\n") and "\r" not in text
    families: dict[str, list[tuple[dict[str, str], float]]] = {}
    helped: set[str] = set()
    typed: set[str] = set()
    closed: set[str] = set()
    current = ""
    seen: set[tuple[str, tuple[tuple[str, str], ...]]] = set()
    for n, line in enumerate(text.splitlines(), 1):
        where = f"line {n}: {line!r}"
        if not line.strip():
            continue
        if line.startswith("#"):
            m = re.fullmatch(rf"# (HELP|TYPE) ({NAME}) (.*)", line)
            if not m:
                continue  # a plain comment
            kind, name, rest = m.groups()
            assert name not in closed, f"{where}: family {name} is not contiguous"
            if name != current and current:
                closed.add(current)
            current = name
            if kind == "HELP":
                assert name not in helped and name not in families, where
                assert not re.search(r"\\[^\\n]", rest), f"{where}: bad escape in HELP"
                helped.add(name)
            else:
                assert name not in typed and name not in families, where
                assert rest in ("counter", "gauge", "histogram", "summary", "untyped"), where
                typed.add(name)
            continue
        m = SAMPLE.fullmatch(line)
        assert m, f"{where}: not a sample line"
        name, labels, value, stamp = m.group(1), m.group(2) or "", m.group(4), m.group(5)
        assert stamp is None, f"{where}: the textfile collector refuses timestamps"
        assert FLOAT.fullmatch(value), f"{where}: bad value"
        assert name not in closed, f"{where}: family {name} is not contiguous"
        if name != current and current:
            closed.add(current)
        current = name
        pairs = re.findall(rf"({LABEL})={VALUE}", labels)
        assert len({k for k, _ in pairs}) == len(pairs), f"{where}: duplicate label"
        key = (name, tuple(sorted(pairs)))
        assert key not in seen, f"{where}: duplicate series"
        seen.add(key)
        families.setdefault(name, []).append(({k: _unescape(v) for k, v in pairs},
                                              float(value.replace("Inf", "inf"))))
    assert set(families) == helped == typed, "every family has HELP and TYPE"
    return families


@pytest.mark.parametrize("name", ALL)
def test_prometheus_textfile_parses(name: str) -> None:
    fams = parse_exposition(render_prom(report(name)))
    assert all(labels["drill"] == "table-pressure-replay" or labels["drill"] == "capacity-step"
               for samples in fams.values() for labels, _ in samples)
    assert all(math.isfinite(v) for samples in fams.values() for _, v in samples)


def test_prometheus_last_result_and_key_metrics() -> None:
    fams = parse_exposition(render_prom(report("capacity-step")))
    one = {name: samples[0][1] for name, samples in fams.items() if len(samples) == 1}
    assert one["ctdrill_drill_passed"] == 0 and one["ctdrill_drill_exit_code"] == 1
    assert one["ctdrill_drill_last_run_timestamp_seconds"] > 1.7e9
    assert fams["ctdrill_drill_info"][0][0]["status"] == "failed"
    exp = {labels["result"]: v for labels, v in fams["ctdrill_drill_expectations"]}
    assert exp == {"passed": 4, "failed": 1, "not_judged": 0}
    by_host = {labels["host"]: v for labels, v in fams["ctdrill_drill_revert_verified"]}
    assert by_host == {"gw": 1, "kernel": 1}
    (ctr,) = fams["ctdrill_drill_ctr_max"]
    assert ctr[0] == {"drill": "capacity-step", "host": "gw"} and ctr[1] == pytest.approx(1.0)
    (dwell,) = fams["ctdrill_drill_probe_ack_dwell_p99_seconds"]
    assert dwell[0]["host"] == "client" and 1 < dwell[1] < 10  # seconds, not ms
    final = {labels["regime"]: v for labels, v in fams["ctdrill_drill_final_regime"]}
    assert final == {"CT_HEALTHY": 0, "CT_TIGHTENING": 1, "CT_PRESSURED": 0,
                     "CT_SAFE_CONTAIN": 0}


def test_prometheus_escapes_label_values() -> None:
    host = 'we"ird\\host\nname'
    r = report("capacity-step")
    r = replace(r, reverts=(RevertRow(host, True, (), (), (), "run", "disarmed"),))
    text = render_prom(r)
    assert 'host="we\\"ird\\\\host\\nname"' in text
    fams = parse_exposition(text)
    assert fams["ctdrill_drill_revert_verified"][0][0]["host"] == host
