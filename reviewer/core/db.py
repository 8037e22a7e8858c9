"""Engines, sessions and schema upgrades.

This module owns how the process talks to the database: one engine per URL
with the SQLite pragmas the design needs (WAL, foreign keys, a busy timeout),
a session factory, a write transaction helper, and ``upgrade``, which runs the Alembic
migrations with a configuration built in code. It opens no transaction on its own: callers
own them.
"""

from __future__ import annotations

import functools
import logging
import os
import sqlite3
import threading
import time
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

# An installed wheel carries the migrations inside the package (setup.py maps the checkout's
# top-level migrations/ there at build time); a checkout or an editable install reads them in place.
PACKAGED_MIGRATIONS = Path(__file__).resolve().parents[1] / "migrations"
CHECKOUT_MIGRATIONS = Path(__file__).resolve().parents[2] / "migrations"
SQLITE_BUSY_TIMEOUT_MS = 30_000
# Execution option read by the SQLite "begin" hook: which BEGIN to emit.
SQLITE_BEGIN_OPTION = "reviewer_sqlite_begin"
# How often the web process's background thread moves the WAL into the database file.
SQLITE_CHECKPOINT_SECONDS = 1.0
log = logging.getLogger(__name__)


def _checkpoint_loop(engine_ref: weakref.ref, path: str) -> None:
    """Checkpoint ``path`` (PASSIVE: never blocks readers or writers) every second, until
    the engine is gone. Runs in a daemon thread with its own connection; a failure (the
    file busy, moved, or not reachable) is logged and retried next time."""
    conn = None
    try:
        while engine_ref() is not None:
            try:
                if conn is None:
                    conn = sqlite3.connect(path, timeout=SQLITE_BUSY_TIMEOUT_MS / 1000)
                conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
            except sqlite3.Error as exc:
                log.warning("WAL checkpoint of %s failed: %s", path, exc)
            time.sleep(SQLITE_CHECKPOINT_SECONDS)
    finally:
        if conn is not None:
            conn.close()


def _start_checkpointer(engine: Engine, path: str) -> None:
    """One checkpoint thread per engine and process (gunicorn forks workers)."""
    started = engine.__dict__.setdefault("_reviewer_checkpointer_pids", set())
    if os.getpid() in started:
        return
    started.add(os.getpid())
    thread = threading.Thread(
        target=_checkpoint_loop,
        args=(weakref.ref(engine), path),
        name=f"sqlite-checkpoint {path}",
        daemon=True,
    )
    thread.start()


def make_engine(
    url: str,
    *,
    background_checkpoints: bool = False,
    busy_timeout_ms: int = SQLITE_BUSY_TIMEOUT_MS,
    lock_timeout_ms: int | None = None,
    **kwargs,
) -> Engine:
    """Create an engine; on SQLite, create the file's folder and set the pragmas.

    ``background_checkpoints`` (SQLite files only; the web app sets it): connections do not
    checkpoint the WAL when they commit, a background thread does it every second, so no
    request pays for copying the WAL into the database file (BENCHMARKS.md, the queue).
    ``busy_timeout_ms`` is how long a SQLite writer waits for the write lock;
    ``lock_timeout_ms`` (PostgreSQL) how long a statement waits for a row lock (None: for
    ever, PostgreSQL's default). PostgreSQL connections are pinged before use, so an engine
    recovers by itself when the server comes back, and run without JIT compilation (none of
    our statements is long enough to repay it).
    """
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        options = ["-c jit=off"]  # its compile time (40 ms) on statements it misjudges as big
        if lock_timeout_ms is not None:
            options.append(f"-c lock_timeout={int(lock_timeout_ms)}")
        kwargs.setdefault("connect_args", {})["options"] = " ".join(options)
        return create_engine(url, pool_pre_ping=True, **kwargs)
    on_disk = bool(parsed.database) and parsed.database != ":memory:"
    if on_disk:
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, connect_args={"timeout": busy_timeout_ms / 1000}, **kwargs)
    # A URI filename (file:...?uri=true) names the file differently: it keeps SQLite's own
    # checkpoints rather than have the thread open some other file.
    checkpoint_elsewhere = background_checkpoints and on_disk and not parsed.query.get("uri")

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record):
        # Let SQLAlchemy's "begin" event emit BEGIN itself (pysqlite's own
        # transaction handling cannot do BEGIN IMMEDIATE).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        cursor.execute("PRAGMA synchronous=NORMAL")
        if checkpoint_elsewhere:
            cursor.execute("PRAGMA wal_autocheckpoint=0")
            _start_checkpointer(engine, parsed.database)
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection):
        connection.exec_driver_sql(
            connection.get_execution_options().get(SQLITE_BEGIN_OPTION, "BEGIN")
        )

    return engine


def is_disk_full(exc: BaseException) -> bool:
    """A database error that says its disk is full (SQLITE_FULL, or PostgreSQL's 53100)."""
    orig = getattr(exc, "orig", exc)
    return getattr(orig, "sqlstate", None) == "53100" or "disk is full" in str(orig).lower()


def is_sqlite(session_or_engine: Session | Engine) -> bool:
    bind = (
        session_or_engine.get_bind()
        if isinstance(session_or_engine, Session)
        else session_or_engine
    )
    return bind.dialect.name == "sqlite"


def dialect_insert(session: Session):
    """The backend's ``insert`` construct, which has ``on_conflict_do_*`` (upserts)."""
    from sqlalchemy.dialects import postgresql, sqlite

    return sqlite.insert if is_sqlite(session) else postgresql.insert


@functools.cache
def _adding_upsert(insert_for, table, keys: tuple[str, ...], counts: tuple[str, ...]):
    """INSERT .. ON CONFLICT (keys) DO UPDATE adding the counts, with bound parameters: built
    once per backend and shape."""
    from sqlalchemy import bindparam

    columns = table.__table__.c  # the table itself: no ORM bulk work per row
    stmt = insert_for(table.__table__).values({name: bindparam(name) for name in (*keys, *counts)})
    update = {name: columns[name] + stmt.excluded[name] for name in counts}
    return stmt.on_conflict_do_update(index_elements=list(keys), set_=update)


def add_counts(session: Session, table, rows: list[dict]) -> None:
    """Upsert rows of one shape (the table's primary key, then counts): add the counts to the
    row at the key (or create it there), in one executemany, in the order given."""
    if not rows:
        return
    session.flush()  # a statement on the table does not autoflush: the ORM's writes go first
    names = list(rows[0])
    keys = tuple(n for n in names if n in table.__table__.primary_key.columns)
    counts = tuple(n for n in names if n not in keys)
    session.execute(_adding_upsert(dialect_insert(session), table, keys, counts), rows)


def floor_to_int(session: Session, value):
    """SQL: the non-negative ``value`` rounded down to an integer on either backend
    (PostgreSQL's cast rounds to nearest, SQLite's truncates)."""
    from sqlalchemy import Integer, cast, func

    return cast(value if is_sqlite(session) else func.floor(value), Integer)


def begin_write(session: Session) -> None:
    """Start the session's transaction as a writer.

    On SQLite this is ``BEGIN IMMEDIATE``: concurrent claimers queue on the
    busy timeout instead of failing when a read lock cannot be upgraded. It
    must be the first thing the transaction does. On other backends it is a
    plain begin (row locks do the job there).
    """
    if is_sqlite(session):
        session.connection(execution_options={SQLITE_BEGIN_OPTION: "BEGIN IMMEDIATE"})
    else:
        session.connection()


@contextmanager
def snapshot(factory: sessionmaker[Session]) -> Iterator[Session]:
    """A session for reads that must agree with each other (the dashboard's figures, the
    certificate: counts kept in summary rows and rows read back beside them): on PostgreSQL
    one REPEATABLE READ transaction, so every statement sees the same snapshot; a SQLite read
    transaction is one snapshot already."""
    with factory() as session:
        if not is_sqlite(session):
            session.connection(execution_options={"isolation_level": "REPEATABLE READ"})
        yield session


@contextmanager
def write_transaction(factory: sessionmaker[Session]) -> Iterator[Session]:
    """A session inside one transaction started as a writer; commits on success."""
    with factory() as session, session.begin():
        begin_write(session)
        yield session


def session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


def migrations_dir() -> Path:
    """The Alembic script folder: the package's copy in an installed wheel, else the checkout's."""
    return PACKAGED_MIGRATIONS if PACKAGED_MIGRATIONS.is_dir() else CHECKOUT_MIGRATIONS


def alembic_config(url: str):
    """The Alembic configuration, built in code: no alembic.ini needs to be found at run time."""
    from alembic.config import Config as AlembicConfig

    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(migrations_dir()))
    # ConfigParser interpolation: a literal % in a URL (an escaped password) must be doubled.
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def upgrade(url: str, revision: str = "head") -> None:
    """Bring the database at ``url`` to ``revision`` (idempotent)."""
    from alembic import command

    if make_url(url).get_backend_name() == "sqlite":
        make_engine(url).dispose()  # creates the folder for a file database
    command.upgrade(alembic_config(url), revision)


def downgrade(url: str, revision: str = "base") -> None:
    from alembic import command

    command.downgrade(alembic_config(url), revision)


def connect_postgres_admin(url: str):
    """A psycopg connection (autocommit) to the server and database of ``url``."""
    import psycopg

    u = make_url(url)
    return psycopg.connect(
        host=u.host,
        port=u.port or 5432,
        user=u.username,
        password=u.password,
        dbname=u.database,
        autocommit=True,
        connect_timeout=3,
    )


@contextmanager
def throwaway_postgres(server_url: str, *, prefix: str = "reviewer_tmp") -> Iterator[str]:
    """Create a fresh PostgreSQL database on ``server_url``'s server; drop it on exit.

    Yields its URL. Tests and benchmarks use it so nothing they do touches a real
    database. Raises whatever psycopg raises when the server cannot be reached.
    """
    import uuid

    admin = connect_postgres_admin(server_url)
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    try:
        admin.execute(f'CREATE DATABASE "{name}"')
        yield make_url(server_url).set(database=name).render_as_string(hide_password=False)
    finally:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()
