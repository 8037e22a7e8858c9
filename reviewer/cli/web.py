"""Commands of the web area: ``serve``, ``create-user`` and ``token``.

This module owns the command-line side of the web app and its users: start the
development server, create a user (the password from a prompt with
confirmation, or from stdin for scripts) and issue an API token, printed once
as the last word of the output so a script can take it with ``awk '{print
$NF}'``. The work is done by :func:`reviewer.create_app` and
:mod:`reviewer.users`. Registered on the ``reviewer`` group by reviewer.cli.
"""

from __future__ import annotations

import sys

import click

from reviewer.cli.context import Context, pass_context
from reviewer.core import users


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=5000, show_default=True, type=click.IntRange(1, 65535))
@click.option("--debug", is_flag=True, help="Flask's debugger and reloader (never in production).")
@pass_context
def serve(ctx: Context, host: str, port: int, debug: bool) -> None:
    """Run the web UI with Flask's development server (use gunicorn in production)."""
    from reviewer import create_app

    ctx.require_database()
    app = create_app(ctx.config)
    click.echo(f"serving on http://{host}:{port}/ (Ctrl-C to stop)", err=True)
    app.run(host=host, port=port, debug=debug)


def _read_password(password_stdin: bool) -> str:
    if password_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    return click.prompt("Password", hide_input=True, confirmation_prompt=True)


@click.command("create-user")
@click.argument("name")
@click.option("--role", type=click.Choice(users.ROLES), default="labeler", show_default=True)
@click.option("--password-stdin", is_flag=True, help="Read the password from the first stdin line.")
@pass_context
def create_user(ctx: Context, name: str, role: str, password_stdin: bool) -> None:
    """Create user NAME (asks for the password twice unless --password-stdin)."""
    ctx.require_database()
    password = _read_password(password_stdin)
    try:
        with ctx.sessions() as session, session.begin():
            users.create_user(session, name, password, role=role)
    except users.UserError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"created {role} {name}")


@click.command()
@click.argument("name")
@pass_context
def token(ctx: Context, name: str) -> None:
    """Issue a new API token for user NAME; it is printed once, as the last word."""
    ctx.require_database()
    try:
        with ctx.sessions() as session, session.begin():
            _, secret = users.create_token(session, users.require_user(session, name))
    except users.UserError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"API token for {name} (shown once, send as 'Authorization: Bearer ...'): {secret}")


def register(cli: click.Group) -> None:
    """Add this module's commands to `cli`."""
    for command in (serve, create_user, token):
        cli.add_command(command)
