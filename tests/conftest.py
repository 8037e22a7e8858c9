"""Shared fixtures: a database URL per backend, a migrated config, a CLI runner.

Every database test runs on SQLite and on PostgreSQL (one parametrized
fixture). The PostgreSQL run uses a throwaway database created for this test
session and dropped at its end. Outside CI it is skipped with the reason when
the server is unreachable; with CI=true it is required and fails instead.
"""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from reviewer import create_app
from reviewer.core import db, users
from reviewer.core.config import TestConfig
from reviewer.core.files import FileStore
from tests.support.env import PG_SERVER_URL, config_env, require, reset_postgres
from tests.support.web import PASSWORDS, add_scored_items


@pytest.fixture(scope="session")
def postgres_database_url():
    """A throwaway PostgreSQL database for this test session."""
    try:
        db.connect_postgres_admin(PG_SERVER_URL).close()
    except Exception as exc:  # noqa: BLE001
        require(f"PostgreSQL not reachable at {PG_SERVER_URL}: {exc}")
    with db.throwaway_postgres(PG_SERVER_URL, prefix="reviewer_test") as url:
        yield url


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request, tmp_path):
    """An empty database: a SQLite file, or the session's PostgreSQL database wiped clean."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'reviewer.db'}"
    url = request.getfixturevalue("postgres_database_url")
    reset_postgres(url)
    return url


@pytest.fixture
def config(database_url, tmp_path):
    """A migrated deployment in tmp_path, with the digit classes set."""
    cfg = TestConfig.in_directory(tmp_path, database_url)
    db.upgrade(cfg.database_url)
    engine = db.make_engine(cfg.database_url)
    with db.session_factory(engine)() as session, session.begin():
        from reviewer.core import settings

        settings.set_classes(session, [str(d) for d in range(10)])
    engine.dispose()
    return cfg


@pytest.fixture
def engine(config):
    eng = db.make_engine(config.database_url)
    yield eng
    eng.dispose()


@pytest.fixture
def sessions(engine):
    return db.session_factory(engine)


@pytest.fixture
def run_cli(config):
    """Invoke the CLI against ``config``: run_cli("ingest", path) -> click Result."""
    from reviewer.cli import cli

    runner = CliRunner()

    def invoke(*args, input=None, env=None):
        return runner.invoke(
            cli,
            [str(a) for a in args],
            env={**config_env(config), **(env or {})},
            input=input,
            catch_exceptions=False,
        )

    return invoke


# The web fixtures: the web, review, security and e2e tests all use them.
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


@pytest.fixture(scope="session")
def s3_endpoint():
    """A moto S3 server on loopback for this test session (its endpoint URL)."""
    try:
        import moto.server  # noqa: F401
        import s3fs  # noqa: F401
    except ImportError as exc:
        require(f"the object-storage tests need moto[server] and s3fs: {exc}")
    from tests.support.s3 import moto_server

    with moto_server() as endpoint:
        yield endpoint


@pytest.fixture
def bucket(s3_endpoint):
    """A new, empty bucket on the session's S3 server."""
    from tests.support.s3 import new_bucket

    return new_bucket(s3_endpoint)


@pytest.fixture(scope="session")
def ray_cluster():
    """A local Ray cluster on 2 CPUs for this test session (other processes reach it with
    ``--address auto``)."""
    try:
        import ray
    except ImportError as exc:
        require(f"the Ray tests need ray[data]: {exc}")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()
