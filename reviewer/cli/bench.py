"""The ``reviewer bench`` group: benchmarks you can rerun, each printing a table.

The database benchmarks (``ingest``, ``queue``) are here; the ML ones are in
:mod:`reviewer.cli.bench_ml`.
"""

from __future__ import annotations

import click

from reviewer.bench import POSTGRES_SERVER_URL
from reviewer.bench.labelers import AUTHS, SERVERS
from reviewer.cli import bench_audit, bench_ml, bench_quality, bench_scale
from reviewer.cli.context import Context, machine, pass_context


@click.group("bench")
def bench() -> None:
    """Benchmarks (rates as the median of several runs, ratios measured in one run)."""


# Both database benchmarks create their PostgreSQL database on this server and drop it after.
postgres_url_option = click.option(
    "--postgres-url",
    default=POSTGRES_SERVER_URL,
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
@click.option(
    "--server",
    "servers",
    multiple=True,
    type=click.Choice(SERVERS),
    help="Web server(s) the labelers use (repeatable): `reviewer serve` or gunicorn in "
    "README's form (2 workers x 2 threads). Default: gunicorn.",
)
@click.option(
    "--labelers",
    "labeler_counts",
    multiple=True,
    type=click.IntRange(min=1),
    help="Simulated labelers at once (repeatable). Default: 20.",
)
@click.option(
    "--auth",
    "auths",
    multiple=True,
    type=click.Choice(AUTHS),
    help="How the labelers authenticate (repeatable): API token or cookie session (the "
    "review page). Default: session.",
)
@click.option("--duration", default=30.0, show_default=True, help="Seconds of each web run.")
@click.option(
    "--workers",
    default=2,
    show_default=True,
    help="gunicorn worker processes (one per core).",
)
@postgres_url_option
@pass_context
def bench_queue(
    ctx: Context, rows, servers, labeler_counts, auths, duration, workers, postgres_url
) -> None:
    """Latency of the review queue on a pool of ROWS scored images, half labeled.

    Times next_item per strategy and submit_label in process (p50/p99 of 200 calls, each in
    its own write transaction), then, for every --server x --auth x --labelers, that many
    simulated labelers over loopback for DURATION seconds, each looping next item -> 1 s
    pause -> label. Reports the review cycle's p50/p99 (the pause excluded), the labels and
    every error and timeout.
    """
    from reviewer.bench import queue as b

    settings = b.web_settings(
        servers or ["gunicorn"], auths or ["session"], labeler_counts or [20], workers
    )
    results = b.run(
        rows=rows,
        duration=duration,
        postgres_url=postgres_url or None,
        echo=click.echo,
        settings=settings,
    )
    backends = list(results)
    click.echo(f"\nmachine: {machine()}")
    click.echo(f"rows: {rows:,}; web runs of {duration:g} s, 1 s think time")
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
    _echo_web_table(results)


def _ms(value) -> str:
    return "-" if value is None else f"{value:.1f}"


def _echo_web_table(results: dict) -> None:
    click.echo(
        "\n| web run | backend | cycle p50 (ms) | cycle p99 (ms) | labels | errors | timeouts |"
    )
    click.echo("|---|---|---|---|---|---|---|")
    for backend, report in results.items():
        for name, row in report["web"].items():
            click.echo(
                f"| {name} | {backend} | {_ms(row['p50'])} | {_ms(row['p99'])} | "
                f"{row['labels']} | {row['errors']} | {row['timeouts']} |"
            )
            for error in row["first_errors"]:
                click.echo(f"  {backend} {name}: {error}")


for command in (
    bench_ml.scoring,
    bench_quality.quality,
    bench_ml.loop,
    bench_audit.auto_accept,
    bench_scale.scale,
    bench_scale.dashboard,
):
    bench.add_command(command)
