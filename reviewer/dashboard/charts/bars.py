"""Bar charts: bars with a value each, horizontal bars with full labels, histograms."""

from __future__ import annotations

from reviewer.dashboard.charts.frame import (
    BOTTOM,
    CHAR_WIDTH,
    HEIGHT,
    RIGHT,
    TOP,
    WIDTH,
    _bar,
    _compact,
    _e,
    _empty,
    _Frame,
    _n,
    _nice_ticks,
    _svg,
    _tick_text,
)


def svg_bars(
    values,
    *,
    title: str,
    y_label: str,
    width: int = WIDTH,
    height: int = HEIGHT,
    fmt: str = "{:.0f}",
    counts=None,
) -> str:
    """One bar per (label, value) of a dict or a list of pairs; a None value draws no bar.
    ``counts``: how many items each bar rests on, written under its label ("n=12")."""
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
            f'text-anchor="middle" font-size="12">{_e(shown)}</text>'
        )
        if counts is not None:
            body.append(
                f'<text class="count" x="{_n(frame.x(i + 0.5))}" y="{frame.bottom + 31}" '
                f'text-anchor="middle" font-size="11" fill="#555">n={counts[i]}</text>'
            )
    axes = frame.axes("", y_label, x_ticks=x_ticks, y_ticks=ticks)
    return _svg(title, axes + "".join(body), width, height)


MAX_NAME = 30  # characters of a class name shown in full beside its bar (the rest: hover)


def svg_hbars(values, *, title: str, x_label: str, width: int = WIDTH) -> str:
    """One horizontal bar per (label, count), every label in full and every count written at
    the end of its bar; zero counts keep their row. The chart grows with the rows."""
    items = list(values.items()) if isinstance(values, dict) else [tuple(v) for v in values]
    if not items or not any(v for _, v in items):
        return _empty(title, width, HEIGHT)
    row = 22
    longest = min(max(len(str(label)) for label, _ in items), MAX_NAME)
    left = 12 + CHAR_WIDTH * longest
    height = TOP + 8 + row * len(items) + BOTTOM
    ticks = _nice_ticks(0, max(float(v) for _, v in items))
    frame = _Frame(width, height, (0, ticks[-1]), (0, 1))
    frame.left, frame.right, frame.bottom = left, width - RIGHT - 40, height - BOTTOM
    body = []
    for i, (label, count) in enumerate(items):
        y = TOP + 8 + i * row
        name = str(label) if len(str(label)) <= MAX_NAME else str(label)[: MAX_NAME - 1] + "…"
        body.append(
            f'<text class="bar-label" x="{left - 6}" y="{y + 15}" text-anchor="end" '
            f'font-size="12">{_e(name)}<title>{_e(label)}</title></text>'
        )
        body.append(_bar(left, y + 3, frame.x(float(count)), y + row - 3, f"{label}: {count}"))
        body.append(
            f'<text class="value" x="{_n(frame.x(float(count)) + 4)}" y="{y + 15}" '
            f'font-size="12">{_e(count)}</text>'
        )
    x_ticks = [(frame.x(t), _tick_text(t)) for t in ticks]
    axes = frame.axes(x_label, "", x_ticks=x_ticks)
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
    body = []
    for lo, hi, c in zip(edges[:-1], edges[1:], counts, strict=True):
        body.append(
            _bar(frame.x(lo), frame.y(c), frame.x(hi), frame.y(0), f"{lo:.3g}–{hi:.3g}: {c}")
        )
        if c:  # every bar says how many items it holds
            body.append(
                f'<text class="value" x="{_n((frame.x(lo) + frame.x(hi)) / 2)}" '
                f'y="{_n(frame.y(c) - 3)}" text-anchor="middle" font-size="11">{_compact(c)}</text>'
            )
    x_ticks = frame.value_ticks(edges[0], edges[-1])
    axes = frame.axes(x_label, "count", x_ticks=x_ticks, y_ticks=ticks)
    return _svg(title, axes + "".join(body), width, height)
