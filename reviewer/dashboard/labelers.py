"""Dashboard figures over the current labels: labels per answer and per labeler (how many,
how many in the last hour, the median seconds spent, agreement with peers and with the
active version). The counts, the times and the model agreement are read from the running
tallies (reviewer.review.tallies), the last hour from the labeled_at index.

Peer agreement is over the items with two or more current labels (their labels are read:
an item's consensus is a majority, not a sum); a tie has no consensus, so nobody matches it.
Model agreement leaves out ``unsure``. Read-only; the caller owns the session.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from reviewer.core import settings
from reviewer.core.schema import (
    Image,
    Label,
    LabelerAgreement,
    LabelerAnswers,
    LabelerSeconds,
    ModelVersion,
    User,
)
from reviewer.review.labels import consensus, current_labels_query

RECENT = timedelta(hours=1)


def tallies(session: Session) -> list[tuple[int, str, int]]:
    """(user id, answer, current labels) per labeler and answer, from the running tallies."""
    stmt = select(LabelerAnswers.user_id, LabelerAnswers.label, LabelerAnswers.labels)
    return [tuple(row) for row in session.execute(stmt.where(LabelerAnswers.labels > 0))]


def last_hour(session: Session, now: datetime) -> dict[int, int]:
    """Each labeler's current labels given in the hour before ``now``: a range of the
    labeled_at index, counted here (a GROUP BY makes SQLite's planner walk the user index
    through every label instead), so an hour's labels are read, not the history."""
    recent = current_labels_query().where(Label.labeled_at >= now - RECENT)
    return dict(Counter(session.scalars(recent.with_only_columns(Label.user_id))))


def model_agreement(session: Session, version: ModelVersion | None) -> dict[int, float]:
    """Each labeler's share of current labels (``unsure`` left out) on items the version
    scored that are the version's prediction, from the running tallies."""
    if version is None:
        return {}
    stmt = select(LabelerAgreement.user_id, LabelerAgreement.judged, LabelerAgreement.matches)
    stmt = stmt.where(LabelerAgreement.model_version_id == version.id, LabelerAgreement.judged > 0)
    return {user_id: matches / judged for user_id, judged, matches in session.execute(stmt)}


def labels_per_class(session: Session, version, rows: list[tuple]) -> dict[str, int]:
    """Current labels per answer: every class of the version (or project) in its order, zeros
    included, then the special answers, then any other label still in the history."""
    classes = list(version.classes) if version is not None else settings.get_classes(session)
    counted = Counter()
    for _, label, n in rows:
        counted[label] += n
    order = [*classes, *settings.SPECIAL_LABELS]
    return {name: counted.get(name, 0) for name in order} | {
        name: n for name, n in sorted(counted.items()) if name not in order
    }


def median_of_counts(counts: list[tuple[int, int]]) -> float:
    """Pure: the median of values given as (value, how many) in ascending value order: the
    middle value, or the mean of the two middle values."""
    total = sum(n for _, n in counts)
    wanted, found, seen = ((total - 1) // 2, total // 2), [], 0
    for value, n in counts:
        found += [value for rank in wanted if seen <= rank < seen + n]
        seen += n
    return sum(found) / 2


def median_seconds(session: Session) -> dict[int, float]:
    """Each labeler's median seconds per current label, to the tenth of a second (labels
    without a time left out), from the running tallies: a few rows per labeler."""
    stmt = select(LabelerSeconds.user_id, LabelerSeconds.tenths, LabelerSeconds.labels)
    stmt = stmt.where(LabelerSeconds.labels > 0)
    by_user: dict[int, list[tuple[int, int]]] = defaultdict(list)
    for user_id, tenths, n in session.execute(stmt.order_by(LabelerSeconds.user_id, "tenths")):
        by_user[user_id].append((tenths, n))
    return {user_id: median_of_counts(counts) / 10 for user_id, counts in by_user.items()}


def peer_agreement(session: Session) -> dict[int, float]:
    """Each labeler's share of labels that match the consensus, over items with two or more
    current labels."""
    # Driven from the label_count index (the few items with two labels or more): a join lets
    # SQLite's planner read every label first.
    several = select(Image.id).where(Image.label_count >= 2)
    shared = current_labels_query().where(Label.image_id.in_(several)).order_by(Label.id)
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


def labelers(session: Session, rows: list[tuple], version, now: datetime) -> list[dict]:
    """Per labeler, in username order (see the module docstring)."""
    labels = Counter()
    for user_id, _, n in rows:
        labels[user_id] += n
    recent, model = last_hour(session, now), model_agreement(session, version)
    medians, peers = median_seconds(session), peer_agreement(session)
    return [
        dict(
            user_id=u,
            username=name,
            labels=labels[u],
            last_hour=recent.get(u, 0),
            median_seconds=medians.get(u),
            agreement=peers.get(u),
            model_agreement=model.get(u),
        )
        for u, name in session.execute(select(User.id, User.username).order_by(User.username))
    ]
