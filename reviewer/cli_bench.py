"""The `reviewer bench` group: benchmarks you can rerun, each printing a table."""

from __future__ import annotations

import platform

import click

from reviewer.cli import Context, pass_context


@click.group("bench")
def bench() -> None:
    """Benchmarks (rates as the median of several runs, ratios measured in one run)."""


def machine() -> str:
    import os

    return f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"


@bench.command("ingest")
@click.option("--count", default=10_000, show_default=True, help="Images to generate and ingest.")
@click.option("--runs", default=3, show_default=True, help="Runs per backend (median reported).")
@click.option("--batch-size", default=500, show_default=True)
@click.option(
    "--postgres-url",
    default="postgresql+psycopg://postgres@127.0.0.1:5432/postgres",
    show_default=True,
    help="Server for a throwaway database; '' to skip PostgreSQL.",
)
@pass_context
def bench_ingest(ctx: Context, count: int, runs: int, batch_size: int, postgres_url: str) -> None:
    """Ingest COUNT generated 28x28 PNGs into SQLite and PostgreSQL; report images/s.

    Each run starts from an empty database and file store and goes through the
    same path as `reviewer ingest`: decode and validate, fsynced files, one
    transaction per batch.
    """
    from reviewer import bench_ingest as b

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


def register(cli: click.Group) -> None:
    cli.add_command(bench)
