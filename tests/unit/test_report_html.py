"""The HTML report, parsed with html.parser: self-contained, well nested, the plots
carry their series and regime bands, verdicts and the revert are all there, and text
from the journal cannot inject markup."""

from __future__ import annotations

import re

import pytest

from ctdrill.report import build_report, render_html
from tests.unit.test_report_support import Node, Tree, records, report


def _tree(name: str) -> Node:
    text = render_html(report(name))
    tree = Tree(text)
    assert not tree.errors, tree.errors[:3]
    return tree.root


def _by_class(root: Node, cls: str) -> list[Node]:
    return [n for n in root.iter() if cls in n.classes()]


def _series(svg: Node) -> dict[str, Node]:
    return {n.attrs["data-series"]: n for n in svg.iter() if "data-series" in n.attrs}


def _points(node: Node) -> list[tuple[float, float]]:
    return [(float(x), float(y)) for x, y in
            (p.split(",") for p in node.attrs["points"].split())]


@pytest.mark.parametrize("name", ["table-pressure-replay", "capacity-step",
                                  "revert-failed-recovered", "refused-locked"])
def test_self_contained_no_script_no_network(name: str) -> None:
    text = render_html(report(name))
    root = Tree(text).root
    tags = {n.tag for n in root.iter()}
    assert not tags & {"script", "link", "img", "iframe", "object", "embed"}
    assert not any(k in ("src", "href") or k.startswith("on")
                   for n in root.iter() for k in n.attrs)
    urls = set(re.findall(r"https?://[^\s\"')]+", text))
    assert urls <= {"http://www.w3.org/2000/svg"}
    assert "@import" not in text and "url(http" not in text
    assert root.iter("style") and text.startswith("<!DOCTYPE html>")


def test_timeline_plots_ctr_hcp95_nfd_with_regime_bands_and_surge() -> None:
    root = _tree("table-pressure-replay")
    charts = {n.attrs["class"].split()[1]: n for n in root.iter("svg")}
    for key in ("chart-ctr-gw", "chart-hcp95-gw", "chart-nfd-gw"):
        svg = charts[key]
        series = _series(svg)
        metric = key.split("-")[1]
        assert len(_points(series[metric])) > 50  # 20 Hz for 45 s, trimmed to 2 Hz
        assert {"surge-requested", "surge-achieved"} <= set(series)
        bands = [b.attrs["data-regime"] for b in _by_class(svg, "band")]
        assert bands == ["CT_HEALTHY", "CT_TIGHTENING", "CT_PRESSURED", "CT_TIGHTENING",
                         "CT_HEALTHY"]
        # html.parser lowercases attribute names
        w, h = (float(v) for v in svg.attrs["viewbox"].split()[2:])
        for x, y in _points(series[metric]):
            assert 0 <= x <= w and 0 <= y <= h
    ctr = _points(_series(charts["chart-ctr-gw"])["ctr"])
    assert min(y for _, y in ctr) < max(y for _, y in ctr) - 50  # CTR visibly rose


def test_without_the_replay_profile_only_the_fill_is_requested() -> None:
    r = build_report(records("table-pressure-replay"))
    assert r.surge is not None
    assert max(rate for _, rate in r.surge.requested) == 4000  # the fill's rate
    root = Tree(render_html(r)).root
    series = {s for svg in root.iter("svg") for s in _series(svg)}
    assert {"surge-achieved", "surge-requested"} <= series
    assert "not found" in root.all_text()


def test_without_any_rate_the_overlay_is_the_measured_new_flow_rate() -> None:
    recs = [rec for rec in records("table-pressure-replay")
            if rec["type"] not in ("load_start", "load_end")]
    root = Tree(render_html(build_report(recs))).root
    series = {s for svg in root.iter("svg") for s in _series(svg)}
    assert "new-flows" in series and "surge-achieved" not in series


def test_probe_section_per_window_and_per_regime() -> None:
    root = _tree("table-pressure-replay")
    probe = next(n for n in root.iter("section") if n.attrs.get("id") == "probe")
    series = {s for svg in probe.iter("svg") for s in _series(svg)}
    assert {"dwell-p99", "osd-p99", "dwell-p50", "dwell-worst", "osd-worst"} <= series
    rows = [r for r in probe.iter("tr") if "regime-probe" in r.classes()]
    assert [r.iter("td")[0].all_text() for r in rows] == ["CT_HEALTHY", "CT_TIGHTENING",
                                                          "CT_PRESSURED"]
    bars = [n for n in probe.iter("rect") if n.attrs.get("data-series") == "dwell-worst"]
    assert [b.attrs["data-group"] for b in bars] == ["CT_HEALTHY", "CT_TIGHTENING",
                                                      "CT_PRESSURED"]


def test_verdicts_and_revert_are_shown() -> None:
    root = _tree("capacity-step")
    badge = next(n for n in root.iter("span") if n.attrs.get("id") == "status")
    assert badge.attrs["data-status"] == "failed" and badge.all_text() == "FAILED"
    rows = _by_class(root, "expectation")
    assert len(rows) == 5
    assert [r.attrs["data-passed"] for r in rows].count("False") == 1
    failed = next(r for r in rows if r.attrs["data-passed"] == "False")
    assert "NFD falls as capacity rises" in failed.all_text()
    assert "max-4k=2282" in failed.all_text()
    reverts = _by_class(root, "revert")
    assert {r.iter("td")[0].all_text(): r.attrs["data-verified"] for r in reverts} == {
        "gw": "True", "kernel": "True"}
    assert "every host verified equal to its snapshot" in root.all_text()


def test_capacity_steps_response_curve() -> None:
    root = _tree("capacity-step")
    steps = next(n for n in root.iter("section") if n.attrs.get("id") == "steps")
    charts = {s: svg for svg in steps.iter("svg") for s in _series(svg)}
    assert set(charts) == {"step-nfd", "step-ctr", "step-hcp95", "step-cost"}
    for svg in charts.values():
        assert len(svg.iter("circle")) == 4  # one point per step
    labels = [t.all_text() for t in charts["step-nfd"].iter("text")]
    assert {"max-4k", "max-8k", "max-32k", "max-only-64k"} <= set(labels)
    marks = [n for n in root.iter("line") if "step-mark" in n.classes()]
    assert len(marks) >= 4  # step starts on the timeline
    assert not [n for n in _tree("table-pressure-replay").iter("section")
                if n.attrs.get("id") == "steps"]


def test_changes_show_before_and_after_per_host_and_step() -> None:
    root = _tree("capacity-step")
    rows = [[td.all_text() for td in r.iter("td")] for r in _by_class(root, "change")]
    assert ["gw", "whole drill", "net.netfilter.nf_conntrack_udp_timeout", "30", "3"] in rows
    assert ["kernel (kernel owner)", "max-only-64k", "net.netfilter.nf_conntrack_max",
            "32768", "65536"] in rows


def test_failed_revert_says_what_to_run() -> None:
    root = _tree("revert-failed-recovered")
    text = root.all_text()
    assert "REVERT NOT VERIFIED" in text and "ctdrill revert" in text
    assert "not judged" in text
    reverts = {r.iter("td")[0].all_text(): r.attrs["data-verified"]
               for r in _by_class(root, "revert")}
    assert reverts == {"gw": "False", "kernel": "True"}


def test_journal_text_is_escaped() -> None:
    recs = records("capacity-step")
    evil = '<script>alert("x")</script><img src=x onerror=1>'
    for rec in recs:
        if rec["type"] == "verdict":
            rec["name"], rec["detail"] = evil, evil
        if rec["type"] in ("samples", "transition", "revert"):
            rec["host"] = evil
    text = render_html(build_report(recs))
    tree = Tree(text)
    assert not tree.errors
    assert not {"script", "img"} & {n.tag for n in tree.root.iter()}
    assert evil in tree.root.all_text()  # shown as text, verbatim
