"""A benchmark's line plot: a PNG with matplotlib when it is installed, else the dashboard's
SVG line chart (no extra dependency)."""

from __future__ import annotations

from pathlib import Path


def line_plot(series: dict, path: Path, *, title: str, x_label: str, y_label: str, hlines=()):
    """Write ``series`` {name: (xs, ys)} to ``path`` (.svg instead without matplotlib), with
    dotted horizontal lines at ``hlines``; returns the path written."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        from matplotlib import pyplot as plt
    except ImportError:
        from reviewer.dashboard.charts import svg_line

        path = Path(path).with_suffix(".svg")
        path.write_text(svg_line(series, title=title, x_label=x_label, y_label=y_label))
        return path
    figure, axes = plt.subplots(figsize=(7, 4.5))
    for name, (xs, ys) in series.items():
        axes.plot(xs, ys, label=name, marker="o" if len(xs) < 10 else None)
    for level in hlines:
        axes.axhline(level, color="grey", linestyle=":", linewidth=1)
    axes.set(xlabel=x_label, ylabel=y_label, title=title)
    axes.legend()
    figure.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(figure)
    return Path(path)
