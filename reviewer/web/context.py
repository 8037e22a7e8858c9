"""What a request handler reaches through the application: config, sessions, store.

This module owns the per-request database session (opened on first use, closed
at teardown by ``build_app``) and the short-hands the blueprints use to reach
the deployment's config, the session factory for write transactions and the
image file store, so no blueprint touches ``current_app.extensions`` itself.
"""

from __future__ import annotations

from contextlib import contextmanager

from flask import current_app, g
from sqlalchemy.orm import Session

from reviewer.core import db
from reviewer.core.config import Config
from reviewer.core.files import FileStore


def config() -> Config:
    return current_app.extensions["reviewer"]["config"]


def sessions():
    return current_app.extensions["reviewer"]["sessions"]


def store() -> FileStore:
    return current_app.extensions["reviewer"]["store"]


def read_session() -> Session:
    """The request's session for reads (closed at teardown)."""
    if "db" not in g:
        g.db = sessions()()
    return g.db


def end_read() -> None:
    """End the read session's transaction so later reads see what a write committed."""
    if "db" in g:
        g.db.rollback()


@contextmanager
def write():
    """A write transaction (BEGIN IMMEDIATE on SQLite) that commits on success."""
    end_read()
    with db.write_transaction(sessions()) as session:
        yield session


def lease_seconds() -> int:
    return config().review_lease_seconds
