"""`reviewer bench queue` on a tiny pool: the report's shape, never its timings."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from reviewer.bench import queue as bench_queue
from reviewer.bench import queue_load as bench_queue_load
from reviewer.cli import cli
from reviewer.core import strategies
from tests.support.env import PG_SERVER_URL


def check_backend(report: dict, rows: int) -> None:
    assert report["load"]["rows"] == rows and report["load"]["load_s"] > 0
    names = {f"next_item {s}" for s in strategies.STRATEGIES} | {"submit_label"}
    names |= {"web review page", "web POST /api/items/<id>/labels"}
    assert set(report["latency"]) == names
    for row in report["latency"].values():
        assert row["n"] > 0 and 0 < row["p50"] <= row["p99"]


@pytest.mark.slow
@pytest.mark.postgres
def test_bench_queue_reports_every_measurement_on_both_backends(monkeypatch):
    monkeypatch.setattr(bench_queue, "CALLS", 5)
    monkeypatch.setattr(bench_queue, "WARMUP", 1)
    monkeypatch.setattr(bench_queue_load, "CHUNK", 700)  # several chunks
    results = bench_queue.run(
        rows=2_000, labelers=2, duration=1.5, postgres_url=PG_SERVER_URL, echo=print
    )
    assert "sqlite" in results
    for report in results.values():
        check_backend(report, 2_000)


@pytest.mark.slow
def test_bench_queue_command_prints_the_table():
    result = CliRunner().invoke(
        cli,
        ["bench", "queue", "--rows", "2000", "--labelers", "2", "--duration", "1",
         "--postgres-url", ""],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "machine:" in result.output and "sqlite load:" in result.output
    assert "| next_item random |" in result.output and "| web review page |" in result.output
