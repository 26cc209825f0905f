"""Small inline-SVG charts for the HTML report: no JavaScript, no network, no fonts to
fetch, so the file opens anywhere (an air-gapped desk, a CI artifact)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

PALETTE = ("#c0392b", "#2471a3", "#7d8c8d", "#b9770e", "#1e8449", "#6c3483")
FONT = 'font-family="sans-serif" font-size="11"'


@dataclass(frozen=True)
class Series:
    name: str
    xs: Sequence[float]
    ys: Sequence[float]
    color: str


@dataclass(frozen=True)
class Interval:
    label: str
    value: float | None
    lo: float | None
    hi: float | None
    color: str = PALETTE[1]


def _ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    """Round tick values covering [lo, hi]."""
    if not math.isfinite(lo) or not math.isfinite(hi) or hi <= lo:
        return [lo]
    raw = (hi - lo) / n
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    first = math.ceil(lo / step) * step
    return [round(first + i * step, 10) for i in range(int((hi - first) / step) + 1)]


def _fmt(v: float) -> str:
    return f"{v:g}" if abs(v) >= 0.01 or v == 0 else f"{v:.1e}"


def _frame(width: int, height: int, title: str, body: str) -> str:
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
            f'viewBox="0 0 {width} {height}" role="img"><title>{escape(title)}</title>'
            f'<rect width="{width}" height="{height}" fill="#fff"/>'
            f'<text x="8" y="16" {FONT} font-weight="bold">{escape(title)}</text>'
            f"{body}</svg>")


def line_chart(series: Sequence[Series], title: str, x_label: str, y_label: str,
               x_tick_labels: dict[float, str] | None = None, width: int = 640,
               height: int = 300) -> str:
    """Lines with markers; x_tick_labels replaces numeric x ticks (e.g. before/after)."""
    left, right, top, bottom = 56, 130, 28, 40
    xs = [x for s in series for x in s.xs]
    ys = [y for s in series for y in s.ys if math.isfinite(y)]
    if not xs or not ys:
        return _frame(width, height, title, f'<text x="60" y="60" {FONT}>no data</text>')
    x0, x1 = min(xs), max(xs)
    y0, y1 = min(ys), max(ys)
    if x1 == x0:
        x0, x1 = x0 - 1, x1 + 1
    pad = (y1 - y0) * 0.08 or 1.0
    y0, y1 = y0 - pad, y1 + pad
    pw, ph = width - left - right, height - top - bottom

    def px(x: float) -> float:
        return left + (x - x0) / (x1 - x0) * pw

    def py(y: float) -> float:
        return top + (1 - (y - y0) / (y1 - y0)) * ph

    out = [f'<line x1="{left}" y1="{top + ph}" x2="{left + pw}" y2="{top + ph}" '
           'stroke="#333"/>',
           f'<line x1="{left}" y1="{top}" x2="{left}" y2="{top + ph}" stroke="#333"/>']
    for t in _ticks(y0, y1):
        out.append(f'<line x1="{left}" y1="{py(t):.1f}" x2="{left + pw}" y2="{py(t):.1f}" '
                   f'stroke="#eee"/><text x="{left - 4}" y="{py(t) + 4:.1f}" {FONT} '
                   f'text-anchor="end">{_fmt(t)}</text>')
    xt = x_tick_labels or {t: _fmt(t) for t in _ticks(x0, x1)}
    for t, lab in xt.items():
        out.append(f'<text x="{px(t):.1f}" y="{top + ph + 14}" {FONT} '
                   f'text-anchor="middle">{escape(lab)}</text>')
    out.append(f'<text x="{left + pw / 2}" y="{height - 6}" {FONT} '
               f'text-anchor="middle">{escape(x_label)}</text>')
    out.append(f'<text x="12" y="{top + ph / 2}" {FONT} text-anchor="middle" '
               f'transform="rotate(-90 12 {top + ph / 2})">{escape(y_label)}</text>')
    for i, s in enumerate(series):
        pts = [(px(x), py(y)) for x, y in zip(s.xs, s.ys, strict=True) if math.isfinite(y)]
        path = " ".join(f"{a:.1f},{b:.1f}" for a, b in pts)
        out.append(f'<polyline points="{path}" fill="none" stroke="{s.color}" '
                   'stroke-width="2"/>')
        out.extend(f'<circle cx="{a:.1f}" cy="{b:.1f}" r="3" fill="{s.color}"/>'
                   for a, b in pts)
        ly = top + 12 + 16 * i
        out.append(f'<rect x="{left + pw + 10}" y="{ly - 8}" width="10" height="10" '
                   f'fill="{s.color}"/><text x="{left + pw + 24}" y="{ly + 1}" {FONT}>'
                   f"{escape(s.name)}</text>")
    return _frame(width, height, title, "".join(out))


def interval_chart(rows: Sequence[Interval], title: str, unit: str = "bps",
                   width: int = 640) -> str:
    """A forest plot: one row per estimate, a dot and its CI, a line at zero."""
    left, right, top, row_h = 200, 70, 28, 22
    height = top + row_h * max(1, len(rows)) + 30
    vals = [v for r in rows for v in (r.value, r.lo, r.hi) if v is not None]
    if not vals:
        return _frame(width, height, title, f'<text x="60" y="60" {FONT}>no data</text>')
    lo, hi = min(*vals, 0.0), max(*vals, 0.0)
    pad = (hi - lo) * 0.08 or 1.0
    lo, hi = lo - pad, hi + pad
    pw = width - left - right

    def px(x: float) -> float:
        return left + (x - lo) / (hi - lo) * pw

    bottom = top + row_h * len(rows)
    out = [f'<line x1="{px(0):.1f}" y1="{top - 4}" x2="{px(0):.1f}" y2="{bottom}" '
           'stroke="#999" stroke-dasharray="3,3"/>']
    for t in _ticks(lo, hi):
        out.append(f'<text x="{px(t):.1f}" y="{bottom + 14}" {FONT} '
                   f'text-anchor="middle">{_fmt(t)}</text>')
    out.append(f'<text x="{left + pw / 2}" y="{bottom + 27}" {FONT} '
               f'text-anchor="middle">{escape(unit)}</text>')
    for i, r in enumerate(rows):
        y = top + row_h * i + row_h / 2
        out.append(f'<text x="{left - 6}" y="{y + 4:.1f}" {FONT} '
                   f'text-anchor="end">{escape(r.label)}</text>')
        if r.lo is not None and r.hi is not None:
            out.append(f'<line x1="{px(r.lo):.1f}" y1="{y:.1f}" x2="{px(r.hi):.1f}" '
                       f'y2="{y:.1f}" stroke="{r.color}" stroke-width="2"/>')
        if r.value is not None:
            out.append(f'<circle cx="{px(r.value):.1f}" cy="{y:.1f}" r="4" '
                       f'fill="{r.color}"/><text x="{width - right + 6}" y="{y + 4:.1f}" '
                       f'{FONT}>{r.value:+.2f}</text>')
    return _frame(width, height, title, "".join(out))
