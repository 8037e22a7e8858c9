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
from reviewer.core.objects import ObjectStore


def config() -> Config:
    return current_app.extensions["reviewer"]["config"]


def sessions():
    return current_app.extensions["reviewer"]["sessions"]


def store() -> FileStore | ObjectStore:
    return current_app.extensions["reviewer"]["store"]


def read_session() -> Session:
    """The request's session for reads (closed at teardown, or when a write begins)."""
    if "db" not in g:
        g.db = sessions()()
    return g.db


def end_read() -> None:
    """Close the read session: its connection goes back to the pool and its objects are
    detached, so nothing can quietly load through it (a second connection) while a write
    transaction holds the first. The next `read_session` opens a fresh one, which sees what
    the write committed."""
    session = g.pop("db", None)
    if session is not None:
        session.close()


@contextmanager
def snapshot():
    """A read session on one snapshot (core.db.snapshot) for figures that must agree; the
    request's read session is closed first, as for a write."""
    end_read()
    with db.snapshot(sessions()) as session:
        yield session


@contextmanager
def write():
    """A write transaction (BEGIN IMMEDIATE on SQLite) that commits on success; the request's
    read session is closed first, so the request holds one connection at a time."""
    end_read()
    with db.write_transaction(sessions()) as session:
        yield session


def throttle():
    """The engine of the failed-login counters (reviewer.web.throttle)."""
    return current_app.extensions["reviewer"]["throttle"]


def lease_seconds() -> int:
    return config().review_lease_seconds
