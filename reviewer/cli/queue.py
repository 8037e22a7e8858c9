"""Commands that read the pool: ``queue`` (a strategy's ranking) and ``stats`` (counts)."""

from __future__ import annotations

import click
from sqlalchemy import func, select

from reviewer.cli.context import Context, pass_context
from reviewer.core import settings, strategies
from reviewer.core.text import printable
from reviewer.review import errors, ranking


@click.command("queue")
@click.option(
    "--strategy",
    default="entropy",
    show_default=True,
    type=click.Choice(strategies.STRATEGIES),
    help="The ordering (see docs/architecture.md's strategy table).",
)
@click.option("--limit", default=20, show_default=True, type=click.IntRange(min=1))
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help='One JSON document shaped like GET /api/queue\'s answer: {"strategy", "items", '
    '"next_cursor"}.',
)
@click.option("--jsonl", "as_jsonl", is_flag=True, help="One JSON item per line (JSON Lines).")
@pass_context
def queue_command(ctx: Context, strategy: str, limit: int, as_json: bool, as_jsonl: bool) -> None:
    """Print the unreviewed items of the active model version in STRATEGY order.

    Uses the same item keys as the JSON API: id, sha256, path, original_filename,
    given_label, predicted_label, strategy, rank_value and every uncertainty metric.
    """
    import json

    ctx.require_database()
    with ctx.sessions() as session:
        try:
            items, cursor = ranking.ranked(session, strategy, limit=limit)
        except errors.QueueError as exc:
            raise click.ClickException(str(exc)) from exc
    if as_json and as_jsonl:
        raise click.UsageError("--json and --jsonl are two shapes of one answer: pick one")
    if as_json:
        click.echo(json.dumps({"strategy": strategy, "items": items, "next_cursor": cursor}))
        return
    if as_jsonl:
        for item in items:
            click.echo(json.dumps(item))
        return
    if not items:
        click.echo("nothing to review: every scored item has its labels")
    for rank, item in enumerate(items, start=1):
        line = (
            f"{rank:>4}  id={item['id']:<7} predicted={item['predicted_label']:<6} "
            f"given={item['given_label'] or '-':<6} {item['reason']}  {item['original_filename']}"
        )
        click.echo(printable(line))  # a stored name never reaches the terminal as escapes


@click.command()
@pass_context
def stats(ctx: Context) -> None:
    """Print image counts by status and by given label, and how many are reviewed."""
    from reviewer.core.schema import Image
    from reviewer.review.progress import progress

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
        reviewed = progress(session)
        labels_per_item = settings.get_labels_per_item(session)
    click.echo(f"images: {total}")
    click.echo(
        f"reviewed: {reviewed['reviewed']} with a human label (labels per item: "
        f"{labels_per_item}); scored by the active version: {reviewed['scored']}"
    )
    click.echo("by status:")
    for status, count in by_status:
        click.echo(f"  {status}: {count}")
    click.echo("by given label:")
    for label, count in by_label:
        click.echo(f"  {'(none)' if label is None else label}: {count}")
