"""The one SVG plotting module (pure): every chart of the drill report and of the
analysis report. Time series with shaded bands, log-scale bars, step curves, x-y curves
and forest plots share one set of ticks, scales, axes and legends. No JavaScript and no
library, so a report opens anywhere, offline (an air-gapped desk, a CI artifact).

Every drawn series carries `class="series series-KEY"` and `data-series="KEY"`, so a
test (or a reader's browser tools) can find what was plotted. Every text goes through
`report.safe.html_text`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

from ctdrill.report.safe import html_text

Fmt = Callable[[float], str]

FONT = "font-family=\"system-ui, -apple-system, 'Segoe UI', sans-serif\""
AXIS = "#9aa0a6"
GRID = "#eceff1"
TEXT = "#4a5056"
INK = "#22272b"


def num(v: float) -> str:
    """Compact axis numbers: 0.85, 12, 4.8k, 1.2M."""
    a = abs(v)
    if a >= 1e6:
        return f"{v / 1e6:.3g}M"
    if a >= 1e4:
        return f"{v / 1e3:.3g}k"
    if a >= 1000:
        return f"{v / 1e3:.2g}k" if v % 1000 else f"{v / 1e3:.0f}k"
    if a == 0:
        return "0"
    return f"{v:.3g}"


def nice_ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    """Round tick values covering [lo, hi] (1, 2, 2.5, 5 x 10^k steps)."""
    if not (math.isfinite(lo) and math.isfinite(hi)) or hi <= lo:
        return [lo]
    raw = (hi - lo) / max(1, n)
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    first = math.ceil(lo / step - 1e-9) * step
    ticks = []
    v = first
    while v <= hi + step * 1e-9:
        ticks.append(round(v, 12))
        v += step
    return ticks


def nice_max(values: Sequence[float], floor: float = 1e-9) -> float:
    """An upper bound just above the data that lands on a round tick."""
    top = max([v for v in values if math.isfinite(v)] or [0.0])
    if top <= floor:
        return 1.0
    ticks = nice_ticks(0.0, top * 1.04)
    return max(ticks[-1], top * 1.04)


def log_bounds(values: Sequence[float]) -> tuple[float, float]:
    """Decades covering the positive values (at least one decade)."""
    pos = [v for v in values if v > 0 and math.isfinite(v)]
    if not pos:
        return 0.1, 10.0
    lo = 10.0 ** math.floor(math.log10(min(pos)))
    hi = 10.0 ** math.ceil(math.log10(max(pos)))
    return lo, hi if hi > lo else lo * 10


@dataclass(frozen=True)
class Line:
    """One series. `step`: hold each value until the next x (a rate schedule);
    `markers`: a dot on every point (few points, e.g. quantile curves)."""

    key: str
    label: str
    points: Sequence[tuple[float, float]]
    color: str
    axis: Literal["left", "right"] = "left"
    dash: str = ""
    width: float = 1.6
    step: bool = False
    area: bool = False
    markers: bool = False


@dataclass(frozen=True)
class Shade:
    """A shaded span of x (a regime band)."""

    x0: float
    x1: float
    color: str
    label: str


@dataclass(frozen=True)
class Mark:
    """A labelled reference: vertical (an x, e.g. a step start) or horizontal (a y)."""

    at: float
    label: str
    color: str = AXIS


@dataclass(frozen=True)
class Bar:
    key: str
    label: str
    color: str


@dataclass(frozen=True)
class Interval:
    """One row of a forest plot: an estimate and its confidence interval."""

    key: str
    label: str
    value: float | None
    lo: float | None
    hi: float | None
    color: str


@dataclass(frozen=True)
class _Area:
    """The plot rectangle inside a chart's margins (whole pixels)."""

    left: int
    top: int
    width: int
    height: int

    @property
    def right(self) -> int:
        return self.left + self.width

    @property
    def bottom(self) -> int:
        return self.top + self.height


class _Scale:
    def __init__(self, lo: float, hi: float, p0: float, p1: float, log: bool = False) -> None:
        self.lo, self.hi, self.p0, self.p1, self.log = lo, hi, p0, p1, log

    def __call__(self, v: float) -> float:
        if self.log:
            v = math.log10(max(v, self.lo))
            lo, hi = math.log10(self.lo), math.log10(self.hi)
        else:
            lo, hi = self.lo, self.hi
        f = (v - lo) / (hi - lo) if hi > lo else 0.0
        f = min(max(f, -0.02), 1.02)
        return self.p0 + f * (self.p1 - self.p0)

    def ticks(self) -> list[float]:
        if self.log:
            return [10.0 ** k for k in range(round(math.log10(self.lo)),
                                             round(math.log10(self.hi)) + 1)]
        return nice_ticks(self.lo, self.hi)


def _decimate(px: list[tuple[float, float]], columns: int) -> list[tuple[float, float]]:
    """Keep the first, min, max and last point of each pixel column, so spikes survive
    and a long drill does not make a huge file."""
    if len(px) <= columns * 2:
        return px
    out: list[tuple[float, float]] = []
    bucket: list[tuple[float, float]] = []
    col = math.floor(px[0][0])
    for p in px:
        c = math.floor(p[0])
        if c != col and bucket:
            out += _keep(bucket)
            bucket = []
            col = c
        bucket.append(p)
    out += _keep(bucket)
    return out


def _keep(bucket: list[tuple[float, float]]) -> list[tuple[float, float]]:
    lo = min(bucket, key=lambda p: p[1])
    hi = max(bucket, key=lambda p: p[1])
    picked = {id(p): p for p in (bucket[0], lo, hi, bucket[-1])}
    return sorted(picked.values(), key=lambda p: p[0])


def _pts(px: Sequence[tuple[float, float]]) -> str:
    return " ".join(f"{x:.1f},{y:.1f}" for x, y in px)


def _open(key: str, title: str, width: int, height: int, *, font_size: int = 11,
          width_attr: str = "100%") -> list[str]:
    """The <svg> element and its accessible name (the title)."""
    return [f'<svg xmlns="http://www.w3.org/2000/svg" class="chart chart-{html_text(key)}" '
            f'viewBox="0 0 {width} {height}" width="{width_attr}" role="img" '
            f'aria-label="{html_text(title)}" {FONT} font-size="{font_size}" fill="{TEXT}">',
            f"<title>{html_text(title)}</title>"]


def _y_grid(sy: _Scale, a: _Area, fmt: Fmt, dx: int = 6, dy: float = 3.5) -> list[str]:
    """Horizontal grid lines with their labels left of the plot."""
    out = []
    for t in sy.ticks():
        y = sy(t)
        out.append(f'<line x1="{a.left}" y1="{y:.1f}" x2="{a.right}" y2="{y:.1f}" '
                   f'stroke="{GRID}"/><text x="{a.left - dx}" y="{y + dy:.1f}" '
                   f'text-anchor="end">{html_text(fmt(t))}</text>')
    return out


def _x_labels(sx: _Scale, labels: dict[float, str], a: _Area, tick: bool = True) -> list[str]:
    """Labels under the plot at their x (with a short tick mark)."""
    out = []
    for t, text in labels.items():
        x = sx(t)
        mark = (f'<line x1="{x:.1f}" y1="{a.bottom}" x2="{x:.1f}" y2="{a.bottom + 4}" '
                f'stroke="{AXIS}"/>') if tick else ""
        out.append(f'{mark}<text x="{x:.1f}" y="{a.bottom + 16}" '
                   f'text-anchor="middle">{html_text(text)}</text>')
    return out


def _border(a: _Area) -> str:
    return (f'<rect x="{a.left}" y="{a.top}" width="{a.width}" height="{a.height}" '
            f'fill="none" stroke="{AXIS}" stroke-width="0.8"/>')


def _legend(items: Sequence[tuple[str, str, str]], x_right: float, y: float) -> str:
    """Swatches right-aligned on one row: (label, color, dash)."""
    parts = []
    x = x_right
    for label, color, dash in reversed(items):
        w = 7 * len(label) + 30
        x -= w
        d = f' stroke-dasharray="{html_text(dash)}"' if dash else ""
        parts.append(f'<line x1="{x:.0f}" y1="{y - 4:.0f}" x2="{x + 18:.0f}" y2="{y - 4:.0f}" '
                     f'stroke="{html_text(color)}" stroke-width="2.5"{d}/>'
                     f'<text x="{x + 23:.0f}" y="{y:.0f}">{html_text(label)}</text>')
    return "".join(parts)


def _heading(title: str, x: float, y: float, size: float = 12.5) -> str:
    return (f'<text x="{x}" y="{y}" font-weight="600" font-size="{size}" '
            f'fill="{INK}">{html_text(title)}</text>')


def _polyline(ln: Line, px: Sequence[tuple[float, float]]) -> str:
    dash = f' stroke-dasharray="{html_text(ln.dash)}"' if ln.dash else ""
    return (f'<polyline class="series series-{html_text(ln.key)}" '
            f'data-series="{html_text(ln.key)}" points="{_pts(px)}" fill="none" '
            f'stroke="{html_text(ln.color)}" stroke-width="{ln.width}" '
            f'stroke-linejoin="round"{dash}/>')


def _held(points: Sequence[tuple[float, float]]) -> list[tuple[float, float]]:
    """A step series: each value held until the next x."""
    held: list[tuple[float, float]] = []
    for i, (x, y) in enumerate(points):
        if i:
            held.append((x, points[i - 1][1]))
        held.append((x, y))
    return held


def _series(ln: Line, sx: _Scale, sy: _Scale, a: _Area) -> list[str]:
    """One line of a time chart: held if a step, thinned to the plot's pixel columns."""
    pts = _held(list(ln.points)) if ln.step else list(ln.points)
    px = _decimate([(sx(x), sy(y)) for x, y in pts], a.width)
    if not px:
        return []
    out = []
    if ln.area:
        out.append(f'<polygon class="area" points="{px[0][0]:.1f},{a.bottom} {_pts(px)} '
                   f'{px[-1][0]:.1f},{a.bottom}" fill="{html_text(ln.color)}" '
                   'fill-opacity="0.12"/>')
    out.append(_polyline(ln, px))
    return out


def _bands(shades: Sequence[Shade], sx: _Scale, x_max: float, a: _Area) -> list[str]:
    out = []
    for s in shades:
        x0, x1 = sx(max(0.0, s.x0)), sx(min(x_max, s.x1))
        if x1 > x0:
            out.append(f'<rect class="band" data-regime="{html_text(s.label)}" x="{x0:.1f}" '
                       f'y="{a.top}" width="{x1 - x0:.1f}" height="{a.height}" '
                       f'fill="{html_text(s.color)}"/>')
    return out


def _refs(hmarks: Sequence[Mark], vmarks: Sequence[Mark], sx: _Scale, sy: _Scale,
          a: _Area) -> list[str]:
    """Horizontal references (limits) and vertical ones (step starts), labelled."""
    out = []
    for m in hmarks:
        y = sy(m.at)
        out.append(f'<line class="ref" x1="{a.left}" y1="{y:.1f}" x2="{a.right}" '
                   f'y2="{y:.1f}" stroke="{html_text(m.color)}" stroke-dasharray="2 3"/>'
                   f'<text x="{a.right - 4}" y="{y - 3:.1f}" fill="{html_text(m.color)}" '
                   f'text-anchor="end">'
                   f'{html_text(m.label)}</text>')
    for m in vmarks:
        x = sx(m.at)
        out.append(f'<line class="step-mark" x1="{x:.1f}" y1="{a.top}" x2="{x:.1f}" '
                   f'y2="{a.bottom}" stroke="{html_text(m.color)}" stroke-dasharray="4 3"/>'
                   f'<text x="{x + 3:.1f}" y="{a.top + 11}" fill="{html_text(m.color)}">'
                   f'{html_text(m.label)}</text>')
    return out


def _left_scale(values: Sequence[float], a: _Area, log: bool) -> _Scale:
    if log:
        lo, hi = log_bounds(values)
        return _Scale(lo, hi, a.bottom, a.top, log=True)
    return _Scale(0.0, nice_max(values), a.bottom, a.top)


def _clip_id(key: str) -> str:
    return "clip-" + "".join(c if c.isalnum() or c in "-_" else "_" for c in key)


def time_chart(*, key: str, title: str, x_max: float, lines: Sequence[Line],
               shades: Sequence[Shade] = (), vmarks: Sequence[Mark] = (),
               hmarks: Sequence[Mark] = (), y_label: str = "", right_label: str = "",
               y_fmt: Fmt = num, log: bool = False, width: int = 1000,
               height: int = 190) -> str:
    """A time-series chart over [0, x_max] seconds with bands, references and an
    optional right axis (e.g. the surge rate under a table-ratio line)."""
    ml, mr = 58, 62 if any(ln.axis == "right" for ln in lines) else 18
    a = _Area(ml, 30, width - ml - mr, height - 30 - 28)
    x_max = x_max if x_max > 0 else 1.0
    sx = _Scale(0.0, x_max, a.left, a.right)
    left = [y for ln in lines if ln.axis == "left" for _, y in ln.points]
    sy = _left_scale(left + [m.at for m in hmarks], a, log)
    right = [y for ln in lines if ln.axis == "right" for _, y in ln.points]
    sr = _Scale(0.0, nice_max(right), a.bottom, a.top)
    clip = _clip_id(key)
    out = _open(key, title, width, height)
    out.append(f'<defs><clipPath id="{clip}"><rect x="{a.left}" y="{a.top - 2}" '
               f'width="{a.width}" height="{a.height + 4}"/></clipPath></defs>')
    out += _bands(shades, sx, x_max, a)
    out += _y_grid(sy, a, y_fmt)
    if right:
        out += [f'<text x="{a.right + 6}" y="{sr(t) + 3.5:.1f}">{html_text(num(t))}</text>'
                for t in sr.ticks()]
    out += _x_labels(sx, {t: f"{num(t)}s" for t in nice_ticks(0.0, x_max, 10)}, a)
    out.append(_border(a))
    out += _refs(hmarks, vmarks, sx, sy, a)
    out.append(f'<g clip-path="url(#{clip})">')
    for ln in sorted(lines, key=lambda ln: ln.axis != "right"):  # right axis underneath
        out += _series(ln, sx, sr if ln.axis == "right" else sy, a)
    out.append("</g>")
    out.append(_heading(title, a.left, a.top - 12))
    if y_label:
        out.append(f'<text x="{a.left - 6}" y="{a.top - 12}" text-anchor="end">'
                   f'{html_text(y_label)}</text>')
    if right_label and right:
        out.append(f'<text x="{a.right + 6}" y="{a.top - 12}">{html_text(right_label)}</text>')
    out.append(_legend([(ln.label, ln.color, ln.dash) for ln in lines if ln.points],
                       a.right, a.top - 10))
    out.append("</svg>")
    return "".join(out)


def _bar_group(name: str, row: Sequence[float | None], bars: Sequence[Bar], x0: float,
               bw: float, sy: _Scale, a: _Area, unit: str) -> list[str]:
    out = []
    for b, (bar, v) in enumerate(zip(bars, row, strict=True)):
        x = x0 + b * bw
        if v is None:
            continue
        y = sy(v)
        out.append(f'<rect class="series series-{html_text(bar.key)}" '
                   f'data-series="{html_text(bar.key)}" data-group="{html_text(name)}" '
                   f'x="{x + 2:.1f}" y="{y:.1f}" width="{bw - 4:.1f}" '
                   f'height="{max(0.5, a.bottom - y):.1f}" fill="{html_text(bar.color)}">'
                   f"<title>{html_text(name)} {html_text(bar.label)}: {v:.4g} "
                   f"{html_text(unit)}</title>"
                   f'</rect><text x="{x + bw / 2:.1f}" y="{y - 3:.1f}" '
                   f'text-anchor="middle" font-size="10">{html_text(num(v))}</text>')
    return out


def bar_chart(*, key: str, title: str, groups: Sequence[str], bars: Sequence[Bar],
              values: Sequence[Sequence[float | None]], group_colors: Sequence[str] = (),
              unit: str = "ms", width: int = 1000, height: int = 220) -> str:
    """Grouped bars on a log axis (latencies span decades): values[group][bar]. The
    title is the SVG's accessible name; the page's heading shows it."""
    a = _Area(58, 30, width - 58 - 18, height - 30 - 34)
    lo, hi = log_bounds([v for row in values for v in row if v is not None])
    sy = _Scale(lo, hi, a.bottom, a.top, log=True)
    out = _open(key, title, width, height) + _y_grid(sy, a, num)
    gw = a.width / max(1, len(groups))
    bw = min(46.0, gw * 0.8 / max(1, len(bars)))
    for g, (name, row) in enumerate(zip(groups, values, strict=True)):
        if g < len(group_colors):
            out.append(f'<rect x="{a.left + g * gw + 2:.1f}" y="{a.top}" '
                       f'width="{gw - 4:.1f}" height="{a.height}" '
                       f'fill="{html_text(group_colors[g])}"/>')
        x0 = a.left + g * gw + (gw - bw * len(bars)) / 2
        out += _bar_group(name, row, bars, x0, bw, sy, a, unit)
        out.append(f'<text x="{a.left + g * gw + gw / 2:.1f}" y="{a.bottom + 16}" '
                   f'text-anchor="middle" font-weight="600">{html_text(name)}</text>')
    out.append(_border(a))
    out.append(f'<text x="{a.left - 6}" y="{a.top - 12}" text-anchor="end">'
               f'{html_text(unit)}</text>')
    out.append(_legend([(b.label, b.color, "") for b in bars], a.right, a.top - 10))
    out.append("</svg>")
    return "".join(out)


def step_chart(*, key: str, title: str, steps: Sequence[str],
               values: Sequence[float | None], color: str, y_fmt: Fmt = num,
               width: int = 245, height: int = 170) -> str:
    """One metric across steps (categorical x): the response curve of a capacity step."""
    a = _Area(40, 26, width - 40 - 12, height - 26 - 30)
    top = nice_max([v * 1.15 for v in values if v is not None])  # room for value labels
    sy = _Scale(0.0, top, a.bottom, a.top)
    gx = a.width / max(1, len(steps))
    xs = [a.left + gx * (i + 0.5) for i in range(len(steps))]
    out = _open(key, title, width, height, font_size=10, width_attr=str(width))
    out += _y_grid(sy, a, y_fmt, dx=4, dy=3)
    pts = [(x, sy(v)) for x, v in zip(xs, values, strict=True) if v is not None]
    if pts:
        out.append(f'<polyline class="series series-{html_text(key)}" '
                   f'data-series="{html_text(key)}" points="{_pts(pts)}" fill="none" '
                   f'stroke="{html_text(color)}" stroke-width="2"/>')
    for x, v in zip(xs, values, strict=True):
        if v is None:
            out.append(f'<text x="{x:.1f}" y="{a.bottom - 4}" text-anchor="middle">'
                       'n/a</text>')
            continue
        y = sy(v)
        out.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3.5" fill="{html_text(color)}"/>'
                   f'<text x="{x:.1f}" y="{y - 7:.1f}" text-anchor="middle" '
                   f'fill="{INK}">{html_text(y_fmt(v))}</text>')
    for x, name in zip(xs, steps, strict=True):
        out.append(f'<text x="{x:.1f}" y="{a.bottom + 14}" text-anchor="middle">'
                   f"{html_text(name)}</text>")
    out.append(_border(a))
    out.append(_heading(title, a.left, a.top - 10, size=11.5) + "</svg>")
    return "".join(out)


def _no_data(key: str, title: str, width: int, height: int) -> str:
    return "".join([*_open(key, title, width, height), _heading(title, 8, 18),
                    '<text x="60" y="60">no data</text></svg>'])


def xy_chart(*, key: str, title: str, lines: Sequence[Line], x_label: str, y_label: str,
             x_ticks: dict[float, str] | None = None, width: int = 960,
             height: int = 300) -> str:
    """Lines with markers over a numeric x, y fitted to the data (not from zero): the
    analysis's quantile curves and before/after comparisons. `x_ticks` replaces the
    numeric x labels (e.g. {0: "before", 1: "after"}); non-finite y are left out."""
    pts = [(x, y) for ln in lines for x, y in ln.points if math.isfinite(y)]
    if not pts:
        return _no_data(key, title, width, height)
    a = _Area(58, 46, width - 58 - 18, height - 46 - 40)
    x0, x1 = min(x for x, _ in pts), max(x for x, _ in pts)
    if x1 == x0:
        x0, x1 = x0 - 1, x1 + 1
    y0, y1 = min(y for _, y in pts), max(y for _, y in pts)
    pad = (y1 - y0) * 0.08 or 1.0
    sx = _Scale(x0, x1, a.left, a.right)
    sy = _Scale(y0 - pad, y1 + pad, a.bottom, a.top)
    out = _open(key, title, width, height) + _y_grid(sy, a, num)
    out += _x_labels(sx, x_ticks or {t: num(t) for t in nice_ticks(x0, x1)}, a)
    out.append(_border(a))
    for ln in lines:
        px = [(sx(x), sy(y)) for x, y in ln.points if math.isfinite(y)]
        out.append(_polyline(ln, px))
        if ln.markers:
            out += [f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{html_text(ln.color)}"/>'
                    for x, y in px]
    out.append(_heading(title, a.left, 18))
    out.append(f'<text x="{a.left}" y="{a.top - 8}">{html_text(y_label)}</text>')
    out.append(f'<text x="{a.left + a.width / 2}" y="{height - 6}" text-anchor="middle">'
               f'{html_text(x_label)}</text>')
    out.append(_legend([(ln.label, ln.color, ln.dash) for ln in lines], a.right, a.top - 8))
    out.append("</svg>")
    return "".join(out)


def _interval_row(r: Interval, y: float, sx: _Scale, label_x: int, value_x: int) -> str:
    out = [f'<text x="{label_x}" y="{y + 4:.1f}" text-anchor="end">{html_text(r.label)}</text>']
    color = html_text(r.color)
    if r.lo is not None and r.hi is not None:
        out.append(f'<line class="series series-{html_text(r.key)}" '
                   f'data-series="{html_text(r.key)}" x1="{sx(r.lo):.1f}" y1="{y:.1f}" '
                   f'x2="{sx(r.hi):.1f}" y2="{y:.1f}" stroke="{color}" stroke-width="2"/>')
    if r.value is not None:
        out.append(f'<circle class="series series-{html_text(r.key)}" '
                   f'data-series="{html_text(r.key)}" cx="{sx(r.value):.1f}" cy="{y:.1f}" '
                   f'r="4" fill="{color}"/><text x="{value_x}" y="{y + 4:.1f}">'
                   f"{r.value:+.2f}</text>")
    return "".join(out)


def interval_chart(*, key: str, title: str, rows: Sequence[Interval], unit: str = "bps",
                   width: int = 960) -> str:
    """A forest plot: one row per estimate, a dot and its CI, a dashed line at zero."""
    row_h = 22
    height = 30 + row_h * max(1, len(rows)) + 38
    vals = [v for r in rows for v in (r.value, r.lo, r.hi) if v is not None]
    if not vals:
        return _no_data(key, title, width, height)
    a = _Area(260, 30, width - 260 - 70, row_h * len(rows))
    lo, hi = min(*vals, 0.0), max(*vals, 0.0)
    pad = (hi - lo) * 0.08 or 1.0
    sx = _Scale(lo - pad, hi + pad, a.left, a.right)
    out = _open(key, title, width, height)
    out.append(f'<line x1="{sx(0):.1f}" y1="{a.top - 4}" x2="{sx(0):.1f}" y2="{a.bottom}" '
               f'stroke="{AXIS}" stroke-dasharray="3,3"/>')
    out += _x_labels(sx, {t: num(t) for t in nice_ticks(lo - pad, hi + pad)}, a, tick=False)
    out.append(f'<text x="{a.left + a.width / 2}" y="{a.bottom + 28}" '
               f'text-anchor="middle">{html_text(unit)}</text>')
    out += [_interval_row(r, a.top + row_h * i + row_h / 2, sx, a.left - 6, a.right + 6)
            for i, r in enumerate(rows)]
    out.append(_heading(title, 8, 18))
    out.append("</svg>")
    return "".join(out)
