"""Riding out a database outage: the worker's database steps are retried, never fatal.

A connection refused or lost (a restart, a network blip, a failover) or a lock that outlasted
the busy timeout is retried with capped exponential backoff, `FIRST_WAIT_SECONDS` doubling up to
`LONGEST_WAIT_SECONDS`, each wait logged once with its reason. Only database steps are
retried: images already sampled are written when the database returns, never sampled again.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

logger = logging.getLogger(__name__)

FIRST_WAIT_SECONDS = 0.5
LONGEST_WAIT_SECONDS = 30.0
NAP_SECONDS = 0.1  # waits are taken in naps, so a stop request ends them promptly


def is_transient(exc: BaseException) -> bool:
    """A database error that goes away by itself: a lost or refused connection, a timeout."""
    if isinstance(exc, PoolTimeout):
        return True
    return isinstance(exc, DBAPIError) and (
        exc.connection_invalidated or isinstance(exc, OperationalError)
    )


def _reason(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", None) or exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def patiently(
    step: Callable[[], object],
    *,
    what: str,
    stopping: Callable[[], bool],
    waiting: Callable[[], None] = lambda: None,
    sleep: Callable[[float], None] = time.sleep,
):
    """``step()``, retried while the database is unreachable; ``waiting()`` runs before each
    wait (the worker records "waiting for database"). A stop request during a wait re-raises
    the error, so the caller unwinds like after any failed step."""
    wait = FIRST_WAIT_SECONDS
    while True:
        try:
            return step()
        except (DBAPIError, PoolTimeout) as exc:
            if not is_transient(exc) or stopping():
                raise
            logger.warning("database unreachable while %s (%s); retrying in %.1f s",
                           what, _reason(exc), wait)  # fmt: skip
            waiting()
            deadline = time.monotonic() + wait
            while not stopping() and time.monotonic() < deadline:
                sleep(min(NAP_SECONDS, wait))
            wait = min(2 * wait, LONGEST_WAIT_SECONDS)


def best_effort(step: Callable[[], object], *, what: str) -> None:
    """``step()``; a transient database error is logged and swallowed (a heartbeat must never
    stop the worker)."""
    try:
        step()
    except (DBAPIError, PoolTimeout) as exc:
        if not is_transient(exc):
            raise
        logger.info("could not record %s: %s", what, _reason(exc))
