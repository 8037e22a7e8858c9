"""Commands about the project itself: ``init-db`` and ``classes show`` / ``classes set``."""

from __future__ import annotations

import click

from reviewer.cli.context import Context, pass_context
from reviewer.core import db, settings


@click.command("init-db")
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


@click.group("classes")
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


@click.group("settings")
def settings_group() -> None:
    """Show or change the project settings (labels per item, certified auto-accept)."""


@settings_group.command("show")
@pass_context
def settings_show(ctx: Context) -> None:
    """Print every setting people change, one ``name value`` per line."""
    ctx.require_database()
    with ctx.sessions() as session:
        for name, (read, _) in settings.EDITABLE.items():
            click.echo(f"{name} {read(session)}")


@settings_group.command("set", context_settings={"ignore_unknown_options": True})  # "-0.1"
@click.argument("name", type=click.Choice(list(settings.EDITABLE)))
@click.argument("value")
@pass_context
def settings_set(ctx: Context, name: str, value: str) -> None:
    """Set NAME to VALUE: labels_per_item (1-100), risk_target (α, above 0 and below 1),
    risk_confidence (1 − δ, above 0 and below 1) or audit_rate (0 to below 1; 0: off)."""
    ctx.require_database()
    try:
        with db.write_transaction(ctx.sessions) as session:
            settings.set_by_name(session, name, value)
            shown = settings.EDITABLE[name][0](session)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="VALUE") from exc
    click.echo(f"{name} {shown}")
