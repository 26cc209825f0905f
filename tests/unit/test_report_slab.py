"""The conntrack slab cache in the drill report: the model's per-host last and peak, the
HTML section (table and chart), the Markdown table and the Prometheus textfile (checked
by promtool). The journal is the real table-pressure run with a slab cache written into
each sample as today's agent writes it, following the table's fill and drain, so the
peak (mid-run) and the last value (after the drain) differ."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from ctdrill.report import build_report, render_html, render_markdown, render_prom
from ctdrill.report.model import Report, SlabSummary
from ctdrill.telemetry.protocol import SlabInfo
from tests.consumers import assert_promtool_accepts, series
from tests.unit.test_report_support import Tree, records, report

OBJSIZE = 320  # not the 256 of this machine, so bytes cannot pass for objects x 256
MIB = 2.0 ** 20


def slab_for(count: int) -> SlabInfo:
    """A cache that holds the table's entries in whole slabs of 16, one slab spare."""
    num = 16 * (count // 16 + 2)
    return SlabInfo(active_objs=count + 3, num_objs=num, objsize=OBJSIZE, objperslab=16,
                    pagesperslab=2)


def with_slab(name: str) -> list[dict[str, Any]]:
    recs = copy.deepcopy(records(name))
    for rec in recs:
        if rec["type"] == "samples":
            for entry in rec["samples"]:
                entry["sample"]["slab"] = slab_for(entry["sample"]["count"]).to_json()
    return recs


def expected(recs: list[dict[str, Any]], host: str) -> SlabSummary:
    """What the summary must say, read straight from the records (not via the report)."""
    samples = sorted((e["sample"] for r in recs if r["type"] == "samples" and r["host"] == host
                      for e in r["samples"]), key=lambda s: s["t"])
    objs = [s["slab"]["num_objs"] for s in samples]
    return SlabSummary(samples=len(samples), objects_last=objs[-1], objects_max=max(objs),
                       active_objects_last=samples[-1]["slab"]["active_objs"],
                       bytes_last=objs[-1] * OBJSIZE, bytes_max=max(objs) * OBJSIZE,
                       object_size=OBJSIZE)


@pytest.fixture(scope="module")
def slabbed() -> tuple[Report, SlabSummary]:
    recs = with_slab("table-pressure-replay")
    return build_report(recs, journal="/runs/slab/journal.jsonl"), expected(recs, "gw")


def test_the_model_has_each_hosts_last_and_peak(slabbed: tuple[Report, SlabSummary]) -> None:
    r, want = slabbed
    assert r.slab_by_host() == {"gw": want}
    assert want.objects_max > want.objects_last  # the run filled, then drained the table
    # every sample counts, the stream's first (no window) too
    (tl,) = r.timelines
    assert len(tl.slab) == want.samples > len(tl.windows)
    assert r.summary_json()["slab"] == {"gw": want.to_json()}


def test_a_journal_without_slab_shows_none_anywhere() -> None:
    r = report("table-pressure-replay")
    assert r.slab_by_host() == {} and r.summary_json()["slab"] == {}
    root = Tree(render_html(r)).root
    assert not [n for n in root.iter("section") if n.attrs.get("id") == "slab"]
    assert "slab" not in render_markdown(r).lower()
    assert not [n for n in series(render_prom(r)) if "_slab_" in n]


def test_html_shows_a_slab_table_and_chart(slabbed: tuple[Report, SlabSummary]) -> None:
    r, want = slabbed
    tree = Tree(render_html(r))
    assert not tree.errors, tree.errors[:3]
    (section,) = [n for n in tree.root.iter("section") if n.attrs.get("id") == "slab"]
    (row,) = [n for n in section.iter("tr") if "slab" in n.classes()]
    cells = [td.all_text() for td in row.iter("td")]
    assert cells == ["gw", f"{want.objects_last:,}", f"{want.objects_max:,}",
                     f"{want.active_objects_last:,}", f"{want.bytes_last / MIB:,.2f}",
                     f"{want.bytes_max / MIB:,.2f}", str(OBJSIZE), f"{want.samples:,}"]
    (svg,) = section.iter("svg")
    drawn = {n.attrs["data-series"]: n for n in svg.iter() if "data-series" in n.attrs}
    assert {"slab-objects", "slab-active", "slab-bytes"} <= set(drawn)
    assert len(drawn["slab-objects"].attrs["points"].split()) == want.samples
    assert "kernel-wide" in section.all_text()


def test_markdown_has_the_slab_row(slabbed: tuple[Report, SlabSummary]) -> None:
    r, want = slabbed
    text = render_markdown(r)
    assert (f"| gw | {want.objects_last} | {want.objects_max} "
            f"| {want.bytes_last / MIB:.2f} | {want.bytes_max / MIB:.2f} |") in text


def test_the_textfile_exports_slab_peak_and_final_through_promtool(
        slabbed: tuple[Report, SlabSummary]) -> None:
    r, want = slabbed
    text = render_prom(r)
    assert_promtool_accepts(text)
    found = series(text)
    labels = {"drill": r.drill, "host": "gw"}
    assert found["ctdrill_drill_peak_conntrack_slab_objects"] == [(labels, want.objects_max)]
    assert found["ctdrill_drill_peak_conntrack_slab_bytes"] == [(labels, want.bytes_max)]
    assert found["ctdrill_drill_final_conntrack_slab_objects"] == [(labels, want.objects_last)]
    assert found["ctdrill_drill_final_conntrack_slab_bytes"] == [(labels, want.bytes_last)]
