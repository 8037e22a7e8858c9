"""Labelers over real HTTP: start the web app as users run it, and loop next item -> label.

`start_server` runs ``reviewer serve`` (waitress, the demo's server) or gunicorn in README's
production form on a free loopback port. `run_labelers` runs one thread per labeler, each with
its own connection: with an API token (``POST /api/queue/next`` then ``POST
/api/items/<id>/labels``) or with a browser's cookie session (the review page, which leases and
embeds the next item, then the label with the page's CSRF token). Every failure, timeout and
handed-out item is recorded, so a caller can check that nothing was lost or handed twice.
Used by ``reviewer bench queue`` and by the concurrency tests.
"""

from __future__ import annotations

import html
import json
import os
import random
import re
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field

SERVERS = ("serve", "gunicorn")
AUTHS = ("token", "session")
STRATEGY = "entropy"
CSRF = re.compile(r'name="csrf-token" content="([^"]+)"')
LOGIN_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
PAGE_DATA = re.compile(r'<script type="application/json" id="page-data">(.*?)</script>', re.S)


@dataclass
class Account:
    username: str
    password: str
    token: str | None = None


@dataclass
class Labeler:
    """What one labeler saw: the items handed to it, the labels accepted, the failures."""

    username: str
    handed: list[int] = field(default_factory=list)
    accepted: list[int] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    timeouts: int = 0
    cycles: list[float] = field(default_factory=list)  # seconds per next + label, think excluded


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def server_command(kind: str, port: int, *, threads: int, workers: int = 2) -> list[str]:
    """``reviewer serve`` (waitress) or README's gunicorn form, on 127.0.0.1:``port``."""
    if kind == "serve":
        serve = [sys.executable, "-m", "reviewer", "serve", "--port", str(port)]
        return [*serve, "--threads", str(threads)]
    if kind == "gunicorn":
        return [
            sys.executable, "-m", "gunicorn", "-c", "python:reviewer.web.gunicorn_config",
            "--workers", str(workers), "--threads", str(threads),
            "--bind", f"127.0.0.1:{port}", "--log-level", "warning", "reviewer:create_app()",
        ]  # fmt: skip
    raise ValueError(f"server must be one of {SERVERS}, got {kind!r}")


def start_server(kind: str, env: dict, *, threads: int, workers: int = 2, log=None):
    """(the server process, its base URL) once it answers; RuntimeError if it does not."""
    import requests

    port = free_port()
    command = server_command(kind, port, threads=threads, workers=workers)
    server = subprocess.Popen(command, env={**os.environ, **env}, stdout=log, stderr=log)
    base, deadline = f"http://127.0.0.1:{port}", time.monotonic() + 60
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"{kind} exited with code {server.returncode}")
        try:
            requests.get(f"{base}/login", timeout=5)
            return server, base
        except requests.RequestException:  # not listening yet
            time.sleep(0.2)
    stop_server(server)
    raise RuntimeError(f"{kind} did not answer at {base} within 60 s")


def stop_server(server: subprocess.Popen) -> None:
    server.terminate()
    try:
        server.wait(30)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait()


def _log_in(http, base: str, account: Account, timeout: float) -> str:
    """Log in through the form like a browser; returns the CSRF token of the session."""
    page = http.get(f"{base}/login", timeout=timeout).text
    form = {"username": account.username, "password": account.password}
    form["csrf_token"] = LOGIN_CSRF.search(page).group(1)
    reply = http.post(f"{base}/login", data=form, allow_redirects=False, timeout=timeout)
    if reply.status_code != 302:
        raise RuntimeError(f"log in as {account.username}: {reply.status_code}")
    # A light page for the session's CSRF token (the queue page counts the whole pool).
    return CSRF.search(http.get(f"{base}/account/password", timeout=timeout).text).group(1)


def _next_by_token(http, base: str, account: Account, timeout: float):
    headers = {"Authorization": f"Bearer {account.token}"}
    reply = http.post(
        f"{base}/api/queue/next", json={"strategy": STRATEGY}, headers=headers, timeout=timeout
    )
    item = reply.json().get("item") if reply.status_code == 200 else None
    return reply, item, headers


def _next_by_page(http, base: str, csrf: str, timeout: float):
    reply = http.get(f"{base}/review?strategy={STRATEGY}", timeout=timeout)
    found = PAGE_DATA.search(reply.text) if reply.status_code == 200 else None
    item = json.loads(html.unescape(found.group(1)))["item"] if found else None
    token = CSRF.search(reply.text) if found else None
    return reply, item, {"X-CSRFToken": token.group(1) if token else csrf}


def _cycle(http, base, account, auth, csrf, record: Labeler, think, timeout) -> bool:
    """One next -> label; False when the queue is empty or the cycle failed."""
    start = time.perf_counter()
    if auth == "token":
        reply, item, headers = _next_by_token(http, base, account, timeout)
    else:
        reply, item, headers = _next_by_page(http, base, csrf, timeout)
    if reply.status_code != 200:
        record.errors.append(f"next item: {reply.status_code} {reply.text[:100]}")
        return False
    if item is None:
        return False
    record.handed.append(item["id"])
    elapsed = time.perf_counter() - start
    time.sleep(think)
    # The model's answer; an audit item is shown blind, so its first class instead.
    body = {"label": item["predicted_label"] or item["classes"][0], "seconds": think}
    start = time.perf_counter()
    done = http.post(
        f"{base}/api/items/{item['id']}/labels", json=body, headers=headers, timeout=timeout
    )
    record.cycles.append(elapsed + time.perf_counter() - start)
    if done.status_code != 201:
        record.errors.append(f"label #{item['id']}: {done.status_code} {done.text[:100]}")
        return False
    record.accepted.append(item["id"])
    return True


def _labeler(base, account, auth, record: Labeler, run: dict) -> None:
    import requests

    timeout, think = run["timeout"], run["think"]
    with requests.Session() as http:
        try:
            csrf = _log_in(http, base, account, timeout) if auth == "session" else ""
        except Exception as exc:  # noqa: BLE001 - nobody waits for a labeler who cannot log in
            record.errors.append(f"log in: {exc!r}")
            run["ready"].abort()
            return
        try:
            run["ready"].wait(timeout=120)
            time.sleep(random.Random(account.username).uniform(0, think))  # not in lockstep
            while len(record.accepted) < run["items"] and time.monotonic() < run["until"]:
                if not _cycle(http, base, account, auth, csrf, record, think, timeout):
                    break
        except requests.Timeout:
            record.timeouts += 1
        except Exception as exc:  # noqa: BLE001 - recorded with the others, not lost in a thread
            record.errors.append(repr(exc))


def run_labelers(
    base: str,
    accounts: list[Account],
    *,
    auth: str,
    items: int = 10**9,
    duration: float = 3600.0,
    think: float = 1.0,
    timeout: float = 10.0,
) -> list[Labeler]:
    """Every account labels at once until it has ``items`` labels, the queue is empty or
    ``duration`` s passed (counted once everyone has logged in); one record per account."""
    if auth not in AUTHS:
        raise ValueError(f"auth must be one of {AUTHS}, got {auth!r}")
    run = {"items": items, "think": think, "timeout": timeout, "until": 0.0}
    start_clock = lambda: run.update(until=time.monotonic() + duration)  # noqa: E731
    run["ready"] = threading.Barrier(len(accounts), action=start_clock)
    records = [Labeler(account.username) for account in accounts]
    threads = [
        threading.Thread(target=_labeler, args=(base, account, auth, record, run))
        for account, record in zip(accounts, records, strict=True)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return records
