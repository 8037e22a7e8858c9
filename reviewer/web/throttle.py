"""Failed-login throttling, shared by every process of a deployment.

Failed logins are counted per (account, client address) and per client address over a sliding
window: `ACCOUNT_FAILURES` failures of one account from one address, or `ADDRESS_FAILURES` from
one address over any accounts, within `WINDOW` refuse further attempts from that address with
429 and ``Retry-After`` until the oldest failure leaves the window. An attacker elsewhere cannot
lock a labeler out: the labeler's own address keeps its own count. A successful login writes
nothing and is never slowed. The counters live in the ``login_failures`` table: in PostgreSQL
itself, or, on SQLite, in a database file of their own beside the main one, so they never wait
for the labelers' write lock. The client address is ``request.remote_addr``, which ProxyFix
sets from ``X-Forwarded-For`` only for the configured number of trusted proxies.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import delete, func, insert, select
from sqlalchemy.engine import make_url

from reviewer.core import db
from reviewer.core.schema import LoginFailure, as_utc, utcnow

ACCOUNT_FAILURES = 10
ADDRESS_FAILURES = 50
WINDOW = timedelta(minutes=15)
STORE_FILE = "throttle.db"


@dataclass(frozen=True)
class Refusal:
    """Too many failures: why, and how many seconds until a login may be tried again."""

    reason: str
    retry_after: int


def store_url(database_url: str) -> str:
    """Where the counters live: the PostgreSQL database itself, or a SQLite file beside the
    main SQLite file."""
    url = make_url(database_url)
    if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
        return database_url
    return f"sqlite:///{Path(url.database).absolute().parent / STORE_FILE}"


def open_store(database_url: str):
    """An engine on the counters' store; a separate SQLite file gets its table here.

    Every worker of a deployment opens the store as it starts, often at the same moment: the
    check and the create run under the write lock (``BEGIN IMMEDIATE``), so a second worker
    waits for the first and then finds the table, where a plain transaction's read snapshot
    would fail its write with "database is locked" and the worker would not boot."""
    url = store_url(database_url)
    engine = db.make_engine(url, busy_timeout_ms=5_000)
    if url != database_url:
        with db.session_factory(engine)() as session, session.begin():
            db.begin_write(session)
            LoginFailure.__table__.create(session.connection(), checkfirst=True)
    return engine


def _keys(username: str, address: str) -> tuple[str, str]:
    return f"account:{username.strip().lower()}|{address}", f"address:{address}"


def _recent(connection, key: str, since: datetime) -> list[datetime]:
    stmt = (
        select(LoginFailure.failed_at)
        .where(LoginFailure.key == key, LoginFailure.failed_at > since)
        .order_by(LoginFailure.failed_at)
    )
    return [as_utc(moment) for moment in connection.scalars(stmt)]


def check(engine, username: str, address: str, *, now: datetime | None = None) -> Refusal | None:
    """A refusal when ``address`` may not try to log in (as ``username``) right now."""
    now = now or utcnow()
    account_key, address_key = _keys(username, address)
    with engine.connect() as connection:
        for key, limit, what in (
            (account_key, ACCOUNT_FAILURES, "for this account from your address"),
            (address_key, ADDRESS_FAILURES, "from your address"),
        ):
            failures = _recent(connection, key, now - WINDOW)
            if len(failures) >= limit:
                oldest = failures[len(failures) - limit]
                wait = int((oldest + WINDOW - now).total_seconds()) + 1
                return Refusal(f"too many failed logins {what}", max(wait, 1))
    return None


def record_failure(engine, username: str, address: str, *, now: datetime | None = None) -> None:
    """Count one failed login; forget this address's failures older than the window."""
    now = now or utcnow()
    keys = _keys(username, address)
    with engine.begin() as connection:
        connection.execute(insert(LoginFailure), [{"key": k, "failed_at": now} for k in keys])
        old = LoginFailure.failed_at <= now - WINDOW
        connection.execute(delete(LoginFailure).where(LoginFailure.key.in_(keys), old))


def throttled(engine, *, now: datetime | None = None) -> list[dict]:
    """Keys at or over their limit now, for the admins' page: key, failures, last failure."""
    now = now or utcnow()
    stmt = (
        select(LoginFailure.key, func.count(), func.max(LoginFailure.failed_at))
        .where(LoginFailure.failed_at > now - WINDOW)
        .group_by(LoginFailure.key)
    )
    with engine.connect() as connection:
        rows = connection.execute(stmt).all()
    out = []
    for key, count, last in rows:
        limit = ACCOUNT_FAILURES if key.startswith("account:") else ADDRESS_FAILURES
        if count >= limit:
            out.append({"key": key, "failures": count, "last": as_utc(last).isoformat()})
    return sorted(out, key=lambda row: row["key"])


def clear(engine, key: str) -> None:
    """Forget a key's failures (an admin lifts a throttle)."""
    with engine.begin() as connection:
        connection.execute(delete(LoginFailure).where(LoginFailure.key == key))
