"""The ``reviewer bench`` group: benchmarks you can rerun, each printing a table.

The database benchmarks (``ingest``, ``queue``) are here; the ML ones are in
:mod:`reviewer.cli.bench_ml`.
"""

from __future__ import annotations

import click

from reviewer.cli import bench_ml
from reviewer.cli.context import Context, machine, pass_context


@click.group("bench")
def bench() -> None:
    """Benchmarks (rates as the median of several runs, ratios measured in one run)."""


# Both database benchmarks create their PostgreSQL database on this server and drop it after.
postgres_url_option = click.option(
    "--postgres-url",
    default="postgresql+psycopg://postgres@127.0.0.1:5432/postgres",
    show_default=True,
    help="Server for a throwaway database; '' to skip PostgreSQL.",
)


@bench.command("ingest")
@click.option("--count", default=10_000, show_default=True, help="Images to generate and ingest.")
@click.option("--runs", default=3, show_default=True, help="Runs per backend (median reported).")
@click.option("--batch-size", default=500, show_default=True)
@postgres_url_option
@pass_context
def bench_ingest(ctx: Context, count: int, runs: int, batch_size: int, postgres_url: str) -> None:
    """Ingest COUNT generated 28x28 PNGs into SQLite and PostgreSQL; report images/s.

    Each run starts from an empty database and file store and goes through the
    same path as `reviewer ingest`: decode and validate, fsynced files, one
    transaction per batch.
    """
    from reviewer.bench import ingest as b

    results = b.run(
        count=count,
        runs=runs,
        batch_size=batch_size,
        postgres_url=postgres_url or None,
        echo=click.echo,
    )
    click.echo(f"\nmachine: {machine()}")
    click.echo(f"| backend | images/s (median of {runs}) |")
    click.echo("|---|---|")
    for backend, rate in results.items():
        click.echo(f"| {backend} | {rate:,.0f} |")


@bench.command("queue")
@click.option("--rows", default=1_000_000, show_default=True, help="Images (and scores rows).")
@click.option("--labelers", default=20, show_default=True, help="Simulated web labelers.")
@click.option("--duration", default=30.0, show_default=True, help="Seconds of web simulation.")
@click.option(
    "--workers",
    default=2,
    show_default=True,
    help="gunicorn worker processes serving the web run (one per core).",
)
@postgres_url_option
@pass_context
def bench_queue(
    ctx: Context, rows: int, labelers: int, duration: float, workers: int, postgres_url: str
) -> None:
    """Latency of the review queue on a pool of ROWS scored images, half labeled.

    Times queue.next_item per strategy and queue.submit_label (p50/p99 of 200
    calls, each in its own write transaction), then LABELERS simulated people
    on the real web app (gunicorn, WORKERS processes) over loopback for DURATION
    seconds, each looping review page -> 1 s pause -> submit.
    """
    from reviewer.bench import queue as b

    results = b.run(
        rows=rows,
        labelers=labelers,
        duration=duration,
        postgres_url=postgres_url or None,
        echo=click.echo,
        workers=workers,
    )
    backends = list(results)
    click.echo(f"\nmachine: {machine()}")
    click.echo(
        f"rows: {rows:,}; labelers: {labelers}; web: gunicorn, {workers} workers, {duration:g} s"
    )
    for backend in backends:
        load = results[backend]["load"]
        click.echo(
            f"{backend} load: {load['load_s']:.1f} s + {load['index_analyze_s']:.1f} s "
            "(indexes, ANALYZE, leases)"
        )
    click.echo("| measurement (ms) | " + " | ".join(f"{b} p50 | {b} p99" for b in backends) + " |")
    click.echo("|---|" + "---|---|" * len(backends))
    for name in results[backends[0]]["latency"]:
        cells = []
        for backend in backends:
            row = results[backend]["latency"][name]
            cells += [f"{row['p50']:.2f}", f"{row['p99']:.2f}"]
        click.echo(f"| {name} | " + " | ".join(cells) + " |")


for command in (bench_ml.scoring, bench_ml.quality, bench_ml.loop):
    bench.add_command(command)
