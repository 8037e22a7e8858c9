"""A labeler's answers to the queue: open an item, label it, undo, skip, release; an admin's void.

This module owns the right to label and what an answer does to leases and skips (the review
leases that keep two labelers off one item), and hands the label itself to the append-only
history of :mod:`reviewer.review.labels`. A label is accepted from the labeler who holds the
item's live lease, or on an item nobody holds that still needs labels and that this labeler
has not labeled; relabeling one's own label is always allowed, and repeating it changes
nothing. Every answer locks the image row first (`labels.lock_image`). Handing out the next
item is :mod:`reviewer.review.leasing`. Every function takes a session; the caller owns the
transaction and, for the functions that write, starts it as a writer
(``db.write_transaction``) so that on SQLite concurrent labelers queue instead of colliding.
"""

from __future__ import annotations

from sqlalchemy import Integer, bindparam, delete, select
from sqlalchemy.orm import Session

from reviewer.core import settings
from reviewer.core.schema import Image, ModelVersion, ReviewLease, Score, Skip, as_utc, utcnow
from reviewer.core.versions import active_version
from reviewer.review import labels as label_history
from reviewer.review.errors import BadRequest, Conflict, NotFound
from reviewer.review.items import item_dict, with_reason
from reviewer.review.leases import take_lease

# Core statements, not ORM objects: a lease row kept in the session would go stale when the
# lease upsert (text SQL) or another transaction changes it.
_LEASE_HOLDER = select(
    ReviewLease.user_id,
    ReviewLease.expires_at,
    ReviewLease.taken_from_user_id,
    ReviewLease.strategy,
).where(ReviewLease.image_id == bindparam("image_id", type_=Integer))
_RELEASE = (
    delete(ReviewLease)
    .where(
        ReviewLease.image_id == bindparam("image_id", type_=Integer),
        ReviewLease.user_id == bindparam("user_id", type_=Integer),
    )
    .execution_options(synchronize_session=False)
)


def _own_lease(session: Session, image_id: int, user_id: int):
    lease = session.execute(_LEASE_HOLDER, {"image_id": image_id}).first()
    return lease if lease is not None and lease.user_id == user_id else None


def lease_expiry(session: Session, image_id: int, user_id: int) -> str | None:
    lease = _own_lease(session, image_id, user_id)
    return None if lease is None else as_utc(lease.expires_at).isoformat()


def _image(session: Session, image_id: int) -> Image:
    image = session.get(Image, image_id)
    if image is None:
        raise NotFound(f"no item {image_id}")
    return image


def _score(session: Session, image_id: int, version: ModelVersion | None) -> Score | None:
    if version is None:
        return None
    return session.scalar(
        select(Score).where(Score.image_id == image_id, Score.model_version_id == version.id)
    )


def get_item(
    session: Session, image_id: int, *, user_id: int | None = None, by_hand: str | None = None
) -> dict:
    """An item with its scores and the user's own label history (no lease taken). Its reason
    is that of the strategy its lease (or the user's own label) records; ``by_hand`` names
    the queue the user opened it from, for an item no strategy handed out."""
    image = _image(session, image_id)
    version = active_version(session)
    score = _score(session, image_id, version)
    item = item_dict(image, score, version)
    history = label_history.history(session, image_id)
    item["labels"] = [h for h in history if user_id is None or h["user_id"] == user_id]
    if user_id is None:
        return item
    lease = _own_lease(session, image_id, user_id)
    item["lease_expires_at"] = None if lease is None else as_utc(lease.expires_at).isoformat()
    mine = _own_label(session, image_id, user_id)
    item["your_label"] = None if mine is None else mine.label
    how = lease.strategy if lease is not None else None
    if how is None and mine is not None:
        how = mine.strategy  # an audit item stays blind, also when its label is revisited
    return with_reason(item, how, score, by_hand=by_hand)


def _own_label(session: Session, image_id: int, user_id: int):
    mine = [r for r in label_history.current_labels(session, image_id) if r.user_id == user_id]
    return mine[-1] if mine else None


def _needs_labels(session: Session, image: Image) -> bool:
    return settings.needs_review(image.label_count, settings.get_labels_per_item(session))


def open_item(
    session: Session, image_id: int, user_id: int, *, lease_seconds: int, by_hand: str | None = None
) -> dict:
    """Lease a chosen item to the user, if they may label it: it still needs labels, or it
    holds their own label. An item with enough labels is shown without a lease
    (``can_label`` False, ``why_not`` says why); Conflict when someone else holds it.
    ``by_hand``: the queue the user opened it from (its reason is shown as such)."""
    image = _image(session, image_id)
    mine = _own_label(session, image_id, user_id)
    if not _needs_labels(session, image) and mine is None:
        item = get_item(session, image_id, user_id=user_id, by_hand=by_hand)
        return {**item, "can_label": False, "why_not": f"item {image_id} already has enough labels"}
    how = mine.strategy if mine is not None else None  # relabeling an audit item: still blind
    if not take_lease(session, image_id, user_id, lease_seconds=lease_seconds, strategy=how):
        raise Conflict(f"item {image_id} is leased by someone else")
    return {**get_item(session, image_id, user_id=user_id, by_hand=by_hand), "can_label": True}


def _check_not_leased_by_other(session: Session, image_id: int, user_id: int):
    """Conflict when someone else holds a live lease on the item (saying so when it was this
    user's lease, expired and taken over); the user's own live lease, or None."""
    lease = session.execute(_LEASE_HOLDER, {"image_id": image_id}).first()
    if lease is None or as_utc(lease.expires_at) <= utcnow():
        return None
    if lease.user_id == user_id:
        return lease
    if lease.taken_from_user_id == user_id:
        raise Conflict(f"your lease on item {image_id} expired and the item was taken")
    raise Conflict(f"item {image_id} is leased by someone else")


def submit_label(
    session: Session, image_id: int, user_id: int, label: str, *, seconds: float | None = None
) -> tuple[dict, bool]:
    """Record the user's label and release the item: (the label row, whether it is new).

    Allowed to the holder of the item's live lease, or on an item nobody holds that still
    needs labels or holds this user's own label (a relabel). The same label again is
    idempotent: the existing row comes back, nothing is written. Conflict otherwise.
    """
    image = label_history.lock_image(session, image_id)
    if image is None:
        raise NotFound(f"no item {image_id}")
    lease = _check_not_leased_by_other(session, image_id, user_id)
    holds = lease is not None
    mine = _own_label(session, image_id, user_id)
    if mine is not None and mine.label == label:
        release(session, image_id, user_id)
        return label_history.label_dict(mine), False
    if not holds and mine is None and not _needs_labels(session, image):
        raise Conflict(f"item {image_id} already has enough labels")
    version = active_version(session)
    try:
        row = label_history.give(
            session,
            image,
            user_id,
            label,
            model_version_id=version.id if version else None,
            seconds=seconds,
            strategy=lease.strategy if holds else None,
        )
    except ValueError as exc:
        raise BadRequest(str(exc)) from None
    release(session, image_id, user_id)
    return label_history.label_dict(row), True


def undo_label(session: Session, image_id: int, user_id: int, *, lease_seconds: int = 300) -> dict:
    """Undo the user's label on the item and give the item back to them."""
    image = label_history.lock_image(session, image_id)
    if image is None:
        raise NotFound(f"no item {image_id}")
    _check_not_leased_by_other(session, image_id, user_id)
    mine = _own_label(session, image_id, user_id)
    row = label_history.undo_last(session, image, user_id)
    if row is None:
        raise NotFound(f"you have no label on item {image_id} to undo")
    how = mine.strategy if mine is not None else None  # an audit item comes back blind
    take_lease(session, image_id, user_id, lease_seconds=lease_seconds, strategy=how)
    return label_history.label_dict(row)


def skip_item(session: Session, image_id: int, user_id: int) -> None:
    _image(session, image_id)
    session.add(Skip(image_id=image_id, user_id=user_id, skipped_at=utcnow()))
    release(session, image_id, user_id)


def release(session: Session, image_id: int, user_id: int) -> None:
    """Give the user's lease on the item back; someone else's lease is left alone (one
    statement, so a lease that changed hands meanwhile is never deleted)."""
    session.flush()  # the ORM's pending writes first, in order
    session.execute(_RELEASE, {"image_id": image_id, "user_id": user_id})


def void_labels(session: Session, labeler_id: int, *, admin_id: int) -> int:
    return label_history.void_user_labels(session, labeler_id, admin_id=admin_id)
