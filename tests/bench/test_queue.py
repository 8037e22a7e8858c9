"""`reviewer bench queue` on a tiny pool: the report's shape, never its timings."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from reviewer.bench import queue as bench_queue
from reviewer.bench import queue_load as bench_queue_load
from reviewer.cli import cli
from reviewer.core import strategies
from tests.support.env import PG_SERVER_URL


def check_backend(report: dict, rows: int, web_runs: set[str]) -> None:
    assert report["load"]["rows"] == rows and report["load"]["load_s"] > 0
    names = {f"next_item {s}" for s in strategies.STRATEGIES} | {"submit_label"}
    assert set(report["latency"]) == names
    for row in report["latency"].values():
        assert row["n"] > 0 and 0 < row["p50"] <= row["p99"]
    assert set(report["web"]) == web_runs
    for row in report["web"].values():
        assert row["n"] > 0 and 0 < row["p50"] <= row["p99"] and row["labels"] > 0
        assert row["errors"] == row["timeouts"] == 0, row["first_errors"]


@pytest.mark.slow
@pytest.mark.postgres
def test_bench_queue_reports_every_measurement_on_both_backends(monkeypatch):
    monkeypatch.setattr(bench_queue, "CALLS", 5)
    monkeypatch.setattr(bench_queue, "WARMUP", 1)
    monkeypatch.setattr(bench_queue_load, "CHUNK", 700)  # several chunks
    settings = bench_queue.web_settings(["serve", "gunicorn"], ["token", "session"], [2])
    results = bench_queue.run(
        rows=2_000, duration=1.5, postgres_url=PG_SERVER_URL, echo=print, settings=settings
    )
    assert set(results) == {"sqlite", "postgresql"}
    runs = {bench_queue.setting_name(setting) for setting in settings}
    for report in results.values():
        check_backend(report, 2_000, runs)


@pytest.mark.slow
def test_bench_queue_command_prints_the_table():
    result = CliRunner().invoke(
        cli,
        ["bench", "queue", "--rows", "2000", "--labelers", "2", "--duration", "1",
         "--server", "serve", "--auth", "token", "--postgres-url", ""],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "machine:" in result.output and "sqlite load:" in result.output
    assert "| next_item random |" in result.output
    assert "| serve, token, 2 labelers | sqlite |" in result.output
