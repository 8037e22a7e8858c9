"""What every chart shares: sizes, escaping, ticks, the plot frame and a bar.

Text goes through ``_e`` (class names and usernames may hold HTML); numbers through ``_n``.
"""

from __future__ import annotations

import math
from html import escape

WIDTH, HEIGHT = 520, 260
LEFT, RIGHT, TOP, BOTTOM = 56, 12, 44, 46  # room for the tick labels and the axis labels
PALETTE = ("#3366cc", "#dc3912", "#ff9900", "#109618", "#990099")
NO_DATA = "no data yet"
CHAR_WIDTH = 7  # rough width of a tick-label character in pixels, to shorten long labels


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
        f'text-anchor="middle" font-size="14">{t}</text>{body}</svg>'
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
            f'x2="{self.left}" y2="{self.bottom}"/></g><g class="ticks" font-size="12">'
        ]
        for px, text in x_ticks:
            parts.append(
                f'<line x1="{_n(px)}" y1="{self.bottom}" x2="{_n(px)}" y2="{self.bottom + 4}" '
                f'stroke="#333"/><text x="{_n(px)}" y="{self.bottom + 16}" '
                f'text-anchor="middle">{_e(text)}</text>'
            )
        for value in y_ticks:
            py = _n(self.y(value))
            parts.append(
                f'<line x1="{self.left - 4}" y1="{py}" x2="{self.left}" y2="{py}" stroke="#333"/>'
                f'<text x="{self.left - 6}" y="{py}" dy="4" text-anchor="end">'
                f"{_e(_tick_text(value))}</text>"
            )
        mid_x, mid_y = _n((self.left + self.right) / 2), _n((self.top + self.bottom) / 2)
        parts.append(
            f'</g><text class="x-label" x="{mid_x}" y="{self.bottom + 38}" text-anchor="middle" '
            f'font-size="12">{_e(x_label)}</text><text class="y-label" x="14" y="{mid_y}" '
            f'transform="rotate(-90 14 {mid_y})" text-anchor="middle" font-size="12">'
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


def _compact(count: int) -> str:
    """A count in at most four characters: 950, 9.5k, 95k, 1.2M."""
    for size, suffix in ((1_000_000, "M"), (1_000, "k")):
        if count >= size:
            value = count / size
            return f"{value:.1f}{suffix}" if value < 10 else f"{value:.0f}{suffix}"
    return str(count)
