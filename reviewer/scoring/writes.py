"""Writing a scored batch: one scores row per image and the failures, in ONE transaction.

Rows are written only for the images whose lease this worker still holds (a lease that
expired and went to another worker is counted as lost, never written twice); the batch that
completes a pending version's scoring promotes it. The caller owns the transaction.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from sqlalchemy import delete, insert, select

from reviewer.core import db, settings
from reviewer.core.schema import Image, Score, ScoreLease
from reviewer.core.versions import version_name
from reviewer.review import labels as label_history
from reviewer.review import score_bins, tallies
from reviewer.training import registry

logger = logging.getLogger(__name__)


@dataclass
class BatchResult:
    scored: int = 0
    failed: int = 0
    lost: int = 0  # leases that expired and went to another worker meanwhile


def write_scores(session, version, worker_id, claimed, rows, failures, now) -> BatchResult:
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
    # The batch's images locked as a label locks them, in id order (as every writer of several
    # images), and their label counts read again: a label given meanwhile is seen here, and
    # one given from now on waits for this transaction and then sees the new scores rows (the
    # mirrors and the tallies stay whole). The failed ones are updated under the same lock.
    fresh = select(Image.id, Image.label_count).where(Image.id.in_(held)).order_by(Image.id)
    label_counts = dict(session.execute(fresh.with_for_update(key_share=True)).all())
    new_rows = []
    for item in claimed:
        if item.id not in held:
            continue
        if item.id in failures:
            image = session.get(Image, item.id)
            image.status, image.failure_reason = "failed", failures[item.id]
            result.failed += 1
        elif item.id in rows:
            needs_review = settings.needs_review(label_counts[item.id], wanted)
            new_rows.append(
                dict(rows[item.id], image_id=item.id, model_version_id=version.id)
                | dict(audit_key=item.audit_key, needs_review=needs_review, scored_at=now)
            )
    session.flush()
    if new_rows:  # one executemany on the table: no ORM object, nor ORM bulk work, per row
        session.execute(insert(Score.__table__), new_rows)
        score_bins.count_rows(session, version.id, new_rows)
        result.scored = len(new_rows)
    labeled = [i for i, n in label_counts.items() if n > 0 and i in rows and i not in failures]
    for image_id in labeled:
        # self_confidence judges the human label once there is one (docs/architecture.md).
        label_history.refresh_label_quality(session, session.get(Image, image_id))
    promoted = registry.promote_if_scored(session)  # its version lock before any tally row
    if promoted is not None:
        logger.info("%s is scored for every image and is now active", version_name(promoted))
    if labeled:  # after the scores rows, as the label history does
        tallies.count_scores(session, version.id, labeled)
    return result
