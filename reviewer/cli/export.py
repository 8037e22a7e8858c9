"""The ``export`` command: the human-reviewed items as a data set for retraining."""

from __future__ import annotations

import click

from reviewer.cli.context import LOCATION, Context, pass_context
from reviewer.core import db, locations
from reviewer.core.files import is_no_space


@click.command()
@click.argument("out", type=LOCATION)
@click.option(
    "--since",
    type=click.Choice(["all", "last"]),
    default="all",
    show_default=True,
    help="all: every reviewed item; last: only items with labels newer than the previous export.",
)
@click.option(
    "--include-unsure", is_flag=True, help="Also write items labeled unsure (OUT/unsure/)."
)
@click.option("--force", is_flag=True, help="Replace OUT if it holds an earlier export.")
@click.option(
    "--auto-accept",
    is_flag=True,
    help="Also write the images the certified threshold lets the model label alone "
    "(OUT/auto/<class>/); refused, with the reason, when there is no certificate.",
)
@click.option("--risk", type=float, help="With --auto-accept: α (default: risk_target).")
@click.option("--confidence", type=float, help="With --auto-accept: 1 − δ (risk_confidence).")
@pass_context
def export(ctx: Context, out, since, include_unsure, force, auto_accept, risk, confidence):
    """Write the human-reviewed items to OUT as a data set.

    OUT/images/<class>/<sha256>.png is the layout keras.utils.image_dataset_from_directory
    reads (a folder for every project class, even empty ones; pass the class list as
    class_names= to keep the project's class order). OUT/none_of_these/ (and OUT/unsure/
    with --include-unsure) lie outside images/. OUT/manifest.csv and OUT/manifest.jsonl
    describe each item; OUT/report.txt counts classes and lists the items left out (ties,
    unsure, voided). Several labelers are settled by majority. OUT appears only when
    complete; a non-empty OUT is refused unless --force. The random audit's items go to
    OUT/audit/<class>/ (held out of `train --from-export`); with --auto-accept, the images
    nobody answered at or above the certified threshold go to OUT/auto/<class>/ with the
    model's label. The manifest's `source` says human, audit or model.

    OUT may be s3://bucket/prefix: data first, manifest.csv last (a reader who waits for it
    never sees a half export; object stores keep no empty folders).
    """
    from reviewer.export import ExportError, discard_export, finish_export, prepare_export
    from reviewer.export.files import recover

    ctx.require_database()
    if (risk is not None or confidence is not None) and not auto_accept:
        raise click.UsageError("--risk and --confidence go with --auto-accept")
    options = dict(since=since, include_unsure=include_unsure, force=force)
    options.update(auto_accept={"risk": risk, "confidence": confidence} if auto_accept else None)
    for line in [] if locations.is_remote(out) else recover(out.absolute()):
        click.echo(line)  # after exports that were killed, before anything else
    try:
        # Written from a read session on one snapshot (so labelers keep labeling); then one
        # short write transaction records the export and renames it into place.
        with db.snapshot(ctx.sessions) as session:
            result = prepare_export(session, ctx.store, out, **options)
        try:
            with db.write_transaction(ctx.sessions) as session:
                finish_export(session, result)
        except BaseException:
            discard_export(result)
            raise
    except ExportError as exc:
        raise click.ClickException(str(exc)) from exc
    except OSError as exc:
        if not is_no_space(exc):
            raise
        raise click.ClickException(
            f"no space left on the device of {out}: nothing was exported (free some space and "
            "run the export again)"
        ) from exc
    for label, count in sorted(result.counts.items()):
        click.echo(f"  {label}: {count}")
    for source, count in sorted(result.sources.items()):
        click.echo(f"{source} labels: {count}")
    for line in result.auto_lines:
        click.echo(f"auto-accept: {line}")
    if result.left_out:
        click.echo(
            f"left out: {len(result.left_out)} (see {locations.join(result.path, 'report.txt')})"
        )
    click.echo(
        f"exported {result.item_count} items to {result.path} (label watermark {result.watermark})"
    )
