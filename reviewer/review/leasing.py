"""Handing a labeler the next item: the handout queries and the lease that reserves one.

This module owns the hot path of the review screen, ``next_item``: find the best
unreviewed item of a strategy that nobody else holds, and lease it to the user
with an upsert that only succeeds when the item is free, expired or already
theirs, so even racing transactions never hand one item to two people. Every
statement is built once per shape and reused (a reused statement skips
SQLAlchemy's construction and cache-key work), and the handout query reads the
scores table alone; the image's columns are fetched by primary key for the
one item handed out. Functions take a session; the caller owns the write
transaction, started as a writer (``db.write_transaction``) so that on SQLite concurrent
labelers queue instead of colliding.
"""

from __future__ import annotations

import functools
import random
from datetime import timedelta

from sqlalchemy import DateTime, Integer, String, bindparam, delete, exists, func, select
from sqlalchemy.orm import Session

from reviewer.core import db, settings, strategies
from reviewer.core.schema import (
    Image,
    Label,
    ModelVersion,
    ReviewLease,
    Score,
    Setting,
    Skip,
    utcnow,
)
from reviewer.review import labels as label_history
from reviewer.review.errors import BadRequest
from reviewer.review.items import IMAGE_COLUMNS, SCORE_COLUMNS, item_dict, opened_by_hand
from reviewer.review.leases import take_lease
from reviewer.review.ranking import ordering, rank_keys, require_active, strategy_scan

ROWS_PER_TRY = 8
_TIMESTAMP = DateTime(timezone=True)
_USER_ID = bindparam("user_id", type_=Integer)
_NOW = bindparam("now", type_=_TIMESTAMP)
_SKIPPED_SINCE = bindparam("skipped_since", type_=_TIMESTAMP)

# What next_item needs before it looks for items to hand out, in one round trip: the active
# version, the labels-per-item setting, whether the user holds a live lease (then their
# leases are looked up and offered first) and whether they skipped anything recently (if
# not, the handout query leaves skips out).
_OWN_LIVE_LEASE = (ReviewLease.user_id == _USER_ID, ReviewLease.expires_at > _NOW)
NEXT_ITEM_CONTEXT = select(
    ModelVersion,
    select(Setting.value).where(Setting.key == settings.LABELS_PER_ITEM).scalar_subquery(),
    select(Setting.value).where(Setting.key == settings.AUDIT_RATE).scalar_subquery(),
    select(func.min(ReviewLease.image_id)).where(*_OWN_LIVE_LEASE).scalar_subquery(),
    exists().where(Skip.user_id == _USER_ID, Skip.skipped_at > _SKIPPED_SINCE),
).where(ModelVersion.is_active.is_(True))

HELD_LEASES = select(ReviewLease.image_id, ReviewLease.strategy).where(*_OWN_LIVE_LEASE)
RELEASE_HELD = (
    delete(ReviewLease)
    .where(
        ReviewLease.user_id == _USER_ID,
        ReviewLease.image_id.in_(bindparam("released", expanding=True)),
    )
    .execution_options(synchronize_session=False)
)
IMAGE_OF_ITEM = select(*IMAGE_COLUMNS).where(
    Image.id == bindparam("image_id", type_=Integer), Image.status == "ok"
)


@functools.cache
def handout_scan(
    strategy: str,
    *,
    skips: bool,
    once_per_user: bool,
    held: bool,
    limit: int,
    lock: bool,
    images_ok: bool = False,
    predicted: bool = False,
    given: bool = False,
):
    """(statement, number of sort keys): scores rows of ``strategy`` that this user may be
    handed, best first. Built once per shape.

    Bound parameters: version_id, user_id, now; skipped_since when ``skips``; held (the ids
    of the user's own live leases) when ``held``; predicted / given (the review session's
    filters, as on the queue page) when those are set. ``images_ok`` filters out failed images
    in SQL (the slower plan, for when the fast one met failed images).
    """
    stmt, count = strategy_scan(strategy, SCORE_COLUMNS)
    others_lease = exists().where(
        ReviewLease.image_id == Score.image_id,
        ReviewLease.expires_at > _NOW,
        ReviewLease.user_id != _USER_ID,
    )
    stmt = stmt.where(~others_lease).limit(limit)
    if skips:
        skipped = exists().where(
            Skip.image_id == Score.image_id,
            Skip.user_id == _USER_ID,
            Skip.skipped_at > _SKIPPED_SINCE,
        )
        stmt = stmt.where(~skipped)
    if once_per_user:  # several labels per item: not one the user has labeled already
        mine = label_history.current_labels_query().where(
            Label.image_id == Score.image_id, Label.user_id == _USER_ID
        )
        stmt = stmt.where(~mine.exists())
    if held:
        stmt = stmt.where(Score.image_id.in_(bindparam("held", expanding=True)))
    if images_ok:
        stmt = stmt.where(exists().where(Image.id == Score.image_id, Image.status == "ok"))
    if predicted:
        stmt = stmt.where(Score.predicted_label == bindparam("predicted", type_=String))
    if given:
        given_label = Image.given_label == bindparam("given", type_=String)
        stmt = stmt.where(exists().where(Image.id == Score.image_id, given_label))
    if lock:  # PostgreSQL: racing labelers skip each other's rows
        stmt = stmt.with_for_update(skip_locked=True)
    return stmt, count


def next_item(
    session: Session,
    user_id: int,
    strategy: str,
    *,
    lease_seconds: int,
    predicted: str | None = None,
    given: str | None = None,
) -> dict | None:
    """Lease and return the user's next item of ``strategy`` (whose predicted class is
    ``predicted`` and given label ``given``, when set); None when nothing is left.

    The user's own live leases of this strategy (or of the audit, or opened by hand) that fit
    the filters come first; every other lease they hold is released, so switching strategy or
    filters hands out the new queue's top, never an item held from another queue under a
    reason it does not have. Without filters a share ``audit_rate`` of the handouts (a project
    setting) goes to the random audit's next item instead, when it has one.
    """
    ordering(strategy)  # an unknown strategy is a BadRequest before anything else
    now = utcnow()
    params = {
        "user_id": user_id,
        "now": now,
        "skipped_since": now - timedelta(seconds=lease_seconds),
        "predicted": predicted,
        "given": given,
    }
    found = session.execute(NEXT_ITEM_CONTEXT, params).first()
    if found is None:
        require_active(session)  # raises the "no active model version" error
        filters = {"predicted": predicted, "given": given}
        return next_item(session, user_id, strategy, lease_seconds=lease_seconds, **filters)
    version, labels_per_item, audit_rate, holds_a_lease, skipped = found
    _check_filters(version, predicted=predicted, given=given)
    params["version_id"] = version.id
    shape = {
        "skips": bool(skipped),
        "once_per_user": int(labels_per_item or settings.DEFAULTS[settings.LABELS_PER_ITEM]) > 1,
        "lock": not db.is_sqlite(session),
        "predicted": predicted is not None,
        "given": given is not None,
    }
    run = functools.partial(_run_strategy, session, version, params, shape, lease_seconds)
    if holds_a_lease is not None:
        item = _held_item(session, params, run, strategy)
        if item is not None:
            return item
    rate = settings.DEFAULTS[settings.AUDIT_RATE] if audit_rate is None else float(audit_rate)
    filtered = predicted is not None or given is not None
    if strategy != strategies.AUDIT and not filtered and AUDIT_CHANCE.random() < rate:
        item = run(strategies.AUDIT)
        if item is not None:
            return item
    return run(strategy)


def _check_filters(version, **filters) -> None:
    """A filter must name one of the version's classes (else it could only scan the pool)."""
    for name, value in filters.items():
        if value is not None and value not in version.classes:
            raise BadRequest(
                f"{name} {value!r} is not a class: choose one of {', '.join(version.classes)}"
            )


def _held_item(session, params, run, strategy) -> dict | None:
    """The user's own live lease handed out again when it belongs to this queue (its strategy,
    the audit's, or none: an item they opened by hand) and fits the filters; every other lease
    of theirs is released."""
    held = session.execute(HELD_LEASES, params).all()
    item = None
    for how in dict.fromkeys((strategy, None, strategies.AUDIT)):  # None: opened by hand
        mine = [lease.image_id for lease in held if lease.strategy == how]
        if mine and item is None:
            item = run(how or strategy, held=mine)
    released = [lease.image_id for lease in held if item is None or lease.image_id != item["id"]]
    if released:
        session.execute(RELEASE_HELD, {"user_id": params["user_id"], "released": released})
    return item


AUDIT_CHANCE = random.Random()  # which handouts go to the audit (tests may seed it)


def _run_strategy(session, version, params, shape, lease_seconds, strategy, held=None):
    """Hand out the first item of ``strategy`` this user may take (among ``held``, the ids of
    their own live leases, when given), or None."""
    hand_out = functools.partial(
        _hand_out, session, version=version, strategy=strategy, lease_seconds=lease_seconds
    )
    if held is not None:
        stmt, count = handout_scan(strategy, **shape, held=True, limit=1)
        return hand_out(stmt, count, {**params, "held": held})[0]
    # The top item is nearly always free (others' leases are filtered out), so fetch one
    # row first and a few more only when a racing labeler took it; failed images (a rescore
    # can fail an image that has older scores) are filtered in SQL only when met.
    failed_seen = False
    for limit in (1, ROWS_PER_TRY):
        stmt, count = handout_scan(strategy, **shape, held=False, limit=limit)
        item, failed, rows = hand_out(stmt, count, params)
        if item is not None or rows == 0:  # nothing left: no second, wider scan
            return item
        failed_seen = failed_seen or failed
    if failed_seen:
        stmt, count = handout_scan(
            strategy, **shape, held=False, limit=ROWS_PER_TRY, images_ok=True
        )
        return hand_out(stmt, count, params)[0]
    return None


def _hand_out(
    session, stmt, count, params, *, version, strategy, lease_seconds
) -> tuple[dict | None, bool, int]:
    """Lease the first row of ``stmt`` nobody else took: (its item or None, whether a failed
    image was met on the way, how many rows the scan found)."""
    failed = False
    rows = session.execute(stmt, params).all()
    for score in rows:
        image = session.execute(IMAGE_OF_ITEM, {"image_id": score.image_id}).first()
        if image is None:
            failed = True
            continue
        taken = take_lease(
            session, image.id, params["user_id"], lease_seconds=lease_seconds, strategy=strategy
        )
        if taken is not None:
            expires, how = taken  # an own live lease keeps the strategy it was handed out by
            if how == strategies.AUDIT and strategy != strategies.AUDIT:
                item = item_dict(image, score, version, strategy=how)
            else:
                value = rank_keys(score, count)[0]
                item = item_dict(image, score, version, strategy=strategy, rank_value=value)
            if how is None:  # an item the user opened by hand and still holds
                item.update(strategy=None, reason=opened_by_hand(strategy, item["rank_value"]))
            item["lease_expires_at"] = expires
            return item, failed, len(rows)
    return None, failed, len(rows)
