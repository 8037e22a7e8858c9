"""The schema, its migrations and the connection settings, on SQLite and PostgreSQL."""

from __future__ import annotations

import gc
import sqlite3
import threading
import time

import numpy as np
import pytest
from alembic import command
from sqlalchemy import inspect, text

from reviewer.core import db
from reviewer.core.schema import Base


def test_migrations_match_schema(config):
    # `alembic check` raises when schema.py and the migrations differ.
    command.check(db.alembic_config(config.database_url))


def test_every_table_is_created(engine):
    tables = set(inspect(engine).get_table_names())
    assert set(Base.metadata.tables) <= tables
    assert "alembic_version" in tables


def test_downgrade_to_base_and_upgrade_again(config, engine):
    db.downgrade(config.database_url, "base")
    assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
    db.upgrade(config.database_url)
    db.upgrade(config.database_url)  # twice is harmless
    command.check(db.alembic_config(config.database_url))


def test_queue_indexes_exist(engine):
    names = {ix["name"] for ix in inspect(engine).get_indexes("scores")}
    for metric in ("entropy", "mutual_info", "margin", "self_confidence", "ood"):
        assert f"ix_scores_queue_{metric}" in names


def test_sqlite_pragmas(tmp_path):
    engine = db.make_engine(f"sqlite:///{tmp_path / 'x.db'}")
    with engine.connect() as conn:
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert conn.execute(text("PRAGMA foreign_keys")).scalar() == 1
        assert conn.execute(text("PRAGMA busy_timeout")).scalar() == db.SQLITE_BUSY_TIMEOUT_MS
    engine.dispose()


def test_sqlite_begin_write_takes_the_write_lock_at_once(tmp_path):
    path = tmp_path / "x.db"
    engine = db.make_engine(f"sqlite:///{path}")
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE t (x INTEGER)"))
    session = db.session_factory(engine)()
    with session.begin():
        db.begin_write(session)  # has not written anything yet
        other = sqlite3.connect(path, timeout=0)
        with pytest.raises(sqlite3.OperationalError, match="locked"):
            other.execute("BEGIN IMMEDIATE")
        other.close()
    session.close()
    engine.dispose()


def test_sqlite_plain_transactions_do_not_lock(tmp_path):
    path = tmp_path / "x.db"
    engine = db.make_engine(f"sqlite:///{path}")
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE t (x INTEGER)"))
    with db.session_factory(engine)() as session, session.begin():
        session.execute(text("SELECT * FROM t")).all()
        other = sqlite3.connect(path, timeout=0)
        other.execute("BEGIN IMMEDIATE")  # a reader does not block a writer
        other.rollback()
        other.close()
    engine.dispose()


def _wal_frames_after_one_more_write(engine) -> int:
    """Frames in the WAL after one small write: few when the WAL was checkpointed (a writer
    then starts it over), all the earlier writes' when nothing checkpointed it."""
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO t (x) VALUES ('one more')"))
    with engine.connect() as conn:
        return conn.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)").one()[1]


@pytest.mark.parametrize("background", [True, False])
def test_sqlite_background_checkpoints_keep_commits_from_checkpointing(
    tmp_path, monkeypatch, background
):
    monkeypatch.setattr(db, "SQLITE_CHECKPOINT_SECONDS", 0.05)
    engine = db.make_engine(f"sqlite:///{tmp_path / 'c.db'}", background_checkpoints=background)
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE t (id INTEGER PRIMARY KEY, x TEXT)"))
        automatic = conn.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar()
    assert automatic == (0 if background else 1000)  # 1000 pages: SQLite's default
    for i in range(300):  # ~300 frames: below SQLite's own threshold
        with engine.begin() as conn:
            conn.execute(text("INSERT INTO t (x) VALUES (:x)"), {"x": f"row {i}"})
    time.sleep(0.5)  # several checkpoint periods
    frames = _wal_frames_after_one_more_write(engine)
    if background:
        assert frames < 10  # the background thread checkpointed; the WAL started over
    else:
        assert frames > 300
    engine.dispose()


def test_sqlite_checkpoint_thread_ends_with_its_engine(tmp_path, monkeypatch):
    monkeypatch.setattr(db, "SQLITE_CHECKPOINT_SECONDS", 0.02)
    path = tmp_path / "gone.db"
    engine = db.make_engine(f"sqlite:///{path}", background_checkpoints=True)
    with engine.connect() as conn:
        conn.execute(text("SELECT 1"))
    name = f"sqlite-checkpoint {path}"
    assert any(t.name == name for t in threading.enumerate())
    engine.dispose()
    del engine, conn
    gc.collect()
    deadline = time.monotonic() + 5
    while any(t.name == name for t in threading.enumerate()) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not any(t.name == name for t in threading.enumerate())


def test_the_ood_migration_gives_every_older_version_the_fallback_score(config, sessions, tmp_path):
    """0009: rows scored under the old OOD score (or none) become entropy / log K, what the
    worker now scores those versions' new images with, so a version's column has one scale."""
    from sqlalchemy import select, update

    from reviewer.core.schema import Score
    from tests.support.scoring import ingest_pngs, make_version, make_worker

    digits = make_version(sessions, config)
    ingest_pngs(sessions, config, tmp_path, 6)
    make_worker(sessions, config).run(once=True, progress=False)
    pair = make_version(sessions, config, name="pair", classes=["a", "b"], activate=False)
    with sessions() as session, session.begin():
        rows = session.scalars(select(Score)).all()
        copied = [c.key for c in Score.__table__.columns if c.key not in ("id", "model_version_id")]
        session.add_all(
            Score(**{c: getattr(r, c) for c in copied}, model_version_id=pair.id) for r in rows
        )
    with sessions() as session, session.begin():  # the old score, and NULL for "pair"
        session.execute(update(Score).where(Score.model_version_id == digits.id).values(ood=7.5))
        session.execute(update(Score).where(Score.model_version_id == pair.id).values(ood=None))
    db.downgrade(config.database_url, "0008")
    db.upgrade(config.database_url)
    with sessions() as session:
        found = session.execute(select(Score.model_version_id, Score.entropy, Score.ood)).all()
    assert len(found) == 12
    for version_id, entropy, ood in found:
        classes = 10 if version_id == digits.id else 2
        assert ood == pytest.approx(entropy / np.log(classes))
