"""Fixtures of the object-storage tests: a deployment whose image and model stores are
prefixes of a fresh bucket on the session's moto S3 server, and a CLI runner for it."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from tests.support.env import config_env


@pytest.fixture
def s3_config(config, bucket, tmp_path, monkeypatch):
    """``config`` with REVIEWER_DATA_DIR and REVIEWER_MODEL_DIR on S3 (and a model cache of
    its own)."""
    monkeypatch.setenv("REVIEWER_MODEL_CACHE", str(tmp_path / "model-cache"))
    return config.with_(data_dir=f"s3://{bucket}/images", model_dir=f"s3://{bucket}/models")


@pytest.fixture
def s3_cli(s3_config):
    """Invoke the CLI against ``s3_config``: s3_cli("ingest", "s3://...") -> click Result."""
    from reviewer.cli import cli

    runner = CliRunner()

    def invoke(*args, env=None):
        variables = {**config_env(s3_config), **(env or {})}
        return runner.invoke(cli, [str(a) for a in args], env=variables, catch_exceptions=False)

    return invoke
