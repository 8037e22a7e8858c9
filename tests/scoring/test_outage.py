"""A short PostgreSQL outage, through a loopback TCP proxy that the test stops and restarts:
the worker waits and goes on (each image sampled once), the web app answers 503 meanwhile and
recovers alone."""

from __future__ import annotations

import logging
import threading
import time

import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import make_url

from reviewer import create_app
from reviewer.core import db, settings, users
from reviewer.core.config import TestConfig
from reviewer.core.files import FileStore
from reviewer.core.schema import Score
from reviewer.scoring.worker import Worker
from tests.support.env import PG_SERVER_URL, require
from tests.support.proxy import TcpProxy
from tests.support.scoring import DIGITS, FakeSampler, ingest_pngs, make_version
from tests.support.web import login

pytestmark = [pytest.mark.postgres, pytest.mark.slow]
IMAGES = 40
OUTAGE_SECONDS = 3.0


@pytest.fixture
def proxied(tmp_path):
    """(a config whose database URL goes through the proxy, the direct URL, the proxy)."""
    try:
        db.connect_postgres_admin(PG_SERVER_URL).close()
    except Exception as exc:  # noqa: BLE001
        require(f"PostgreSQL not reachable at {PG_SERVER_URL}: {exc}")
    with db.throwaway_postgres(PG_SERVER_URL, prefix="reviewer_outage") as direct:
        url = make_url(direct)
        proxy = TcpProxy(url.host or "127.0.0.1", url.port or 5432)
        proxy.start()
        through = url.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
        db.upgrade(direct)
        engine = db.make_engine(direct)
        with db.session_factory(engine)() as s, s.begin():
            settings.set_classes(s, DIGITS)
        engine.dispose()
        try:
            yield TestConfig.in_directory(tmp_path, through), direct, proxy
        finally:
            proxy.stop()


def _scored(direct_sessions) -> int:
    with direct_sessions() as s:
        return s.scalar(select(func.count()).select_from(Score))


def _wait(predicate, timeout=60.0):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_the_worker_waits_for_the_database_and_goes_on(proxied, tmp_path, caplog):
    config, direct, proxy = proxied
    direct_engine = db.make_engine(direct)
    direct_sessions = db.session_factory(direct_engine)
    ingest_pngs(direct_sessions, config, tmp_path, IMAGES)
    make_version(direct_sessions, config)
    engine = db.make_engine(config.database_url)
    sampler = FakeSampler(delay=0.05)
    worker = Worker(
        db.session_factory(engine),
        FileStore(config.data_dir),
        lease_seconds=120,
        batch_size=4,
        sampler=sampler,
        batchbald_size=0,
    )
    failures = []

    def run():
        try:
            worker.run(once=False, poll_seconds=0.1, progress=False)
        except BaseException as exc:  # noqa: BLE001 - the test asserts there is none
            failures.append(exc)

    caplog.set_level(logging.WARNING, logger="reviewer.scoring.outages")
    thread = threading.Thread(target=run)
    thread.start()
    try:
        _wait(lambda: _scored(direct_sessions) >= 8)
        proxy.stop()  # the database goes away mid-run
        time.sleep(OUTAGE_SECONDS)
        assert thread.is_alive() and not failures
        proxy.start()
        _wait(lambda: _scored(direct_sessions) == IMAGES)
    finally:
        worker.stop()
        thread.join(30)
        engine.dispose()
        direct_engine.dispose()
    assert not failures and not thread.is_alive()
    assert len(sampler.sampled) == IMAGES and set(sampler.sampled.values()) == {1}
    assert "database unreachable while" in caplog.text


def test_the_web_app_answers_503_during_an_outage_and_recovers(proxied):
    config, direct, proxy = proxied
    engine = db.make_engine(direct)
    with db.session_factory(engine)() as s, s.begin():
        users.create_user(s, "ada", "ada-password", role="admin")
    engine.dispose()
    app = create_app(config)
    client = app.test_client()
    login(client, "ada", "ada-password")
    assert client.get("/api/progress").status_code == 200
    proxy.stop()
    try:
        down = client.get("/api/progress")
        assert down.status_code == 503 and "unavailable" in down.get_json()["error"]
        page = client.get("/queue")
        assert page.status_code == 503 and "try again" in page.get_data(as_text=True)
    finally:
        proxy.start()
    assert client.get("/api/progress").status_code == 200  # recovered without a restart
    app.extensions["reviewer"]["engine"].dispose()
