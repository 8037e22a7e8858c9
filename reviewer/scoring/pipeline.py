"""The worker's stages overlapped: the sampler does not wait for the database or the decoder.

One I/O thread does, in order, everything of a batch that is not arithmetic: claim it and
decode its images, write its scores, the heartbeat. While the main thread samples batch n,
the I/O thread writes batch n-1 and claims and decodes batch n+1, so a batch costs about the
longer of the two instead of their sum (BENCHMARKS.md, the worker end to end). One worker
holds the leases of at most three batches (one being written, one sampled, one claimed
ahead), so a lease must outlast about two batches' sampling. A suspect is claimed and scored
with nothing else held (`Pipeline.step`). `Pipeline.close` writes the batch in hand and hands
back the leases of the one claimed ahead, so a stop leaves nothing to expire.
`Pipeline.io_seconds` is the I/O thread's CPU time so far (`reviewer bench scoring` reports it).
"""

from __future__ import annotations

import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np


@dataclass
class Loaded:
    """A claimed batch, its images decoded: what the sampler needs, and the write after it."""

    version: object  # the ModelVersion it was claimed for
    claimed: list  # reviewer.scoring.claims.Claimed, every image of the claim
    array: np.ndarray | None  # the decoded images of ``items``, in their order
    items: list  # the claimed images that decoded
    failures: dict  # image id -> why it could not be loaded


class Pipeline:
    """Overlaps a worker's batches (see the module docstring); ``worker`` has
    ``claim_and_load``, ``sample_batch``, ``write_batch``, ``release`` and ``heartbeat``."""

    def __init__(self, worker):
        self.worker = worker
        self._io = ThreadPoolExecutor(max_workers=1, thread_name_prefix="reviewer-io")
        self._ahead: Future | None = None  # the next batch, claimed and decoded (or None)
        self._in_hand: Loaded | None = None  # claimed, not yet handed to its write
        self._written: Future | None = None  # the last batch's write: images it settled
        self._beats: list[Future] = []
        self.io_seconds = 0.0  # CPU seconds the I/O thread has spent on its tasks

    def _submit(self, task, *args, **kwargs) -> Future:
        """Run ``task`` on the I/O thread, adding its CPU time to `io_seconds`."""

        def timed():
            start = time.thread_time()
            try:
                return task(*args, **kwargs)
            finally:
                self.io_seconds += time.thread_time() - start  # only the I/O thread writes it

        return self._io.submit(timed)

    def step(self) -> int | None:
        """Sample one batch while the I/O thread writes the last one and claims the next.

        Returns the images the previous batch's write settled (0 for the first batch: the
        count lags a batch), or None when nothing was claimable and no write was pending. A
        suspect (an image whose lease expired without a result) is claimed only with nothing
        ahead, and is sampled and written before anything else is claimed: if it kills the
        worker, no other image is counted against for it.
        """
        ahead, self._ahead = self._ahead, None
        loaded = (ahead or self._submit(self.worker.claim_and_load)).result()
        if loaded is None:
            return self._settle()
        alone = any(item.suspect for item in loaded.claimed)
        if not alone and not self.worker.stopping:
            self._ahead = self._submit(self.worker.claim_and_load, ahead=True)
        self._in_hand = loaded
        rows = self.worker.sample_batch(loaded)
        settled = self._settle()
        self._written = self._submit(self.worker.write_batch, loaded, rows)
        self._in_hand = None
        if alone:
            settled = (settled or 0) + self._settle()
        return settled or 0

    def heartbeat(self, state: str) -> None:
        """Record the state from the I/O thread, after the writes before it (waited on at the
        next batch, not now: a database that is slow to lock must not stall the sampler)."""
        self._beats.append(self._submit(self.worker.heartbeat, state))

    def _settle(self) -> int | None:
        written, self._written = self._written, None
        beats, self._beats = self._beats, []
        try:
            return None if written is None else written.result()
        finally:
            for beat in beats:
                beat.result()  # an error other than an outage ends the worker, as in `step`

    def close(self) -> int:
        """Write the batch in hand; hand back the one claimed ahead and one whose write was
        never started (an error); returns the images the last write settled. Errors of either
        propagate, after the I/O thread has stopped."""
        try:
            return self._settle() or 0
        finally:
            try:
                unwritten, ahead = [self._in_hand], self._ahead
                self._in_hand = self._ahead = None
                if ahead is not None and not ahead.cancel():  # cancelled: never claimed
                    unwritten.append(ahead.result())
                for loaded in unwritten:
                    if loaded is not None:
                        self.worker.release(loaded)
            finally:
                self._io.shutdown(wait=True)
