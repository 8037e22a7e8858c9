"""Pool rescoring on Ray Data (``reviewer score --engine ray``): the driver of the run.

The run takes score leases like a worker, so workers running meanwhile never score the same
image: it claims the version's unscored images up front (chunk by chunk, `claims.claim_batch`)
and keeps their leases alive while it runs. Ray Data then reads the claimed keys, fetches and
decodes the images in parallel tasks and samples them in a pool of actors, each loading the
model once (reviewer.scoring.ray_stages); the driver writes each result batch back in one
transaction with the worker's own `write_scores`, which writes only what this run still
leases (nothing twice) and promotes a pending version once it is complete. A run that dies
leaves leases that the next run releases at once (same host, its process gone) or once they
expire, so a second run scores exactly what is missing.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import socket
import threading
import time
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import delete, select, update

from reviewer.core import db
from reviewer.core.schema import ScoreLease, utcnow
from reviewer.core.versions import scoring_progress
from reviewer.scoring import ray_stages
from reviewer.scoring.claims import Claimed, claim_batch
from reviewer.scoring.writes import write_scores

logger = logging.getLogger(__name__)
RUN_PREFIX = "ray:"
CLAIM_CHUNK = 10_000  # images leased per claim transaction before the run starts
# Ray resources of a fetch-and-decode task and of a scoring actor. They differ, so Ray Data
# runs fetching in tasks of their own beside the actors instead of fusing it into them.
FETCH_CPUS, SCORER_CPUS = 0.5, 1


@dataclass
class RayReport:
    claimed: int = 0
    scored: int = 0
    failed: int = 0
    lost: int = 0  # leases that expired meanwhile and went to another worker
    released: int = 0  # leases of earlier runs that died, released before claiming
    seconds: float = 0.0

    @property
    def images_per_second(self) -> float:
        return (self.scored + self.failed) / self.seconds if self.seconds else 0.0


def run_id() -> str:
    """This run's worker id in the leases: ``ray:<host>:<pid>:<token>``."""
    return f"{RUN_PREFIX}{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


def _dead(worker_id: str, host: str) -> bool:
    """Whether a run of this host named by ``worker_id`` has no process any more."""
    parts = worker_id[len(RUN_PREFIX) :].split(":")
    if len(parts) < 2 or parts[0] != host or not parts[1].isdigit():
        return False
    try:
        os.kill(int(parts[1]), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def release_dead_runs(session, version, now) -> int:
    """Delete the leases of earlier Ray runs that died: this host's whose process is gone at
    once, any other's once expired. Not counted as attempts: a run killed by its operator says
    nothing about its images. The caller commits."""
    db.begin_write(session)
    mine = (ScoreLease.model_version_id == version.id) & ScoreLease.worker_id.startswith(RUN_PREFIX)
    holders = set(session.scalars(select(ScoreLease.worker_id).where(mine).distinct()))
    host = socket.gethostname()
    dead = [w for w in holders if _dead(w, host)]
    gone = mine & (ScoreLease.worker_id.in_(dead) | (ScoreLease.expires_at <= now))
    return session.execute(delete(ScoreLease).where(gone)).rowcount or 0


def claim_all(sessions, version, worker_id: str, lease_seconds: int) -> list[Claimed]:
    """Lease every unscored ok image of ``version`` that no one else leases, chunk by chunk."""
    claimed: list[Claimed] = []
    while True:
        with sessions() as session, session.begin():
            chunk = claim_batch(session, version, worker_id, CLAIM_CHUNK, lease_seconds, utcnow())
        if not chunk:
            return claimed
        claimed += chunk


class LeaseKeeper(threading.Thread):
    """Extends this run's leases every third of their length until stopped."""

    def __init__(self, sessions, worker_id: str, lease_seconds: int):
        super().__init__(daemon=True, name="ray-lease-keeper")
        self.sessions, self.worker_id, self.lease_seconds = sessions, worker_id, lease_seconds
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.wait(self.lease_seconds / 3):
            expires = utcnow() + timedelta(seconds=self.lease_seconds)
            try:
                with db.write_transaction(self.sessions) as session:
                    session.execute(
                        update(ScoreLease)
                        .where(ScoreLease.worker_id == self.worker_id)
                        .values(expires_at=expires)
                    )
            except Exception:  # noqa: BLE001 - the next round tries again; the log says why
                logger.exception("could not extend the run's leases")


def dataset(ray, claimed, view, T, options: dict):
    """The Ray Data pipeline over ``claimed``: fetch-and-decode tasks, then the scorer actors."""
    rows = [{"id": c.id, "path": c.path, "given_label": c.given_label or ""} for c in claimed]
    batch_size = options["batch_size"]
    ds = ray.data.from_items(rows)
    ds = ds.map_batches(
        ray_stages.fetch_and_decode,
        fn_kwargs=dict(
            version=view, location=options["location"], max_decoded_bytes=options["max_decoded"]
        ),
        batch_size=batch_size,
        batch_format="numpy",
        num_cpus=FETCH_CPUS,  # not the actors' share: Ray Data keeps the two stages apart
    )
    return ds.map_batches(
        ray_stages.Scorer,
        fn_constructor_kwargs=dict(version=view, T=T, sampler_factory=options.get("sampler")),
        batch_size=batch_size,
        batch_format="numpy",
        compute=ray.data.ActorPoolStrategy(size=options["actors"]),
        num_cpus=SCORER_CPUS,
        num_gpus=options["num_gpus"] or None,
    )


def write_batch(sessions, version, worker_id: str, by_id: dict, batch, report: RayReport):
    """Write one result batch in one transaction (only the images this run still leases)."""
    claimed = [by_id[int(i)] for i in batch["id"]]
    rows, failures = {}, {}
    for image_id, row, failure in zip(batch["id"], batch["row"], batch["failure"], strict=True):
        if failure:
            failures[int(image_id)] = str(failure)
        elif (values := json.loads(row)) is not None:
            rows[int(image_id)] = values
    with sessions() as session, session.begin():  # write_scores begins the write itself
        result = write_scores(session, version, worker_id, claimed, rows, failures, utcnow())
    report.scored += result.scored
    report.failed += result.failed
    report.lost += result.lost


def left_to_score(sessions, version) -> int:
    """Ok images of ``version`` still without scores (leased by workers, or new)."""
    with sessions() as session:
        done, total = scoring_progress(session, version)
    return total - done


def _results(claimed, view, T: int, options: dict):
    """The result batches: from the Ray Data pipeline, or (engine "local") from the same
    stages called one batch at a time in this process, the reference the Ray path matches."""
    if options.get("engine", "ray") == "ray":
        import ray

        pipeline = dataset(ray, claimed, view, T, options)
        yield from pipeline.iter_batches(batch_size=None, batch_format="numpy")
        return
    scorer = ray_stages.Scorer(view, T, options.get("sampler"))
    size = options["batch_size"]
    for start in range(0, len(claimed), size):
        chunk = claimed[start : start + size]
        rows = {
            "id": [c.id for c in chunk],
            "path": [c.path for c in chunk],
            "given_label": [c.given_label or "" for c in chunk],
        }
        loaded = ray_stages.fetch_and_decode(
            rows,
            version=view,
            location=options["location"],
            max_decoded_bytes=options["max_decoded"],
        )
        yield scorer(loaded)


def score_pool(sessions, config, version, *, T: int, options: dict, progress=None) -> RayReport:
    """Score every unscored ok image of ``version`` on the connected Ray cluster.

    ``options``: engine ("ray" or "local"), batch_size, actors, num_gpus (per actor), location
    (the image store), max_decoded, and optionally sampler (a factory used instead of the real
    MC sampler).
    ``progress(n)`` is called after each written batch. Returns what was done.
    """
    started, report, worker_id = time.perf_counter(), RayReport(), run_id()
    with sessions() as session, session.begin():
        report.released = release_dead_runs(session, version, utcnow())
    claimed = claim_all(sessions, version, worker_id, config.score_lease_seconds)
    report.claimed = len(claimed)
    if claimed:
        keeper = LeaseKeeper(sessions, worker_id, config.score_lease_seconds)
        keeper.start()
        by_id = {c.id: c for c in claimed}
        try:
            view = ray_stages.VersionView.of(version)
            for batch in _results(claimed, view, T, options):
                write_batch(sessions, version, worker_id, by_id, batch, report)
                if progress is not None:
                    progress(len(batch["id"]))
        finally:
            keeper.stopped.set()
            _release_unwritten(sessions, version, worker_id)
    report.seconds = time.perf_counter() - started
    return report


def _release_unwritten(sessions, version, worker_id: str) -> None:
    """Hand back what this run still leases (a run that stops early, or images Ray lost)."""
    with db.write_transaction(sessions) as session:
        session.execute(
            delete(ScoreLease).where(
                ScoreLease.model_version_id == version.id, ScoreLease.worker_id == worker_id
            )
        )
