"""Claiming a batch: lease images that have no scores for a version, so workers never overlap.

`claim_batch` leases up to a batch of ok images without a scores row and without a lease for
the version (``FOR UPDATE SKIP LOCKED`` on PostgreSQL, ``BEGIN IMMEDIATE`` on SQLite). A lease
that expired without a result means its worker died: its image is claimed again alone, and
after `MAX_ATTEMPTS` such leases it is failed with the reason, so an image that kills the worker
(out of memory, a decoder crash) cannot be re-claimed for ever. The caller owns the
transaction.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, exists, select, update
from sqlalchemy.orm import Session

from reviewer.core import db
from reviewer.core.schema import Image, ModelVersion, Score, ScoreLease

MAX_ATTEMPTS = 3  # leases that may expire without a result before the image is failed
MAX_SUSPECTS_PER_CLAIM = 50  # suspects failed in one claim at most (then the next claim)
WORKER_DIED = "the worker died while scoring this image, {attempts} attempts"


@dataclass(frozen=True)
class Claimed:
    """What scoring needs of a claimed image, read inside the claim transaction."""

    id: int
    path: str
    given_label: str | None
    label_count: int
    audit_key: int | None = None  # the image's, copied onto its scores row
    suspect: bool = False  # claimed alone: its last lease expired without a result


def _suspects(version, now):
    """The version's leases that expired without a result, with their images."""
    vid = version.id
    scored = exists().where(Score.image_id == Image.id, Score.model_version_id == vid)
    return (
        select(ScoreLease, Image)
        .join(Image, Image.id == ScoreLease.image_id)
        .where(ScoreLease.model_version_id == vid, ScoreLease.expires_at <= now)
        .where(Image.status == "ok", ~scored)
    )


def suspect_waiting(session: Session, version: ModelVersion, now: datetime) -> bool:
    """True when an image whose lease expired without a result waits to be claimed alone."""
    return session.execute(_suspects(version, now).limit(1)).first() is not None


def _claim_suspect(session, version, worker_id: str, lease_seconds: float, now) -> list | None:
    """Claim, alone, an image whose last lease expired without a result (its worker died, or
    was killed by it); after MAX_ATTEMPTS such leases the image is failed instead. Returns the
    claim ([] when every suspect was failed), or None when there is no suspect."""
    stmt = _suspects(version, now).order_by(ScoreLease.image_id).limit(1)
    if not db.is_sqlite(session):
        stmt = stmt.with_for_update(skip_locked=True, of=ScoreLease)
    found = False
    for _ in range(MAX_SUSPECTS_PER_CLAIM):
        row = session.execute(stmt).first()
        if row is None:
            return [] if found else None
        lease, image = row
        found = True
        if lease.attempts >= MAX_ATTEMPTS:
            image.status = "failed"
            image.failure_reason = WORKER_DIED.format(attempts=lease.attempts)
            session.delete(lease)
            session.flush()
            continue
        lease.worker_id, lease.attempts = worker_id, lease.attempts + 1
        lease.expires_at = now + timedelta(seconds=lease_seconds)
        session.flush()
        return [_claimed(image, suspect=True)]
    return []


def claim_batch(
    session: Session,
    version: ModelVersion,
    worker_id: str,
    batch_size: int,
    lease_seconds: float,
    now: datetime,
    *,
    suspects: bool = True,
) -> list[Claimed]:
    """Lease up to ``batch_size`` ok images that have no scores and no lease for ``version``;
    an image whose lease expired without a result is claimed alone first (`_claim_suspect`),
    so the image that kills a worker is found and failed, not the batch around it.

    Must start the session's transaction (it issues BEGIN IMMEDIATE on SQLite); the caller
    commits. Claims of concurrent callers never overlap. ``suspects`` False (a worker claiming
    ahead while it holds a batch): claims nothing while a suspect waits, so the suspect is
    claimed by a worker that holds nothing else.
    """
    db.begin_write(session)
    if suspects:
        suspect = _claim_suspect(session, version, worker_id, lease_seconds, now)
        if suspect is not None:
            return suspect
    elif suspect_waiting(session, version, now):
        return []
    vid = version.id
    scored = exists().where(Score.image_id == Image.id, Score.model_version_id == vid)
    leased = exists().where(ScoreLease.image_id == Image.id, ScoreLease.model_version_id == vid)
    stmt = select(*CLAIMED_COLUMNS).where(Image.status == "ok", ~scored, ~leased)
    stmt = stmt.order_by(Image.id).limit(batch_size)
    if not db.is_sqlite(session):
        stmt = stmt.with_for_update(skip_locked=True, of=Image)
    images = {row.id: row for row in session.execute(stmt)}  # columns only: no ORM objects
    if not images:
        return []
    expires = now + timedelta(seconds=lease_seconds)
    rows = [
        dict(image_id=i, model_version_id=vid, worker_id=worker_id, expires_at=expires, attempts=1)
        for i in images
    ]
    # ON CONFLICT DO NOTHING: on PostgreSQL a claimer whose snapshot predates another's commit
    # can still pick a row that was just leased; the conflict leaves it to its first owner.
    won = set(session.scalars(_lease_insert(db.dialect_insert(session)), rows))  # executemany
    return [_claimed(image) for image in images.values() if image.id in won]


def release_leases(session: Session, version: ModelVersion, worker_id: str, ids, now) -> None:
    """Hand back this worker's leases on ``ids`` unscored (a batch claimed ahead and not sampled
    when the worker stops), as if never claimed: a first lease goes, a suspect's lease expires
    with its attempt uncounted, so the image is claimed again at once and not failed for it."""
    mine = (
        (ScoreLease.model_version_id == version.id)
        & (ScoreLease.worker_id == worker_id)
        & ScoreLease.image_id.in_(list(ids))
    )
    db.begin_write(session)
    session.execute(delete(ScoreLease).where(mine, ScoreLease.attempts <= 1))
    uncounted = dict(attempts=ScoreLease.attempts - 1, expires_at=now)
    session.execute(update(ScoreLease).where(mine, ScoreLease.attempts > 1).values(uncounted))


CLAIMED_COLUMNS = (Image.id, Image.path, Image.given_label, Image.label_count, Image.audit_key)


@functools.cache
def _lease_insert(insert_for):
    """INSERT .. ON CONFLICT DO NOTHING RETURNING image_id on the table itself, built once per
    backend and sent as one executemany (a multi-row VALUES built per claim compiled its 1,280
    parameters every time: about 25 ms of a 256-image claim, BENCHMARKS.md)."""
    leases = ScoreLease.__table__
    return insert_for(leases).on_conflict_do_nothing().returning(leases.c.image_id)


def _claimed(image, *, suspect: bool = False) -> Claimed:
    return Claimed(
        image.id, image.path, image.given_label, image.label_count, image.audit_key, suspect
    )
