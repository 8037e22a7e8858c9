"""The ``reviewer`` command line: a click group of thin commands.

This module owns argument parsing, messages and exit codes. Each command
reads the configuration from ``REVIEWER_*`` variables (config.py), opens what
it needs and calls one function of the modules that do the work. Nothing
heavy is imported at start-up: TensorFlow only loads inside the commands that
score or train.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click
from sqlalchemy import func, select

from config import Config
from reviewer.cli.context import Context, pass_context
from reviewer.core import db, settings
from reviewer.review.answers import STRATEGIES


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.pass_context
def cli(ctx: click.Context) -> None:
    """reviewer: an uncertainty-based human review queue for image classifiers.

    A worker scores images with Monte-Carlo dropout; labelers review the most
    uncertain or possibly mislabeled ones first in the web UI; their labels are
    exported to retrain the model. Settings come from REVIEWER_* environment
    variables (REVIEWER_DATABASE_URL, REVIEWER_DATA_DIR, REVIEWER_MODEL_DIR, ...).
    """
    try:
        ctx.obj = Context(Config.from_env())
    except ValueError as exc:
        raise click.ClickException(str(exc)) from exc


@cli.command("init-db")
@click.option("--classes", help="Set the class list, comma-separated (e.g. 0,1,2,...,9).")
@pass_context
def init_db(ctx: Context, classes: str | None) -> None:
    """Create or upgrade the database to the latest schema (safe to run twice)."""
    if classes is not None:
        try:
            names = settings.parse_classes(classes)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--classes") from exc
    db.upgrade(ctx.config.database_url)
    click.echo(f"database ready: {ctx.safe_url}")
    if classes is not None:
        with ctx.sessions() as session, session.begin():
            settings.set_classes(session, names)
        click.echo(f"classes: {', '.join(names)}")


@cli.group("classes")
def classes_group() -> None:
    """Show or set the project's class list."""


@classes_group.command("show")
@pass_context
def classes_show(ctx: Context) -> None:
    """Print the class list, one per line."""
    ctx.require_database()
    with ctx.sessions() as session:
        names = settings.get_classes(session)
    if not names:
        click.echo("no class list set: run `reviewer classes set a,b,c`", err=True)
    for name in names:
        click.echo(name)


@classes_group.command("set")
@click.argument("classes")
@pass_context
def classes_set(ctx: Context, classes: str) -> None:
    """Set the class list to CLASSES (comma-separated, in the model's order)."""
    ctx.require_database()
    try:
        with ctx.sessions() as session, session.begin():
            names = settings.set_classes(session, classes)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="CLASSES") from exc
    click.echo(f"classes: {', '.join(names)}")


@cli.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option(
    "--labels",
    "labels_csv",
    type=click.Path(path_type=Path),
    help="CSV with columns filename,label (file names relative to the CSV's folder).",
)
@click.option(
    "--labels-from-folders",
    is_flag=True,
    help="Use each image's parent folder name as its given label.",
)
@click.option(
    "--update-labels",
    is_flag=True,
    help="Replace the given labels of images that are already present.",
)
@click.option("--source", help="A name for where these images came from (kept per image).")
@click.option(
    "--batch-size",
    default=500,
    show_default=True,
    type=click.IntRange(min=1),
    help="Images per transaction.",
)
@pass_context
def ingest(ctx: Context, paths, labels_csv, labels_from_folders, update_labels, source, batch_size):
    """Add images from files and folders (recursively) to the review pool.

    Files without an image extension are skipped and counted; images that fail
    to decode are rejected with the reason; the same bytes twice add nothing.
    A label from --labels wins over the folder name.
    """
    from tqdm import tqdm

    from reviewer.ingest import IngestError, run_ingest

    ctx.require_database()
    with tqdm(desc="ingest", unit="img", file=sys.stderr, disable=None) as bar:
        try:
            report = run_ingest(
                ctx.sessions,
                ctx.store,
                list(paths),
                max_pixels=ctx.config.max_image_pixels,
                labels_csv=labels_csv,
                labels_from_folders=labels_from_folders,
                update_labels=update_labels,
                source=source,
                batch_size=batch_size,
                progress=bar.update,
            )
        except IngestError as exc:
            raise click.ClickException(str(exc)) from exc
    for line in report.lines():
        click.echo(line)


@cli.command()
@pass_context
def stats(ctx: Context) -> None:
    """Print image counts by status and by given label."""
    from reviewer.core.schema import Image

    ctx.require_database()
    with ctx.sessions() as session:
        total = session.scalar(select(func.count()).select_from(Image))
        by_status = session.execute(
            select(Image.status, func.count()).group_by(Image.status).order_by(Image.status)
        ).all()
        by_label = session.execute(
            select(Image.given_label, func.count())
            .group_by(Image.given_label)
            .order_by(Image.given_label)
        ).all()
    click.echo(f"images: {total}")
    click.echo("by status:")
    for status, count in by_status:
        click.echo(f"  {status}: {count}")
    click.echo("by given label:")
    for label, count in by_label:
        click.echo(f"  {'(none)' if label is None else label}: {count}")


@cli.command("queue")
@click.option(
    "--strategy",
    default="entropy",
    show_default=True,
    type=click.Choice(STRATEGIES),
    help="The ordering (see DESIGN.md's strategy table).",
)
@click.option("--limit", default=20, show_default=True, type=click.IntRange(min=1))
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
@pass_context
def queue_command(ctx: Context, strategy: str, limit: int, as_json: bool) -> None:
    """Print the unreviewed items of the active model version in STRATEGY order.

    Uses the same item keys as the JSON API: id, sha256, path, original_filename,
    given_label, predicted_label, strategy, rank_value and every uncertainty metric.
    """
    import json

    from reviewer.review import answers as queue

    ctx.require_database()
    with ctx.sessions() as session:
        try:
            items, _ = queue.ranked(session, strategy, limit=limit)
        except queue.QueueError as exc:
            raise click.ClickException(str(exc)) from exc
    if as_json:
        for item in items:
            click.echo(json.dumps(item))
        return
    if not items:
        click.echo("nothing to review: every scored item has its labels")
    for rank, item in enumerate(items, start=1):
        click.echo(
            f"{rank:>4}  id={item['id']:<7} predicted={item['predicted_label']:<6} "
            f"given={item['given_label'] or '-':<6} {item['reason']}  {item['original_filename']}"
        )


@cli.command("demo-data")
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


def main() -> None:
    cli(prog_name="reviewer")


def _register_command_modules() -> None:
    # Each area keeps its commands in its own module; none imports TensorFlow at import time.
    from reviewer.cli import bench as cli_bench
    from reviewer.cli import bench_ml as cli_bench_ml
    from reviewer.cli import demo as cli_demo
    from reviewer.cli import export as cli_export
    from reviewer.cli import models as cli_scoring
    from reviewer.cli import web as cli_web

    for module in (cli_scoring, cli_web, cli_export, cli_bench, cli_bench_ml, cli_demo):
        module.register(cli)


_register_command_modules()
