"""Claiming a batch: lease images that have no scores for a version, so workers never overlap.

`claim_batch` leases up to a batch of ok images without a scores row and without a live lease
for the version (``FOR UPDATE SKIP LOCKED`` on PostgreSQL, ``BEGIN IMMEDIATE`` on SQLite); an
expired lease is free again, so a crashed worker's images return to the pool. The caller owns
the transaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, exists, select
from sqlalchemy.orm import Session

from reviewer.core import db
from reviewer.core.schema import Image, ModelVersion, Score, ScoreLease


@dataclass(frozen=True)
class Claimed:
    """What scoring needs of a claimed image, read inside the claim transaction."""

    id: int
    path: str
    given_label: str | None
    label_count: int


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
    insert = db.dialect_insert(session)(ScoreLease).values(rows).on_conflict_do_nothing()
    won = set(session.scalars(insert.returning(ScoreLease.image_id)))
    return [
        Claimed(i.id, i.path, i.given_label, i.label_count) for i in images.values() if i.id in won
    ]
