"""JUnit XML (pure), the shape CI systems read natively (Jenkins, GitLab, GitHub
test reporters): testsuites > testsuite > testcase > failure | error | skipped.

One testcase per expectation, one for the revert verification, and, when the run
did not complete, one for the run itself (an error), so a refused, aborted or crashed
drill is never a green build. Testcase names are stable across runs (CI history joins
on them): hosts and values go in the body and the suite's properties, never the name.
The document validates against Jenkins' junit-10.xsd (tests/unit/fixtures/).
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


def _revert_lines(r: Report) -> str:
    """One line per changed host: its revert, or that none was recorded."""
    rows = {x.host: x for x in r.reverts}
    lines = []
    for host, verified in r.revert_by_host().items():
        x = rows.get(host)
        if x is None:
            lines.append(f"{host}: changed by the run; no revert of it was recorded")
        elif verified:
            lines.append(f"{host}: verified; restored {len(x.restored)} keys, deleted "
                         f"{len(x.deleted)} tables, dead-man {x.deadman}")
        else:
            lines.append(f"{host}: NOT verified; " + ("; ".join(x.problems) or "no detail"))
    return "\n".join(lines)


def _revert_case(suite: ET.Element, drill: str, r: Report) -> None:
    """The revert testcase; its name never changes, the hosts are in its body."""
    case = _case(suite, f"{drill}.revert", "revert verified equal to the snapshot",
                 r.timings.get("revert_verify", 0.0))
    verified = r.revert_verified
    detail = _revert_lines(r)
    if verified is None:
        ET.SubElement(case, "system-out").text = "nothing to revert: no change was planned"
        return
    if verified:
        ET.SubElement(case, "system-out").text = xml_text(detail)
        return
    bad = [h for h, ok in r.revert_by_host().items() if not ok]
    _outcome(case, "failure", f"revert not verified on {', '.join(bad) or 'any host'}: "
             f"run 'ctdrill revert {r.journal or 'JOURNAL'}'", "RevertNotVerified",
             detail or "no revert was recorded")


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
                       ("journal", r.journal), ("spec", r.spec_path),
                       ("changed_hosts", ", ".join(r.revert_by_host()))):
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
    _revert_case(suite, drill, r)
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
    # junit-10.xsd allows no `skipped` on testsuites: the suite carries that count
    root = ET.Element("testsuites", name="ctdrill", tests=str(len(cases)),
                      failures=str(counts["failure"]), errors=str(counts["error"]),
                      time=suite.get("time", "0"))
    root.append(suite)
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"
