"""``reviewer bench scale``: what a pool of N images costs on PostgreSQL (reviewer.bench.scale);
``reviewer bench dashboard``: the dashboard at N images on both databases (bench.dashboard)."""

from __future__ import annotations

import click

from reviewer.bench import POSTGRES_SERVER_URL
from reviewer.cli.context import machine


@click.command("scale")
@click.option(
    "--rows",
    "row_counts",
    multiple=True,
    type=click.IntRange(min=1000),
    help="Pool sizes (repeatable). Default: 1,000,000.",
)
@click.option(
    "--postgres-url",
    default=POSTGRES_SERVER_URL,
    show_default=True,
    help="Server for the throwaway databases (each dropped after its size).",
)
@click.option("--no-dashboard", is_flag=True, help="Skip timing the dashboard's figures.")
def scale(row_counts, postgres_url: str, no_dashboard: bool) -> None:
    """Load each size into a throwaway PostgreSQL database (COPY, half the pool labeled) and
    report table and index sizes, the entropy queue's hand-out plan with its buffers, next_item
    p50/p99 per strategy and the dashboard's figures timed once. 10,000,000 rows take about 15
    minutes and 15 GB of disk on 2 cores."""
    from reviewer.bench import scale as b

    click.echo(f"machine: {machine()}")
    for rows in row_counts or (1_000_000,):
        result = b.measure(postgres_url, rows, echo=click.echo, dashboard=not no_dashboard)
        click.echo("\n".join(b.lines(result)) + "\n")


@click.command("dashboard")
@click.option(
    "--rows", default=1_000_000, show_default=True, type=click.IntRange(min=1000),
    help="Images in the pool (about half of them labeled).",
)  # fmt: skip
@click.option(
    "--backend",
    "backends",
    multiple=True,
    type=click.Choice(["sqlite", "postgresql"]),
    help="Databases to measure (repeatable). Default: both.",
)
@click.option(
    "--calls", default=5, show_default=True, type=click.IntRange(min=1),
    help="Timed calls of each.",
)  # fmt: skip
@click.option("--postgres-url", default=POSTGRES_SERVER_URL, show_default=True)
def dashboard(rows: int, backends, calls: int, postgres_url: str) -> None:
    """Load a pool of ROWS images (as bench queue does) into a temporary SQLite file and a
    throwaway PostgreSQL database, then time the dashboard's figures (/dashboard, /api/stats)
    and the queue page's progress counts CALLS times each. 1,000,000 rows take about 5 minutes
    on 2 cores."""
    from reviewer.bench import dashboard as b

    click.echo(f"machine: {machine()}")
    results = []
    for backend in backends or ("sqlite", "postgresql"):
        click.echo(f"{backend}: loading {rows:,} rows ...")
        results.append(b.measure(backend, rows, postgres_url=postgres_url, calls=calls))
    click.echo("\n".join(b.lines(results)))
