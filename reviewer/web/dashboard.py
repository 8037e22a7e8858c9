"""The dashboard page: what the review loop has done, as tiles, charts and tables.

This blueprint owns ``/dashboard`` (open to every logged-in user). The figures
come from :func:`reviewer.dashboard.figures.dashboard_figures` (the same dict ``GET
/api/stats`` returns as JSON); each chart is an inline SVG string from
:mod:`reviewer.dashboard.charts`, which escapes every text it draws, so the template may
insert them as markup. No JavaScript, no chart library.
"""

from __future__ import annotations

from flask import Blueprint, render_template

from reviewer.dashboard import charts
from reviewer.review import progress
from reviewer.web import context

bp = Blueprint("dashboard", __name__)


def build_charts(figures: dict) -> list[str]:
    """The dashboard's SVG charts, in page order."""
    deciles = figures["yield_by_decile"]
    hist = figures["histograms"]
    reliability = figures["reliability"]
    rc = figures["risk_coverage"]
    ece = reliability.get("ece")
    marker = None
    if rc.get("threshold") is not None and rc.get("coverage") is not None:
        marker = (rc["coverage"], rc["target"], f"entropy ≤ {rc['threshold']:.3f}")
    points = rc.get("points") or []
    return [
        charts.svg_bars(
            [(d["decile"], d["rate"]) for d in deciles],
            title="Model errors found per entropy decile (10 = most uncertain)",
            y_label="error rate",
            fmt="{:.2f}",
        ),
        charts.svg_bars(figures["labels_per_class"], title="Labels per class", y_label="labels"),
        charts.svg_histogram(
            hist["entropy"]["edges"],
            hist["entropy"]["counts"],
            title="entropy of scored items",
            x_label="entropy (nats)",
        ),
        charts.svg_histogram(
            hist["mutual_info"]["edges"],
            hist["mutual_info"]["counts"],
            title="mutual_info (BALD) of scored items",
            x_label="mutual_info (nats)",
        ),
        charts.svg_reliability(
            reliability["bins"],
            title="Reliability" + (f" (ECE {ece:.3f})" if ece is not None else ""),
        ),
        charts.svg_line(
            {"risk": ([p["coverage"] for p in points], [p["risk"] for p in points])},
            title=f"Risk-coverage (target risk {rc['target']:.2%})",
            x_label="coverage (auto-accepted share)",
            y_label="risk (error rate)",
            marker=marker,
        ),
    ]


@bp.get("/dashboard")
def dashboard():
    from reviewer.dashboard.figures import dashboard_figures

    s = context.read_session()
    figures = dashboard_figures(s)
    return render_template(
        "dashboard.html",
        figures=figures,
        counts=figures["counts"],
        charts=build_charts(figures),
        progress=progress.progress(s),
    )
