"""Benchmark: review-queue latency on a large pool, in process and through the web app.

For each backend (a temporary SQLite file, a throwaway PostgreSQL database) this
module loads a pool (:mod:`reviewer.bench.queue_load`), then times
``queue.next_item`` for every strategy and ``queue.submit_label``, each call in
its own ``db.write_transaction`` as the web app runs it (a lease taken by a
timed call is released untimed, so the pool does not drain), and finally serves
the real web app as README's production form does (gunicorn, one process per
core) on a free loopback port while N labeler threads loop over the review page
(which leases the next item), a second of thought and ``POST
/api/items/<id>/labels``. Reports p50/p99 in ms.
"""

from __future__ import annotations

import contextlib
import html
import json
import os
import random
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from reviewer.bench import queue_load as bench_queue_load
from reviewer.core import db, strategies, users
from reviewer.core.schema import User
from reviewer.review import answers, leasing

WARMUP = 20
CALLS = 200
LEASE = 300
THINK_SECONDS = 1.0
CSRF = re.compile(r'name="csrf-token" content="([^"]+)"')
PAGE_DATA = re.compile(r'<script type="application/json" id="page-data">(.*?)</script>', re.S)
REVIEW_PAGE = "review page"
SUBMIT = "POST /api/items/<id>/labels"
THREADS_PER_WORKER = 2  # with 2 workers on 2 cores: the lowest p99 of 2 x 2 and 2 x 4


def percentiles(samples: list[float]) -> dict:
    ms = np.asarray(samples) * 1000
    return {"p50": float(np.percentile(ms, 50)), "p99": float(np.percentile(ms, 99)), "n": len(ms)}


def _timed(factory, fn) -> tuple[float, object]:
    start = time.perf_counter()
    with db.write_transaction(factory) as s:
        result = fn(s)
    return time.perf_counter() - start, result


def queue_latencies(url: str) -> dict:
    """p50/p99 of next_item per strategy and of submit_label, by a user who holds nothing."""
    engine = db.make_engine(url)
    factory = db.session_factory(engine)
    with db.write_transaction(factory) as s:
        probe = User(username="probe", password_hash=users.hash_password("probe-password"))
        s.add(probe)
        s.flush()
        user_id = probe.id
    results = {}
    for strategy in strategies.STRATEGIES:
        samples = []
        for i in range(WARMUP + CALLS):
            seconds, item = _timed(
                factory,
                lambda s, strategy=strategy: leasing.next_item(
                    s, user_id, strategy, lease_seconds=LEASE
                ),
            )
            if item is not None:
                with db.write_transaction(factory) as s:
                    answers.release(s, item["id"], user_id)
            if i >= WARMUP:
                samples.append(seconds)
        results[f"next_item {strategy}"] = percentiles(samples)
    samples = []
    for i in range(WARMUP + CALLS):
        with db.write_transaction(factory) as s:
            item = leasing.next_item(s, user_id, "entropy", lease_seconds=LEASE)
        image_id, label = item["id"], item["predicted_label"]
        seconds, _ = _timed(
            factory, lambda s, i=image_id, x=label: answers.submit_label(s, i, user_id, x)
        )
        if i >= WARMUP:
            samples.append(seconds)
    results["submit_label"] = percentiles(samples)
    engine.dispose()
    return results


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _wait_until_up(base: str, server: subprocess.Popen, timeout: float = 60.0) -> None:
    import requests

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"the web server exited with code {server.returncode}")
        try:
            requests.get(f"{base}/login", timeout=5)
            return
        except requests.RequestException:  # not listening yet, or still starting
            time.sleep(0.2)
    raise RuntimeError(f"the web server did not answer at {base} within {timeout:g} s")


def _labeler(base: str, username: str, run: dict, timings: dict, errors: list) -> None:
    import requests

    with requests.Session() as http:
        try:  # untimed: log in and one review cycle, which warms the server's caches
            _log_in(http, base, username)
            _review_cycle(http, base, username, {REVIEW_PAGE: [], SUBMIT: []}, errors)
        except Exception as exc:  # noqa: BLE001 - reported with the others, not lost in a thread
            errors.append(f"{username}: warm-up: {exc!r}")
        run["ready"].wait()  # everyone logged in and warmed up: the clock starts
        # People do not click in lockstep: each labeler starts at its own moment of the
        # first second (seeded), then keeps the loop's rhythm.
        time.sleep(random.Random(username).uniform(0, THINK_SECONDS))
        try:
            while not errors and time.monotonic() < run["until"]:
                _review_cycle(http, base, username, timings, errors)
        except Exception as exc:  # noqa: BLE001
            errors.append(f"{username}: {exc!r}")


def _log_in(http, base: str, username: str) -> None:
    page = http.get(f"{base}/login").text
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    form = {"username": username, "password": bench_queue_load.PASSWORD, "csrf_token": token}
    http.post(f"{base}/login", data=form, allow_redirects=False).raise_for_status()


def _review_cycle(http, base: str, username: str, timings: dict, errors: list) -> None:
    """One cycle as a labeler does it: review page (which leases the next item and embeds
    it) -> a second of thought -> submit the label with the page's CSRF token. A failure is
    appended to ``errors``."""
    start = time.perf_counter()
    page = http.get(f"{base}/review?strategy=entropy")
    timings[REVIEW_PAGE].append(time.perf_counter() - start)
    data = PAGE_DATA.search(page.text) if page.status_code == 200 else None
    item = json.loads(html.unescape(data.group(1)))["item"] if data else None
    if item is None:
        errors.append(f"{username}: review page {page.status_code} without an item")
        return
    time.sleep(THINK_SECONDS)
    headers = {"X-CSRFToken": CSRF.search(page.text).group(1)}
    body = {"label": item["predicted_label"], "seconds": THINK_SECONDS}
    start = time.perf_counter()
    done = http.post(f"{base}/api/items/{item['id']}/labels", json=body, headers=headers)
    timings[SUBMIT].append(time.perf_counter() - start)
    if done.status_code != 201:
        errors.append(f"{username}: label {done.status_code} {done.text[:80]}")


def web_latencies(
    url: str, labelers: list[str], *, duration: float, work: Path, workers: int
) -> dict:
    """Serve the app as README's production form does (gunicorn, ``workers`` processes) on a
    free loopback port, and run ``labelers`` client threads against it for ``duration`` s."""
    env = {
        **os.environ,
        "REVIEWER_DATABASE_URL": url,
        "REVIEWER_DATA_DIR": str(work / "images"),
        "REVIEWER_SECRET_KEY": "bench-secret",
    }
    port = _free_port()
    command = [
        sys.executable, "-m", "gunicorn", "--workers", str(workers), "--worker-class", "gthread",
        "--threads", str(THREADS_PER_WORKER), "--bind", f"127.0.0.1:{port}",
        "--log-level", "warning", "reviewer:create_app()",
    ]  # fmt: skip
    server = subprocess.Popen(command, env=env)
    try:
        base = f"http://127.0.0.1:{port}"
        _wait_until_up(base, server)
        timings = {REVIEW_PAGE: [], SUBMIT: []}
        errors: list[str] = []
        # Logging in hashes a password (scrypt, deliberately slow) and a process's first
        # requests compile its statements and templates: both happen before the clock
        # starts, so the figures are the steady review loop's.
        run: dict = {"until": 0.0}
        start_clock = lambda: run.update(until=time.monotonic() + duration)  # noqa: E731
        run["ready"] = threading.Barrier(len(labelers), action=start_clock)
        threads = [
            threading.Thread(target=_labeler, args=(base, name, run, timings, errors))
            for name in labelers
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        server.terminate()
        server.wait(30)
    if errors:
        raise RuntimeError(f"web run failed: {errors[:3]}")
    return {f"web {name}": percentiles(samples) for name, samples in timings.items()}


def run_backend(
    url: str, *, rows: int, labelers: int, duration: float, workers: int, work: Path, echo
) -> dict:
    echo(f"loading {rows:,} rows ...")
    loaded = bench_queue_load.load(url, rows=rows, labelers=labelers)
    echo(
        f"loaded in {loaded['load_s']:.1f} s (+ {loaded['index_analyze_s']:.1f} s indexes, ANALYZE)"
    )
    latencies = queue_latencies(url)
    echo("queue latencies measured; simulating labelers ...")
    latencies.update(
        web_latencies(url, loaded["labelers"], duration=duration, work=work, workers=workers)
    )
    return {"load": loaded, "latency": latencies}


def run(
    *,
    rows: int,
    labelers: int,
    duration: float,
    postgres_url: str | None,
    echo: Callable,
    workers: int = 2,
) -> dict:
    """{backend: {"load": ..., "latency": {measurement: {p50, p99, n}}}}; PostgreSQL is skipped
    (and said so) when unreachable."""
    results = {}
    with tempfile.TemporaryDirectory(prefix="reviewer-bench-queue-") as tmp:
        work = Path(tmp)
        options = dict(
            rows=rows, labelers=labelers, duration=duration, workers=workers, work=work, echo=echo
        )
        echo("sqlite:")
        results["sqlite"] = run_backend(f"sqlite:///{work / 'bench.db'}", **options)
        if postgres_url:
            with contextlib.ExitStack() as stack:
                try:
                    url = stack.enter_context(
                        db.throwaway_postgres(postgres_url, prefix="reviewer_bench")
                    )
                except Exception as exc:  # noqa: BLE001
                    echo(f"postgresql: skipped ({exc})")
                    return results
                echo("postgresql:")
                results["postgresql"] = run_backend(url, **options)
    return results
