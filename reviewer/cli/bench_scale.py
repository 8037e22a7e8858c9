"""``reviewer bench scale``: what a pool of N images costs on PostgreSQL (reviewer.bench.scale)."""

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
