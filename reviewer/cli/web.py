"""The ``serve`` command: the web UI on a development-grade server (gunicorn in production)."""

from __future__ import annotations

import click

from reviewer.cli.context import Context, pass_context


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
