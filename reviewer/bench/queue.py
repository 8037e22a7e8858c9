"""Benchmark: review-queue latency on a large pool, in process and through the web app.

For each backend (a temporary SQLite file, a throwaway PostgreSQL database) this
module loads a pool (:mod:`reviewer.bench.queue_load`), then times
``leasing.next_item`` for every strategy and ``answers.submit_label``, each call in
its own ``db.write_transaction`` as the web app runs it (a lease taken by a
timed call is released untimed, so the pool does not drain), and finally serves
the real web app (`reviewer serve`, or gunicorn as README's production form runs it) on a free
loopback port while N labelers (:mod:`reviewer.bench.labelers`, with API tokens or cookie
sessions) loop over next item, a second of thought and the label. Reports p50/p99 in ms and
every error and timeout.
"""

from __future__ import annotations

import contextlib
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from reviewer.bench import queue_load as bench_queue_load
from reviewer.bench.labelers import Account, run_labelers, start_server, stop_server
from reviewer.core import db, strategies, users
from reviewer.core.schema import User
from reviewer.review import answers, leasing

WARMUP = 20
CALLS = 200
LEASE = 300
THINK_SECONDS = 1.0
THREADS_PER_WORKER = 2  # with 2 workers on 2 cores: the lowest p99 of 2 x 2 and 2 x 4
SERVE_THREADS = 8  # `reviewer serve`'s default (REVIEWER_WEB_THREADS)


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
        image_id, label = item["id"], item["predicted_label"] or item["classes"][0]  # blind
        seconds, _ = _timed(
            factory, lambda s, i=image_id, x=label: answers.submit_label(s, i, user_id, x)
        )
        if i >= WARMUP:
            samples.append(seconds)
    results["submit_label"] = percentiles(samples)
    engine.dispose()
    return results


def _accounts(url: str, names: list[str]) -> list:
    """The labelers of the loaded pool, each with an API token issued now (first use writes)."""
    engine = db.make_engine(url)
    accounts = []
    with db.write_transaction(db.session_factory(engine)) as s:
        for name in names:
            _, secret = users.create_token(s, users.require_user(s, name))
            accounts.append(Account(name, bench_queue_load.PASSWORD, secret))
    engine.dispose()
    return accounts


def web_run(url: str, names: list[str], setting: dict, *, duration: float, work: Path) -> dict:
    """Serve the app (``setting["server"]``: `reviewer serve` or gunicorn in README's form) on
    a free loopback port and run ``setting["labelers"]`` labelers against it for ``duration``
    s, each looping next item -> a second of thought -> label (``setting["auth"]``: API token
    or cookie session). Review-cycle percentiles (think time excluded), labels, errors."""
    env = {
        "REVIEWER_DATABASE_URL": url,
        "REVIEWER_DATA_DIR": str(work / "images"),
        "REVIEWER_SECRET_KEY": "bench-secret",
    }
    threads = setting.get("threads") or SERVE_THREADS
    if setting["server"] == "gunicorn":
        threads = THREADS_PER_WORKER
    server, base = start_server(
        setting["server"], env, threads=threads, workers=setting.get("workers", 2)
    )
    try:
        accounts = _accounts(url, names[: setting["labelers"]])
        records = run_labelers(
            base, accounts, auth=setting["auth"], duration=duration, think=THINK_SECONDS
        )
    finally:
        stop_server(server)
    cycles = [c for r in records for c in r.cycles]
    return {
        **(percentiles(cycles) if cycles else {"p50": None, "p99": None, "n": 0}),
        "labels": sum(len(r.accepted) for r in records),
        "errors": sum(len(r.errors) for r in records),
        "timeouts": sum(r.timeouts for r in records),
        "first_errors": [e for r in records for e in r.errors][:3],
    }


def web_settings(servers, auths, labeler_counts, workers: int = 2) -> list[dict]:
    """Every (server, auth, labelers) combination, in that order."""
    return [
        {"server": server, "auth": auth, "labelers": n, "workers": workers}
        for server in servers
        for auth in auths
        for n in labeler_counts
    ]


def setting_name(setting: dict) -> str:
    return f"{setting['server']}, {setting['auth']}, {setting['labelers']} labelers"


def run_backend(url: str, *, rows: int, settings: list, duration: float, work: Path, echo) -> dict:
    most = max((setting["labelers"] for setting in settings), default=1)
    echo(f"loading {rows:,} rows ...")
    loaded = bench_queue_load.load(url, rows=rows, labelers=most)
    echo(
        f"loaded in {loaded['load_s']:.1f} s (+ {loaded['index_analyze_s']:.1f} s indexes, ANALYZE)"
    )
    latencies = queue_latencies(url)
    web = {}
    for setting in settings:
        echo(f"web: {setting_name(setting)} ...")
        web[setting_name(setting)] = web_run(
            url, loaded["labelers"], setting, duration=duration, work=work
        )
    return {"load": loaded, "latency": latencies, "web": web}


def run(
    *,
    rows: int,
    duration: float,
    postgres_url: str | None,
    echo: Callable,
    settings: list[dict] | None = None,
) -> dict:
    """{backend: {"load", "latency": {measurement: {p50, p99, n}}, "web": {setting: ...}}};
    PostgreSQL is skipped (and said so) when unreachable."""
    settings = settings if settings is not None else web_settings(["gunicorn"], ["session"], [20])
    results = {}
    with tempfile.TemporaryDirectory(prefix="reviewer-bench-queue-") as tmp:
        work = Path(tmp)
        options = dict(rows=rows, settings=settings, duration=duration, work=work, echo=echo)
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
