"""Server-rendered SVG charts for the dashboard: bars, histograms, lines and reliability diagrams.

This package owns how a figure becomes markup: an inline ``<svg>`` string, no JavaScript and no
chart library. Every chart is accessible (``role="img"``, an ``aria-label`` and a ``<title>``),
has axis ticks and axis labels, and escapes every piece of text it draws, because class names
and usernames may contain HTML. A chart without data says "no data yet" instead of drawing
empty axes. Each mark carries its own ``<title>`` so hovering shows the exact value, and every
bar says how many items it rests on. Text is at least 11 px at the chart's own size.
"""

from reviewer.dashboard.charts.bars import svg_bars, svg_hbars, svg_histogram
from reviewer.dashboard.charts.curves import svg_line, svg_reliability
from reviewer.dashboard.charts.frame import NO_DATA

__all__ = ["NO_DATA", "svg_bars", "svg_hbars", "svg_histogram", "svg_line", "svg_reliability"]
