"""`reviewer bench scale` on a tiny pool: the report's shape and the sizes' arithmetic, never
its timings."""

from __future__ import annotations

import pytest

from reviewer.bench import queue as bench_queue
from reviewer.bench import scale
from tests.support.env import PG_SERVER_URL


@pytest.mark.postgres
def test_bench_scale_reports_sizes_the_plan_and_latencies(monkeypatch):
    monkeypatch.setattr(bench_queue, "CALLS", 3)
    monkeypatch.setattr(bench_queue, "WARMUP", 1)
    result = scale.measure(PG_SERVER_URL, 3_000, echo=lambda line: None)
    sizes = result["sizes"]
    assert set(sizes) == set(scale.TABLES)
    for size in sizes.values():
        assert size["total_mb"] >= size["heap_mb"] + size["indexes_mb"] - 0.2  # + TOAST, maps
    assert sizes["scores"]["indexes"] >= 10  # one queue index per strategy, and the keys
    assert any("ix_scores_queue_entropy" in line for line in result["plan"])  # an index walk
    assert all(row["p50"] > 0 for row in result["latency"].values())
    assert result["dashboard_s"] > 0
    report = "\n".join(scale.lines(result))
    assert "### 3,000 images" in report and "| scores |" in report and "Execution Time" in report


@pytest.mark.parametrize(
    "backend", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
)
def test_bench_dashboard_times_the_figures_and_the_progress(backend):
    from reviewer.bench import dashboard

    result = dashboard.measure(backend, 2_000, postgres_url=PG_SERVER_URL, calls=2)
    assert result["backend"] == backend and result["rows"] == 2_000
    for timed in (result["dashboard"], result["progress"]):
        assert timed["n"] == 2 and 0 < timed["p50"] <= timed["max"]
    table = dashboard.lines([result])
    assert table[0].startswith("| backend |") and f"| {backend} | 2,000 |" in table[2]
