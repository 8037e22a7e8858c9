"""Benchmark: the dashboard's figures and the queue page's progress on a large pool, on SQLite
and PostgreSQL. It loads the pool the way `reviewer bench queue` does (every image scored, about
half labeled, the audit's first items answered), then times ``dashboard_figures`` (what
``/dashboard`` and ``GET /api/stats`` compute) and ``progress`` (the ``/queue`` progress bar)
a few times each, in their own sessions, and reports p50 and the slowest call.
"""

from __future__ import annotations

import contextlib
import tempfile
import time

import numpy as np

from reviewer.bench import project as scratch
from reviewer.bench import queue_load
from reviewer.core import db
from reviewer.dashboard.figures import dashboard_figures
from reviewer.review.progress import progress

CALLS = 5


def _timed(factory, fn, calls: int) -> dict:
    seconds = []
    for _ in range(calls):
        with factory() as session:
            start = time.perf_counter()
            fn(session)
            seconds.append(time.perf_counter() - start)
    return {"p50": float(np.median(seconds)), "max": max(seconds), "n": calls}


def measure_url(url: str, rows: int, *, calls: int = CALLS) -> dict:
    """Load ``rows`` images at ``url`` (a fresh database) and time the figures there."""
    loaded = queue_load.load(url, rows=rows, labelers=20)
    engine = db.make_engine(url)
    factory = db.session_factory(engine)
    try:
        return {
            "rows": rows,
            "load_s": loaded["total_s"],
            "dashboard": _timed(factory, dashboard_figures, calls),
            "progress": _timed(factory, progress, calls),
        }
    finally:
        engine.dispose()


def measure(backend: str, rows: int, *, postgres_url: str, calls: int = CALLS) -> dict:
    """`measure_url` on a temporary SQLite file or a throwaway PostgreSQL database."""
    with contextlib.ExitStack() as stack:
        folder = stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-dash-"))
        url = stack.enter_context(
            scratch.scratch_database(
                backend, folder, postgres_url=postgres_url, prefix="reviewer_dash"
            )
        )
        return {"backend": backend, **measure_url(url, rows, calls=calls)}


def lines(results: list[dict]) -> list[str]:
    """Pure: the results as a Markdown table (seconds)."""
    out = ["| backend | images | dashboard p50 | slowest | /queue progress p50 | slowest |"]
    out.append("|---|---|---|---|---|---|")
    for r in results:
        d, p = r["dashboard"], r["progress"]
        out.append(
            f"| {r['backend']} | {r['rows']:,} | {d['p50']:.2f} s | {d['max']:.2f} s | "
            f"{p['p50'] * 1000:.0f} ms | {p['max'] * 1000:.0f} ms |"
        )
    return out
