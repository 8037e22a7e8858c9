"""`reviewer demo`: its help, its setup steps run twice, the running demo stopped by SIGTERM,
and the smoke run CI uses (the last two spawn processes and train, so they are marked slow)."""

from __future__ import annotations

import csv
import os
import shlex
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select

from reviewer.cli import cli
from reviewer.core import db, settings, users
from reviewer.core.files import FileStore
from reviewer.core.schema import User, WorkerHeartbeat
from reviewer.demo import setup as demo
from reviewer.demo.data import DIGITS
from tests.support.env import config_env
from tests.support.images import write_png
from tests.support.pool import add_version

SMOKE_STEPS = ("init-db", "demo data", "train", "ingest", "score", "label", "export", "retrain")


def fake_demo_data(out, **_sizes):
    """A stand-in for write_demo_data: 2 noise images per digit, 5 pool images with labels."""
    for digit in range(10):
        for k in range(2):
            write_png(out / "train" / str(digit) / f"t{k}.png", seed=digit * 2 + k)
    rows = [[write_png(out / "pool" / f"img_{i}.png", seed=100 + i).name, i] for i in range(5)]
    with open(out / "pool" / "labels.csv", "w", newline="") as handle:
        csv.writer(handle).writerows([["filename", "label"], *rows])
    return {"train": 20, "pool": 5}


@pytest.fixture
def fake_data(monkeypatch):
    monkeypatch.setattr("reviewer.demo.data.write_demo_data", fake_demo_data)


def test_demo_help_explains_itself():
    result = CliRunner().invoke(cli, ["demo", "--help"])
    assert result.exit_code == 0, result.output
    for words in ("--smoke", "--data-dir", "--port", "Ctrl-C", "`demo`", "`admin`", "0-9"):
        assert words in result.output


def test_setup_steps_twice_reuse_what_the_first_made(config, sessions, tmp_path, fake_data):
    data_dir = tmp_path / "demo-data"
    assert demo.ensure_database(config, sessions) == DIGITS
    assert demo.ensure_database(config, sessions) == DIGITS
    assert demo.ensure_demo_data(data_dir) is True
    assert demo.ensure_demo_data(data_dir) is False
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary left

    with db.write_transaction(sessions) as session:
        add_version(session, active=False)
    version, trained = demo.ensure_model(sessions, config, data_dir, epochs=1, say=print)
    assert (trained, version.is_active) == (False, True)  # reused and activated, not trained
    assert demo.ensure_model(sessions, config, data_dir, epochs=1, say=print)[1] is False

    store = FileStore(config.data_dir)
    first = demo.ensure_pool(sessions, store, config, data_dir)
    again = demo.ensure_pool(sessions, store, config, data_dir)
    assert (first.added, again.added, again.already_present) == (5, 0, 5)

    old = demo.ensure_accounts(sessions)
    new = demo.ensure_accounts(sessions)
    assert set(new) == {"demo", "admin"} and old["demo"] != new["demo"]
    with sessions() as session:
        assert session.scalar(select(func.count()).select_from(User)) == 2
        assert users.authenticate(session, "demo", new["demo"]).role == "labeler"
        assert users.authenticate(session, "admin", new["admin"]).role == "admin"
        assert users.authenticate(session, "demo", old["demo"]) is None


def test_setup_refuses_other_classes_and_foreign_folders(config, sessions, tmp_path):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("not demo data")
    with pytest.raises(demo.DemoError, match="holds no demo data"):
        demo.ensure_demo_data(tmp_path / "mine")
    with db.write_transaction(sessions) as session:
        settings.set_classes(session, ["cat", "dog"])
    with pytest.raises(demo.DemoError, match="not the digits 0-9"):
        demo.ensure_database(config, sessions)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.slow
def test_running_demo_stops_cleanly_on_sigterm(config, sessions, tmp_path, fake_data):
    if not config.is_sqlite:
        pytest.skip("runs once, on SQLite")
    demo.ensure_demo_data(tmp_path / "demo-data")  # tiny, so the first-run training is quick
    port, out = _free_port(), tmp_path / "demo.out"
    env = {**os.environ, **config_env(config), "PYTHONUNBUFFERED": "1"}
    command = [sys.executable, "-m", "reviewer", "demo", "--port", str(port)]
    with open(out, "w") as handle:
        child = subprocess.Popen(command, cwd=tmp_path, env=env, stdout=handle, stderr=handle)
    try:
        deadline = time.monotonic() + 180
        while "demo is running" not in out.read_text() and child.poll() is None:
            assert time.monotonic() < deadline, out.read_text()
            time.sleep(0.5)
        assert child.poll() is None, out.read_text()
        text = out.read_text()
        assert f"http://127.0.0.1:{port}/" in text and "demo   password " in text
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
        # The printed next step works as printed, and again on a second run.
        export = next(line for line in text.splitlines() if " export reviewed" in line)
        command_line = shlex.split(export.split("#")[0])
        assert os.access(command_line[0], os.X_OK), export
        for _ in range(2):
            done = subprocess.run(command_line, cwd=tmp_path, env=env, capture_output=True)
            assert done.returncode == 0, done.stderr.decode()
        child.send_signal(signal.SIGTERM)
        assert child.wait(timeout=60) == 0, out.read_text()
    finally:
        if child.poll() is None:
            child.kill()
    with pytest.raises(OSError):  # the web server is gone
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
    with sessions() as session:  # the worker stopped through its own clean path
        states = session.scalars(select(WorkerHeartbeat.state)).all()
    assert states == ["stopped"], out.read_text()


@pytest.mark.slow
def test_smoke_run_through_the_cli(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("REVIEWER_")}
    workdir = tmp_path / "work"
    result = subprocess.run(
        [sys.executable, "-m", "reviewer", "demo", "--smoke", "--workdir", str(workdir)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout + result.stderr[-3000:]
    lines = result.stdout.splitlines()
    for step in (*SMOKE_STEPS, "rescore"):
        assert any(f"] {step}: " in line for line in lines), (step, result.stdout)
    assert "smoke run passed" in lines[-1]
    assert "digits:2 is active" in result.stdout
    assert not (tmp_path / "instance").exists() and (workdir / "reviewer.db").is_file()


def test_next_steps_name_a_command_that_runs_from_this_folder(monkeypatch, tmp_path):
    from reviewer.demo.run import next_steps

    monkeypatch.chdir(Path(sys.executable).parent.parent.parent)  # the checkout holding .venv
    lines = next_steps("127.0.0.1", 5000, {"demo": "pw"}, tmp_path)
    export = next(line for line in lines if " export reviewed" in line).split()
    assert export[0] == ".venv/bin/reviewer" and os.access(export[0], os.X_OK)
    assert export[1:4] == ["export", "reviewed", "--force"]  # works again on a second run


def test_a_busy_port_says_how_to_choose_another():
    from reviewer.demo.run import DemoError, check_port_free

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        with pytest.raises(DemoError, match=r"make demo PORT=N.*reviewer demo --port N"):
            check_port_free("127.0.0.1", busy.getsockname()[1])
