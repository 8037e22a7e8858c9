"""The web app's database policy: one pooled connection per request at a time, a locked
database answered with 503 (never 500, never a hang), and the pool sized to the threads."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections import defaultdict

import pytest
from sqlalchemy import event
from sqlalchemy.engine import make_url

from reviewer import create_app
from reviewer.core import users
from reviewer.web import database
from tests.support.web import login


class ConnectionsPerThread:
    """How many pooled connections each thread holds at once, at most."""

    def __init__(self, engine):
        self.held, self.most = defaultdict(int), defaultdict(int)
        event.listen(engine, "checkout", self.checkout)
        event.listen(engine, "checkin", self.checkin)

    def checkout(self, *_):
        me = threading.get_ident()
        self.held[me] += 1
        self.most[me] = max(self.most[me], self.held[me])

    def checkin(self, *_):
        self.held[threading.get_ident()] -= 1


def test_a_request_never_holds_two_connections(app, client, accounts, scored, sessions):
    counter = ConnectionsPerThread(app.extensions["reviewer"]["engine"])
    with sessions() as s, s.begin():
        _, secret = users.create_token(s, users.require_user(s, "lee"))
    bearer = {"Authorization": f"Bearer {secret}"}  # its first use touches the token (a write)
    item = client.post("/api/queue/next", json={"strategy": "bald"}, headers=bearer)
    item = item.get_json()["item"]
    done = client.post(f"/api/items/{item['id']}/labels", json={"label": "3"}, headers=bearer)
    assert done.status_code == 201
    csrf = login(client, "ada")
    for path in ("/queue", "/review", "/dashboard", "/admin/users", f"/items/{scored[2]}"):
        assert client.get(path).status_code == 200, path
    undo = client.post(f"/api/items/{item['id']}/labels/undo", headers=bearer)
    assert undo.status_code == 200
    assert client.post("/api/queue/next", json={}, headers={"X-CSRFToken": csrf}).status_code == 200
    assert counter.most and max(counter.most.values()) == 1


def test_the_pool_has_one_connection_per_thread(config):
    app = create_app(config.with_(web_threads=5))
    pool = app.extensions["reviewer"]["engine"].pool
    assert pool.size() == 5 and pool._max_overflow == 0
    app.extensions["reviewer"]["engine"].dispose()


@pytest.fixture
def sqlite_only(database_url):
    if not database_url.startswith("sqlite"):
        pytest.skip("the write lock held from outside is SQLite's")
    return make_url(database_url).database


def test_a_locked_database_answers_503_not_500(sqlite_only, config, accounts, scored, monkeypatch):
    monkeypatch.setattr(database, "SQLITE_BUSY_SECONDS", 0.2)
    app = create_app(config)
    client = app.test_client()
    csrf = login(client, "lee")
    blocker = sqlite3.connect(sqlite_only, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")  # another process holds the write lock
    try:
        started = time.monotonic()
        reply = client.post("/api/queue/next", json={}, headers={"X-CSRFToken": csrf})
        waited = time.monotonic() - started
        page = client.get("/review")
    finally:
        blocker.rollback()
        blocker.close()
    assert reply.status_code == 503 and reply.get_json() == {"error": database.BUSY}
    assert reply.headers["Retry-After"] == "1"
    assert waited < 5  # three attempts of 0.2 s and short pauses: bounded, never a hang
    assert page.status_code == 503 and "busy" in page.get_data(as_text=True)
    again = client.post("/api/queue/next", json={}, headers={"X-CSRFToken": csrf})
    assert again.status_code == 200 and again.get_json()["item"]  # free again: served
    app.extensions["reviewer"]["engine"].dispose()
