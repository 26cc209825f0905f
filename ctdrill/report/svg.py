"""Small inline-SVG charts (pure): time series with shaded bands, log-scale bars, and
step curves. No JavaScript and no library, so a report opens anywhere, offline.

Every drawn series carries `class="series series-KEY"` and `data-series="KEY"`, so a
test (or a reader's browser tools) can find what was plotted.
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


@dataclass(frozen=True)
class Line:
    """One series. `step`: hold each value until the next x (a rate schedule)."""

    key: str
    label: str
    points: Sequence[tuple[float, float]]
    color: str
    axis: Literal["left", "right"] = "left"
    dash: str = ""
    width: float = 1.6
    step: bool = False
    area: bool = False


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


def log_bounds(values: Sequence[float]) -> tuple[float, float]:
    """Decades covering the positive values (at least one decade)."""
    pos = [v for v in values if v > 0 and math.isfinite(v)]
    if not pos:
        return 0.1, 10.0
    lo = 10.0 ** math.floor(math.log10(min(pos)))
    hi = 10.0 ** math.ceil(math.log10(max(pos)))
    return lo, hi if hi > lo else lo * 10


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


def time_chart(*, key: str, title: str, x_max: float, lines: Sequence[Line],
               shades: Sequence[Shade] = (), vmarks: Sequence[Mark] = (),
               hmarks: Sequence[Mark] = (), y_label: str = "", right_label: str = "",
               y_fmt: Fmt = num, log: bool = False, width: int = 1000,
               height: int = 190) -> str:
    """A time-series chart over [0, x_max] seconds with bands, references and an
    optional right axis (e.g. the surge rate under a table-ratio line)."""
    ml, mr, mt, mb = 58, 62 if any(ln.axis == "right" for ln in lines) else 18, 30, 28
    pw, ph = width - ml - mr, height - mt - mb
    x_max = x_max if x_max > 0 else 1.0
    sx = _Scale(0.0, x_max, ml, ml + pw)
    left = [y for ln in lines if ln.axis == "left" for _, y in ln.points]
    left += [m.at for m in hmarks]
    if log:
        lo, hi = log_bounds(left)
        sy = _Scale(lo, hi, mt + ph, mt, log=True)
    else:
        sy = _Scale(0.0, nice_max(left), mt + ph, mt)
    right = [y for ln in lines if ln.axis == "right" for _, y in ln.points]
    sr = _Scale(0.0, nice_max(right), mt + ph, mt)
    clip = "clip-" + "".join(c if c.isalnum() or c in "-_" else "_" for c in key)
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" class="chart chart-{html_text(key)}" '
           f'viewBox="0 0 {width} {height}" width="100%" role="img" '
           f'aria-label="{html_text(title)}" {FONT} font-size="11" fill="{TEXT}">',
           f"<title>{html_text(title)}</title>",
           f'<defs><clipPath id="{clip}"><rect x="{ml}" y="{mt - 2}" width="{pw}" '
           f'height="{ph + 4}"/></clipPath></defs>']
    for s in shades:
        x0, x1 = sx(max(0.0, s.x0)), sx(min(x_max, s.x1))
        if x1 > x0:
            out.append(f'<rect class="band" data-regime="{html_text(s.label)}" x="{x0:.1f}" '
                       f'y="{mt}" width="{x1 - x0:.1f}" height="{ph}" '
                       f'fill="{html_text(s.color)}"/>')
    for t in sy.ticks():
        y = sy(t)
        out.append(f'<line x1="{ml}" y1="{y:.1f}" x2="{ml + pw}" y2="{y:.1f}" '
                   f'stroke="{GRID}"/><text x="{ml - 6}" y="{y + 3.5:.1f}" '
                   f'text-anchor="end">{html_text(y_fmt(t))}</text>')
    if right:
        for t in sr.ticks():
            y = sr(t)
            out.append(f'<text x="{ml + pw + 6}" y="{y + 3.5:.1f}">{html_text(num(t))}</text>')
    for t in nice_ticks(0.0, x_max, 10):
        x = sx(t)
        out.append(f'<line x1="{x:.1f}" y1="{mt + ph}" x2="{x:.1f}" y2="{mt + ph + 4}" '
                   f'stroke="{AXIS}"/><text x="{x:.1f}" y="{mt + ph + 16}" '
                   f'text-anchor="middle">{num(t)}s</text>')
    out.append(f'<rect x="{ml}" y="{mt}" width="{pw}" height="{ph}" fill="none" '
               f'stroke="{AXIS}" stroke-width="0.8"/>')
    for m in hmarks:
        y = sy(m.at)
        out.append(f'<line class="ref" x1="{ml}" y1="{y:.1f}" x2="{ml + pw}" y2="{y:.1f}" '
                   f'stroke="{html_text(m.color)}" stroke-dasharray="2 3"/>'
                   f'<text x="{ml + pw - 4}" y="{y - 3:.1f}" fill="{html_text(m.color)}" '
                   f'text-anchor="end">'
                   f'{html_text(m.label)}</text>')
    for m in vmarks:
        x = sx(m.at)
        out.append(f'<line class="step-mark" x1="{x:.1f}" y1="{mt}" x2="{x:.1f}" '
                   f'y2="{mt + ph}" stroke="{html_text(m.color)}" stroke-dasharray="4 3"/>'
                   f'<text x="{x + 3:.1f}" y="{mt + 11}" fill="{html_text(m.color)}">'
                   f'{html_text(m.label)}</text>')
    out.append(f'<g clip-path="url(#{clip})">')
    for ln in sorted(lines, key=lambda ln: ln.axis != "right"):  # right axis underneath
        scale = sr if ln.axis == "right" else sy
        pts = list(ln.points)
        if ln.step:
            held: list[tuple[float, float]] = []
            for i, (x, y) in enumerate(pts):
                if i:
                    held.append((x, pts[i - 1][1]))
                held.append((x, y))
            pts = held
        px = _decimate([(sx(x), scale(y)) for x, y in pts], pw)
        if not px:
            continue
        dash = f' stroke-dasharray="{html_text(ln.dash)}"' if ln.dash else ""
        if ln.area:
            base = mt + ph
            out.append(f'<polygon class="area" points="{px[0][0]:.1f},{base} {_pts(px)} '
                       f'{px[-1][0]:.1f},{base}" fill="{html_text(ln.color)}" '
                       'fill-opacity="0.12"/>')
        out.append(f'<polyline class="series series-{html_text(ln.key)}" '
                   f'data-series="{html_text(ln.key)}" points="{_pts(px)}" fill="none" '
                   f'stroke="{html_text(ln.color)}" stroke-width="{ln.width}" '
                   f'stroke-linejoin="round"{dash}/>')
    out.append("</g>")
    out.append(f'<text x="{ml}" y="{mt - 12}" font-weight="600" font-size="12.5" '
               f'fill="#22272b">{html_text(title)}</text>')
    if y_label:
        out.append(f'<text x="{ml - 6}" y="{mt - 12}" text-anchor="end">'
                   f'{html_text(y_label)}</text>')
    if right_label and right:
        out.append(f'<text x="{ml + pw + 6}" y="{mt - 12}">{html_text(right_label)}</text>')
    out.append(_legend([(ln.label, ln.color, ln.dash) for ln in lines if ln.points],
                       ml + pw, mt - 10))
    out.append("</svg>")
    return "".join(out)


@dataclass(frozen=True)
class Bar:
    key: str
    label: str
    color: str


def bar_chart(*, key: str, title: str, groups: Sequence[str], bars: Sequence[Bar],
              values: Sequence[Sequence[float | None]], group_colors: Sequence[str] = (),
              unit: str = "ms", width: int = 1000, height: int = 220) -> str:
    """Grouped bars on a log axis (latencies span decades): values[group][bar]. The
    title is the SVG's accessible name; the page's heading shows it."""
    ml, mr, mt, mb = 58, 18, 30, 34
    pw, ph = width - ml - mr, height - mt - mb
    flat = [v for row in values for v in row if v is not None]
    lo, hi = log_bounds(flat)
    sy = _Scale(lo, hi, mt + ph, mt, log=True)
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" class="chart chart-{html_text(key)}" '
           f'viewBox="0 0 {width} {height}" width="100%" role="img" '
           f'aria-label="{html_text(title)}" {FONT} font-size="11" fill="{TEXT}">',
           f"<title>{html_text(title)}</title>"]
    for t in sy.ticks():
        y = sy(t)
        out.append(f'<line x1="{ml}" y1="{y:.1f}" x2="{ml + pw}" y2="{y:.1f}" '
                   f'stroke="{GRID}"/><text x="{ml - 6}" y="{y + 3.5:.1f}" '
                   f'text-anchor="end">{html_text(num(t))}</text>')
    gw = pw / max(1, len(groups))
    bw = min(46.0, gw * 0.8 / max(1, len(bars)))
    for g, (name, row) in enumerate(zip(groups, values, strict=True)):
        x0 = ml + g * gw + (gw - bw * len(bars)) / 2
        if g < len(group_colors):
            out.append(f'<rect x="{ml + g * gw + 2:.1f}" y="{mt}" width="{gw - 4:.1f}" '
                       f'height="{ph}" fill="{html_text(group_colors[g])}"/>')
        for b, (bar, v) in enumerate(zip(bars, row, strict=True)):
            x = x0 + b * bw
            if v is None:
                continue
            y = sy(v)
            out.append(f'<rect class="series series-{html_text(bar.key)}" '
                       f'data-series="{html_text(bar.key)}" data-group="{html_text(name)}" '
                       f'x="{x + 2:.1f}" y="{y:.1f}" width="{bw - 4:.1f}" '
                       f'height="{max(0.5, mt + ph - y):.1f}" fill="{html_text(bar.color)}">'
                       f"<title>{html_text(name)} {html_text(bar.label)}: {v:.4g} "
                       f"{html_text(unit)}</title>"
                       f'</rect><text x="{x + bw / 2:.1f}" y="{y - 3:.1f}" '
                       f'text-anchor="middle" font-size="10">{html_text(num(v))}</text>')
        out.append(f'<text x="{ml + g * gw + gw / 2:.1f}" y="{mt + ph + 16}" '
                   f'text-anchor="middle" font-weight="600">{html_text(name)}</text>')
    out.append(f'<rect x="{ml}" y="{mt}" width="{pw}" height="{ph}" fill="none" '
               f'stroke="{AXIS}" stroke-width="0.8"/>')
    out.append(f'<text x="{ml - 6}" y="{mt - 12}" text-anchor="end">{html_text(unit)}</text>')
    out.append(_legend([(b.label, b.color, "") for b in bars], ml + pw, mt - 10))
    out.append("</svg>")
    return "".join(out)


def step_chart(*, key: str, title: str, steps: Sequence[str],
               values: Sequence[float | None], color: str, y_fmt: Fmt = num,
               width: int = 245, height: int = 170) -> str:
    """One metric across steps (categorical x): the response curve of a capacity step."""
    ml, mr, mt, mb = 40, 12, 26, 30
    pw, ph = width - ml - mr, height - mt - mb
    top = nice_max([v * 1.15 for v in values if v is not None])  # room for value labels
    sy = _Scale(0.0, top, mt + ph, mt)
    gx = pw / max(1, len(steps))
    xs = [ml + gx * (i + 0.5) for i in range(len(steps))]
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" class="chart chart-{html_text(key)}" '
           f'viewBox="0 0 {width} {height}" width="{width}" role="img" '
           f'aria-label="{html_text(title)}" {FONT} font-size="10" fill="{TEXT}">',
           f"<title>{html_text(title)}</title>"]
    for t in sy.ticks():
        y = sy(t)
        out.append(f'<line x1="{ml}" y1="{y:.1f}" x2="{ml + pw}" y2="{y:.1f}" '
                   f'stroke="{GRID}"/><text x="{ml - 4}" y="{y + 3:.1f}" '
                   f'text-anchor="end">{html_text(y_fmt(t))}</text>')
    pts = [(x, sy(v)) for x, v in zip(xs, values, strict=True) if v is not None]
    if pts:
        out.append(f'<polyline class="series series-{html_text(key)}" '
                   f'data-series="{html_text(key)}" points="{_pts(pts)}" fill="none" '
                   f'stroke="{html_text(color)}" stroke-width="2"/>')
    for x, v in zip(xs, values, strict=True):
        if v is None:
            out.append(f'<text x="{x:.1f}" y="{mt + ph - 4}" text-anchor="middle">n/a</text>')
            continue
        y = sy(v)
        out.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3.5" fill="{html_text(color)}"/>'
                   f'<text x="{x:.1f}" y="{y - 7:.1f}" text-anchor="middle" '
                   f'fill="#22272b">{html_text(y_fmt(v))}</text>')
    for x, name in zip(xs, steps, strict=True):
        out.append(f'<text x="{x:.1f}" y="{mt + ph + 14}" text-anchor="middle">'
                   f"{html_text(name)}</text>")
    out.append(f'<rect x="{ml}" y="{mt}" width="{pw}" height="{ph}" fill="none" '
               f'stroke="{AXIS}" stroke-width="0.8"/>')
    out.append(f'<text x="{ml}" y="{mt - 10}" font-weight="600" font-size="11.5" '
               f'fill="#22272b">{html_text(title)}</text></svg>')
    return "".join(out)
