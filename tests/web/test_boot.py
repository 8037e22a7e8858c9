"""Processes of one deployment start at the same moment (gunicorn forks its workers together):
whatever a process creates on its first start, a second process starting beside it waits for
or reuses, and never fails to boot."""

from __future__ import annotations

import os
import secrets
import sqlite3
import threading
import time

import pytest
from sqlalchemy import inspect

from reviewer.web import load_or_create_secret_key, throttle


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
    started = time.monotonic()
    try:
        engine = throttle.open_store(url)
    finally:
        waited = time.monotonic() - started
        release.join()
        other.close()
    assert waited >= 0.3  # it met the other worker's lock (else this test proves nothing)
    assert "login_failures" in inspect(engine).get_table_names()
    engine.dispose()


def test_a_worker_starting_beside_the_key_creator_gets_the_same_whole_key(tmp_path, monkeypatch):
    # While this process makes its key, another one runs the whole start-up and finishes
    # first: both must end up with that one key, and neither may read a half-made file.
    path = tmp_path / "secret_key"
    real_token_hex, others = secrets.token_hex, []

    def another_process_finishes_meanwhile(nbytes):
        monkeypatch.setattr(secrets, "token_hex", real_token_hex)
        others.append(load_or_create_secret_key(path))
        return real_token_hex(nbytes)

    monkeypatch.setattr(secrets, "token_hex", another_process_finishes_meanwhile)
    mine = load_or_create_secret_key(path)
    assert others == [mine] and len(mine) == 64
    assert path.read_text().strip() == mine
    assert path.stat().st_mode & 0o777 == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["secret_key"]  # no private copy left


def test_an_empty_key_file_is_refused_with_what_to_do(tmp_path):
    path = tmp_path / "secret_key"
    path.write_text("\n")
    with pytest.raises(RuntimeError, match="secret_key is empty: delete it or set"):
        load_or_create_secret_key(path)


def test_without_hard_links_the_key_is_written_in_place(tmp_path, monkeypatch):
    def no_hard_links(source, target):
        raise PermissionError(1, "Operation not permitted", source)

    monkeypatch.setattr(os, "link", no_hard_links)
    path = tmp_path / "secret_key"
    key = load_or_create_secret_key(path)
    assert len(key) == 64 and path.read_text().strip() == key
    assert path.stat().st_mode & 0o777 == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["secret_key"]
    assert load_or_create_secret_key(path) == key  # every later start reads it


def test_a_key_that_cannot_be_written_leaves_no_key_file(tmp_path, monkeypatch):
    def disk_full(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", disk_full)
    path = tmp_path / "secret_key"
    with pytest.raises(OSError, match="No space left"):
        load_or_create_secret_key(path)
    assert list(tmp_path.iterdir()) == []  # no empty key for the next start to trip on
