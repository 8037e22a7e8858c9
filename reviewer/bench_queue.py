"""Benchmark: review-queue latency on a large pool, in process and through the web app.

For each backend (a temporary SQLite file, a throwaway PostgreSQL database) this
module loads a pool (:mod:`reviewer.bench_queue_load`), then times
``queue.next_item`` for every strategy and ``queue.submit_label``, each call in
its own ``db.write_transaction`` as the web app runs it (a lease taken by a
timed call is released untimed, so the pool does not drain), and finally runs
the real web app in a separate process on a random loopback port while N
labeler threads loop over the review page, ``POST /api/queue/next``, a second
of thought and ``POST /api/items/<id>/labels``. Reports p50/p99 in ms.
"""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from reviewer import bench_queue_load, db, queue, users
from reviewer.schema import User

WARMUP = 20
CALLS = 200
LEASE = 300
THINK_SECONDS = 1.0
CSRF = re.compile(r'name="csrf-token" content="([^"]+)"')


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
    for strategy in queue.STRATEGIES:
        samples = []
        for i in range(WARMUP + CALLS):
            seconds, item = _timed(
                factory,
                lambda s, strategy=strategy: queue.next_item(
                    s, user_id, strategy, lease_seconds=LEASE
                ),
            )
            if item is not None:
                with db.write_transaction(factory) as s:
                    queue.release(s, item["id"], user_id)
            if i >= WARMUP:
                samples.append(seconds)
        results[f"next_item {strategy}"] = percentiles(samples)
    samples = []
    for i in range(WARMUP + CALLS):
        with db.write_transaction(factory) as s:
            item = queue.next_item(s, user_id, "entropy", lease_seconds=LEASE)
        image_id, label = item["id"], item["predicted_label"]
        seconds, _ = _timed(
            factory, lambda s, i=image_id, x=label: queue.submit_label(s, i, user_id, x)
        )
        if i >= WARMUP:
            samples.append(seconds)
    results["submit_label"] = percentiles(samples)
    engine.dispose()
    return results


def serve() -> None:
    """Serve the app (configured from REVIEWER_*) on a random loopback port; print the port."""
    import logging

    from werkzeug.serving import make_server

    from reviewer import create_app

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no line per request
    server = make_server("127.0.0.1", 0, create_app(), threaded=True)
    print(server.port, flush=True)
    server.serve_forever()


def _labeler(base: str, username: str, until: float, timings: dict, errors: list) -> None:
    import requests

    with requests.Session() as http:
        _review_loop(http, base, username, until, timings, errors)


def _review_loop(http, base: str, username: str, until: float, timings: dict, errors: list):
    page = http.get(f"{base}/login").text
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    form = {"username": username, "password": bench_queue_load.PASSWORD, "csrf_token": token}
    http.post(f"{base}/login", data=form, allow_redirects=False).raise_for_status()
    while time.monotonic() < until:
        start = time.perf_counter()
        page = http.get(f"{base}/review?strategy=entropy")
        timings["review page"].append(time.perf_counter() - start)
        headers = {"X-CSRFToken": CSRF.search(page.text).group(1)}
        start = time.perf_counter()
        answer = http.post(f"{base}/api/queue/next", json={"strategy": "entropy"}, headers=headers)
        timings["POST /api/queue/next"].append(time.perf_counter() - start)
        item = answer.json().get("item")
        if page.status_code != 200 or answer.status_code != 200 or item is None:
            errors.append(f"{username}: {page.status_code} {answer.status_code} {answer.text[:80]}")
            return
        time.sleep(THINK_SECONDS)
        start = time.perf_counter()
        body = {"label": item["predicted_label"], "seconds": THINK_SECONDS}
        done = http.post(f"{base}/api/items/{item['id']}/labels", json=body, headers=headers)
        timings["POST /api/items/<id>/labels"].append(time.perf_counter() - start)
        if done.status_code != 201:
            errors.append(f"{username}: label {done.status_code} {done.text[:80]}")
            return


def web_latencies(url: str, labelers: list[str], *, duration: float, work: Path) -> dict:
    """Run the web app in a child process and ``labelers`` client threads for ``duration`` s."""
    env = {
        **os.environ,
        "REVIEWER_DATABASE_URL": url,
        "REVIEWER_DATA_DIR": str(work / "images"),
        "REVIEWER_SECRET_KEY": "bench-secret",
    }
    code = "from reviewer.bench_queue import serve; serve()"
    server = subprocess.Popen([sys.executable, "-c", code], env=env, stdout=subprocess.PIPE)
    try:
        base = f"http://127.0.0.1:{int(server.stdout.readline())}"
        timings = {
            k: [] for k in ("review page", "POST /api/queue/next", "POST /api/items/<id>/labels")
        }
        errors: list[str] = []
        until = time.monotonic() + duration
        threads = [
            threading.Thread(target=_labeler, args=(base, name, until, timings, errors))
            for name in labelers
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        server.terminate()
        server.wait(10)
        server.stdout.close()
    if errors:
        raise RuntimeError(f"web run failed: {errors[:3]}")
    return {f"web {name}": percentiles(samples) for name, samples in timings.items()}


def run_backend(url: str, *, rows: int, labelers: int, duration: float, work: Path, echo) -> dict:
    echo(f"loading {rows:,} rows ...")
    loaded = bench_queue_load.load(url, rows=rows, labelers=labelers)
    echo(
        f"loaded in {loaded['load_s']:.1f} s (+ {loaded['index_analyze_s']:.1f} s indexes, ANALYZE)"
    )
    latencies = queue_latencies(url)
    echo("queue latencies measured; simulating labelers ...")
    latencies.update(web_latencies(url, loaded["labelers"], duration=duration, work=work))
    return {"load": loaded, "latency": latencies}


def run(
    *, rows: int, labelers: int, duration: float, postgres_url: str | None, echo: Callable
) -> dict:
    """{backend: {"load": ..., "latency": {measurement: {p50, p99, n}}}}; PostgreSQL is skipped
    (and said so) when unreachable."""
    results = {}
    with tempfile.TemporaryDirectory(prefix="reviewer-bench-queue-") as tmp:
        work = Path(tmp)
        echo("sqlite:")
        results["sqlite"] = run_backend(
            f"sqlite:///{work / 'bench.db'}",
            rows=rows,
            labelers=labelers,
            duration=duration,
            work=work,
            echo=echo,
        )
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
                results["postgresql"] = run_backend(
                    url, rows=rows, labelers=labelers, duration=duration, work=work, echo=echo
                )
    return results
