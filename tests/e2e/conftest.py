"""Fixtures for the browser tests: a live server, the real app in a thread on a random port.

The database is SQLite in tmp_path with ~10 scored items written directly (no
TensorFlow), an admin ``ada`` and a labeler ``lee``. Chromium is the Debian
package at /usr/bin/chromium driven by Playwright; when either is missing the
test skips outside CI and fails in CI (``require`` from tests/support/env.py).
"""

from __future__ import annotations

import os
import threading

import pytest
from werkzeug.serving import make_server

from reviewer import create_app
from reviewer.core import db, settings, users
from reviewer.core.config import TestConfig
from reviewer.core.files import FileStore
from tests.support.env import require
from tests.support.web import PASSWORDS, add_scored_items

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]


def seed_demo_database(root, count: int = 10):
    """A migrated SQLite deployment in ``root`` with ``count`` scored items and two users."""
    config = TestConfig.in_directory(root)
    db.upgrade(config.database_url)
    engine = db.make_engine(config.database_url)
    with db.session_factory(engine)() as s, s.begin():
        settings.set_classes(s, [str(d) for d in range(10)])
        add_scored_items(s, FileStore(config.data_dir), count)
        users.create_user(s, "ada", PASSWORDS["ada"], role="admin")
        users.create_user(s, "lee", PASSWORDS["lee"])
    engine.dispose()
    return config


class LiveServer:
    def __init__(self, app):
        self.server = make_server("127.0.0.1", 0, app, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.thread.join(timeout=10)


@pytest.fixture
def live_server(tmp_path):
    config = seed_demo_database(tmp_path)
    app = create_app(config)
    with LiveServer(app) as server:
        server.config = config
        yield server
    app.extensions["reviewer"]["engine"].dispose()


@pytest.fixture
def browser():
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        require("the playwright Python package is not installed")
    if not os.access(CHROMIUM, os.X_OK):
        require(f"Chromium is not installed at {CHROMIUM} (Debian package `chromium`)")
    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield instance
        instance.close()
