"""The append-only label history: give, undo, void, and the current labels.

This module owns how a human answer is recorded. A label row is never
changed or deleted: undo (by the labeler) and void (by an admin) append a row
with ``label`` NULL that names the row it cancels. An item's current labels
are the rows nobody cancelled; ``images.label_count`` and
``scores.needs_review`` are kept in step in the same transaction so the queue
can find unreviewed items by index. Functions take a session; the caller owns
the transaction.
"""

from __future__ import annotations

from collections import Counter

import numpy as np
from sqlalchemy import Integer, bindparam, exists, select
from sqlalchemy.orm import Session, aliased

from reviewer.core import settings
from reviewer.core.schema import Image, Label, ModelVersion, Score, as_utc, utcnow
from reviewer.ml import uncertainty
from reviewer.ml.checks import NO_CLASS
from reviewer.review import tallies

UNDO = "undo"
VOID = "void"


_CANCEL = aliased(Label)
# Built once (an alias is costly to build and a reused statement skips its cache-key work):
# every label and submit reads the current labels of one image, some of them twice.
_CURRENT_LABELS = select(Label).where(
    Label.label.is_not(None), ~exists().where(_CANCEL.undoes_label_id == Label.id)
)
_CURRENT_LABELS_OF_IMAGE = _CURRENT_LABELS.where(
    Label.image_id == bindparam("image_id", type_=Integer)
).order_by(Label.id)
_SCORES_WITH_CLASSES = (
    select(Score, ModelVersion.classes)
    .join(ModelVersion, ModelVersion.id == Score.model_version_id)
    .where(Score.image_id == bindparam("image_id", type_=Integer))
)


def lock_image(session: Session, image_id: int) -> Image | None:
    """The image row, locked for this transaction (``FOR NO KEY UPDATE`` on PostgreSQL; the
    caller's ``BEGIN IMMEDIATE`` on SQLite) and read fresh: every change to an item's labels
    takes this lock first, so ``label_count``, ``needs_review`` and label quality are
    recomputed from a history no other transaction is changing."""
    stmt = (
        select(Image)
        .where(Image.id == image_id)
        .with_for_update(key_share=True)
        .execution_options(populate_existing=True)
    )
    return session.scalar(stmt)


def current_labels_query():
    """``select(Label)`` restricted to rows that give a label and were not cancelled."""
    return _CURRENT_LABELS


def current_labels(session: Session, image_id: int) -> list[Label]:
    return list(session.scalars(_CURRENT_LABELS_OF_IMAGE, {"image_id": image_id}))


def consensus(labels: list[str]) -> str | None:
    """The majority label, or None for no labels or a tie."""
    counts = Counter(labels).most_common()
    if not counts or (len(counts) > 1 and counts[0][1] == counts[1][1]):
        return None
    return counts[0][0]


def human_answer(labels: list[str]) -> str | None:
    """An item's human answer: the consensus of its current labels, ``unsure`` for a tie,
    None when nobody answered (what the audit and the pool's figures judge the model by)."""
    if not labels:
        return None
    return consensus(labels) or settings.UNSURE


def quality_label(session: Session, image: Image, current: list[Label] | None = None) -> str | None:
    """The label that ``self_confidence`` judges: the human consensus, else the given label.

    ``current``: the image's current labels, when the caller has just read them.
    """
    current = current_labels(session, image.id) if current is None else current
    human = consensus([row.label for row in current])
    if human is None or human in settings.SPECIAL_LABELS:
        return image.given_label
    return human


def refresh_label_quality(
    session: Session,
    image: Image,
    current: list[Label] | None = None,
    *,
    needs_review: bool | None = None,
) -> None:
    """Recompute self_confidence, normalized_margin and the mirrored human answer of every
    scores row of the image (and set ``needs_review`` when given: one UPDATE per row carries
    them all)."""
    current = current_labels(session, image.id) if current is None else current
    label = quality_label(session, image, current)
    answer = human_answer([row.label for row in current])
    rows = session.execute(_SCORES_WITH_CLASSES, {"image_id": image.id}).all()
    for score, classes in rows:
        if needs_review is not None:
            score.needs_review = needs_review
        score.human_label = answer
        index = classes.index(label) if label in classes else NO_CLASS
        mean = np.asarray([score.mean], dtype=np.float64)
        y = np.asarray([index])
        confidence = uncertainty.self_confidence(mean, y)[0]
        margin = uncertainty.normalized_margin(mean, y)[0]
        score.self_confidence = None if np.isnan(confidence) else float(confidence)
        score.normalized_margin = None if np.isnan(margin) else float(margin)


def sync_review_state(session: Session, image: Image, current: list[Label] | None = None) -> None:
    """Recount the image's current labels (``current``, when the caller knows them);
    refresh ``needs_review`` and label quality."""
    current = current_labels(session, image.id) if current is None else current
    image.label_count = len(current)
    wanted = settings.get_labels_per_item(session)
    refresh_label_quality(
        session, image, current, needs_review=settings.needs_review(image.label_count, wanted)
    )


def _cancel(session: Session, row: Label, *, by_user_id: int, reason: str) -> Label:
    undo = Label(
        image_id=row.image_id,
        user_id=by_user_id,
        label=None,
        undoes_label_id=row.id,
        reason=reason,
        labeled_at=utcnow(),
    )
    session.add(undo)
    session.flush()
    return undo


def give(
    session: Session,
    image: Image,
    user_id: int,
    label: str,
    *,
    model_version_id: int | None,
    seconds: float | None,
    strategy: str | None = None,
) -> Label:
    """Record ``label`` by ``user_id``; a labeler's earlier current label on the item is undone."""
    settings.check_label(label, settings.get_classes(session), allow_special=True)
    if seconds is not None and not (0 <= seconds < 86_400):  # exact: no float overflow
        raise ValueError("seconds must be at least 0 and below 86400")
    current = current_labels(session, image.id)
    earlier = [r for r in current if r.user_id == user_id]
    for superseded in earlier:
        _cancel(session, superseded, by_user_id=user_id, reason=UNDO)
        current.remove(superseded)
    row = Label(
        image_id=image.id,
        user_id=user_id,
        label=label,
        model_version_id=model_version_id,
        seconds=None if seconds is None else float(seconds),
        labeled_at=utcnow(),
        strategy=strategy,
    )
    session.add(row)
    session.flush()
    sync_review_state(session, image, [*current, row])
    # The tallies after the scores rows, as the score writes do.
    tallies.count_labels(session, [*((r, -1) for r in earlier), (row, +1)])
    return row


def undo_last(session: Session, image: Image, user_id: int) -> Label | None:
    """Undo the user's current label on the item; None when there is none."""
    mine = [row for row in current_labels(session, image.id) if row.user_id == user_id]
    if not mine:
        return None
    undo = _cancel(session, mine[-1], by_user_id=user_id, reason=UNDO)
    sync_review_state(session, image)
    tallies.count_labels(session, [(mine[-1], -1)])
    return undo


def void_user_labels(session: Session, labeler_id: int, *, admin_id: int) -> int:
    """Cancel every current label of ``labeler_id``; returns how many. The images are locked
    in id order first (the order every writer of several images takes them in)."""
    of_labeler = current_labels_query().where(Label.user_id == labeler_id)
    image_ids = sorted(set(session.scalars(of_labeler.with_only_columns(Label.image_id))))
    images = [lock_image(session, image_id) for image_id in image_ids]
    rows = list(session.scalars(of_labeler))  # read again under the locks
    for row in rows:
        _cancel(session, row, by_user_id=admin_id, reason=VOID)
    for image in images:
        sync_review_state(session, image)
    tallies.count_labels(session, [(row, -1) for row in rows])
    return len(rows)


def recent_labels(session: Session, user_id: int, *, limit: int = 10) -> list[dict]:
    """The user's current labels, newest first: what the review screen can undo or revisit."""
    stmt = current_labels_query().where(Label.user_id == user_id)
    rows = session.scalars(stmt.order_by(Label.id.desc()).limit(limit))
    return [label_dict(row) for row in rows]


def history(session: Session, image_id: int) -> list[dict]:
    """Every label row of the item, oldest first, as JSON-ready dicts."""
    rows = session.scalars(select(Label).where(Label.image_id == image_id).order_by(Label.id))
    return [label_dict(row) for row in rows]


def label_dict(row: Label) -> dict:
    return {
        "id": row.id,
        "image_id": row.image_id,
        "user_id": row.user_id,
        "label": row.label,
        "undoes_label_id": row.undoes_label_id,
        "reason": row.reason,
        "model_version_id": row.model_version_id,
        "labeled_at": as_utc(row.labeled_at).isoformat() if row.labeled_at else None,
        "seconds": row.seconds,
        "strategy": row.strategy,
        "restores_label_id": row.restores_label_id,
        "restored_by_user_id": row.restored_by_user_id,
    }
