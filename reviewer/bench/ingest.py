"""Benchmark: ingest throughput into SQLite and PostgreSQL.

Generates small PNGs once, then ingests them into a fresh database and file
store several times per backend through the same code path as
``reviewer ingest`` (validation, fsynced content-addressed files, one
transaction per batch). Reports the median images/s of the runs.
"""

from __future__ import annotations

import contextlib
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image as PILImage

from reviewer.core import db, settings
from reviewer.core.files import FileStore
from reviewer.ingest import run_ingest


def write_images(folder: Path, count: int, *, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        pixels = rng.integers(0, 256, (28, 28), dtype=np.uint8)
        PILImage.fromarray(pixels, mode="L").save(folder / f"img_{i:06d}.png")


def time_one_run(url: str, images: Path, work: Path, *, batch_size: int) -> float:
    """Seconds to ingest every image of ``images`` into an empty database at ``url``."""
    db.upgrade(url)
    engine = db.make_engine(url)
    factory = db.session_factory(engine)
    with factory() as session, session.begin():
        settings.set_classes(session, [str(d) for d in range(10)])
    store = FileStore(work / "store")
    start = time.perf_counter()
    report = run_ingest(factory, store, [images], max_pixels=89_478_485, batch_size=batch_size)
    seconds = time.perf_counter() - start
    engine.dispose()
    if report.rejected:
        raise RuntimeError(f"benchmark images were rejected: {report.rejected[:3]}")
    return seconds


def run(
    *, count: int, runs: int, batch_size: int, postgres_url: str | None, echo: Callable[[str], None]
) -> dict:
    """Median images/s per backend; PostgreSQL is skipped (and said so) when unreachable."""
    results = {}
    with tempfile.TemporaryDirectory(prefix="reviewer-bench-") as tmp:
        tmp_path = Path(tmp)
        echo(f"writing {count} PNGs ...")
        write_images(tmp_path / "images", count)
        backends = {"sqlite": None}
        if postgres_url:
            backends["postgresql"] = postgres_url
        for backend, server in backends.items():
            rates = []
            for i in range(runs):
                work = tmp_path / f"{backend}-{i}"
                work.mkdir()
                with contextlib.ExitStack() as stack:
                    if server is None:
                        url = f"sqlite:///{work / 'bench.db'}"
                    else:
                        try:
                            url = stack.enter_context(
                                db.throwaway_postgres(server, prefix="reviewer_bench")
                            )
                        except Exception as exc:  # noqa: BLE001
                            echo(f"postgresql: skipped ({exc})")
                            break
                    seconds = time_one_run(url, tmp_path / "images", work, batch_size=batch_size)
                shutil.rmtree(work, ignore_errors=True)
                rates.append(count / seconds)
                echo(f"{backend} run {i + 1}: {count / seconds:,.0f} images/s")
            if rates:
                results[backend] = statistics.median(rates)
    return results
