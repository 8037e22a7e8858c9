"""Voided labels: the ones an admin cancelled, and giving them back.

A void cancels every current label of a labeler (:func:`reviewer.review.labels.void_user_labels`);
the history stays append-only, so a restore never un-cancels a row: it appends a new row that
copies the voided label and names it (``restores_label_id``) and the admin who restored it
(``restored_by_user_id``). A label is restored at most once, and not when its labeler has
labeled the item again since (their newer answer stands) or when others have given the item
enough labels since. Functions take a session; the
caller owns the transaction and, for a restore, starts it as a writer.
"""

from __future__ import annotations

from sqlalchemy import and_, func, select
from sqlalchemy.orm import Session, aliased

from reviewer.core import settings
from reviewer.core.schema import Label, utcnow
from reviewer.review import labels as label_history
from reviewer.review import tallies
from reviewer.review.errors import Conflict, NotFound

_VOID = aliased(Label)  # the row that voided a label
_RESTORE = aliased(Label)  # a row that restored it
VOIDED = (
    select(Label, _VOID.user_id, _VOID.labeled_at, _RESTORE.id, _RESTORE.restored_by_user_id)
    .join(_VOID, and_(_VOID.undoes_label_id == Label.id, _VOID.reason == label_history.VOID))
    .outerjoin(_RESTORE, _RESTORE.restores_label_id == Label.id)
)


def current_label_count(session: Session, user_id: int) -> int:
    """How many current labels a void of ``user_id`` would cancel."""
    stmt = label_history.current_labels_query().where(Label.user_id == user_id)
    return int(session.scalar(stmt.with_only_columns(func.count())) or 0)


def voided_labels(session: Session, *, user_id: int | None = None, limit: int = 500) -> list[dict]:
    """Voided labels, most recently voided first: each label row with who voided it and when,
    and the row that restored it (None while it is not restored)."""
    stmt = VOIDED if user_id is None else VOIDED.where(Label.user_id == user_id)
    rows = session.execute(stmt.order_by(_VOID.id.desc()).limit(limit)).all()
    return [
        {
            **label_history.label_dict(label),
            "voided_by_user_id": voided_by,
            "voided_at": voided_at,
            "restored_label_id": restored,
            "restored_by": restored_by,
        }
        for label, voided_by, voided_at, restored, restored_by in rows
    ]


def restore_label(session: Session, label_id: int, *, admin_id: int) -> Label:
    """Give a voided label back as a new row; Conflict when it was not voided, is restored
    already, or its labeler has labeled the item again since."""
    row = session.get(Label, label_id)
    if row is None:
        raise NotFound(f"no label {label_id}")
    image = label_history.lock_image(session, row.image_id)  # first: then read under the lock
    found = session.execute(VOIDED.where(Label.id == label_id)).first()
    if found is None:
        raise Conflict(f"label {label_id} was not voided: nothing to restore")
    voided, _, _, restored, _ = found
    if restored is not None:
        raise Conflict(f"label {label_id} is restored already (label {restored})")
    current = label_history.current_labels(session, image.id)
    newer = [r for r in current if r.user_id == voided.user_id]
    if newer:
        raise Conflict(
            f"label {label_id}: its labeler labeled item {image.id} again since "
            f"({newer[-1].label!r}); that answer stands, nothing restored"
        )
    if not settings.needs_review(len(current), settings.get_labels_per_item(session)):
        raise Conflict(
            f"label {label_id}: item {image.id} has enough labels from others since; "
            "nothing restored"
        )
    try:
        settings.check_label(voided.label, settings.get_classes(session), allow_special=True)
    except ValueError as exc:
        raise Conflict(f"label {label_id} cannot be restored: {exc}") from None
    row = Label(
        image_id=image.id,
        user_id=voided.user_id,
        label=voided.label,
        model_version_id=voided.model_version_id,
        seconds=voided.seconds,
        labeled_at=utcnow(),
        strategy=voided.strategy,
        restores_label_id=voided.id,
        restored_by_user_id=admin_id,
    )
    session.add(row)
    session.flush()
    label_history.sync_review_state(session, image)
    tallies.count_labels(session, [(row, +1)])
    return row


def restore_user_labels(session: Session, user_id: int, *, admin_id: int) -> tuple[int, list[str]]:
    """Restore every voided, unrestored label of ``user_id`` (images locked in id order):
    (how many were restored, why the others were not)."""
    every = voided_labels(session, user_id=user_id, limit=2**62)
    # Newest first within an item: if one item holds two voided labels of this labeler, the
    # later answer comes back and the earlier one is refused (one current label per labeler).
    pending = sorted(
        (v for v in every if v["restored_label_id"] is None),
        key=lambda v: (v["image_id"], -v["id"]),
    )
    # Every image locked first, in id order, before any tally row is taken (review.tallies).
    for image_id in sorted({entry["image_id"] for entry in pending}):
        label_history.lock_image(session, image_id)
    restored, refused = 0, []
    for entry in pending:
        try:  # every check comes before any write: a refusal changes nothing
            restore_label(session, entry["id"], admin_id=admin_id)
        except Conflict as exc:
            refused.append(str(exc))
        else:
            restored += 1
    return restored, refused
