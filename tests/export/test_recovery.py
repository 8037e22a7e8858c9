"""Exports that were killed: a SIGKILL while writing leaves a temporary folder that the next
export removes; a kill between the two renames of the swap leaves the previous export aside,
and the next export puts it back instead of deleting it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from tests.support.env import config_env

pytestmark = pytest.mark.slow

# The CLI's export in a child process, slowed or cut short at a chosen point.
SLOW_WRITES = """
import sys, time
from reviewer.export import dataset
real = dataset.write_file
dataset.write_file = lambda path, data: (time.sleep(0.5), real(path, data))
from reviewer.cli import main
sys.argv = ["reviewer", "export", sys.argv[1]]
main()
"""
DIE_BETWEEN_RENAMES = """
import os, sys
from reviewer.export import files
real, calls = os.replace, []
def replace(src, dst):
    calls.append(src)
    if len(calls) == 2:  # OUT is aside, the new export not yet in place: the process dies
        os._exit(9)
    real(src, dst)
files.os.replace = replace
from reviewer.cli import main
sys.argv = ["reviewer", "export", sys.argv[1], "--force"]
main()
"""


def _child(script: str, out, config) -> subprocess.Popen:
    env = {**os.environ, **config_env(config)}
    return subprocess.Popen([sys.executable, "-c", script, str(out)], env=env)


def _hidden(folder, out) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith(f".{out.name}."))


def test_a_killed_exports_temporary_folder_is_removed_by_the_next(pool, config, run_cli, tmp_path):
    out = tmp_path / "out"
    child = _child(SLOW_WRITES, out, config)
    deadline = time.monotonic() + 60
    while not _hidden(tmp_path, out) and time.monotonic() < deadline:
        time.sleep(0.05)
    os.kill(child.pid, signal.SIGKILL)
    child.wait(30)
    assert not out.exists() and _hidden(tmp_path, out)  # the leftover of the killed run
    result = run_cli("export", out)
    assert result.exit_code == 0, result.output
    assert "left by an export that was killed" in result.output
    assert _hidden(tmp_path, out) == [] and (out / "manifest.csv").is_file()


def test_a_kill_mid_swap_restores_the_previous_export(pool, config, run_cli, tmp_path):
    out = tmp_path / "out"
    assert run_cli("export", out).exit_code == 0
    before = sorted(p.relative_to(out) for p in out.rglob("*"))
    child = _child(DIE_BETWEEN_RENAMES, out, config)
    assert child.wait(120) == 9
    assert not out.exists() and _hidden(tmp_path, out)  # the only copy is aside
    again = run_cli("export", out)  # put back first, then refused: OUT is an export again
    assert again.exit_code == 1 and "not empty" in again.output
    assert "restored the previous export" in again.output
    assert sorted(p.relative_to(out) for p in out.rglob("*")) == before
    assert _hidden(tmp_path, out) == []
    assert run_cli("export", out, "--force").exit_code == 0
