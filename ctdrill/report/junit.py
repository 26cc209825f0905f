"""JUnit XML (pure), the shape CI systems read natively (Jenkins, GitLab, GitHub
test reporters): testsuites > testsuite > testcase > failure | error | skipped.

One testcase per expectation, one for the revert verification, and, when the run
did not complete, one for the run itself (an error), so a refused, aborted or crashed
drill is never a green build.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

from ctdrill.report.model import Report, utc_text

_INVALID_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def xml_text(text: object) -> str:
    """Text XML 1.0 can carry: control characters from a target's output are dropped."""
    return _INVALID_XML.sub("", str(text))


def _case(suite: ET.Element, classname: str, name: str, seconds: float = 0.0) -> ET.Element:
    return ET.SubElement(suite, "testcase", classname=xml_text(classname),
                         name=xml_text(name), time=f"{max(0.0, seconds):.3f}")


def _outcome(case: ET.Element, kind: str, message: str, type_: str, text: str = "") -> None:
    el = ET.SubElement(case, kind, message=xml_text(message), type=xml_text(type_))
    if text:
        el.text = xml_text(text)


def render_junit(r: Report) -> str:
    """The JUnit document; counts on the suite and the root match its testcases."""
    drill = f"ctdrill.{r.drill}"
    suite = ET.Element("testsuite", name=xml_text(drill), id="0", package="ctdrill",
                       timestamp=utc_text(r.started_at, "%Y-%m-%dT%H:%M:%S")
                       or "1970-01-01T00:00:00",
                       hostname=xml_text(r.orchestrator or "localhost"),
                       time=f"{max(0.0, r.duration_s):.3f}")
    props = ET.SubElement(suite, "properties")
    for key, value in (("run_id", r.run_id), ("status", r.status),
                       ("exit_code", "" if r.exit_code is None else str(r.exit_code)),
                       ("journal", r.journal), ("spec", r.spec_path)):
        ET.SubElement(props, "property", name=key, value=xml_text(value))
    case = _case(suite, drill, "drill run completes") if (
        r.aborted is not None or r.status in ("refused", "aborted", "incomplete")) else None
    if case is not None:
        why = r.aborted or r.reason or "the journal has no end record"
        kind = "refused" if r.status == "refused" else (
            "incomplete" if r.status == "incomplete" else "aborted")
        _outcome(case, "error", f"{kind}: {why}", f"Drill{kind.capitalize()}", why)
    for e in r.expectations:
        case = _case(suite, f"{drill}.expectations", e.name)
        if e.passed is None:
            _outcome(case, "skipped", e.detail or "not judged", "NotJudged")
        elif not e.passed:
            observed = "n/a" if e.observed is None else f"{e.observed:.6g}"
            _outcome(case, "failure", f"{e.name}: observed {observed}; {e.detail}",
                     "ExpectationFailed", e.detail)
        else:
            ET.SubElement(case, "system-out").text = xml_text(e.detail)
    verified = r.revert_verified
    hosts = ", ".join(x.host for x in r.reverts) or "no host"
    case = _case(suite, f"{drill}.revert", f"revert verified equal to the snapshot ({hosts})",
                 r.timings.get("revert_verify", 0.0))
    if verified is None:
        ET.SubElement(case, "system-out").text = "nothing to revert: no change was planned"
    elif not verified:
        detail = "\n".join(f"{x.host}: verified={x.verified}; " + "; ".join(x.problems)
                           for x in r.reverts) or "no revert was recorded"
        _outcome(case, "failure", f"revert not verified: run 'ctdrill revert "
                 f"{r.journal or 'JOURNAL'}'", "RevertNotVerified", detail)
    else:
        ET.SubElement(case, "system-out").text = xml_text("\n".join(
            f"{x.host}: restored {len(x.restored)} keys, deleted {len(x.deleted)} tables, "
            f"dead-man {x.deadman}" for x in r.reverts))
    ET.SubElement(suite, "system-out").text = xml_text(
        f"{r.drill} {r.status} (exit {r.exit_code}); run {r.run_id}; journal {r.journal}")
    ET.SubElement(suite, "system-err").text = xml_text(r.reason or "")
    cases = suite.findall("testcase")
    counts = {kind: sum(c.find(kind) is not None for c in cases)
              for kind in ("failure", "error", "skipped")}
    suite.set("tests", str(len(cases)))
    suite.set("failures", str(counts["failure"]))
    suite.set("errors", str(counts["error"]))
    suite.set("skipped", str(counts["skipped"]))
    root = ET.Element("testsuites", name="ctdrill", tests=str(len(cases)),
                      failures=str(counts["failure"]), errors=str(counts["error"]),
                      skipped=str(counts["skipped"]), time=suite.get("time", "0"))
    root.append(suite)
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"
