"""Fixtures of the web tests: a scored database with 10 items, users, the app and clients."""

from __future__ import annotations

import pytest

from reviewer import create_app
from reviewer.core import users
from reviewer.core.files import FileStore
from tests.support.web import PASSWORDS, add_scored_items


@pytest.fixture
def scored(config, sessions):
    """A scored database with 10 items; returns their image ids."""
    with sessions() as session, session.begin():
        return add_scored_items(session, FileStore(config.data_dir), 10)


@pytest.fixture
def accounts(sessions):
    """An admin (ada) and two labelers (lee, leo): {name: user id}."""
    with sessions() as session, session.begin():
        made = {
            "ada": users.create_user(session, "ada", PASSWORDS["ada"], role="admin"),
            "lee": users.create_user(session, "lee", PASSWORDS["lee"]),
            "leo": users.create_user(session, "leo", PASSWORDS["leo"]),
        }
        return {name: user.id for name, user in made.items()}


@pytest.fixture
def app(config):
    application = create_app(config)
    yield application
    application.extensions["reviewer"]["engine"].dispose()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def other_client(app):
    return app.test_client()
