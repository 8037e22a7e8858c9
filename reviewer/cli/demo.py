"""The ``demo`` and ``demo-data`` commands.

Thin wrappers over reviewer.demo.run (set up, then run the worker and the web server until
Ctrl-C), reviewer.demo.smoke (the whole loop, small, in a throwaway directory) and
reviewer.demo.data (the bundled digits).
"""

from __future__ import annotations

import logging
from pathlib import Path

import click

from reviewer.cli.context import Context, pass_context

DEMO_EPOCHS = 5


@click.command()
@click.option("--smoke", is_flag=True, help="Run the whole loop briefly in a temporary directory.")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address of the web UI.")
@click.option("--port", default=5000, show_default=True, type=click.IntRange(1, 65535))
@click.option(
    "--data-dir",
    default=Path("demo-data"),
    show_default=True,
    type=click.Path(path_type=Path, file_okay=False),
    help="Where the demo data set is written once and reused.",
)
@click.option(
    "--workdir",
    type=click.Path(path_type=Path, file_okay=False),
    help="With --smoke: keep its database, images and models here (default: a temporary one).",
)
@pass_context
def demo(ctx: Context, smoke: bool, host: str, port: int, data_dir: Path, workdir) -> None:
    """Run the review loop on the bundled MNIST digits: one command from a fresh clone.

    Creates the database (REVIEWER_* settings, default instance/reviewer.db) with the classes
    0-9, writes the demo data to --data-dir once, trains the default model on the first run
    (a minute or two on 2 cores; later runs reuse it), ingests the pool (10% wrong labels plus
    non-digits), creates the users `demo` (labeler) and `admin` with new passwords printed on
    every run, then runs the scoring worker and the web UI at http://HOST:PORT/ until Ctrl-C
    or SIGTERM stops both. Running it again reuses everything it made.

    --smoke runs the loop briefly instead (train, ingest, score, label through the JSON API,
    export, retrain from the export, rescore) under --workdir or a temporary directory, never
    touching instance/; it exits 0 when every step worked.
    """
    from reviewer.demo.run import run_demo
    from reviewer.demo.setup import DemoError

    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s")
    try:
        if smoke:
            from reviewer.demo.smoke import run_smoke

            run_smoke(workdir, click.echo)
            return
        code = run_demo(
            ctx.config, data_dir=data_dir, host=host, port=port, epochs=DEMO_EPOCHS, say=click.echo
        )
    except DemoError as exc:
        raise click.ClickException(str(exc)) from exc
    except KeyboardInterrupt:
        click.echo("interrupted; run `reviewer demo` again to carry on")
        code = 0
    raise SystemExit(code)


@click.command("demo-data")
@click.argument("out", type=click.Path(path_type=Path))
@click.option("--seed", default=0, show_default=True, help="Seed of the shuffle and the flips.")
def demo_data(out: Path, seed: int) -> None:
    """Write the bundled MNIST demo data set to OUT.

    OUT/train/<digit>/ holds 2,000 digits with true labels (to train the default
    model); OUT/pool/ holds the other 3,000 digits plus 100 non-digit images,
    with OUT/pool/labels.csv (10% of the given labels flipped to a wrong digit)
    and OUT/truth.csv (the true labels and each image's kind).
    """
    from reviewer.demo.data import write_demo_data

    try:
        counts = write_demo_data(out, seed=seed)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from exc
    for key, value in counts.items():
        click.echo(f"{key}: {value}")
