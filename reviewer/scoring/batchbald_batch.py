"""The BatchBALD batch behind the `batchbald` strategy: chosen by the worker, read by the queue.

Top-k BALD hands labelers the k items of highest mutual information, which are often alike:
their labels repeat each other. The worker instead picks a batch with :mod:`reviewer.ml.batchbald`
from the active version's most uncertain items and stores it in ``scores.batchbald_key``
(``BATCH_KEY_BASE - place`` for the batch's items, every other row's own mutual_info), so the
strategy is one index walk like the others: the batch in its greedy order, then BALD's.

Steps: `batch_is_due` (no item of the current batch still needs review), `candidates` (the top
items by mutual_info), `pick` (load and sample them, outside any transaction) and
`write_batchbald_batch`.
Functions that read or write take a session; the caller owns the transaction.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from reviewer.core import db
from reviewer.core.schema import Image, ModelVersion, Score
from reviewer.core.strategies import BATCH_KEY_BASE
from reviewer.ml.batchbald import batchbald
from reviewer.scoring.compute import load_images

BATCH_SIZE = 10  # items per batch: one round of the study's acquisitions
CANDIDATES = 1_500  # the batch is picked among this many top-BALD items (the study's subset)
_IN_BATCH = Score.batchbald_key > BATCH_KEY_BASE / 2


@dataclass(frozen=True)
class Candidate:
    """An item the batch may be picked from: its image id and store path."""

    id: int
    path: str


def _shown(version: ModelVersion, *columns):
    """``columns`` of ``version``'s items that the queue can show: still needing review, their
    image ok."""
    return (
        select(*columns)
        .join(Image, Image.id == Score.image_id)
        .where(
            Score.model_version_id == version.id,
            Score.needs_review.is_(True),
            Image.status == "ok",
        )
    )


def batch_is_due(session: Session, version: ModelVersion) -> bool:
    """True when ``version`` has items the queue can show and none of them is in its batch (a
    new version, or every item of the batch reviewed)."""
    shown = _shown(version, Score.image_id)
    if session.scalar(select(shown.where(_IN_BATCH).exists())):
        return False
    return bool(session.scalar(select(shown.exists())))


def candidates(session: Session, version: ModelVersion, limit: int) -> list[Candidate]:
    """The ``limit`` items of highest mutual_info that still need review, in that order."""
    rows = session.execute(
        _shown(version, Score.image_id, Image.path)
        .order_by(Score.mutual_info.desc(), Score.image_id.desc())
        .limit(limit)
    ).all()
    return [Candidate(image_id, path) for image_id, path in rows]


def pick(sampler, version, store, candidates: list[Candidate], *, size: int, T: int, seed=None):
    """Image ids of the BatchBALD batch among ``candidates``, in greedy order (no database).
    Images that no longer load are left out; the scoring path reports those."""
    array, items, _ = load_images(version, store, candidates)
    if not items:
        return []
    # One mask t for every candidate: the joint over the batch compares the same T networks.
    samples = sampler.sample(version, array, T, shared_masks=True)
    chosen = batchbald(samples, size, seed=seed)
    return [items[k].id for k in chosen]


def write_batchbald_batch(session: Session, version: ModelVersion, image_ids: list[int]) -> bool:
    """Make ``image_ids`` (in order) ``version``'s batch, the previous batch's items back to
    their mutual_info, if a batch is still due: False when another worker wrote one meanwhile.
    Starts the session's write transaction (on PostgreSQL, writers of one version's batch
    queue on its row); the caller commits."""
    db.begin_write(session)
    if not db.is_sqlite(session):
        lock = (
            select(ModelVersion.id)
            .where(ModelVersion.id == version.id)
            .with_for_update(key_share=True)
        )
        session.execute(lock)
    if not batch_is_due(session, version):
        return False
    of_version = Score.model_version_id == version.id
    session.execute(
        update(Score).where(of_version, _IN_BATCH).values(batchbald_key=Score.mutual_info)
    )
    for place, image_id in enumerate(image_ids):
        session.execute(
            update(Score)
            .where(of_version, Score.image_id == image_id)
            .values(batchbald_key=BATCH_KEY_BASE - place)
        )
    return True
