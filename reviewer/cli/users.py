"""Commands about people: ``create-user`` and ``token``.

A password comes from a prompt with confirmation, or from the first line of stdin for scripts.
An API token is printed once, as the last word of the output, so a script can take it with
``awk '{print $NF}'``. The work is done by :mod:`reviewer.core.users`.
"""

from __future__ import annotations

import sys

import click

from reviewer.cli.context import Context, pass_context
from reviewer.core import users


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
