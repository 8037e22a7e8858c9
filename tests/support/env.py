"""The test environment: CI or not, the PostgreSQL server, and a deployment's variables.

Outside CI, tests that need PostgreSQL or Chromium skip with the reason; with CI=true they are
required and fail instead (`require`).
"""

from __future__ import annotations

import os

import pytest

from reviewer.core import db

IN_CI = os.environ.get("CI", "").lower() == "true"
PG_SERVER_URL = os.environ.get(
    "REVIEWER_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)


def require(reason: str):
    """Skip outside CI, fail in CI: the PostgreSQL and browser tests are required there."""
    if IN_CI:
        pytest.fail(f"required in CI: {reason}")
    pytest.skip(reason)


def reset_postgres(url: str) -> None:
    with db.connect_postgres_admin(url) as conn:
        conn.execute("DROP SCHEMA public CASCADE")
        conn.execute("CREATE SCHEMA public")


def config_env(cfg) -> dict[str, str]:
    """The REVIEWER_* variables of a test deployment, for the CLI and child processes."""
    return {
        "REVIEWER_DATABASE_URL": cfg.database_url,
        "REVIEWER_DATA_DIR": str(cfg.data_dir),
        "REVIEWER_MODEL_DIR": str(cfg.model_dir),
        "REVIEWER_SECRET_KEY": "test-secret",
    }
