"""A full disk is an ordinary error: at the image store's write, at its fsync and at the database
commit, ingest stops with one line naming what is full and how many images were added before,
leaves no temporary files, and keeps rows and files in step; an upload answers 507."""

from __future__ import annotations

import errno
import io
import sqlite3

import pytest
from sqlalchemy import event, select
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from reviewer import create_app
from reviewer.core import files, users
from reviewer.core.files import TEMP_PREFIX
from reviewer.core.schema import Image
from tests.support.images import png_bytes, write_pngs
from tests.support.web import login

BATCH = 4


def _no_space() -> OSError:
    return OSError(errno.ENOSPC, "No space left on device")


def _failing_after(calls: int, real, error):
    """``real`` that raises ``error()`` from its ``calls``-th call on."""
    seen = []

    def fake(*args, **kwargs):
        seen.append(args)
        if len(seen) >= calls:
            raise error()
        return real(*args, **kwargs)

    return fake


def _assert_store_matches_rows(sessions, config) -> None:
    root = config.data_dir
    stored = {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}
    assert not [p for p in stored if TEMP_PREFIX in p]  # no leftovers for a later run
    with sessions() as s:
        named = set(s.scalars(select(Image.path)))
    assert stored == named  # every row has its file, every file its row


def _ingest(run_cli, tmp_path):
    write_pngs(tmp_path / "in", 3 * BATCH)
    return run_cli("ingest", tmp_path / "in", "--batch-size", BATCH)


def test_no_space_at_the_store_write(run_cli, sessions, config, tmp_path, monkeypatch):
    write = _failing_after(BATCH + 3, files._write_bytes, _no_space)  # in the second batch
    monkeypatch.setattr(files, "_write_bytes", write)
    result = _ingest(run_cli, tmp_path)
    assert result.exit_code == 1
    assert f"no space left on the image store ({BATCH} images added before it)" in result.output
    assert "Traceback" not in result.output
    _assert_store_matches_rows(sessions, config)


def test_no_space_at_fsync(run_cli, sessions, config, tmp_path, monkeypatch):
    monkeypatch.setattr(files, "_syncfs", lambda root: False)  # the per-file fsync path
    fsync = _failing_after(BATCH + 2, files._fsync_path, _no_space)
    monkeypatch.setattr(files, "_fsync_path", fsync)
    result = _ingest(run_cli, tmp_path)
    assert result.exit_code == 1
    assert "no space left on the image store (" in result.output
    _assert_store_matches_rows(sessions, config)


def test_no_space_for_the_database(run_cli, sessions, config, tmp_path):
    commits = []

    def full_disk(session):
        commits.append(session)
        if len(commits) == 2:  # batch 1 commits, batch 2 cannot
            orig = sqlite3.OperationalError("database or disk is full")
            raise OperationalError("COMMIT", {}, orig)

    event.listen(Session, "before_commit", full_disk)
    try:
        result = _ingest(run_cli, tmp_path)
    finally:
        event.remove(Session, "before_commit", full_disk)
    assert result.exit_code == 1
    assert f"no space left on the database ({BATCH} images added before it)" in result.output
    _assert_store_matches_rows(sessions, config)  # batch 2's files went with its rows


@pytest.fixture
def admin(sessions):
    with sessions() as s, s.begin():
        users.create_user(s, "ada", "ada-password", role="admin")


def test_an_upload_on_a_full_store_answers_507(config, sessions, admin, monkeypatch):
    app = create_app(config)
    client = app.test_client()
    token = login(client, "ada", "ada-password")
    monkeypatch.setattr(files, "_write_bytes", _failing_after(1, files._write_bytes, _no_space))
    reply = client.post(
        "/api/images",
        data={"file": (io.BytesIO(png_bytes(1)), "one.png")},
        headers={"X-CSRFToken": token},
    )
    assert reply.status_code == 507 and "no space left" in reply.get_json()["error"]
    _assert_store_matches_rows(sessions, config)
    app.extensions["reviewer"]["engine"].dispose()
