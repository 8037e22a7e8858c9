"""Dashboard figures over the current labels: labels per answer and per labeler (how many,
how many in the last hour, the median seconds spent, agreement with peers and with the
active version), counted by the database in one pass over the labels.

Peer agreement is over the items with two or more current labels (their labels are read:
an item's consensus is a majority, not a sum); a tie has no consensus, so nobody matches it.
Model agreement leaves out ``unsure``. Read-only; the caller owns the session.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import datetime, timedelta

from sqlalchemy import and_, case, func, select
from sqlalchemy.orm import Session

from reviewer.core import settings
from reviewer.core.schema import Image, Label, ModelVersion, Score, User
from reviewer.review.labels import consensus, current_labels_query

RECENT = timedelta(hours=1)


def tallies(session: Session, version: ModelVersion | None, now: datetime) -> list[tuple]:
    """(user id, label, labels, of them recent, of them on items the version scored, of those
    the version's prediction) per labeler and answer."""
    current = current_labels_query().subquery()
    recent = case((current.c.labeled_at >= now - RECENT, 1), else_=0)
    version_id = -1 if version is None else version.id
    scored = and_(Score.image_id == current.c.image_id, Score.model_version_id == version_id)
    matches = case((Score.predicted_label == current.c.label, 1), else_=0)
    stmt = (
        select(
            current.c.user_id,
            current.c.label,
            func.count(),
            func.sum(recent),
            func.count(Score.predicted_label),
            func.sum(matches),
        )
        .select_from(current)
        .outerjoin(Score, scored)
        .group_by(current.c.user_id, current.c.label)
    )
    return [
        (user_id, label, *(int(n or 0) for n in counts))
        for user_id, label, *counts in session.execute(stmt)
    ]


def labels_per_class(session: Session, version, rows: list[tuple]) -> dict[str, int]:
    """Current labels per answer: every class of the version (or project) in its order, zeros
    included, then the special answers, then any other label still in the history."""
    classes = list(version.classes) if version is not None else settings.get_classes(session)
    counted = Counter()
    for _, label, n, *_ in rows:
        counted[label] += n
    order = [*classes, *settings.SPECIAL_LABELS]
    return {name: counted.get(name, 0) for name in order} | {
        name: n for name, n in sorted(counted.items()) if name not in order
    }


def median_seconds(session: Session) -> dict[int, float]:
    """Each labeler's median seconds per current label (labels without a time left out): the
    middle row, or the mean of the two middle rows, by a window over the labels."""
    current = current_labels_query().where(Label.seconds.is_not(None)).subquery()
    ranked = select(
        current.c.user_id,
        current.c.seconds,
        func.row_number()
        .over(partition_by=current.c.user_id, order_by=current.c.seconds)
        .label("rank"),
        func.count().over(partition_by=current.c.user_id).label("n"),
    ).subquery()
    middle = ranked.c.rank.in_([(ranked.c.n + 1) // 2, (ranked.c.n + 2) // 2])
    stmt = select(ranked.c.user_id, func.avg(ranked.c.seconds)).where(middle)
    return {u: float(m) for u, m in session.execute(stmt.group_by(ranked.c.user_id))}


def peer_agreement(session: Session) -> dict[int, float]:
    """Each labeler's share of labels that match the consensus, over items with two or more
    current labels."""
    shared = current_labels_query().join(Image, Image.id == Label.image_id)
    shared = shared.where(Image.label_count >= 2).order_by(Label.id)
    by_image: dict[int, list[tuple[int, str]]] = defaultdict(list)
    for image_id, user_id, label in session.execute(
        shared.with_only_columns(Label.image_id, Label.user_id, Label.label)
    ):
        by_image[image_id].append((user_id, label))
    matched: dict[int, list[bool]] = defaultdict(list)
    for given in by_image.values():
        human = consensus([label for _, label in given])
        for user_id, label in given:
            matched[user_id].append(label == human)
    return {u: sum(m) / len(m) for u, m in matched.items()}


def labelers(session: Session, rows: list[tuple]) -> list[dict]:
    """Per labeler, in username order (see the module docstring)."""
    labels, recent, judged, agreed = Counter(), Counter(), Counter(), Counter()
    for user_id, label, n, n_recent, n_scored, n_matches in rows:
        labels[user_id] += n
        recent[user_id] += n_recent
        if label != settings.UNSURE:
            judged[user_id] += n_scored
            agreed[user_id] += n_matches
    medians, peers = median_seconds(session), peer_agreement(session)
    return [
        dict(
            user_id=u,
            username=name,
            labels=labels[u],
            last_hour=recent[u],
            median_seconds=medians.get(u),
            agreement=peers.get(u),
            model_agreement=agreed[u] / judged[u] if judged[u] else None,
        )
        for u, name in session.execute(select(User.id, User.username).order_by(User.username))
    ]
