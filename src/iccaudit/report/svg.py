"""Hand-written inline SVG charts for the HTML report.

Why not matplotlib: the text of an inline SVG is drawn by the browser with the page's CJK font
stack, so Chinese labels show on any audit laptop, while matplotlib needs a CJK font installed
where the report is *written* (often a server without one). The charts are simple enough:
horizontal bars, and strip plots with a reference band. Every string from the data is escaped.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from html import escape

WIDTH = 1000
LEFT = 250  # room for row labels (tender ids, "H100 · 整机 (n=12)")
RIGHT = 30
TOP = 34
ROW = 30
AXIS = 46


@dataclass
class StripRow:
    """One row of a strip plot: a label, its points, and an optional shaded band."""

    label: str
    values: Sequence[float]
    tips: Sequence[str]
    flagged: Sequence[bool]
    band: tuple[float, float] | None = None
    box: bool = False
    extra: dict[str, str] = field(default_factory=dict)


def _attr(text: str) -> str:
    return escape(str(text), quote=True)


def _nice_linear(lo: float, hi: float, n: int = 5) -> list[float]:
    if hi <= lo:
        hi = lo + 1.0
    raw = (hi - lo) / n
    mag = 10 ** math.floor(math.log10(raw))
    step = min((m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw), default=raw)
    start = math.floor(lo / step) * step
    ticks, t = [], start
    while t <= hi + step * 1e-9:
        ticks.append(round(t, 10))
        t += step
    return ticks


def _log_ticks(lo: float, hi: float) -> list[float]:
    ticks = []
    for e in range(math.floor(math.log10(lo)), math.ceil(math.log10(hi)) + 1):
        for m in (1, 2, 5):
            v = m * 10.0**e
            if lo <= v <= hi:
                ticks.append(v)
    return ticks or [lo, hi]


def bar_chart(labels: Sequence[str], values: Sequence[float], *, title: str,
              fmt: Callable[[float], str], chart_id: str) -> str:
    """Horizontal bars, one per label, largest first as given."""
    n = max(len(labels), 1)
    height = TOP + n * ROW + AXIS
    plot_w = WIDTH - LEFT - RIGHT - 90  # leave room for the value text after a bar
    top = max([v for v in values if not math.isnan(v)] + [0.0]) or 1.0
    out = [(f'<svg xmlns="http://www.w3.org/2000/svg" id="{_attr(chart_id)}" class="chart" '
           f'viewBox="0 0 {WIDTH} {height}" width="{WIDTH}" height="{height}" role="img" '
           f'aria-label="{_attr(title)}">'),
           f'<text x="{LEFT}" y="20" class="ct">{escape(title)}</text>']
    for i, (label, value) in enumerate(zip(labels, values, strict=True)):
        y = TOP + i * ROW
        v = 0.0 if math.isnan(value) else value  # NaN money draws as an empty bar
        w = max(plot_w * v / top, 0.0)
        out.append(f'<text x="{LEFT - 8}" y="{y + 19}" class="rl">{escape(_short(label))}'
                   f'<title>{escape(str(label))}</title></text>')
        out.append(f'<rect class="bar" x="{LEFT}" y="{y + 5}" width="{w:.1f}" height="{ROW - 10}">'
                   f'<title>{escape(str(label))}: {escape(fmt(v))}</title></rect>')
        out.append(f'<text x="{LEFT + w + 6:.1f}" y="{y + 19}" class="vl">{escape(fmt(v))}</text>')
    out.append("</svg>")
    return "".join(out)


def strip_chart(rows: Sequence[StripRow], *, title: str, x_label: str, log: bool,
                fmt: Callable[[float], str], chart_id: str,
                ref_lines: Sequence[tuple[float, str]] = ()) -> str:
    """A strip plot: one row per group, a dot per line, shaded reference bands, optional boxes.

    Flagged lines are drawn red and larger; each dot has a tooltip naming its file and row.
    """
    values = [v for r in rows for v in r.values if v > 0 or not log]
    bounds = values + [b for r in rows if r.band for b in r.band] + [v for v, _ in ref_lines]
    if not bounds:
        bounds = [1.0, 10.0]
    lo, hi = min(bounds), max(bounds)
    if log:
        lo, hi = lo / 1.6, hi * 1.6
        ticks = _log_ticks(lo, hi)
    else:
        pad = (hi - lo) * 0.08 or 1.0
        ticks = _nice_linear(min(0.0, lo - pad), hi + pad)
        lo, hi = ticks[0], ticks[-1]
    plot_w = WIDTH - LEFT - RIGHT

    def x(v: float) -> float:
        if log:
            v = max(v, lo)
            return LEFT + plot_w * (math.log10(v) - math.log10(lo)) / (
                math.log10(hi) - math.log10(lo))
        return LEFT + plot_w * (v - lo) / (hi - lo)

    n = max(len(rows), 1)
    height = TOP + n * ROW * 1.5 + AXIS
    bottom = TOP + n * ROW * 1.5
    out = [(f'<svg xmlns="http://www.w3.org/2000/svg" id="{_attr(chart_id)}" class="chart" '
           f'viewBox="0 0 {WIDTH} {height:.0f}" width="{WIDTH}" height="{height:.0f}" role="img" '
           f'aria-label="{_attr(title)}">'),
           f'<text x="{LEFT}" y="20" class="ct">{escape(title)}</text>']
    for t in ticks:
        out.append(f'<line class="grid" x1="{x(t):.1f}" y1="{TOP}" x2="{x(t):.1f}" '
                   f'y2="{bottom:.0f}"/>'
                   f'<text class="tk" x="{x(t):.1f}" y="{bottom + 16:.0f}">{escape(fmt(t))}</text>')
    out.append(f'<text class="al" x="{LEFT + plot_w / 2:.0f}" y="{bottom + 36:.0f}">'
               f'{escape(x_label)}</text>')
    for value, label in ref_lines:
        out.append(f'<line class="ref" x1="{x(value):.1f}" y1="{TOP}" x2="{x(value):.1f}" '
                   f'y2="{bottom:.0f}"><title>{escape(label)}</title></line>')
    for i, row in enumerate(rows):
        cy = TOP + i * ROW * 1.5 + ROW * 0.75
        out.append(f'<text x="{LEFT - 8}" y="{cy + 4:.0f}" class="rl">{escape(_short(row.label))}'
                   f'<title>{escape(row.label)}</title></text>')
        if row.band:
            b0, b1 = x(row.band[0]), x(row.band[1])
            out.append(f'<rect class="band" x="{b0:.1f}" y="{cy - ROW * 0.6:.1f}" '
                       f'width="{max(b1 - b0, 2):.1f}" height="{ROW * 1.2:.1f}">'
                       f'<title>{escape(fmt(row.band[0]))} – {escape(fmt(row.band[1]))}</title>'
                       f'</rect>')
        if row.box and len(row.values) >= 3:
            q1, med, q3 = _quartiles(row.values)
            out.append(f'<rect class="box" x="{x(q1):.1f}" y="{cy - 9:.1f}" '
                       f'width="{max(x(q3) - x(q1), 1):.1f}" height="18"/>'
                       f'<line class="med" x1="{x(med):.1f}" y1="{cy - 11:.1f}" '
                       f'x2="{x(med):.1f}" y2="{cy + 11:.1f}"/>')
        for j, (v, tip, flag) in enumerate(zip(row.values, row.tips, row.flagged, strict=True)):
            # deterministic jitter so overlapping equal prices stay visible
            dy = ((j * 7919) % 13 - 6) * 1.3
            cls = "pt fl" if flag else "pt"
            r = 5 if flag else 3.5
            out.append(f'<circle class="{cls}" cx="{x(v):.1f}" cy="{cy + dy:.1f}" r="{r}">'
                       f'<title>{escape(tip)}</title></circle>')
    out.append("</svg>")
    return "".join(out)


def _quartiles(values: Sequence[float]) -> tuple[float, float, float]:
    s = sorted(values)

    def q(p: float) -> float:
        k = (len(s) - 1) * p
        f = math.floor(k)
        c = min(f + 1, len(s) - 1)
        return s[f] + (s[c] - s[f]) * (k - f)

    return q(0.25), q(0.5), q(0.75)


def _short(label: str, limit: int = 30) -> str:
    label = str(label)
    return label if len(label) <= limit else label[: limit - 1] + "…"
