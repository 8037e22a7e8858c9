"""Server-rendered SVG charts for the dashboard: bars, histograms, lines and reliability diagrams.

This module owns how a figure becomes markup: an inline ``<svg>`` string, no JavaScript and no
chart library. Every chart is accessible (``role="img"``, an ``aria-label`` and a ``<title>``),
has axis ticks and axis labels, and escapes every piece of text it draws, because class names
and usernames may contain HTML. A chart without data says "no data yet" instead of drawing
empty axes. Each mark carries its own ``<title>`` so hovering shows the exact value.
"""

from __future__ import annotations

import math
from html import escape

WIDTH, HEIGHT = 480, 220
LEFT, RIGHT, TOP, BOTTOM = 52, 12, 28, 40  # room for the tick labels and the axis labels
PALETTE = ("#3366cc", "#dc3912", "#ff9900", "#109618", "#990099")
NO_DATA = "no data yet"
CHAR_WIDTH = 6  # rough width of a tick-label character in pixels, to shorten long labels


def _e(text) -> str:
    return escape(str(text), quote=True)


def _n(value: float) -> str:
    return f"{value:.1f}"


def _tick_text(value: float) -> str:
    return f"{round(value, 10):g}"


def _svg(title: str, body: str, width: int, height: int) -> str:
    t = _e(title)
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img" aria-label="{t}" '
        f'width="{width}" height="{height}" viewBox="0 0 {width} {height}">'
        f'<title>{t}</title><text class="chart-title" x="{_n(width / 2)}" y="16" '
        f'text-anchor="middle" font-size="13">{t}</text>{body}</svg>'
    )


def _empty(title: str, width: int, height: int) -> str:
    text = f'<text class="no-data" x="{_n(width / 2)}" y="{_n(height / 2)}" '
    return _svg(title, text + f'text-anchor="middle" fill="#666">{NO_DATA}</text>', width, height)


def _nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """Round tick values from at or below ``low`` to at or above ``high``."""
    if not high > low:
        high = low + 1.0
    raw = (high - low) / count
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw * (1 - 1e-9))
    first = math.floor(low / step + 1e-9) * step
    steps = math.ceil((high - first) / step - 1e-9)
    return [round(first + i * step, 12) for i in range(steps + 1)]


class _Frame:
    """The plot box of a chart and the mapping from data to pixels."""

    def __init__(self, width, height, xs: tuple[float, float], ys: tuple[float, float]):
        self.left, self.right, self.top, self.bottom = LEFT, width - RIGHT, TOP, height - BOTTOM
        (self.x0, self.x1), (self.y0, self.y1) = xs, ys

    def x(self, value: float) -> float:
        span = (self.x1 - self.x0) or 1.0
        return self.left + (value - self.x0) / span * (self.right - self.left)

    def y(self, value: float) -> float:
        span = (self.y1 - self.y0) or 1.0
        return self.bottom - (value - self.y0) / span * (self.bottom - self.top)

    def axes(self, x_label: str, y_label: str, *, x_ticks=(), y_ticks=()) -> str:
        """Axis lines, ticks (value, text) and labels; x_ticks hold pixel positions already."""
        parts = [
            f'<g class="axes" stroke="#333"><line x1="{self.left}" y1="{self.bottom}" '
            f'x2="{self.right}" y2="{self.bottom}"/><line x1="{self.left}" y1="{self.top}" '
            f'x2="{self.left}" y2="{self.bottom}"/></g><g class="ticks" font-size="10">'
        ]
        for px, text in x_ticks:
            parts.append(
                f'<line x1="{_n(px)}" y1="{self.bottom}" x2="{_n(px)}" y2="{self.bottom + 4}" '
                f'stroke="#333"/><text x="{_n(px)}" y="{self.bottom + 14}" '
                f'text-anchor="middle">{_e(text)}</text>'
            )
        for value in y_ticks:
            py = _n(self.y(value))
            parts.append(
                f'<line x1="{self.left - 4}" y1="{py}" x2="{self.left}" y2="{py}" stroke="#333"/>'
                f'<text x="{self.left - 6}" y="{py}" dy="3" text-anchor="end">'
                f"{_e(_tick_text(value))}</text>"
            )
        mid_x, mid_y = _n((self.left + self.right) / 2), _n((self.top + self.bottom) / 2)
        parts.append(
            f'</g><text class="x-label" x="{mid_x}" y="{self.bottom + 32}" text-anchor="middle" '
            f'font-size="11">{_e(x_label)}</text><text class="y-label" x="14" y="{mid_y}" '
            f'transform="rotate(-90 14 {mid_y})" text-anchor="middle" font-size="11">'
            f"{_e(y_label)}</text>"
        )
        return "".join(parts)

    def value_ticks(self, low: float, high: float) -> list[tuple[float, str]]:
        ticks = [t for t in _nice_ticks(low, high) if low - 1e-9 <= t <= high + 1e-9]
        return [(self.x(t), _tick_text(t)) for t in ticks]


def _bar(x0: float, y0: float, x1: float, y1: float, tip: str) -> str:
    return (
        f'<rect class="bar" fill="{PALETTE[0]}" x="{_n(x0)}" y="{_n(y0)}" '
        f'width="{_n(max(x1 - x0, 0))}" height="{_n(max(y1 - y0, 0))}">'
        f"<title>{_e(tip)}</title></rect>"
    )


def svg_bars(
    values,
    *,
    title: str,
    y_label: str,
    width: int = WIDTH,
    height: int = HEIGHT,
    fmt: str = "{:.0f}",
) -> str:
    """One bar per (label, value) of a dict or a list of pairs; a None value draws no bar."""
    items = list(values.items()) if isinstance(values, dict) else [tuple(v) for v in values]
    numbers = [float(v) for _, v in items if v is not None]
    if not numbers:
        return _empty(title, width, height)
    ticks = _nice_ticks(min(0.0, *numbers), max(0.0, *numbers))
    frame = _Frame(width, height, (0, len(items)), (ticks[0], ticks[-1]))
    slot = (frame.right - frame.left) / len(items)
    longest = max(1, int(slot // CHAR_WIDTH))
    body, x_ticks = [], []
    for i, (label, value) in enumerate(items):
        text = str(label) if len(str(label)) <= longest else str(label)[: longest - 1] + "…"
        x_ticks.append((frame.x(i + 0.5), text))
        shown = "n/a" if value is None else fmt.format(value)
        if value is not None:
            top, base = sorted((frame.y(float(value)), frame.y(0.0)))
            x = frame.x(i) + slot * 0.15
            body.append(_bar(x, top, x + slot * 0.7, base, f"{label}: {shown}"))
        label_y = frame.y(max(float(value or 0), 0.0)) - 3
        body.append(
            f'<text class="value" x="{_n(frame.x(i + 0.5))}" y="{_n(label_y)}" '
            f'text-anchor="middle" font-size="10">{_e(shown)}</text>'
        )
    axes = frame.axes("", y_label, x_ticks=x_ticks, y_ticks=ticks)
    return _svg(title, axes + "".join(body), width, height)


def svg_histogram(
    edges, counts, *, title: str, x_label: str, width: int = WIDTH, height: int = HEIGHT
) -> str:
    """Contiguous bars over bin ``edges`` [B+1] with ``counts`` [B]."""
    edges, counts = [float(e) for e in edges], [int(c) for c in counts]
    if not counts or len(edges) != len(counts) + 1 or sum(counts) == 0:
        return _empty(title, width, height)
    ticks = _nice_ticks(0, max(counts))
    frame = _Frame(width, height, (edges[0], edges[-1]), (0, ticks[-1]))
    body = [
        _bar(frame.x(lo), frame.y(c), frame.x(hi), frame.y(0), f"{lo:.3g}–{hi:.3g}: {c}")
        for lo, hi, c in zip(edges[:-1], edges[1:], counts, strict=True)
    ]
    x_ticks = frame.value_ticks(edges[0], edges[-1])
    axes = frame.axes(x_label, "count", x_ticks=x_ticks, y_ticks=ticks)
    return _svg(title, axes + "".join(body), width, height)


def svg_line(
    series: dict,
    *,
    title: str,
    x_label: str,
    y_label: str,
    marker=None,
    band=None,
    guide=None,
    width: int = WIDTH,
    height: int = HEIGHT,
) -> str:
    """Lines of ``series`` {name: (xs, ys)}; ``marker`` (x, y) or (x, y, text) is highlighted;
    ``band`` (name, xs, lows, highs) is shaded; ``guide`` (y, text) is a dashed level line."""
    lines = {name: list(zip(*xy, strict=True)) for name, xy in series.items()}
    lines = {name: points for name, points in lines.items() if points}
    if not lines:
        return _empty(title, width, height)
    points = [p for pts in lines.values() for p in pts] + ([marker[:2]] if marker else [])
    points += list(zip(band[1], band[3], strict=True)) if band else []
    points += [(points[0][0], guide[0])] if guide else []
    xs, ys = [float(p[0]) for p in points], [float(p[1]) for p in points]
    y_ticks = _nice_ticks(min(0.0, *ys), max(ys))
    frame = _Frame(width, height, (min(xs), max(xs)), (y_ticks[0], y_ticks[-1]))
    body = [_band(frame, *band)] if band else []
    body += [_guide(frame, *guide)] if guide else []
    for i, (name, pts) in enumerate(lines.items()):
        color = PALETTE[i % len(PALETTE)]
        path = " ".join(f"{_n(frame.x(x))},{_n(frame.y(y))}" for x, y in pts)
        body.append(
            f'<polyline class="line" points="{path}" fill="none" stroke="{color}" '
            f'stroke-width="2"><title>{_e(name)}</title></polyline><text class="legend" '
            f'x="{frame.right - 4}" y="{TOP + 12 + 12 * i}" text-anchor="end" font-size="10" '
            f'fill="{color}">{_e(name)}</text>'
        )
    if marker:
        body.append(_marker(frame, *marker))
    x_ticks = frame.value_ticks(min(xs), max(xs))
    axes = frame.axes(x_label, y_label, x_ticks=x_ticks, y_ticks=y_ticks)
    return _svg(title, axes + "".join(body), width, height)


def _band(frame: _Frame, name: str, xs, lows, highs) -> str:
    upper = [f"{_n(frame.x(x))},{_n(frame.y(y))}" for x, y in zip(xs, highs, strict=True)]
    lower = [f"{_n(frame.x(x))},{_n(frame.y(y))}" for x, y in zip(xs, lows, strict=True)]
    return (
        f'<polygon class="band" points="{" ".join(upper + lower[::-1])}" fill="{PALETTE[0]}" '
        f'fill-opacity="0.15" stroke="none"><title>{_e(name)}</title></polygon>'
    )


def _guide(frame: _Frame, y: float, text: str) -> str:
    py = _n(frame.y(float(y)))
    return (
        f'<line class="guide" x1="{frame.left}" y1="{py}" x2="{frame.right}" y2="{py}" '
        f'stroke="{PALETTE[1]}" stroke-dasharray="6 3"><title>{_e(text)}</title></line>'
        f'<text class="guide-label" x="{frame.left + 4}" y="{_n(frame.y(float(y)) - 4)}" '
        f'font-size="10" fill="{PALETTE[1]}">{_e(text)}</text>'
    )


def _marker(frame: _Frame, x: float, y: float, text: str | None = None) -> str:
    mx, my = frame.x(float(x)), frame.y(float(y))
    text = text or f"({x:.3g}, {y:.3g})"
    left = mx < (frame.left + frame.right) / 2  # the label goes where there is room
    return (
        f'<line class="marker-line" x1="{_n(mx)}" y1="{frame.top}" x2="{_n(mx)}" '
        f'y2="{frame.bottom}" stroke="#888" stroke-dasharray="4 3"/><circle class="marker" '
        f'cx="{_n(mx)}" cy="{_n(my)}" r="4" fill="#000"><title>{_e(text)}</title></circle>'
        f'<text class="marker-label" x="{_n(mx + 6 if left else mx - 6)}" y="{_n(my - 6)}" '
        f'font-size="10" text-anchor="{"start" if left else "end"}">{_e(text)}</text>'
    )


def svg_reliability(
    bins: list[dict], *, title: str = "Reliability", width: int = WIDTH, height: int = HEIGHT
) -> str:
    """Accuracy per confidence bin (``uncertainty.reliability_bins``) against the diagonal."""
    filled = [b for b in bins if b.get("count")]
    if not filled:
        return _empty(title, width, height)
    frame = _Frame(width, height, (0.0, 1.0), (0.0, 1.0))
    body = []
    for b in filled:
        tip = f"confidence {b['lower']:.2g}–{b['upper']:.2g}: accuracy {b['accuracy']:.2f}, "
        tip += f"mean confidence {b['confidence']:.2f} (n={b['count']})"
        x0, x1 = frame.x(b["lower"]) + 1, frame.x(b["upper"]) - 1
        body.append(_bar(x0, frame.y(b["accuracy"]), x1, frame.y(0.0), tip))
    body.append(
        f'<line class="diagonal" x1="{_n(frame.x(0))}" y1="{_n(frame.y(0))}" '
        f'x2="{_n(frame.x(1))}" y2="{_n(frame.y(1))}" stroke="#888" stroke-dasharray="4 3">'
        "<title>perfect calibration</title></line>"
    )
    ticks = _nice_ticks(0.0, 1.0)
    axes = frame.axes("confidence", "accuracy", x_ticks=frame.value_ticks(0, 1), y_ticks=ticks)
    return _svg(title, axes + "".join(body), width, height)
