"""`reviewer demo` running: the setup steps, then the worker and the web server until stopped.

This module owns the demo's processes: `run_demo` runs reviewer.demo.setup's steps, starts
``reviewer worker`` and ``reviewer serve`` as children in their own sessions (a terminal's
Ctrl-C reaches only the demo, which then stops them itself), prints the next steps and the
scoring progress, and on Ctrl-C or SIGTERM terminates both children (killing one that does not
exit within STOP_SECONDS) and returns 0; if a child dies it stops the other and returns 1.
Child output goes to log files next to the image store (instance/logs/ by default).
"""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from reviewer.core import db, locations, versions
from reviewer.core.config import DEFAULT_INSTANCE_DIR
from reviewer.demo.setup import (
    MODEL_NAME,
    DemoError,
    Say,
    ensure_accounts,
    ensure_database,
    ensure_demo_data,
    ensure_model,
    ensure_pool,
)

STOP_SECONDS = 30  # a child gets this long after SIGTERM (the worker may be importing TF)


def check_port_free(host: str, port: int) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise DemoError(
                f"cannot listen on {host}:{port} ({exc}): choose another port with "
                "`make demo PORT=N` or `reviewer demo --port N`"
            ) from exc


def wait_for_port(host: str, port: int, child: subprocess.Popen, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if child.poll() is not None:
            raise DemoError(f"the web server exited with code {child.returncode}")
        try:
            socket.create_connection((host, port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.2)
    raise DemoError(f"the web server did not answer on {host}:{port} within {timeout:.0f} s")


def start_child(args: list[str], log: Path) -> subprocess.Popen:
    """``reviewer ARGS`` in its own session (a terminal's Ctrl-C reaches only the demo, which
    then stops the children itself), its output appended to ``log``."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as handle:
        command = [sys.executable, "-m", "reviewer", *args]
        return subprocess.Popen(
            command, stdout=handle, stderr=subprocess.STDOUT, start_new_session=True
        )


def stop_children(children: list[subprocess.Popen]) -> None:
    for child in children:
        if child.poll() is None:
            child.terminate()
    deadline = time.monotonic() + STOP_SECONDS
    for child in children:
        try:
            child.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()


def supervise(sessions, children: dict[str, subprocess.Popen], say: Say) -> int:
    """Report scoring progress until a stop signal (returns 0) or a child dies (returns 1)."""
    stopping = []
    handler = lambda *_: stopping.append(True)  # noqa: E731 - a flag, nothing more
    previous = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    last, reported = 0.0, None
    try:
        while not stopping:
            for name, child in children.items():
                if child.poll() is not None:
                    say(f"the {name} exited with code {child.returncode}; stopping the demo")
                    return 1
            if time.monotonic() - last >= 5:
                last = time.monotonic()
                with sessions() as session:
                    version = versions.version_to_score(session)
                    done = versions.scoring_progress(session, version) if version else None
                if done and done != reported:
                    reported = done
                    say(f"scored {done[0]}/{done[1]} images with {versions.version_name(version)}")
            time.sleep(0.2)
        say("stopping the worker and the web server ...")
        return 0
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def _logs_folder(config) -> Path:
    """Beside the image store, or under instance/ when the store is on object storage."""
    if locations.is_remote(config.data_dir):
        return DEFAULT_INSTANCE_DIR / "logs"
    return Path(config.data_dir).parent / "logs"


def run_demo(config, *, data_dir: Path, host: str, port: int, epochs: int, say: Say) -> int:
    """Set everything up, run the worker and the web server until stopped; the exit code."""
    from reviewer.core.objects import image_store

    # SIGTERM during the setup stops it like Ctrl-C does (every step is safe to redo).
    signals = (signal.SIGINT, signal.SIGTERM)
    previous = {sig: signal.signal(sig, signal.default_int_handler) for sig in signals}
    check_port_free(host, port)  # before minutes of setup, not after
    engine = db.make_engine(config.database_url)
    sessions, children = db.session_factory(engine), {}
    try:
        ensure_database(config, sessions)
        say(f"database ready: {engine.url.render_as_string(hide_password=True)}, classes 0-9")
        written = ensure_demo_data(data_dir)
        say(f"demo data: {'written to' if written else 'reusing'} {data_dir}")
        version, trained = ensure_model(sessions, config, data_dir, epochs=epochs, say=say)
        accuracy = (version.metrics or {}).get("accuracy")
        shown = f", held-out accuracy {accuracy:.3f}" if accuracy is not None else ""
        say(f"model: {'trained' if trained else 'reusing'} {versions.version_name(version)}{shown}")
        report = ensure_pool(sessions, image_store(config.data_dir), config, data_dir)
        say(f"pool: {report.added} images added, {report.already_present} already present")
        passwords = ensure_accounts(sessions)
        logs = _logs_folder(config)
        children["worker"] = start_child(["worker"], logs / "worker.log")
        server = ["serve", "--host", host, "--port", str(port)]
        children["web server"] = start_child(server, logs / "server.log")
        wait_for_port(host, port, children["web server"])
        for line in next_steps(host, port, passwords, logs):
            say(line)
        return supervise(sessions, children, say)
    finally:
        for sig in signals:  # a second Ctrl-C must not cut the cleanup short
            signal.signal(sig, signal.SIG_IGN)
        stop_children(list(children.values()))
        engine.dispose()
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def reviewer_command() -> str:
    """How to run this reviewer from the current folder, without an activated venv."""
    executable = Path(sys.executable).with_name("reviewer")
    try:
        return str(executable.relative_to(Path.cwd()))
    except ValueError:
        return str(executable)


def next_steps(host: str, port: int, passwords: dict[str, str], logs: Path) -> list[str]:
    pad = max(len(name) for name in passwords)
    command = reviewer_command()
    return [
        "",
        f"reviewer demo is running: open http://{host}:{port}/",
        *(f"  {name:<{pad}}  password {pw}" for name, pw in passwords.items()),
        "  (demo labels; admin also manages users. Passwords are new on every run.)",
        "in another terminal, in this folder, with the same REVIEWER_* settings:",
        f"  {command} export reviewed --force    # the human labels as a data set",
        f"  {command} train --from-export reviewed --base {MODEL_NAME} --activate",
        f"logs: {logs / 'worker.log'}, {logs / 'server.log'}",
        "Ctrl-C stops the demo; run it again to carry on where you left off.",
        "",
    ]
