"""Ranking: the strategy orderings of the review queue, read-only.

This module owns DESIGN.md's strategy table as SQL orderings over the active
model version's scores (ties broken by image id, in the scan's direction so one
index serves each strategy), the item dictionary that the CLI, the API and the
UI share, the keyset cursor for paging, and the progress counts. It never
writes; leasing and answers live in :mod:`reviewer.queue`.
"""

from __future__ import annotations

import base64
import functools
import json

from sqlalchemy import bindparam, func, literal, select, tuple_
from sqlalchemy.orm import Session

from reviewer.core.schema import BATCH_KEY_BASE, Image, ModelVersion, Score

STRATEGIES = (
    "entropy",
    "bald",
    "batchbald",
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
    "batchbald": "the worker's BatchBALD batch first, items that are informative together "
    "rather than alike; then BALD's order",
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
        "batchbald": [Score.batchbald_key],  # schema.BATCH_KEY_BASE: the batch, then BALD
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


# Built once: a statement object memoizes its cache key, so the hot path skips rebuilding it.
ACTIVE_VERSION = select(ModelVersion).where(ModelVersion.is_active.is_(True))
# What item_dict reads, as plain columns: a Core row is much cheaper than two ORM objects.
IMAGE_COLUMNS = (
    Image.id,
    Image.sha256,
    Image.path,
    Image.original_filename,
    Image.given_label,
    Image.label_count,
)
SCORE_COLUMNS = (
    Score.image_id,
    Score.predicted_label,
    Score.mean,
    Score.std,
    *(getattr(Score, name) for name in METRIC_FIELDS),
    Score.samples,
)
ITEM_COLUMNS = IMAGE_COLUMNS + SCORE_COLUMNS[1:]


def active_version(session: Session) -> ModelVersion | None:
    return session.scalar(ACTIVE_VERSION)


def require_active(session: Session) -> ModelVersion:
    version = active_version(session)
    if version is None:
        raise NotFound("no active model version: train or register one and run the worker")
    return version


def batch_place(batchbald_key: float) -> int | None:
    """1 for the first item of the BatchBALD batch, 2 for the next, ...; None outside it."""
    if batchbald_key <= BATCH_KEY_BASE / 2:
        return None
    return round(BATCH_KEY_BASE - batchbald_key) + 1


def rank_text(strategy: str, value: float | None) -> str:
    """A rank value as the queue page shows it (a BatchBALD batch place as "batch #p")."""
    if value is None:
        return ""
    place = batch_place(value) if strategy == "batchbald" else None
    return f"batch #{place}" if place else f"{value:.3f}"


def reason(strategy: str, value: float | None, given_label: str | None) -> str:
    if value is None:
        return ""
    return {
        "entropy": f"entropy {value:.2f}: the prediction is spread over several classes",
        "bald": f"BALD {value:.2f}: the model's samples disagree",
        "batchbald": f"place {batch_place(value)} of the BatchBALD batch: informative "
        "together with the rest of the batch"
        if batch_place(value)
        else f"BALD {value:.2f}: not in the BatchBALD batch",
        "variance": f"variance {value:.3f}: the top class's probability swings between samples",
        "margin": f"margin {value:.2f}: the top two classes are close",
        "variation_ratio": f"variation ratio {value:.2f}: samples vote for different classes",
        "mislabeled": f"self-confidence {value:.2f}: the model doubts the given label "
        f"{given_label!r}",
        "ood": f"OOD {value:.2f}: unlike the images the model was trained on",
        "random": "random pick: the baseline",
    }[strategy]


def item_dict(
    image,
    score,
    version: ModelVersion | None,
    *,
    strategy: str | None = None,
    rank_value: float | None = None,
) -> dict:
    """An item with the keys DESIGN.md fixes for the CLI, the API and the UI.

    ``image`` and ``score`` are ORM objects, rows of ``IMAGE_COLUMNS`` and ``SCORE_COLUMNS``,
    or both one row of ``ITEM_COLUMNS``.
    """
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
def candidates_statement(strategy: str):
    """(statement, number of sort keys) for the unreviewed items of ``strategy``, in order.

    Rows are ``ITEM_COLUMNS`` followed by the sort keys. Built once per strategy and reused.
    """
    stmt, count = strategy_scan(strategy, ITEM_COLUMNS)
    return stmt.join(Score, Score.image_id == Image.id).where(Image.status == "ok"), count


def rank_keys(row, count: int) -> tuple:
    """The sort key values at the end of a candidates row (the first is its rank value)."""
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
    stmt, count = candidates_statement(strategy)
    keys, descending, _ = ordering(strategy)
    if predicted:
        stmt = stmt.where(Score.predicted_label == predicted)
    if given:
        stmt = stmt.where(Image.given_label == given)
    if after:
        values = decode_cursor(after)
        if len(values) != count:
            raise BadRequest("cursor does not belong to this strategy")
        bound = tuple_(*[literal(v) for v in values])
        stmt = stmt.where(tuple_(*keys) < bound if descending else tuple_(*keys) > bound)
    rows = session.execute(stmt.limit(limit + 1), {"version_id": version.id}).all()
    items = [
        item_dict(r, r, version, strategy=strategy, rank_value=rank_keys(r, count)[0])
        for r in rows[:limit]
    ]
    cursor = encode_cursor(rank_keys(rows[limit - 1], count)) if len(rows) > limit else None
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
