"""The one SVG module (drill and analysis reports): round ticks, spikes kept when
thinning long series, everything drawn inside the plot, log axes for latencies, x-y
curves and forest plots."""

from __future__ import annotations

import re

from ctdrill.report.svg import (
    Interval,
    Line,
    Mark,
    Shade,
    _decimate,
    interval_chart,
    log_bounds,
    nice_ticks,
    num,
    time_chart,
    xy_chart,
)
from tests.unit.test_report_support import Tree


def test_nice_ticks_cover_the_range_with_round_steps() -> None:
    assert nice_ticks(0, 1) == [0, 0.2, 0.4, 0.6, 0.8, 1.0]
    assert nice_ticks(0, 45, 10) == [0, 5, 10, 15, 20, 25, 30, 35, 40, 45]
    ticks = nice_ticks(0, 4817.7)
    assert ticks[0] == 0 and ticks[-1] <= 4817.7 and len(ticks) <= 7
    assert nice_ticks(3, 3) == [3]


def test_compact_numbers() -> None:
    assert [num(v) for v in (0, 0.25, 12, 2500, 12000, 1.5e6)] == [
        "0", "0.25", "12", "2.5k", "12k", "1.5M"]


def test_log_bounds_are_whole_decades() -> None:
    assert log_bounds([0.8, 4004.0]) == (0.1, 10000.0)
    assert log_bounds([]) == (0.1, 10.0)
    assert log_bounds([0, -1]) == (0.1, 10.0)


def test_decimation_keeps_spikes_and_bounds_the_size() -> None:
    px = [(i / 100, 50.0) for i in range(100_000)]
    px[54_321] = (543.21, 1.0)  # one spike
    out = _decimate(px, 1000)
    assert len(out) <= 4 * 1000 + 4
    assert (543.21, 1.0) in out
    assert out[0] == px[0] and out[-1] == px[-1]


def test_time_chart_draws_inside_its_plot_and_clips() -> None:
    svg = time_chart(key="k", title="t <&>", x_max=10.0,
                     lines=[Line("a", "a", [(0, 0), (5, 2), (20, 1)], "#000"),
                            Line("r", "rate", [(0, 100), (5, 0)], "#888", axis="right",
                                 step=True)],
                     shades=[Shade(-5, 3, "#eee", "CT_HEALTHY"), Shade(3, 99, "#fee", "X")],
                     vmarks=[Mark(5, "step")], hmarks=[Mark(1.5, "limit")])
    root = Tree(svg).root
    assert root.iter("title")[0].all_text() == "t <&>"
    (clip,) = root.iter("clippath")
    groups = [g for g in root.iter("g") if g.attrs.get("clip-path") == "url(#clip-k)"]
    assert clip.attrs["id"] == "clip-k" and len(groups) == 1
    assert {n.attrs["data-series"] for n in groups[0].iter("polyline")} == {"a", "r"}
    for band in root.iter("rect"):
        if "band" in band.attrs.get("class", ""):
            assert float(band.attrs["x"]) >= 58 and float(band.attrs["width"]) > 0
    step = next(n for n in root.iter("polyline") if n.attrs["data-series"] == "r")
    assert len(step.attrs["points"].split()) == 3  # held value: a vertical drop at x=5
    assert not re.search(r"nan|inf", svg, re.IGNORECASE)


def test_log_chart_places_small_values_low() -> None:
    svg = time_chart(key="p", title="p", x_max=2, log=True,
                     lines=[Line("d", "d", [(0.5, 1.0), (1.5, 1000.0)], "#000")])
    node = next(n for n in Tree(svg).root.iter("polyline"))
    (_, y1), (_, y2) = ([float(v) for v in p.split(",")] for p in node.attrs["points"].split())
    assert y1 > y2  # SVG y grows downwards


def test_xy_chart_leaves_out_missing_values_and_names_its_x_ticks() -> None:
    svg = xy_chart(key="canary", title="Canary <b>", x_label="period", y_label="bps",
                   lines=[Line("canary", "canary", [(0.0, 4.0), (1.0, 0.5)], "#c00",
                               markers=True),
                          Line("control", "control", [(0.0, float("nan")), (1.0, 3.0)],
                               "#00c", markers=True)],
                   x_ticks={0.0: "before", 1.0: "after"})
    root = Tree(svg).root
    assert root.iter("title")[0].all_text() == "Canary <b>"
    by_key = {n.attrs["data-series"]: n.attrs["points"].split() for n in root.iter("polyline")}
    assert len(by_key["canary"]) == 2 and len(by_key["control"]) == 1  # NaN left out
    assert len(root.iter("circle")) == 3
    (y_hi, y_lo) = (float(p.split(",")[1]) for p in by_key["canary"])
    assert y_hi < y_lo  # 4.0 is drawn above 0.5
    texts = {t.all_text() for t in root.iter("text")}
    assert {"before", "after", "period", "bps"} <= texts
    assert not re.search(r"nan|inf", svg, re.IGNORECASE)


def test_interval_chart_draws_each_ci_around_its_estimate_and_a_zero_line() -> None:
    rows = [Interval("m", "mean: matched", 2.0, 1.0, 3.0, "#111"),
            Interval("n", "mean: naive", -1.0, None, None, "#222")]
    root = Tree(interval_chart(key="est", title="t", rows=rows)).root
    lines = root.iter("line")
    zero = next(n for n in lines if n.attrs.get("stroke-dasharray") == "3,3")
    (ci,) = [n for n in lines if n.attrs.get("data-series") == "m"]
    dots = {n.attrs["data-series"]: float(n.attrs["cx"]) for n in root.iter("circle")}
    assert float(ci.attrs["x1"]) < dots["m"] < float(ci.attrs["x2"])
    assert dots["n"] < float(zero.attrs["x1"]) < dots["m"]
    assert not [n for n in lines if n.attrs.get("data-series") == "n"]  # no CI, no bar
    assert {"mean: matched", "+2.00", "-1.00"} <= {t.all_text() for t in root.iter("text")}


def test_charts_without_data_say_so() -> None:
    for svg in (xy_chart(key="e", title="t", lines=[], x_label="x", y_label="y"),
                interval_chart(key="e", title="t", rows=[])):
        assert "no data" in svg and svg.startswith("<svg") and svg.endswith("</svg>")
