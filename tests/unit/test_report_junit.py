"""JUnit XML, checked by the schema CI servers read it with: Jenkins' junit-10.xsd
(tests/unit/fixtures/junit-10.xsd, verbatim) through the xmlschema library, for every
kind of run; then what a CI history needs: counts that match, stable testcase names,
and a revert testcase that tells the truth about the hosts."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import replace
from pathlib import Path

import pytest
import xmlschema

from ctdrill.report import render_junit
from ctdrill.report.model import Report, RevertRow
from tests.unit.test_report_support import crashed_after_changes, output_cases, report

SCHEMA = xmlschema.XMLSchema(str(Path(__file__).parent / "fixtures" / "junit-10.xsd"))
CASES = output_cases()


def suite_of(r: Report) -> ET.Element:
    """The document, validated by the real schema, then its one testsuite."""
    text = render_junit(r)
    assert text.startswith('<?xml version="1.0" encoding="UTF-8"?>')
    SCHEMA.validate(text)  # raises XMLSchemaValidationError naming the violation
    root = ET.fromstring(text.encode())
    (suite,) = root.findall("testsuite")
    return suite


def test_the_schema_is_the_real_one_and_rejects_what_the_issue_found() -> None:
    """The consumer can fail: the old root `skipped` attribute is refused."""
    old = render_junit(report("capacity-step")).replace(
        '<testsuites name="ctdrill"', '<testsuites name="ctdrill" skipped="0"', 1)
    assert not SCHEMA.is_valid(old)
    errors = [str(e) for e in SCHEMA.iter_errors(old)]
    assert any("skipped" in e for e in errors)


@pytest.mark.parametrize("name", sorted(CASES))
def test_valid_junit_with_counts_matching_the_testcases(name: str) -> None:
    text = render_junit(CASES[name])
    SCHEMA.validate(text)
    root = ET.fromstring(text.encode())
    (suite,) = root.findall("testsuite")
    cases = suite.findall("testcase")
    for el in (root, suite):
        assert int(el.attrib["tests"]) == len(cases)
        assert int(el.attrib["failures"]) == sum(c.find("failure") is not None for c in cases)
        assert int(el.attrib["errors"]) == sum(c.find("error") is not None for c in cases)
    assert int(suite.attrib["skipped"]) == sum(c.find("skipped") is not None for c in cases)
    assert all(sum(c.find(k) is not None for k in ("failure", "error", "skipped")) <= 1
               for c in cases)


def _names(r: Report) -> list[tuple[str, str]]:
    return [(c.attrib["classname"], c.attrib["name"]) for c in suite_of(r).iter("testcase")]


def test_testcase_names_do_not_change_with_the_hosts_or_the_outcome() -> None:
    """CI history joins on (classname, name): other hosts, another outcome, same tests."""
    r = report("capacity-step")
    others = replace(r, revert_hosts=("edge-1", "edge-2"),
                     reverts=(RevertRow("edge-1", True, (), (), (), "run", "disarmed"),
                              RevertRow("edge-2", False, (), (), ("x",), "run", "armed")))
    assert _names(r) == _names(others)
    for _, name in _names(others):
        assert "edge" not in name and "gw" not in name and "kernel" not in name


def test_incomplete_run_that_changed_hosts_names_them_in_the_body() -> None:
    suite = suite_of(crashed_after_changes())
    cases = {c.attrib["name"]: c for c in suite.iter("testcase")}
    run = cases["drill run completes"].find("error")
    assert run is not None and run.attrib["type"] == "DrillIncomplete"
    failure = cases["revert verified equal to the snapshot"].find("failure")
    assert failure is not None and failure.attrib["type"] == "RevertNotVerified"
    assert "gw, kernel" in failure.attrib["message"]
    assert "no host" not in ET.tostring(suite, encoding="unicode")
    body = failure.text or ""
    assert "gw: changed by the run; no revert" in body and "kernel: changed" in body
    props = {p.attrib["name"]: p.attrib["value"] for p in suite.iter("property")}
    assert props["changed_hosts"] == "gw, kernel" and props["status"] == "incomplete"


def test_one_case_per_expectation_plus_the_revert() -> None:
    r = report("capacity-step")
    cases = suite_of(r).findall("testcase")
    assert [c.attrib["name"] for c in cases[:-1]] == [e.name for e in r.expectations]
    assert all(c.attrib["classname"] == "ctdrill.capacity-step.expectations"
               for c in cases[:-1])
    failed = [c for c in cases if c.find("failure") is not None]
    assert [c.attrib["name"] for c in failed] == ["NFD falls as capacity rises"]
    revert = cases[-1]
    assert revert.attrib["classname"] == "ctdrill.capacity-step.revert"
    assert revert.attrib["name"] == "revert verified equal to the snapshot"
    assert revert.find("failure") is None and float(revert.attrib["time"]) > 0
    out = revert.find("system-out")
    assert out is not None and "gw: verified" in (out.text or "")


def test_revert_failure_is_a_failed_testcase_naming_the_host() -> None:
    suite = suite_of(report("revert-failed-recovered"))
    failure = suite.findall("testcase")[-1].find("failure")
    assert failure is not None and failure.attrib["type"] == "RevertNotVerified"
    assert "on gw:" in failure.attrib["message"] and "ctdrill revert" in failure.attrib["message"]
    assert "kernel: verified" in (failure.text or "")
    run = suite.findall("testcase")[0]
    error = run.find("error")
    assert run.attrib["name"] == "drill run completes" and error is not None
    assert "telemetry" in error.attrib["message"]


def test_refused_run_is_an_error_and_has_nothing_to_revert() -> None:
    suite = suite_of(report("refused-locked"))
    error = suite.findall("testcase")[0].find("error")
    assert error is not None and "locked" in error.attrib["message"]
    assert int(suite.attrib["errors"]) == 1 and int(suite.attrib["skipped"]) == 9
    revert = suite.findall("testcase")[-1]
    assert revert.find("failure") is None
    assert "nothing to revert" in (revert.findtext("system-out") or "")


def test_characters_xml_cannot_carry_are_dropped() -> None:
    r = report("capacity-step")
    bad = replace(r, reverts=(RevertRow("gw\x01", False, (), (), ("bell\x07 <&>",), "run",
                                        "not armed"),))
    failure = suite_of(bad).findall("testcase")[-1].find("failure")
    assert failure is not None and "bell <&>" in (failure.text or "")
