"""The ``serve`` command: the web UI on waitress, a WSGI server with a fixed thread pool.

The pool of database connections is as large as the thread pool, so concurrent labelers
queue for a thread instead of holding connections while they wait for each other. gunicorn
behind a proxy is the production form (README); ``--debug`` runs Flask's own server instead.
"""

from __future__ import annotations

import logging

import click

from reviewer.cli.context import Context, pass_context

LOOPBACK = ("127.0.0.1", "localhost", "::1")


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=5000, show_default=True, type=click.IntRange(1, 65535))
@click.option(
    "--threads",
    type=click.IntRange(min=1),
    help="Requests served at once (default: REVIEWER_WEB_THREADS, 8); more wait their turn.",
)
@click.option("--debug", is_flag=True, help="Flask's debugger and reloader (never in production).")
@pass_context
def serve(ctx: Context, host: str, port: int, threads: int | None, debug: bool) -> None:
    """Run the web UI (waitress with a thread cap; use gunicorn behind a proxy in production)."""
    from reviewer import create_app

    ctx.require_database()
    config = ctx.config.with_(web_threads=threads) if threads else ctx.config
    app = create_app(config)
    if debug:
        click.echo(f"serving on http://{host}:{port}/ (Flask debug server)", err=True)
        app.run(host=host, port=port, debug=True)
        return
    from waitress import create_server

    logging.getLogger("waitress.queue").setLevel(logging.ERROR)  # a busy queue is no error
    try:  # bind first: the address is printed only once it is ours
        server = create_server(app, host=host, port=port, threads=config.web_threads)
    except OSError as exc:
        raise click.ClickException(
            f"cannot listen on {host}:{port}: {exc.strerror or exc} (choose another with --port N)"
        ) from exc
    click.echo(
        f"serving on http://{host}:{port}/ with {config.web_threads} threads (Ctrl-C to stop)",
        err=True,
    )
    if host not in LOOPBACK and not config.secure_cookies:
        click.echo(
            f"warning: {host} is reachable from other machines and REVIEWER_SECURE_COOKIES is "
            "off: login cookies travel in clear unless a proxy in front adds HTTPS; set "
            "REVIEWER_SECURE_COOKIES=1 once it does (README, production)",
            err=True,
        )
    try:
        server.run()
    except KeyboardInterrupt:
        pass
    finally:
        server.close()
