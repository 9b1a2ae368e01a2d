"""Charts drawn on the server as SVG: no JavaScript, nothing to download, readable by a
screen reader (``role="img"`` with a title and a description) and always shown beside
a table of the same numbers (the GOV.UK pattern: a chart is never the only way to read
the figures).

Colours and lines are SVG presentation attributes, not inline CSS, so the console's
strict Content-Security-Policy (``style-src 'self'``) holds.  Labels arrive already
translated; numbers are formatted by the caller's ``fmt`` (the page's language).
"""
from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from markupsafe import Markup, escape

BLUE, GREEN, RED, PURPLE, ORANGE, GREY = ("#1d70b8", "#00703c", "#d4351c", "#4c2c92",
                                          "#f47738", "#505a5f")
TEXT, AXIS, GRID = "#0b0c0c", "#505a5f", "#b1b4b6"
FONT = "GDS Transport, arial, sans-serif"


@dataclass(frozen=True)
class Series:
    key: str
    label: str
    colour: str


def nice_max(value: float) -> float:
    """A round top for an axis at or above ``value`` (1, 2, 2.5, 5 × a power of ten)."""
    if value <= 0:
        return 1
    power = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        if value <= step * power:
            return step * power
    return 10 * power


def _svg(width: int, height: int, title: str, desc: str, ident: str, body: list[str]) -> Markup:
    ident = escape(ident)
    head = (f'<svg xmlns="http://www.w3.org/2000/svg" class="hysbys-chart" role="img" '
            f'viewBox="0 0 {width} {height}" width="100%" '
            f'aria-labelledby="{ident}-title {ident}-desc" font-family="{FONT}">'
            f'<title id="{ident}-title">{escape(title)}</title>'
            f'<desc id="{ident}-desc">{escape(desc)}</desc>')
    # Every text that reaches the SVG (title, labels, values, legend) went through
    # escape() above; the rest is numbers and our own colour constants.
    return Markup(head + "".join(body) + "</svg>")  # nosec B704


def _y_axis(top: float, left: int, right: int, y0: int, height: int,
            fmt: Callable[[float], str]) -> list[str]:
    out = []
    for i in range(5):
        value = top * i / 4
        y = y0 - height * i / 4
        out.append(f'<line x1="{left}" x2="{right}" y1="{y:.1f}" y2="{y:.1f}" stroke="{GRID}" '
                   f'stroke-width="1"/>')
        out.append(f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end" font-size="12" '
                   f'fill="{TEXT}">{escape(fmt(value))}</text>')
    return out


def bar_chart(groups: Sequence[tuple[str, dict[str, float]]], series: Sequence[Series], *,
              title: str, desc: str, ident: str = "chart",
              fmt: Callable[[float], str] = lambda v: f"{v:g}") -> Markup:
    """Grouped bars: one group per label (an occurrence, a day), one bar per series."""
    width, height, left, bottom, top_pad = 720, 300, 56, 64, 16
    plot_h = height - bottom - top_pad
    y0 = height - bottom
    top = nice_max(max([g[1].get(s.key, 0) or 0 for g in groups for s in series] or [0]))
    body = _y_axis(top, left, width - 8, y0, plot_h, fmt)
    slot = (width - 8 - left) / max(len(groups), 1)
    bar = max(min(slot * 0.8 / max(len(series), 1), 28), 2)
    for gi, (label, values) in enumerate(groups):
        x0 = left + gi * slot + (slot - bar * len(series)) / 2
        for si, s in enumerate(series):
            value = values.get(s.key, 0) or 0
            h = plot_h * value / top
            x = x0 + si * bar
            body.append(f'<rect x="{x:.1f}" y="{y0 - h:.1f}" width="{bar - 1:.1f}" '
                        f'height="{h:.1f}" fill="{s.colour}"><title>{escape(label)}: '
                        f'{escape(s.label)} {escape(fmt(value))}</title></rect>')
        body.append(f'<text x="{left + gi * slot + slot / 2:.1f}" y="{y0 + 16}" '
                    f'text-anchor="middle" font-size="12" fill="{TEXT}">{escape(label)}</text>')
    body.append(f'<line x1="{left}" x2="{width - 8}" y1="{y0}" y2="{y0}" stroke="{AXIS}" '
                f'stroke-width="1"/>')
    body += _legend(series, left, height - 18)
    return _svg(width, height, title, desc, ident, body)


def line_chart(points: Sequence[tuple[str, float | None]], *, title: str, desc: str,
               ident: str = "chart", top: float = 100, colour: str = BLUE,
               fmt: Callable[[float], str] = lambda v: f"{v:g}%") -> Markup:
    """A line over labelled points (a gap where a value is None: no messages that day)."""
    width, height, left, bottom, top_pad = 720, 280, 56, 40, 16
    plot_h = height - bottom - top_pad
    y0 = height - bottom
    body = _y_axis(top, left, width - 8, y0, plot_h, fmt)
    step = (width - 8 - left - 16) / max(len(points) - 1, 1)
    every = max(1, math.ceil(len(points) / 10))      # at most ten labels under the axis
    runs: list[list[tuple[float, float]]] = [[]]
    for i, (label, value) in enumerate(points):
        x = left + 8 + i * step
        if i % every == 0 or i == len(points) - 1:
            body.append(f'<text x="{x:.1f}" y="{y0 + 16}" text-anchor="middle" '
                        f'font-size="12" fill="{TEXT}">{escape(label)}</text>')
        if value is None:
            runs.append([])
            continue
        y = y0 - plot_h * min(value, top) / top
        runs[-1].append((x, y))
        body.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3.5" fill="{colour}">'
                    f'<title>{escape(label)}: {escape(fmt(value))}</title></circle>')
    for run in runs:
        if len(run) > 1:
            path = " ".join(f"{x:.1f},{y:.1f}" for x, y in run)
            body.append(f'<polyline points="{path}" fill="none" stroke="{colour}" '
                        f'stroke-width="3"/>')
    body.append(f'<line x1="{left}" x2="{width - 8}" y1="{y0}" y2="{y0}" stroke="{AXIS}" '
                f'stroke-width="1"/>')
    return _svg(width, height, title, desc, ident, body)


def _legend(series: Sequence[Series], left: int, y: int) -> list[str]:
    out, x = [], left
    for s in series:
        out.append(f'<rect x="{x}" y="{y - 10}" width="12" height="12" fill="{s.colour}"/>')
        out.append(f'<text x="{x + 16}" y="{y}" font-size="12" fill="{TEXT}">'
                   f'{escape(s.label)}</text>')
        x += 24 + 8 * len(s.label)
    return out
