"""``reviewer bench quality``: how well the rankings find the demo data's planted problems
(mislabel precision@k) and how well `ood` and the other OOD methods find strangers of many
kinds, per training seed and budget (reviewer.bench.quality, reviewer.bench.quality_report)."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import click

from reviewer.cli.bench_ml import demo_data_option
from reviewer.cli.context import Context, machine, pass_context


@click.command("quality")
@demo_data_option
@click.option(
    "--epochs",
    "budgets",
    multiple=True,
    type=click.IntRange(min=1),
    help="Training epochs; repeat for several budgets (default 5, what `make demo` trains).",
)
@click.option("--samples", "T", default=50, show_default=True, help="T for scoring.")
@click.option("--seed", "seeds", multiple=True, type=int, help="Training seed; repeat (default 0).")
@click.option(
    "--json",
    "json_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also write every run's figures to this JSON file.",
)
@pass_context
def quality(ctx: Context, data_dir, budgets, T, seeds, json_path) -> None:
    """Mislabel precision@k, and OOD AUROC / FPR@95 of `ood` and the other methods on 300
    strangers of each of 12 kinds against the demo pool's digits, per seed and budget.

    Each run trains the demo model, scores the pool and the strangers with the real worker and
    takes about 90 s on 2 cores. The full table: --seed 0 --seed 1 --seed 2 --epochs 5 --epochs 10.
    """
    from reviewer.bench import quality as b
    from reviewer.bench import quality_report

    runs = []
    for epochs in budgets or (5,):
        for seed in seeds or (0,):
            with tempfile.TemporaryDirectory(prefix="reviewer-bench-") as work:
                report = b.run(
                    data_dir=data_dir,
                    epochs=epochs,
                    T=T,
                    seed=seed,
                    work=Path(work),
                    echo=click.echo,
                )
            click.echo("\n".join(quality_report.run_lines(report)) + "\n")
            runs.append(report)
    click.echo(f"machine: {machine()}")
    click.echo("\n".join(quality_report.summary_lines(runs, b.COMPONENTS)))
    if json_path is not None:
        json_path.write_text(json.dumps(runs, indent=1) + "\n")
        click.echo(f"wrote {json_path}")
