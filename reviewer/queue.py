"""The review queue: rank by strategy, lease items to labelers, take their answers.

This module owns the orderings of DESIGN.md's strategy table over the active
model version's scores, and the review leases that keep two labelers off one
item. Every function takes a session; the caller owns the transaction and, for
the functions that write, starts it as a writer (``db.write_transaction``) so
that on SQLite concurrent labelers queue instead of colliding. A lease is taken
with an upsert that only succeeds when the item is free or already the caller's,
so even racing transactions never hand one item to two people.
"""

from __future__ import annotations

import base64
import json
from datetime import timedelta

from sqlalchemy import exists, func, literal, select, tuple_
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from reviewer import labels as label_history
from reviewer import settings
from reviewer.schema import Image, Label, ModelVersion, ReviewLease, Score, Skip, utcnow

STRATEGIES = (
    "entropy",
    "bald",
    "variance",
    "margin",
    "variation_ratio",
    "mislabeled",
    "ood",
    "random",
)
STRATEGY_DESCRIPTIONS = {
    "entropy": "highest entropy first: the prediction is spread over several classes",
    "bald": "highest mutual information (BALD) first: the model's samples disagree",
    "variance": "highest variance first: the winning class's probability swings between samples",
    "margin": "smallest margin first: the top two classes are close",
    "variation_ratio": "highest variation ratio first: samples vote for different classes",
    "mislabeled": "lowest self-confidence first: the given label is probably wrong",
    "ood": "highest OOD score first: unlike the images the model was trained on",
    "random": "a seeded shuffle: the baseline every strategy is measured against",
}
METRIC_FIELDS = (
    "entropy",
    "expected_entropy",
    "mutual_info",
    "variance",
    "variation_ratio",
    "margin",
    "self_confidence",
    "normalized_margin",
    "ood",
)
CANDIDATES_PER_TRY = 8


class QueueError(Exception):
    status = 400


class BadRequest(QueueError):
    status = 400


class NotFound(QueueError):
    status = 404


class Conflict(QueueError):
    status = 409


def ordering(strategy: str):
    """(sort keys, descending?, extra filter) of a strategy; image id breaks ties."""
    keys = {
        "entropy": [Score.entropy],
        "bald": [Score.mutual_info],
        "variance": [Score.variance],
        "margin": [Score.margin],
        "variation_ratio": [Score.variation_ratio, Score.entropy],
        "mislabeled": [Score.self_confidence],
        "ood": [Score.ood],
        "random": [Score.random_key],  # schema.random_key: a stored seeded shuffle
    }
    if strategy not in keys:
        raise BadRequest(f"unknown strategy {strategy!r}: choose one of {', '.join(STRATEGIES)}")
    descending = strategy not in ("margin", "mislabeled", "random")
    extra = {"mislabeled": Score.self_confidence.is_not(None), "ood": Score.ood.is_not(None)}
    return [*keys[strategy], Score.image_id], descending, extra.get(strategy)


def active_version(session: Session) -> ModelVersion | None:
    return session.scalar(select(ModelVersion).where(ModelVersion.is_active.is_(True)))


def _require_active(session: Session) -> ModelVersion:
    version = active_version(session)
    if version is None:
        raise NotFound("no active model version: train or register one and run the worker")
    return version


def reason(strategy: str, value: float | None, given_label: str | None) -> str:
    if value is None:
        return ""
    return {
        "entropy": f"entropy {value:.2f}: the prediction is spread over several classes",
        "bald": f"BALD {value:.2f}: the model's samples disagree",
        "variance": f"variance {value:.3f}: the top class's probability swings between samples",
        "margin": f"margin {value:.2f}: the top two classes are close",
        "variation_ratio": f"variation ratio {value:.2f}: samples vote for different classes",
        "mislabeled": f"self-confidence {value:.2f}: the model doubts the given label "
        f"{given_label!r}",
        "ood": f"OOD {value:.2f}: unlike the images the model was trained on",
        "random": "random pick: the baseline",
    }[strategy]


def item_dict(
    image: Image,
    score: Score | None,
    version: ModelVersion | None,
    *,
    strategy: str | None = None,
    rank_value: float | None = None,
) -> dict:
    """An item with the keys DESIGN.md fixes for the CLI, the API and the UI."""
    item = {
        "id": image.id,
        "sha256": image.sha256,
        "path": image.path,
        "original_filename": image.original_filename,
        "given_label": image.given_label,
        "predicted_label": score.predicted_label if score else None,
        "strategy": strategy,
        "rank_value": rank_value,
        "mean": score.mean if score else None,
        "std": score.std if score else None,
        **{name: getattr(score, name) if score else None for name in METRIC_FIELDS},
        "samples": score.samples if score else None,
        "classes": list(version.classes) if version else [],
        "model_version": f"{version.name}:{version.version}" if version else None,
        "label_count": image.label_count,
    }
    if strategy is not None:
        item["reason"] = reason(strategy, rank_value, image.given_label)
    return item


def encode_cursor(values) -> str:
    return base64.urlsafe_b64encode(json.dumps(list(values)).encode()).decode()


def decode_cursor(cursor: str) -> list:
    try:
        return json.loads(base64.urlsafe_b64decode(cursor.encode()))
    except (ValueError, TypeError):
        raise BadRequest(f"invalid cursor {cursor!r}") from None


def _candidates(session: Session, version: ModelVersion, strategy: str):
    keys, descending, extra = ordering(strategy)
    stmt = (
        select(Image, Score, *keys)
        .join(Score, Score.image_id == Image.id)
        .where(
            Score.model_version_id == version.id,
            Score.needs_review.is_(True),
            Image.status == "ok",
        )
        .order_by(*[k.desc() if descending else k.asc() for k in keys])
    )
    if extra is not None:
        stmt = stmt.where(extra)
    return stmt, keys, descending


def ranked(
    session: Session,
    strategy: str,
    *,
    limit: int = 50,
    after: str | None = None,
    predicted: str | None = None,
    given: str | None = None,
) -> tuple[list[dict], str | None]:
    """Unreviewed items in strategy order, a page at a time (keyset cursor)."""
    version = _require_active(session)
    stmt, keys, descending = _candidates(session, version, strategy)
    if predicted:
        stmt = stmt.where(Score.predicted_label == predicted)
    if given:
        stmt = stmt.where(Image.given_label == given)
    if after:
        values = decode_cursor(after)
        if len(values) != len(keys):
            raise BadRequest("cursor does not belong to this strategy")
        bound = tuple_(*[literal(v) for v in values])
        stmt = stmt.where(tuple_(*keys) < bound if descending else tuple_(*keys) > bound)
    rows = session.execute(stmt.limit(limit + 1)).all()
    items = [
        item_dict(r[0], r[1], version, strategy=strategy, rank_value=r[2]) for r in rows[:limit]
    ]
    cursor = encode_cursor(rows[limit - 1][2:]) if len(rows) > limit else None
    return items, cursor


def progress(session: Session) -> dict:
    version = active_version(session)
    ok = Image.status == "ok"
    total = session.scalar(select(func.count()).select_from(Image).where(ok))
    reviewed = session.scalar(
        select(func.count()).select_from(Image).where(ok, Image.label_count > 0)
    )
    scored = 0
    if version is not None:
        scored = session.scalar(
            select(func.count()).select_from(Score).where(Score.model_version_id == version.id)
        )
    pending = session.scalar(
        select(ModelVersion).where(ModelVersion.activate_when_scored.is_(True))
    )
    pending_info = None
    if pending is not None:
        done = session.scalar(
            select(func.count()).select_from(Score).where(Score.model_version_id == pending.id)
        )
        pending_info = {
            "name": pending.name,
            "version": pending.version,
            "scored": done,
            "total": total,
        }
    return {"total": total, "scored": scored, "reviewed": reviewed, "pending_version": pending_info}


def _upsert(session: Session):
    return postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert


def take_lease(session: Session, image_id: int, user_id: int, *, lease_seconds: int) -> str | None:
    """Lease the item to the user if it is free, expired, or already theirs.

    Returns the lease's expiry (ISO, UTC) when it was taken, else None.
    """
    now = utcnow()
    expires = now + timedelta(seconds=lease_seconds)
    stmt = _upsert(session)(ReviewLease).values(
        image_id=image_id, user_id=user_id, expires_at=expires
    )
    stmt = stmt.on_conflict_do_update(
        index_elements=[ReviewLease.image_id],
        set_={"user_id": stmt.excluded.user_id, "expires_at": stmt.excluded.expires_at},
        where=(ReviewLease.expires_at <= now) | (ReviewLease.user_id == user_id),
    )
    # RETURNING tells whether the row was written (rowcount is not reliable across drivers).
    taken = session.execute(stmt.returning(ReviewLease.image_id)).first() is not None
    return expires.isoformat() if taken else None


def lease_expiry(session: Session, image_id: int, user_id: int) -> str | None:
    lease = session.get(ReviewLease, image_id)
    if lease is None or lease.user_id != user_id:
        return None
    expires = lease.expires_at
    return (expires if expires.tzinfo else expires.replace(tzinfo=utcnow().tzinfo)).isoformat()


def _leased_item(image, score, version, strategy, value, expires: str) -> dict:
    item = item_dict(image, score, version, strategy=strategy, rank_value=value)
    item["lease_expires_at"] = expires
    return item


def next_item(session: Session, user_id: int, strategy: str, *, lease_seconds: int) -> dict | None:
    """Lease and return the user's next item of ``strategy``; None when nothing is left."""
    version = _require_active(session)
    now = utcnow()
    stmt, keys, _ = _candidates(session, version, strategy)
    others_lease = exists().where(
        ReviewLease.image_id == Image.id,
        ReviewLease.expires_at > now,
        ReviewLease.user_id != user_id,
    )
    skipped = exists().where(
        Skip.image_id == Image.id,
        Skip.user_id == user_id,
        Skip.skipped_at > now - timedelta(seconds=lease_seconds),
    )
    stmt = stmt.where(~others_lease, ~skipped)
    if settings.get_labels_per_item(session) > 1:
        mine = label_history.current_labels_query().where(
            Label.image_id == Image.id, Label.user_id == user_id
        )
        stmt = stmt.where(~mine.exists())
    # The user's own live leases first, looked up by user: an EXISTS filter here made the
    # planner walk the whole strategy index when the user held nothing (seconds at 1M rows).
    held_ids = session.scalars(
        select(ReviewLease.image_id).where(
            ReviewLease.user_id == user_id, ReviewLease.expires_at > now
        )
    ).all()
    queries = [stmt.where(Image.id.in_(held_ids)).limit(1)] if held_ids else []
    for query in (*queries, stmt.limit(CANDIDATES_PER_TRY)):
        if session.get_bind().dialect.name == "postgresql":
            query = query.with_for_update(of=Score, skip_locked=True)
        for image, score, value, *_ in session.execute(query).all():
            expires = take_lease(session, image.id, user_id, lease_seconds=lease_seconds)
            if expires is not None:
                return _leased_item(image, score, version, strategy, value, expires)
    return None


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


def get_item(session: Session, image_id: int, *, user_id: int | None = None) -> dict:
    """An item with its scores and the user's own label history (no lease taken)."""
    image = _image(session, image_id)
    version = active_version(session)
    item = item_dict(image, _score(session, image_id, version), version)
    history = label_history.history(session, image_id)
    item["labels"] = [h for h in history if user_id is None or h["user_id"] == user_id]
    if user_id is not None:
        item["lease_expires_at"] = lease_expiry(session, image_id, user_id)
    return item


def open_item(session: Session, image_id: int, user_id: int, *, lease_seconds: int) -> dict:
    """Lease a chosen item to the user; Conflict when someone else holds it."""
    _image(session, image_id)
    if not take_lease(session, image_id, user_id, lease_seconds=lease_seconds):
        raise Conflict(f"item {image_id} is being reviewed by someone else")
    return get_item(session, image_id, user_id=user_id)


def _check_not_leased_by_other(session: Session, image_id: int, user_id: int) -> None:
    held_by_other = select(
        exists().where(
            ReviewLease.image_id == image_id,
            ReviewLease.user_id != user_id,
            ReviewLease.expires_at > utcnow(),
        )
    )
    if session.scalar(held_by_other):
        raise Conflict(f"item {image_id} is being reviewed by someone else")


def submit_label(
    session: Session, image_id: int, user_id: int, label: str, *, seconds: float | None = None
) -> dict:
    """Record the user's label and release the item."""
    image = _image(session, image_id)
    _check_not_leased_by_other(session, image_id, user_id)
    version = active_version(session)
    try:
        row = label_history.give(
            session,
            image,
            user_id,
            label,
            model_version_id=version.id if version else None,
            seconds=seconds,
        )
    except ValueError as exc:
        raise BadRequest(str(exc)) from None
    release(session, image_id, user_id)
    return label_history.label_dict(row)


def undo_label(session: Session, image_id: int, user_id: int, *, lease_seconds: int = 300) -> dict:
    """Undo the user's label on the item and give the item back to them."""
    image = _image(session, image_id)
    _check_not_leased_by_other(session, image_id, user_id)
    row = label_history.undo_last(session, image, user_id)
    if row is None:
        raise NotFound(f"you have no label on item {image_id} to undo")
    take_lease(session, image_id, user_id, lease_seconds=lease_seconds)
    return label_history.label_dict(row)


def skip_item(session: Session, image_id: int, user_id: int) -> None:
    _image(session, image_id)
    session.add(Skip(image_id=image_id, user_id=user_id, skipped_at=utcnow()))
    release(session, image_id, user_id)


def release(session: Session, image_id: int, user_id: int) -> None:
    lease = session.get(ReviewLease, image_id)
    if lease is not None and lease.user_id == user_id:
        session.delete(lease)
        session.flush()


def void_labels(session: Session, labeler_id: int, *, admin_id: int) -> int:
    return label_history.void_user_labels(session, labeler_id, admin_id=admin_id)
