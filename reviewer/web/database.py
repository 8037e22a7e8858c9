"""The web app's database policy: bounded waits, whole-request retries, 503 instead of 500.

Every request holds at most one pooled connection at a time (the read session is closed
before a write transaction opens, see :mod:`reviewer.web.context`), and the pool is as large
as the server's thread cap, so no request ever waits on itself. On SQLite a writer waits for
the write lock at most ``SQLITE_BUSY_SECONDS``; a view whose transaction meets a locked
database (or, on PostgreSQL, a lock timeout, a deadlock or a serialization failure) is run
again from the start, at most ``ATTEMPTS`` times in all, then answered ``503 {"error": "the
database is busy, try again"}``. A database that cannot be reached answers 503 too; the pool
pings connections before use, so the app recovers alone when the database returns.
"""

from __future__ import annotations

import logging
import random
import time

from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from reviewer.core.db import is_disk_full

log = logging.getLogger(__name__)

ATTEMPTS = 3  # runs of a view that meets a busy database, the first included
SQLITE_BUSY_SECONDS = 2.0  # how long one SQLite writer waits for the write lock
POSTGRES_LOCK_TIMEOUT_MS = 2_000  # how long one statement waits for a row lock
POOL_TIMEOUT_SECONDS = 5.0  # how long a request waits for a free pooled connection
RETRY_PAUSE_SECONDS = (0.02, 0.2)  # a random pause between attempts spreads the retries
BUSY = "the database is busy, try again"
UNAVAILABLE = "the database is unavailable, try again in a moment"
FULL = "no space left for the database: nothing was saved; tell an admin"
# SQLSTATEs PostgreSQL answers when a transaction lost a race and may simply run again.
RETRYABLE_SQLSTATES = {"40001", "40P01", "55P03"}  # serialization, deadlock, lock timeout
SQLITE_BUSY_MESSAGES = ("database is locked", "database table is locked")


class DatabaseBusy(Exception):
    """The database stayed busy through every attempt of a request."""


class DatabaseUnavailable(Exception):
    """The database could not be reached."""


class DatabaseFull(Exception):
    """The database's disk is full: nothing was written."""


def engine_options(threads: int) -> dict:
    """Pool settings for a web process serving ``threads`` requests at once: one connection per
    thread, no overflow (a request never needs a second one), a bounded wait."""
    return {"pool_size": threads, "max_overflow": 0, "pool_timeout": POOL_TIMEOUT_SECONDS}


def is_busy(exc: BaseException) -> bool:
    """A lock that was not granted in time, or a transaction that lost a race."""
    if isinstance(exc, PoolTimeout):
        return True
    if not isinstance(exc, DBAPIError) or exc.connection_invalidated:
        return False
    sqlstate = getattr(exc.orig, "sqlstate", None)
    if sqlstate in RETRYABLE_SQLSTATES:
        return True
    return any(text in str(exc.orig).lower() for text in SQLITE_BUSY_MESSAGES)


def is_unavailable(exc: BaseException) -> bool:
    """The connection failed or was lost: the server is down or cannot be reached."""
    if not isinstance(exc, DBAPIError) or is_disk_full(exc):
        return False
    return exc.connection_invalidated or (isinstance(exc, OperationalError) and not is_busy(exc))


def run_with_retries(view, *, before_retry=None):
    """``view()``, run again when it meets a busy database; DatabaseBusy after ATTEMPTS runs,
    DatabaseUnavailable when the database cannot be reached. ``before_retry`` cleans up the
    failed attempt's state (the request's read session)."""
    for attempt in range(1, ATTEMPTS + 1):
        try:
            return view()
        except (DBAPIError, PoolTimeout) as exc:
            if is_busy(exc) and attempt < ATTEMPTS:
                log.info("database busy (%s); attempt %d of %d", _reason(exc), attempt, ATTEMPTS)
                if before_retry is not None:
                    before_retry()
                time.sleep(random.uniform(*RETRY_PAUSE_SECONDS))
                continue
            if is_busy(exc):
                log.warning("database still busy after %d attempts: %s", ATTEMPTS, _reason(exc))
                raise DatabaseBusy(BUSY) from exc
            if is_unavailable(exc):
                log.warning("database unavailable: %s", _reason(exc))
                raise DatabaseUnavailable(UNAVAILABLE) from exc
            if is_disk_full(exc):
                log.error("the database's disk is full: %s", _reason(exc))
                raise DatabaseFull(FULL) from exc
            raise
    raise AssertionError("unreachable")  # pragma: no cover


def _reason(exc: BaseException) -> str:
    orig = getattr(exc, "orig", None) or exc
    return str(orig).strip().splitlines()[0] if str(orig).strip() else type(orig).__name__
