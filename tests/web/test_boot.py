"""Processes of one deployment start at the same moment (gunicorn forks its workers together):
whatever a process creates on its first start, a second process starting beside it waits for
or reuses, and never fails to boot."""

from __future__ import annotations

import sqlite3
import threading

from sqlalchemy import inspect

from reviewer.web import throttle


def test_the_throttle_store_waits_for_a_process_writing_it(tmp_path):
    # Another worker holds the new store's write lock while this one starts: this one must
    # wait for it and then find or create the table, not fail with "database is locked".
    url = f"sqlite:///{tmp_path / 'reviewer.db'}"
    other = sqlite3.connect(
        tmp_path / throttle.STORE_FILE, isolation_level=None, check_same_thread=False
    )
    other.execute("PRAGMA journal_mode=WAL")
    other.execute("BEGIN IMMEDIATE")
    other.execute("CREATE TABLE written_by_the_other_worker (id INTEGER)")
    release = threading.Timer(0.5, other.execute, args=("COMMIT",))
    release.start()
    try:
        engine = throttle.open_store(url)
    finally:
        release.join()
        other.close()
    assert "login_failures" in inspect(engine).get_table_names()
    engine.dispose()

