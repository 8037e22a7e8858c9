"""What every command shares: the configuration and the resources it opens on first use.

This module owns the click context object (`Context`), `pass_context`, the path-or-URL
parameter type (`LOCATION`), logging to stderr for
the long-running commands and the machine description the benchmarks print. It lives apart
from :mod:`reviewer.cli` so each command module can import it without importing the group.
"""

from __future__ import annotations

import logging
import os
import platform
from functools import cached_property

import click

from reviewer.core import db, locations
from reviewer.core.config import Config


class LocationType(click.ParamType):
    """A local path (a Path) or an object-storage URL (``s3://bucket/prefix``, kept as text)."""

    name = "path"

    def convert(self, value, param, ctx):
        if not isinstance(value, str):
            return value
        try:
            return locations.parse(value, name=param.human_readable_name if param else "path")
        except locations.LocationError as exc:
            self.fail(str(exc), param, ctx)


class LocalFolderType(LocationType):
    """A local folder; an object-storage URL is refused with what to do instead."""

    def convert(self, value, param, ctx):
        location = super().convert(value, param, ctx)
        if locations.is_remote(location):
            self.fail(
                f"{location}: training reads a local folder; copy the prefix down first "
                "(e.g. `aws s3 sync`)",
                param,
                ctx,
            )
        return location


LOCATION, LOCAL_FOLDER = LocationType(), LocalFolderType()


class Context:
    """What a command needs, opened on first use."""

    def __init__(self, config: Config):
        self.config = config

    @cached_property
    def engine(self):
        return db.make_engine(self.config.database_url)

    @cached_property
    def sessions(self):
        return db.session_factory(self.engine)

    @cached_property
    def store(self):
        from reviewer.core.objects import image_store

        return image_store(self.config.data_dir)

    def require_database(self) -> None:
        """Fail with a clear message when the schema is missing or out of date."""
        from alembic.runtime.migration import MigrationContext
        from alembic.script import ScriptDirectory

        head = ScriptDirectory.from_config(
            db.alembic_config(self.config.database_url)
        ).get_current_head()
        try:
            with self.engine.connect() as conn:
                current = MigrationContext.configure(conn).get_current_revision()
        except Exception as exc:  # noqa: BLE001 - any connection failure is reported the same way
            raise click.ClickException(f"cannot open the database {self.safe_url}: {exc}") from exc
        if current != head:
            state = "is not initialised" if current is None else f"is at {current}, not {head}"
            raise click.ClickException(
                f"the database {self.safe_url} {state}: run `reviewer init-db`"
            )

    @property
    def safe_url(self) -> str:
        from sqlalchemy.engine import make_url

        return make_url(self.config.database_url).render_as_string(hide_password=True)


pass_context = click.make_pass_decorator(Context)


def log_to_stderr() -> None:
    """INFO logs with a time stamp on stderr, unless logging is configured already."""
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")


def machine() -> str:
    """This machine in one line, for benchmark reports."""
    return f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
