"""``reviewer bench auto-accept``: does the certified threshold's error bound hold, and how much
of the pool does it let the model label (reviewer.bench.auto_accept)?"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import click

from reviewer.cli.bench_ml import demo_data_option, plot_option
from reviewer.cli.context import Context, machine, pass_context


@click.command("auto-accept")
@demo_data_option
@click.option("--epochs", default=5, show_default=True, help="The demo model's epochs.")
@click.option("--samples", "T", default=50, show_default=True, help="T for scoring.")
@click.option("--seed", default=0, show_default=True, help="The demo model's training seed.")
@click.option("--orders", default=200, show_default=True, help="Random audit orders per setting.")
@click.option("--quick", is_flag=True, help="40 orders, 400 audit labels, α = 0.05 only.")
@plot_option("/tmp/bench-auto-accept.png")
@click.option("--json", "json_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Also write every row as JSON here.")  # fmt: skip
@pass_context
def auto_accept(ctx: Context, data_dir, epochs, T, seed, orders, quick, plot_path, json_path):
    """Certified auto-accept on the demo pool scored by the demo model: for n = 200, 400, 800
    audit labels after 200 queue labels (none, entropy, mislabeled, ood), at α = 0.05 and
    0.02 with δ = 0.05, the share of random orders whose auto-accepted labels err more than α
    (promised: at most δ), the mean coverage and the labels saved; beside it the naive
    dashboard rule (an entropy threshold from queue-reviewed labels)."""
    from reviewer.bench import auto_accept as b

    options = dict(sizes=(400,), risks=(0.05,), queues=("none", "entropy")) if quick else {}
    orders = 40 if quick else orders
    with tempfile.TemporaryDirectory(prefix="reviewer-bench-") as work:
        pool = b.scored_pool(
            data_dir=data_dir, epochs=epochs, T=T, seed=seed, work=Path(work), echo=click.echo
        )
    click.echo(f"machine: {machine()}")
    click.echo(f"pool: {len(pool.confidence)} images, model accuracy {1 - pool.wrong.mean():.3f}")
    click.echo(b.HEADER)
    rows = b.run(pool, orders=orders, seed=seed, echo=click.echo, **options)
    click.echo(f"plot: {b.plot(rows, plot_path)}")
    if json_path is not None:
        json_path.write_text(json.dumps(rows, indent=1) + "\n")
        click.echo(f"rows: {json_path}")
