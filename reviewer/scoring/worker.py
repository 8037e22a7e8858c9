"""The scoring worker: the loop around the batch steps of reviewer.scoring (claims, compute,
writes) and the BatchBALD batch.

This module owns the long-running process: which version to score, a
heartbeat row, progress (a bar on a terminal, log lines otherwise), polling
while idle, and clean stops on SIGTERM/SIGINT (the batch in hand is finished
or abandoned to its lease, never half written). A crashed worker's leases
expire and its images are claimed again.
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
import time

from reviewer.core import db, versions
from reviewer.core.config import DEFAULT_MAX_DECODED_BYTES
from reviewer.core.files import FileStore
from reviewer.core.schema import ModelVersion, WorkerHeartbeat, utcnow
from reviewer.scoring import batchbald_batch, outages
from reviewer.scoring.claims import claim_batch, release_leases
from reviewer.scoring.compute import load_images, score_loaded
from reviewer.scoring.pipeline import Loaded, Pipeline
from reviewer.scoring.sampler import MCSampler
from reviewer.scoring.writes import write_scores
from reviewer.training import registry

logger = logging.getLogger(__name__)


def new_worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


class Worker:
    """Scores batches until the pool is drained (``once``) or it is told to stop.

    ``sampler`` has ``sample(version, images, T, *, shared_masks=False)``,
    ``sample_with_features(version, images, T)`` and ``features(version, images)`` (default:
    `MCSampler`). `stop` (called from a signal
    handler) lets the current batch finish its transaction, then the loop exits. With nothing
    left to score it picks the active version's BatchBALD batch when one is due
    (``batchbald_size`` 0: never).
    """

    def __init__(
        self,
        sessions,
        store: FileStore,
        *,
        lease_seconds: float,
        batch_size: int,
        T: int | None = None,
        sampler=None,
        worker_id: str | None = None,
        batchbald_size: int = batchbald_batch.BATCH_SIZE,
        batchbald_candidates: int = batchbald_batch.CANDIDATES,
        max_decoded_bytes: int = DEFAULT_MAX_DECODED_BYTES,
    ):
        self.sessions, self.store, self.lease_seconds = sessions, store, lease_seconds
        self.batch_size, self.T = batch_size, T
        self.has_model = True  # False while there is no version to score (said, not hidden)
        self.batchbald_size, self.batchbald_candidates = batchbald_size, batchbald_candidates
        self.sampler = sampler or MCSampler()
        self.load_options = {"max_decoded_bytes": max_decoded_bytes}
        self.worker_id = worker_id or new_worker_id()
        self.scored = self.failures = 0
        self.version_id: int | None = None
        self.stopping = False
        self._fits: dict[int, object] = {}  # the OOD fit of the version in hand
        self._unloadable: tuple | None = None  # (version id, candidate ids) that did not load
        self._last_scoring_beat: float | None = None  # time.monotonic() of the last one

    def stop(self, *_args) -> None:
        self.stopping = True

    def heartbeat(self, state: str) -> None:
        """Record the worker's state; while the database is down, skip it (best effort)."""
        if state != "scoring":
            self._last_scoring_beat = None  # back to scoring: said after the next batch
        outages.best_effort(lambda: self._beat(state), what=f"the heartbeat {state!r}")

    def _beat(self, state: str) -> None:
        host, pid, _ = self.worker_id.rsplit(":", 2)
        with self.sessions() as session, session.begin():
            db.begin_write(session)
            beat = session.get(WorkerHeartbeat, self.worker_id)
            if beat is None:
                beat = WorkerHeartbeat(worker_id=self.worker_id, host=host, pid=int(pid))
                session.add(beat)
            beat.state, beat.model_version_id = state, self.version_id
            beat.images_scored, beat.failures, beat.last_seen = self.scored, self.failures, utcnow()

    def beat_while_scoring(self, pipeline: Pipeline) -> None:
        """After a batch: the heartbeat ``scoring``, at most every `SCORING_BEAT_SECONDS`."""
        now, last = time.monotonic(), self._last_scoring_beat
        if last is None or now - last >= SCORING_BEAT_SECONDS:
            self._last_scoring_beat = now
            pipeline.heartbeat("scoring")

    def _ood_fit(self, version: ModelVersion):
        if version.id not in self._fits:
            folder = registry.version_folder(version.path)  # a local copy when on object storage
            card = registry.read_card(folder) if (folder / registry.CARD_FILE).exists() else {}
            self._fits = {version.id: registry.read_ood_fit(folder, card)}
            if self._fits[version.id] is not None and self.T not in (None, version.mc_samples):
                logger.warning(
                    "scoring at T=%d, but the OOD fit's entropy reference is at the card's T=%d: "
                    "`ood` p-values shift (more strangers at a smaller T)",
                    self.T, version.mc_samples,
                )  # fmt: skip
        return self._fits[version.id]

    def _patiently(self, what: str, step):
        """A database step, retried through an outage (the heartbeat says so meanwhile)."""
        waiting = lambda: self.heartbeat("waiting for database")  # noqa: E731
        return outages.patiently(step, what=what, stopping=lambda: self.stopping, waiting=waiting)

    def _read(self, what: str, read):
        def step():
            with self.sessions() as session:
                return read(session)

        return self._patiently(what, step)

    def _write(self, what: str, write):
        def step():
            with self.sessions() as session, session.begin():
                return write(session)

        return self._patiently(what, step)

    def claim_and_load(self, *, ahead: bool = False) -> Loaded | None:
        """Claim a batch and decode its images; None when nothing is claimable (or no version
        is there to score: ``has_model`` says which). Database and files only: the I/O thread
        of reviewer.scoring.pipeline runs it while the sampler works. ``ahead``: the worker
        holds a batch already, so no suspect is claimed (None while one waits)."""
        version = self._read("finding the version to score", versions.version_to_score)
        self.has_model = version is not None
        if version is None:
            return None
        self.version_id = version.id
        claimed = self._write(
            "claiming a batch",
            lambda s: claim_batch(
                s,
                version,
                self.worker_id,
                self.batch_size,
                self.lease_seconds,
                utcnow(),
                suspects=not ahead,
            ),
        )
        if not claimed:
            return None
        array, items, failures = load_images(version, self.store, claimed, **self.load_options)
        return Loaded(version, claimed, array, items, failures)

    def sample_batch(self, loaded: Loaded) -> dict:
        """The scores rows of a loaded batch, by image id (arithmetic only)."""
        version = loaded.version
        T = self.T or version.mc_samples
        fit = self._ood_fit(version)
        return score_loaded(self.sampler, version, fit, loaded.array, loaded.items, T)

    def write_batch(self, loaded: Loaded, rows: dict) -> int:
        """Write a sampled batch's rows and failures; returns how many images it settled."""
        for image_id, reason in loaded.failures.items():
            logger.warning("image %d failed: %s", image_id, reason)
        version, claimed, failures = loaded.version, loaded.claimed, loaded.failures
        result = self._write(
            "writing scores",
            lambda s: write_scores(s, version, self.worker_id, claimed, rows, failures, utcnow()),
        )
        if result.lost:
            logger.warning("%d leases expired and were taken over by another worker", result.lost)
        self.scored += result.scored
        self.failures += result.failed
        return result.scored + result.failed

    def release(self, loaded: Loaded) -> None:
        """Hand back the leases of a batch claimed but not sampled (the worker stops)."""
        ids = [item.id for item in loaded.claimed]
        self._write(
            "handing back a claimed batch",
            lambda s: release_leases(s, loaded.version, self.worker_id, ids, utcnow()),
        )

    def step(self) -> int | None:
        """Score one batch, each stage in turn; returns how many images it settled, None when
        nothing is claimable. (`run` overlaps the stages of consecutive batches instead.)"""
        loaded = self.claim_and_load()
        return None if loaded is None else self.write_batch(loaded, self.sample_batch(loaded))

    def refresh_batchbald(self) -> bool:
        """Pick and store the active version's BatchBALD batch if one is due; True if it did
        (False too when none of the candidates' images loads: the loop then idles)."""
        if self.batchbald_size < 1:
            return False
        found = self._read("looking for a BatchBALD batch to pick", self._batchbald_candidates)
        if found is None:
            return False
        version, candidates = found
        attempt = (version.id, tuple(item.id for item in candidates))
        if attempt == self._unloadable:  # the same candidates, none of which loaded last time
            return False
        self.version_id = version.id
        self.heartbeat("choosing a BatchBALD batch")
        started = time.monotonic()
        T = self.T or version.mc_samples
        size = self.batchbald_size
        chosen = batchbald_batch.pick(self.sampler, version, self.store, candidates, size=size, T=T)
        if not chosen:
            n = len(candidates)
            logger.warning("no BatchBALD batch: none of %d candidates' images loads", n)
            self._unloadable = attempt
            return False
        written = self._write(
            "writing the BatchBALD batch",
            lambda s: batchbald_batch.write_batchbald_batch(s, version, chosen),
        )
        if not written:
            logger.info("another worker picked the BatchBALD batch first")
            return False
        picked = "BatchBALD batch of %d for %s from the top %d by BALD in %.1f s"
        name = versions.version_name(version)
        logger.info(picked, len(chosen), name, len(candidates), time.monotonic() - started)
        return True

    def _batchbald_candidates(self, session):
        """(the active version, the candidates of its due batch), or None when none is due."""
        version = versions.active_version(session)
        if version is None or not batchbald_batch.batch_is_due(session, version):
            return None
        return version, batchbald_batch.candidates(session, version, self.batchbald_candidates)

    def run(self, *, once: bool, poll_seconds: float = 2.0, progress: bool = True) -> int:
        """The loop; returns the number of images scored."""
        from tqdm import tqdm

        bar = tqdm(desc="scoring", unit="img", disable=None if progress else True)
        log_every, last_log, last_reminder = 30.0, time.monotonic(), None
        self.heartbeat("starting")
        pipeline = Pipeline(self)
        try:
            while not self.stopping:
                done = pipeline.step()
                if done is None:
                    if self.refresh_batchbald():
                        continue
                    if not self.has_model:
                        if once:
                            raise NoModelVersion(NO_MODEL)
                        if last_reminder is None or time.monotonic() - last_reminder >= REMIND:
                            last_reminder = time.monotonic()
                            logger.warning("waiting: %s", NO_MODEL)
                    self.heartbeat("idle" if self.has_model else "no model")
                    if once:
                        break
                    self._sleep(poll_seconds)
                    continue
                bar.update(done)
                self.beat_while_scoring(pipeline)
                if bar.disable and time.monotonic() - last_log >= log_every:
                    last_log = time.monotonic()
                    logger.info("scored %d images (%d failed)", self.scored, self.failures)
        except BaseException:
            self.stopping = True  # an error: the I/O thread's outage waits give up, it unwinds
            raise
        finally:
            try:
                bar.update(pipeline.close())
            finally:
                bar.close()
                self.heartbeat("stopped")
        stopped = "worker %s stopped: scored %d images, %d failed"
        logger.info(stopped, self.worker_id, self.scored, self.failures)
        return self.scored

    def _sleep(self, seconds: float) -> None:
        # Short naps so a stop request ends the idle wait promptly.
        deadline = time.monotonic() + seconds
        while not self.stopping and time.monotonic() < deadline:
            time.sleep(min(0.1, seconds))


NO_MODEL = (
    "no model version to score: train one (`reviewer train --data DIR --name NAME --activate`) "
    "or register one (`reviewer register MODEL.keras --name NAME --activate`)"
)
REMIND = 300.0  # seconds between the reminders of a worker waiting for a model
SCORING_BEAT_SECONDS = 5.0  # not a write per batch, yet inside workers.HEARTBEAT_SECONDS


class NoModelVersion(RuntimeError):
    """``--once`` found no active or pending version: there is nothing it could score."""
