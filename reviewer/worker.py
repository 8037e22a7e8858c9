"""The scoring loop: claim -> load -> sample -> summarise -> write.

This module owns how unscored images reach the ``scores`` table: `claim_batch` leases a batch
(``FOR UPDATE SKIP LOCKED`` on PostgreSQL, ``BEGIN IMMEDIATE`` on SQLite), `score_batch` samples
it outside any transaction and writes one scores row per image in ONE transaction, and `Worker`
runs that loop with a heartbeat, progress and clean stops on SIGTERM/SIGINT. A crashed worker's
leases expire and its images are claimed again. TensorFlow loads only in `MCSampler`, lazily.
"""

from __future__ import annotations

import logging
import os
import secrets
import signal
import socket
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
from sqlalchemy import delete, exists, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from reviewer import db, ood, registry, settings, uncertainty
from reviewer import labels as label_history
from reviewer.images import load_batch_tolerant
from reviewer.schema import Image, ModelVersion, Score, ScoreLease, WorkerHeartbeat, utcnow
from reviewer.store import FileStore

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Claimed:
    """What scoring needs of a claimed image, read inside the claim transaction."""

    id: int
    path: str
    given_label: str | None
    label_count: int


class MCSampler:
    """The real sampler: each version's model (and card) is loaded once, through reviewer.mc.

    A test passes any object with the same ``sample`` and ``features`` methods instead.
    """

    def __init__(self, loader=None):
        self._loader = loader
        self._models: dict[int, object] = {}

    def _model(self, version: ModelVersion):
        if version.id not in self._models:
            from reviewer import mc

            load = self._loader or mc.load_model
            self._models = {version.id: load(os.path.join(version.path, registry.MODEL_FILE))}
            logger.info("loaded model %s", registry.label(version))
        return self._models[version.id]

    def sample(self, version: ModelVersion, images: np.ndarray, T: int) -> np.ndarray:
        from reviewer import mc

        return mc.sample(self._model(version), images, T)

    def features(self, version: ModelVersion, images: np.ndarray) -> np.ndarray:
        from reviewer import mc

        return mc.features(self._model(version), images)


def _insert(session: Session):
    return (sqlite if db.is_sqlite(session) else postgresql).insert


def claim_batch(
    session: Session,
    version: ModelVersion,
    worker_id: str,
    batch_size: int,
    lease_seconds: float,
    now: datetime,
) -> list[Claimed]:
    """Lease up to ``batch_size`` ok images that have no scores and no live lease for ``version``.

    Must start the session's transaction (it issues BEGIN IMMEDIATE on SQLite); the caller
    commits. Claims of concurrent callers never overlap.
    """
    db.begin_write(session)
    vid = version.id
    scored = exists().where(Score.image_id == Image.id, Score.model_version_id == vid)
    leased = exists().where(
        ScoreLease.image_id == Image.id,
        ScoreLease.model_version_id == vid,
        ScoreLease.expires_at > now,
    )
    stmt = select(Image).where(Image.status == "ok", ~scored, ~leased)
    stmt = stmt.order_by(Image.id).limit(batch_size)
    if not db.is_sqlite(session):
        stmt = stmt.with_for_update(skip_locked=True, of=Image)
    images = {image.id: image for image in session.scalars(stmt)}
    if not images:
        return []
    session.execute(  # expired leases are free again
        delete(ScoreLease).where(
            ScoreLease.model_version_id == vid,
            ScoreLease.image_id.in_(list(images)),
            ScoreLease.expires_at <= now,
        )
    )
    expires = now + timedelta(seconds=lease_seconds)
    rows = [
        dict(image_id=i, model_version_id=vid, worker_id=worker_id, expires_at=expires)
        for i in images
    ]
    # ON CONFLICT DO NOTHING: on PostgreSQL a claimer whose snapshot predates another's commit
    # can still pick a row that was just leased; the conflict leaves it to its first owner.
    insert = _insert(session)(ScoreLease).values(rows).on_conflict_do_nothing()
    won = set(session.scalars(insert.returning(ScoreLease.image_id)))
    return [
        Claimed(i.id, i.path, i.given_label, i.label_count) for i in images.values() if i.id in won
    ]


@dataclass
class BatchResult:
    scored: int = 0
    failed: int = 0
    lost: int = 0  # leases that expired and went to another worker meanwhile


def choose_samples(version: ModelVersion, samples: int | None, config_samples: int | None) -> int:
    """T: ``--samples``, else REVIEWER_MC_SAMPLES, else the model card."""
    return int(samples or config_samples or version.mc_samples)


def compute(sampler, version, card, store: FileStore, claimed: list[Claimed], T: int):
    """Load and sample ``claimed`` (no database). Returns (rows by image id, failures by id)."""
    spec = version.input_spec
    paths, failures = [], {}
    for item in claimed:
        try:
            paths.append(store.absolute(item.path))
        except ValueError as exc:
            paths.append(None)
            failures[item.id] = str(exc)
    options = dict(
        size=(spec["height"], spec["width"]),
        channels=spec["channels"],
        scale=spec.get("scale", 255.0),
    )
    loadable = [(item, path) for item, path in zip(claimed, paths, strict=True) if path]
    array, good, failed = load_batch_tolerant([p for _, p in loadable], **options)
    failures.update({loadable[i][0].id: reason for i, reason in failed.items()})
    items = [loadable[i][0] for i in good]
    if not items:
        return {}, failures
    index = {name: k for k, name in enumerate(version.classes)}
    labels = np.array([index.get(item.given_label, -1) for item in items])
    summary = uncertainty.summarize(sampler.sample(version, array, T), labels=labels)
    ood_values = [None] * len(items)
    if card.get("ood"):  # models registered without training data have no OOD parameters
        feats = sampler.features(version, array)
        ood_values = ood.ood_score(feats, summary.entropy, card["ood"]).tolist()
    rows = {}
    for k, item in enumerate(items):
        row = summary.row(k)
        row["predicted_label"] = version.classes[row.pop("predicted")]
        rows[item.id] = {**row, "ood": ood_values[k], "samples": T}
    return rows, failures


def write_batch(session, version, worker_id, claimed, rows, failures, now) -> BatchResult:
    """Write scores rows and failures for the images whose lease this worker still holds.

    Must start the session's transaction; the caller commits. Also promotes a pending
    version that this batch completed.
    """
    db.begin_write(session)
    ids = [item.id for item in claimed]
    held = set(
        session.scalars(
            delete(ScoreLease)
            .where(ScoreLease.model_version_id == version.id, ScoreLease.image_id.in_(ids))
            .where(ScoreLease.worker_id == worker_id)
            .returning(ScoreLease.image_id)
        )
    )
    wanted = settings.get_labels_per_item(session)
    result = BatchResult(lost=len(set(ids) - held))
    for item in claimed:
        if item.id not in held:
            continue
        if item.id in failures:
            image = session.get(Image, item.id)
            image.status, image.failure_reason = "failed", failures[item.id]
            result.failed += 1
        elif item.id in rows:
            needs_review = item.label_count < wanted
            row = Score(image_id=item.id, model_version_id=version.id, **rows[item.id])
            row.needs_review, row.scored_at = needs_review, now
            session.add(row)
            result.scored += 1
    session.flush()
    for item in claimed:
        if item.id in held and item.id in rows and item.label_count > 0:
            # self_confidence judges the human label once there is one (DESIGN.md).
            label_history.refresh_label_quality(session, session.get(Image, item.id))
    promoted = registry.promote_if_scored(session)
    if promoted is not None:
        logger.info("%s is scored for every image and is now active", registry.label(promoted))
    return result


def new_worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


class Worker:
    """Scores batches until the pool is drained (``once``) or it is told to stop.

    ``sampler`` has ``sample(version, images, T)`` and ``features(version, images)``
    (default: `MCSampler`). `stop` (called from a signal handler) lets the current batch
    finish its transaction, then the loop exits.
    """

    def __init__(
        self,
        sessions,
        store: FileStore,
        *,
        lease_seconds: float,
        batch_size: int,
        samples: int | None = None,
        sampler=None,
        worker_id: str | None = None,
    ):
        self.sessions, self.store, self.lease_seconds = sessions, store, lease_seconds
        self.batch_size, self.samples = batch_size, samples
        self.sampler = sampler or MCSampler()
        self.worker_id = worker_id or new_worker_id()
        self.scored = self.failures = 0
        self.version_id: int | None = None
        self.stopping = False
        self._cards: dict[int, dict] = {}

    def stop(self, *_args) -> None:
        self.stopping = True

    def heartbeat(self, state: str) -> None:
        host, pid, _ = self.worker_id.rsplit(":", 2)
        with self.sessions() as session, session.begin():
            db.begin_write(session)
            beat = session.get(WorkerHeartbeat, self.worker_id)
            if beat is None:
                beat = WorkerHeartbeat(worker_id=self.worker_id, host=host, pid=int(pid))
                session.add(beat)
            beat.state, beat.model_version_id = state, self.version_id
            beat.images_scored, beat.failures, beat.last_seen = self.scored, self.failures, utcnow()

    def _card(self, version: ModelVersion) -> dict:
        if version.id not in self._cards:
            path = os.path.join(version.path, registry.CARD_FILE)
            self._cards = {
                version.id: registry.read_card(version.path) if os.path.exists(path) else {}
            }
        return self._cards[version.id]

    def step(self) -> int | None:
        """Score one batch; returns how many images it settled, None when nothing is claimable."""
        with self.sessions() as session:
            version = registry.version_to_score(session)
        if version is None:
            return None
        self.version_id = version.id
        with self.sessions() as session, session.begin():
            claimed = claim_batch(
                session, version, self.worker_id, self.batch_size, self.lease_seconds, utcnow()
            )
        if not claimed:
            return None
        T = choose_samples(version, self.samples, None)
        rows, failures = compute(self.sampler, version, self._card(version), self.store, claimed, T)
        for image_id, reason in failures.items():
            logger.warning("image %d failed: %s", image_id, reason)
        with self.sessions() as session, session.begin():
            result = write_batch(
                session, version, self.worker_id, claimed, rows, failures, utcnow()
            )
        if result.lost:
            logger.warning("%d leases expired and were taken over by another worker", result.lost)
        self.scored += result.scored
        self.failures += result.failed
        return result.scored + result.failed

    def run(self, *, once: bool, poll_seconds: float = 2.0, progress: bool = True) -> int:
        """The loop; returns the number of images scored."""
        from tqdm import tqdm

        bar = tqdm(desc="scoring", unit="img", disable=None if progress else True)
        log_every, last_log = 30.0, time.monotonic()
        self.heartbeat("starting")
        try:
            while not self.stopping:
                done = self.step()
                if done is None:
                    self.heartbeat("idle")
                    if once:
                        break
                    self._sleep(poll_seconds)
                    continue
                bar.update(done)
                self.heartbeat("scoring")
                if bar.disable and time.monotonic() - last_log >= log_every:
                    last_log = time.monotonic()
                    logger.info("scored %d images (%d failed)", self.scored, self.failures)
        finally:
            bar.close()
            self.heartbeat("stopped")
        logger.info(
            "worker %s stopped: scored %d images, %d failed",
            self.worker_id,
            self.scored,
            self.failures,
        )
        return self.scored

    def _sleep(self, seconds: float) -> None:
        # Short naps so a stop request ends the idle wait promptly.
        deadline = time.monotonic() + seconds
        while not self.stopping and time.monotonic() < deadline:
            time.sleep(min(0.1, seconds))


def run_worker(
    config,
    *,
    once: bool,
    batch_size: int = 256,
    samples: int | None = None,
    sampler=None,
    poll_seconds: float = 2.0,
    progress: bool = True,
) -> int:
    """Run a worker against ``config`` with SIGTERM/SIGINT handled; returns the exit code 0."""
    engine = db.make_engine(config.database_url)
    worker = Worker(
        db.session_factory(engine),
        FileStore(config.data_dir),
        lease_seconds=config.score_lease_seconds,
        batch_size=batch_size,
        samples=samples or config.mc_samples,
        sampler=sampler,
    )
    previous = {sig: signal.signal(sig, worker.stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        worker.run(once=once, poll_seconds=poll_seconds, progress=progress)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        engine.dispose()
    return 0
