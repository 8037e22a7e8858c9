"""The worker as a process: an engine and a file store from the configuration, SIGTERM and
SIGINT turned into a clean stop (the batch in hand is written, the one claimed ahead handed
back), the engine disposed of at the end. `reviewer worker` and the demo run it.
"""

from __future__ import annotations

import signal

from reviewer.core import db
from reviewer.core.objects import image_store
from reviewer.scoring import batchbald_batch
from reviewer.scoring.worker import Worker


def run_worker(
    config,
    *,
    once: bool,
    batch_size: int = 256,
    T: int | None = None,
    sampler=None,
    poll_seconds: float = 2.0,
    progress: bool = True,
    batchbald_size: int = batchbald_batch.BATCH_SIZE,
    batchbald_candidates: int = batchbald_batch.CANDIDATES,
) -> int:
    """Run a worker against ``config`` with SIGTERM/SIGINT handled; returns the exit code 0."""
    engine = db.make_engine(config.database_url)
    worker = Worker(
        db.session_factory(engine),
        image_store(config.data_dir),
        lease_seconds=config.score_lease_seconds,
        batch_size=batch_size,
        T=T or config.mc_samples,
        sampler=sampler,
        batchbald_size=batchbald_size,
        batchbald_candidates=batchbald_candidates,
        max_decoded_bytes=config.max_decoded_bytes,
    )
    previous = {sig: signal.signal(sig, worker.stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        worker.run(once=once, poll_seconds=poll_seconds, progress=progress)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        engine.dispose()
    return 0
