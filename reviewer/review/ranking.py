"""Ranking: the strategy table as SQL over the active version's scores, read-only.

This module owns the ordered scan of each strategy (its sort keys from
:mod:`reviewer.core.strategies`, ties broken by image id in the scan's direction so one index
serves each strategy), the queue page's listing with a keyset cursor, and the cursor's
encoding. It never writes: handing items out and taking answers are
:mod:`reviewer.review.leasing` and :mod:`reviewer.review.answers`.
"""

from __future__ import annotations

import base64
import functools
import json
import math

from sqlalchemy import bindparam, literal, select, tuple_
from sqlalchemy.orm import Session

from reviewer.core import strategies
from reviewer.core.schema import Image, Score
from reviewer.core.versions import active_version
from reviewer.review.errors import BadRequest, NotFound
from reviewer.review.items import ITEM_COLUMNS, item_dict

MAX_CURSOR_CHARACTERS = 1_000  # a real cursor holds two or three numbers
MAX_KEY = 2**63 - 1  # the largest stored integer: sort keys are bounded by it


def ordering(strategy: str):
    """(sort keys, descending?, extra filter) of a strategy; image id breaks ties."""
    row = strategies.BY_KEY.get(strategy)
    if row is None:
        raise BadRequest(strategies.unknown(strategy))
    keys = [getattr(Score, column) for column in row.columns]
    extra = keys[0].is_not(None) if row.not_null else None
    return [*keys, Score.image_id], row.descending, extra


def require_active(session: Session):
    version = active_version(session)
    if version is None:
        raise NotFound("no active model version: train or register one and run the worker")
    return version


def encode_cursor(values) -> str:
    return base64.urlsafe_b64encode(json.dumps(list(values)).encode()).decode()


def decode_cursor(cursor: str, count: int) -> list:
    """The ``count`` sort key values a cursor carries (numbers, as `encode_cursor` wrote
    them); BadRequest for anything else, whatever it decodes to."""
    shown = cursor if len(cursor) <= 40 else cursor[:40] + "..."
    if len(cursor) > MAX_CURSOR_CHARACTERS:
        raise BadRequest(f"invalid cursor {shown!r}: too long")
    try:
        values = json.loads(base64.urlsafe_b64decode(cursor.encode()))
    except (ValueError, TypeError, RecursionError):
        raise BadRequest(f"invalid cursor {shown!r}") from None
    if not isinstance(values, list) or len(values) != count:
        raise BadRequest(f"invalid cursor {shown!r}: it does not belong to this strategy")
    for value in values:
        numeric = isinstance(value, int | float) and not isinstance(value, bool)
        if not numeric or not math.isfinite(value) or abs(value) > MAX_KEY:
            raise BadRequest(f"invalid cursor {shown!r}: its keys must be numbers")
    return values


def strategy_scan(strategy: str, columns):
    """(statement, number of sort keys): ``columns`` and then the sort keys of the scores rows
    that still need review, in ``strategy``'s order; the version is the bound parameter
    ``version_id``. Callers add their own joins and filters (the queue page, next_item)."""
    keys, descending, extra = ordering(strategy)
    stmt = (
        select(*columns, *[key.label(f"rank_key_{i}") for i, key in enumerate(keys)])
        .where(
            Score.model_version_id == bindparam("version_id", type_=Score.model_version_id.type),
            Score.needs_review.is_(True),
        )
        .order_by(*[k.desc() if descending else k.asc() for k in keys])
    )
    if extra is not None:
        stmt = stmt.where(extra)
    return stmt, len(keys)


@functools.cache
def listing_statement(strategy: str):
    """(statement, number of sort keys) for the unreviewed items of ``strategy``, in order.

    Rows are ``ITEM_COLUMNS`` followed by the sort keys. Built once per strategy and reused.
    """
    stmt, count = strategy_scan(strategy, ITEM_COLUMNS)
    return stmt.join(Score, Score.image_id == Image.id).where(Image.status == "ok"), count


def rank_keys(row, count: int) -> tuple:
    """The sort key values at the end of a scan's row (the first is its rank value)."""
    return tuple(row[-count:])


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
    version = require_active(session)
    stmt, count = listing_statement(strategy)
    keys, descending, _ = ordering(strategy)
    if predicted:
        stmt = stmt.where(Score.predicted_label == predicted)
    if given:
        stmt = stmt.where(Image.given_label == given)
    if after:
        values = decode_cursor(after, count)
        bound = tuple_(*[literal(v) for v in values])
        stmt = stmt.where(tuple_(*keys) < bound if descending else tuple_(*keys) > bound)
    rows = session.execute(stmt.limit(limit + 1), {"version_id": version.id}).all()
    items = [
        item_dict(r, r, version, strategy=strategy, rank_value=rank_keys(r, count)[0])
        for r in rows[:limit]
    ]
    cursor = encode_cursor(rank_keys(rows[limit - 1], count)) if len(rows) > limit else None
    return items, cursor
