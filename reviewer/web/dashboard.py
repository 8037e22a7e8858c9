"""The dashboard page: what the review loop has done, as tiles, charts and tables.

This blueprint owns ``/dashboard`` (open to every logged-in user). The figures
come from :func:`reviewer.dashboard.figures.dashboard_figures` (the same dict ``GET
/api/stats`` returns as JSON); each chart is an inline SVG string from
:mod:`reviewer.dashboard.charts`, which escapes every text it draws, so the template may
insert them as markup. No JavaScript, no chart library.
"""

from __future__ import annotations

from flask import Blueprint, render_template

from reviewer.core import settings
from reviewer.dashboard import charts
from reviewer.review import progress
from reviewer.web import context

bp = Blueprint("dashboard", __name__)


def build_charts(figures: dict) -> list[str]:
    """The dashboard's SVG charts, in page order; each title says how many labels it rests on."""
    deciles = figures["yield_by_decile"]
    hist = figures["histograms"]
    reviewed = sum(d["count"] for d in deciles)
    return [
        charts.svg_bars(
            [(d["decile"], d["rate"]) for d in deciles],
            title=f"Review yield per entropy decile: queue-reviewed labels (n={reviewed})",
            y_label="model error rate",
            fmt="{:.2f}",
            counts=[d["count"] for d in deciles],
        ),
        charts.svg_hbars(
            [
                (settings.SPECIAL_LABEL_NAMES.get(name, name), n)
                for name, n in figures["labels_per_class"].items()
            ],
            title=f"Labels per class (n={sum(figures['labels_per_class'].values())})",
            x_label="current labels",
        ),
        charts.svg_histogram(
            hist["entropy"]["edges"],
            hist["entropy"]["counts"],
            title=f"entropy of scored items (n={figures['counts']['scored']})",
            x_label="entropy (nats)",
        ),
        charts.svg_histogram(
            hist["mutual_info"]["edges"],
            hist["mutual_info"]["counts"],
            title=f"mutual_info (BALD) of scored items (n={figures['counts']['scored']})",
            x_label="mutual_info (nats)",
        ),
        audit_reliability_chart(figures["audit"]),
        audit_risk_chart(figures["audit"]),
    ]


def audit_reliability_chart(audit: dict) -> str:
    """Accuracy per confidence bin over the random audit's labels."""
    reliability = audit["reliability"]
    ece = reliability.get("ece")
    title = f"Reliability: random audit (n={reliability['count']}"
    title += f", ECE {ece:.3f})" if ece is not None else ")"
    return charts.svg_reliability(reliability["bins"], title=title)


def audit_risk_chart(audit: dict) -> str:
    """The audit's risk-coverage curve: its estimate of the auto-accepted items' error rate,
    the band up to its upper bound, the target and the certified threshold on the bound."""
    cert, curve = audit["certificate"], audit["curve"]
    coverage = [p["coverage"] for p in curve]
    estimate, bound = [p["estimate"] for p in curve], [p["bound"] for p in curve]
    level = f"{cert['confidence']:.0%}"
    marker = None
    if cert["threshold"] is not None and cert["unlabeled"]:
        text = f"certified: confidence ≥ {cert['threshold']:.3f}, bound {cert['bound']:.3f}"
        marker = (cert["accepted"] / cert["unlabeled"], cert["bound"], text)
    return charts.svg_line(
        {
            "audit estimate": (coverage, estimate),
            f"upper bound ({level})": (coverage, bound),
        },
        title=f"Risk-coverage: random audit (n={cert['audit']})",
        x_label="coverage (share of unanswered items auto-accepted)",
        y_label="error rate",
        marker=marker,
        band=(f"{level} band", coverage, estimate, bound),
        guide=(cert["risk"], f"target {cert['risk']:.0%}"),
    )


@bp.get("/dashboard")
def dashboard():
    from reviewer.dashboard.figures import dashboard_figures

    with context.snapshot() as s:
        figures, shown = dashboard_figures(s), progress.progress(s)
    return render_template(
        "dashboard.html",
        figures=figures,
        counts=figures["counts"],
        charts=build_charts(figures),
        progress=shown,
    )
