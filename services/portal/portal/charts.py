"""Charts drawn on the server as SVG, inline in the page: they show without JavaScript, print,
and are read by screen readers through their title and description; the same figures are
always in a data table beside them (the page's job: see `Chart.rows`).

Pure: no I/O, no locale of its own. Numbers and dates are written by the functions the caller
passes (the portal gives `formatting.number` and `formatting.day`), so a chart reads the
page's language. Colours keep a 3:1 contrast against white (WCAG 1.4.11) and every series
also has its own dash pattern, marker shape and a label at its end, so colour is never the
only cue (WCAG 1.4.1).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date

from markupsafe import Markup, escape

#: Series colours, each at least 3:1 against white (checked in the tests).
COLOURS = ("#1d4f91", "#a4262c", "#1e6b3a", "#6b3fa0", "#8a4600", "#20201f")
#: Stroke dash patterns, one per series (solid first).
DASHES = ("", "8 4", "2 3", "10 3 2 3", "4 4", "1 5")
#: Marker shapes, one per series.
MARKERS = ("circle", "square", "triangle", "diamond", "cross", "bar")

Number = Callable[[float], str]
Day = Callable[[date], str]

WIDTH = 720
HEIGHT = 320
# Room for the axis labels and the series' end labels.
LEFT, RIGHT, TOP, BOTTOM = 72, 130, 16, 40


@dataclass(frozen=True)
class Series:
    """One line of a step chart: (day, value) points, oldest first."""

    name: str
    points: Sequence[tuple[date, float]]


@dataclass(frozen=True)
class Chart:
    """A chart's SVG and the same figures as table rows (the first cell heads the row)."""

    svg: Markup
    headers: list[str]
    rows: list[list[str]] = field(default_factory=list)


def nice_ticks(top: float, count: int = 5) -> list[float]:
    """Round tick values from 0 to at least `top` (steps of 1, 2, 2.5 or 5 × 10ⁿ)."""
    if top <= 0 or not math.isfinite(top):
        return [0.0, 1.0]
    raw = top / count
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    n = math.ceil(top / step - 1e-9)
    return [round(i * step, 10) for i in range(n + 1)]


def span_ticks(low: float, top: float, count: int = 5) -> list[float]:
    """Round tick values covering `low` to `top` and 0 (a balance may be negative): those of
    nice_ticks when nothing is below 0, else the same steps on both sides of 0."""
    if low >= 0 or not math.isfinite(low):
        return nice_ticks(top, count)
    step_of = nice_ticks(max(top, 0.0) - low, count)
    step = step_of[1] - step_of[0]
    first = math.floor(low / step + 1e-9)
    last = max(math.ceil(top / step - 1e-9), 0) if top > 0 else 0
    return [round(i * step, 10) for i in range(first, last + 1)]


def _f(value: float) -> str:
    """A coordinate, short (two decimals at most)."""
    text = f"{value:.2f}".rstrip("0").rstrip(".")
    return "0" if text == "-0" else text


def _marker(shape: str, x: float, y: float, colour: str) -> str:
    s = 4.5
    if shape == "circle":
        return f'<circle cx="{_f(x)}" cy="{_f(y)}" r="{_f(s)}" fill="{colour}"/>'
    if shape == "square":
        return (
            f'<rect x="{_f(x - s)}" y="{_f(y - s)}" width="{_f(2 * s)}" height="{_f(2 * s)}"'
            f' fill="{colour}"/>'
        )
    if shape == "triangle":
        pts = f"{_f(x)},{_f(y - s - 1)} {_f(x + s + 1)},{_f(y + s)} {_f(x - s - 1)},{_f(y + s)}"
        return f'<polygon points="{pts}" fill="{colour}"/>'
    if shape == "diamond":
        r = s + 1
        pts = f"{_f(x)},{_f(y - r)} {_f(x + r)},{_f(y)} {_f(x)},{_f(y + r)} {_f(x - r)},{_f(y)}"
        return f'<polygon points="{pts}" fill="{colour}"/>'
    if shape == "cross":
        return (
            f'<path d="M{_f(x - s)} {_f(y - s)}L{_f(x + s)} {_f(y + s)}M{_f(x - s)} {_f(y + s)}'
            f'L{_f(x + s)} {_f(y - s)}" stroke="{colour}" stroke-width="2.5"/>'
        )
    return (
        f'<rect x="{_f(x - 1.5)}" y="{_f(y - s - 1)}" width="3" height="{_f(2 * s + 2)}"'
        f' fill="{colour}"/>'
    )


def _open(chart_id: str, title: str, desc: str, width: int, height: int) -> list[str]:
    cid = escape(chart_id)
    return [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" id="{cid}" role="img"'
        f' aria-labelledby="{cid}-title {cid}-desc" viewBox="0 0 {width} {height}"'
        f' width="100%" preserveAspectRatio="xMinYMin meet" focusable="false">',
        f'<title id="{cid}-title">{escape(title)}</title>',
        f'<desc id="{cid}-desc">{escape(desc)}</desc>',
    ]


def _y_axis(
    ticks: list[float], scale: Callable[[float], float], x0: float, x1: float, fmt: Number
) -> list[str]:
    parts = ['<g class="chart-grid" aria-hidden="true">']
    for tick in ticks:
        y = _f(scale(tick))
        parts.append(
            f'<line x1="{_f(x0)}" y1="{y}" x2="{_f(x1)}" y2="{y}" stroke="#767676"'
            f' stroke-width="{1 if tick == 0 else 0.5}"/>'
            f'<text x="{_f(x0 - 6)}" y="{y}" text-anchor="end" dominant-baseline="middle"'
            f' class="chart-tick">{escape(fmt(tick))}</text>'
        )
    parts.append("</g>")
    return parts


def step_chart(
    series: Sequence[Series],
    *,
    chart_id: str,
    title: str,
    desc: str,
    unit: str,
    number: Number,
    day: Day,
    until: date | None = None,
    width: int = WIDTH,
    height: int = HEIGHT,
) -> Chart:
    """Values over time as steps (a value holds until the next point), one line per series,
    drawn to `until` (default: the last point). The table has one row per day with a change
    and one column per series (the value in force that day)."""
    days = sorted({d for s in series for d, _ in s.points})
    end = max([*days, until] if until is not None else days) if days else None
    first = days[0] if days else None
    top = max((v for s in series for _, v in s.points), default=0.0)
    low = min((v for s in series for _, v in s.points), default=0.0)
    ticks = span_ticks(low, top)
    x0, x1, y0, y1 = LEFT, width - RIGHT, height - BOTTOM, TOP
    span = (end - first).days if first is not None and end is not None else 0

    def sx(d: date) -> float:
        if first is None or span == 0:
            return x0
        return x0 + (d - first).days / span * (x1 - x0)

    def sy(v: float) -> float:
        return y0 - (v - ticks[0]) / (ticks[-1] - ticks[0]) * (y0 - y1)

    parts = _open(chart_id, title, desc, width, height)
    parts += _y_axis(ticks, sy, x0, x1, number)
    parts.append(
        f'<text x="{_f(x0)}" y="{_f(height - 6)}" class="chart-axis-label" aria-hidden="true">'
        f"{escape(day(first)) if first else ''}</text>"
    )
    if end is not None and end != first:
        parts.append(
            f'<text x="{_f(x1)}" y="{_f(height - 6)}" text-anchor="end"'
            f' class="chart-axis-label" aria-hidden="true">{escape(day(end))}</text>'
        )
    parts.append(
        f'<text x="{_f(x0 - 6)}" y="{_f(y1 - 4)}" text-anchor="end" class="chart-unit"'
        f' aria-hidden="true">{escape(unit)}</text>'
    )
    for i, s in enumerate(series):
        if not s.points:
            continue
        colour, dash, shape = (seq[i % len(seq)] for seq in (COLOURS, DASHES, MARKERS))
        pts = sorted(s.points)
        path = f"M{_f(sx(pts[0][0]))} {_f(sy(pts[0][1]))}"
        for d, v in pts[1:]:
            path += f"H{_f(sx(d))}V{_f(sy(v))}"
        if end is not None and end > pts[-1][0]:
            path += f"H{_f(sx(end))}"
        dash_attr = f' stroke-dasharray="{dash}"' if dash else ""
        parts.append(
            f'<g class="chart-series" data-series="{escape(s.name)}">'
            f'<path d="{path}" fill="none" stroke="{colour}" stroke-width="2.5"{dash_attr}/>'
        )
        for d, v in pts:
            parts.append(_marker(shape, sx(d), sy(v), colour))
        last_x = sx(end) if end is not None else sx(pts[-1][0])
        parts.append(
            f'<text x="{_f(last_x + 8)}" y="{_f(sy(pts[-1][1]))}" dominant-baseline="middle"'
            f' fill="{colour}" class="chart-label">{escape(s.name)} · '
            f"{escape(number(pts[-1][1]))}</text></g>"
        )
    parts.append("</svg>")
    rows = []
    for d in days:
        cells = [day(d)]
        for s in series:
            before = [v for pd, v in sorted(s.points) if pd <= d]
            cells.append(number(before[-1]) if before else "—")
        rows.append(cells)
    return Chart(Markup("".join(parts)), [""] + [s.name for s in series], rows)  # noqa: S704


def bar_chart(
    bars: Sequence[tuple[str, float]],
    *,
    chart_id: str,
    title: str,
    desc: str,
    unit: str,
    number: Number,
    headers: tuple[str, str] = ("", ""),
    width: int = WIDTH,
) -> Chart:
    """One horizontal bar per (label, value), its label before it and its value written after
    it (the words carry the figures, not the colour); as tall as the bars need."""
    top = max((v for _, v in bars), default=0.0)
    ticks = nice_ticks(top)
    row = 24
    x0, x1 = 150, width - 90
    y1 = TOP + 14
    height = y1 + row * max(len(bars), 1) + 8

    def sx(v: float) -> float:
        return x0 + v / ticks[-1] * (x1 - x0)

    parts = _open(chart_id, title, desc, width, height)
    parts.append('<g class="chart-grid" aria-hidden="true">')
    for tick in ticks:
        x = _f(sx(tick))
        parts.append(
            f'<line x1="{x}" y1="{_f(y1)}" x2="{x}" y2="{_f(height - 8)}" stroke="#767676"'
            f' stroke-width="{1 if tick == 0 else 0.5}"/>'
            f'<text x="{x}" y="{_f(y1 - 4)}" text-anchor="middle" class="chart-tick">'
            f"{escape(number(tick))}</text>"
        )
    parts.append(
        f'<text x="{_f(x0 - 8)}" y="{_f(y1 - 4)}" text-anchor="end" class="chart-unit">'
        f"{escape(unit)}</text></g>"
    )
    for i, (label, value) in enumerate(bars):
        y = y1 + i * row + 3
        end = sx(value)
        mid = y + (row - 6) / 2
        parts.append(
            f'<g class="chart-bar" data-label="{escape(label)}" data-value="{_f(value)}">'
            f'<text x="{_f(x0 - 8)}" y="{_f(mid)}" text-anchor="end" dominant-baseline="middle"'
            f' class="chart-tick">{escape(label)}</text>'
            f'<rect x="{_f(x0)}" y="{_f(y)}" width="{_f(end - x0)}" height="{_f(row - 6)}"'
            f' fill="{COLOURS[0]}"/>'
            f'<text x="{_f(end + 6)}" y="{_f(mid)}" dominant-baseline="middle"'
            f' class="chart-value">{escape(number(value))}</text></g>'
        )
    parts.append("</svg>")
    rows = [[label, number(value)] for label, value in bars]
    return Chart(Markup("".join(parts)), list(headers), rows)  # noqa: S704


def progress_bar(
    done: float, target: float, *, title: str, width: int = 240, height: int = 16
) -> Markup:
    """A small horizontal bar of `done` against `target` (full at or past it), an image whose
    title says the figures: the page writes them in text beside it too."""
    share = 1.0 if target <= 0 else max(0.0, min(done / target, 1.0))
    filled = share * (width - 2)
    return Markup(  # noqa: S704 - made of numbers and an escaped title
        f'<svg xmlns="http://www.w3.org/2000/svg" class="progress-bar" role="img"'
        f' viewBox="0 0 {width} {height}" width="{width}" height="{height}" focusable="false">'
        f"<title>{escape(title)}</title>"
        f'<rect x="0.5" y="0.5" width="{width - 1}" height="{height - 1}" fill="#ffffff"'
        f' stroke="#767676"/>'
        f'<rect x="1" y="1" width="{_f(filled)}" height="{height - 2}" fill="{COLOURS[0]}"/>'
        "</svg>"
    )


def contrast(colour: str, background: str = "#ffffff") -> float:
    """WCAG contrast ratio between two #rrggbb colours."""

    def luminance(hex_colour: str) -> float:
        channels = [int(hex_colour[i : i + 2], 16) / 255 for i in (1, 3, 5)]
        linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
        return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]

    hi, lo = sorted((luminance(colour), luminance(background)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)
