"""Line charts (with a band, a guide line and a marker) and reliability diagrams."""

from __future__ import annotations

from reviewer.dashboard.charts.frame import (
    HEIGHT,
    PALETTE,
    TOP,
    WIDTH,
    _bar,
    _e,
    _empty,
    _Frame,
    _n,
    _nice_ticks,
    _svg,
)


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
            f'stroke-width="2"><title>{_e(name)}</title></polyline>'
        )
        if len(lines) > 1:  # one series needs no legend: the title names it
            body.append(
                f'<text class="legend" x="{frame.right - 4}" y="{TOP + 14 + 14 * i}" '
                f'text-anchor="end" font-size="12" fill="{color}">{_e(name)}</text>'
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
        f'font-size="12" fill="{PALETTE[1]}">{_e(text)}</text>'
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
        f'font-size="12" text-anchor="{"start" if left else "end"}">{_e(text)}</text>'
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
            f'<text class="count" x="{_n((x0 + x1) / 2)}" y="{_n(frame.y(b["accuracy"]) - 3)}" '
            f'text-anchor="middle" font-size="11">n={b["count"]}</text>'
        )
    body.append(
        f'<line class="diagonal" x1="{_n(frame.x(0))}" y1="{_n(frame.y(0))}" '
        f'x2="{_n(frame.x(1))}" y2="{_n(frame.y(1))}" stroke="#888" stroke-dasharray="4 3">'
        "<title>perfect calibration</title></line>"
    )
    ticks = _nice_ticks(0.0, 1.0)
    axes = frame.axes("confidence", "accuracy", x_ticks=frame.value_ticks(0, 1), y_ticks=ticks)
    return _svg(title, axes + "".join(body), width, height)
