"""A non-editable install works: the wheel carries the migrations, the settings class and the
templates, installs no top-level ``config`` module, and ``reviewer`` runs from another folder."""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _run(command, **options):
    return subprocess.run(command, capture_output=True, text=True, timeout=600, **options)


@pytest.mark.slow
def test_a_wheel_installed_elsewhere_initialises_a_database(tmp_path):
    wheels, venv, elsewhere = tmp_path / "wheels", tmp_path / "venv", tmp_path / "elsewhere"
    elsewhere.mkdir()
    build = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation"]
    built = _run([*build, "--quiet", "-w", str(wheels), str(ROOT)])
    assert built.returncode == 0, built.stderr
    (wheel,) = wheels.glob("reviewer-*.whl")
    assert _run([sys.executable, "-m", "venv", "--without-pip", str(venv)]).returncode == 0
    python = venv / "bin" / "python"
    install = [sys.executable, "-m", "pip", "--python", str(python), "install", "--quiet"]
    installed = _run([*install, "--no-deps", "--no-index", str(wheel)])
    assert installed.returncode == 0, installed.stderr
    # The dependencies come from this test's environment; the checkout is not on the path.
    env = {
        **os.environ,
        "PYTHONPATH": sysconfig.get_paths()["purelib"],
        "REVIEWER_DATABASE_URL": f"sqlite:///{elsewhere / 'db.sqlite'}",
        "REVIEWER_DATA_DIR": str(elsewhere / "images"),
    }
    reviewer = [str(venv / "bin" / "reviewer")]
    assert _run([*reviewer, "--help"], cwd=elsewhere, env=env).returncode == 0
    init = _run([*reviewer, "init-db", "--classes", "a,b"], cwd=elsewhere, env=env)
    assert init.returncode == 0, init.stderr
    assert "classes: a, b" in init.stdout and (elsewhere / "db.sqlite").is_file()
    code = "import reviewer.core.db as d; print(d.__file__, d.migrations_dir())"
    where = _run([str(python), "-c", code], cwd=elsewhere, env=env)
    module, migrations = where.stdout.split()
    assert module.startswith(str(venv)) and migrations.startswith(str(venv)), where.stdout
    assert _run([str(python), "-c", "import config"], cwd=elsewhere, env=env).returncode != 0
    page = "from reviewer import create_app; c = create_app().test_client(); "
    page += "print(c.get('/login').status_code, c.get('/api/openapi.json').status_code)"
    served = _run([str(python), "-c", page], cwd=elsewhere, env={**env, "REVIEWER_SECRET_KEY": "k"})
    assert served.stdout.split() == ["200", "200"], served.stderr  # templates and data files


def test_make_says_what_it_installs_and_a_failed_install_leaves_no_stamp(tmp_path):
    """The set-up step of `make demo` / `make test`: it says what it installs before the long
    wait, and a failing pip shows its log's end and leaves the venv unmarked (so the next make
    tries again)."""
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    fake = venv / "bin" / "python"  # a python whose pip fails on the project's install
    fake.write_text(
        '#!/bin/sh\ncase "$*" in *-e*) echo "ERROR: no matching distribution"; exit 1;; esac\n'
    )
    fake.chmod(0o755)
    done = _run(["make", f"VENV={venv}", f"{venv}/.installed-stamp"], cwd=ROOT)
    assert done.returncode != 0
    assert "setting up" in done.stdout and "TensorFlow" in done.stdout
    assert "ERROR: no matching distribution" in done.stdout
    assert f"install failed: the whole log is {venv}/install.log" in done.stdout
    assert not (venv / ".installed-stamp").exists()
