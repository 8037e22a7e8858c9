"""The dashboard's running tallies, kept in step with the label history and the score writes.

A label row counts while it is current: ``count_labels`` adds it when it is written (a label, a
restore) and takes it away when it is cancelled (an undo, a void), in the same transaction. It
counts in three tables (core.tally_tables): its labeler's answers, its labeler's time in tenths
of a second (rounded half up; a label without a time is left out), and, per version that scored
its item, whether it is the version's prediction (``unsure`` left out). A scores row written
for an item that already has labels counts them for its version (``count_scores``); deleting a
version's scores deletes its agreement rows and its score bins (``forget_version``).
``rebuild`` recounts every tally and the score bins (reviewer.review.score_bins) from the
history (a bulk load, the migration's check). The caller owns the transaction.
"""

from __future__ import annotations

from collections import Counter

from sqlalchemy import Integer, bindparam, case, delete, func, insert, select
from sqlalchemy.orm import Session

from reviewer.core import db, settings
from reviewer.core.schema import Label, LabelerAgreement, LabelerAnswers, LabelerSeconds, Score
from reviewer.review import score_bins

# In version order, as every writer takes the agreement rows: (version, labeler) ascending.
_PREDICTIONS = (
    select(Score.model_version_id, Score.predicted_label)
    .where(Score.image_id == bindparam("image_id", type_=Integer))
    .order_by(Score.model_version_id)
)


def tenths(seconds: float) -> int:
    """A label's time in tenths of a second, rounded half up (the same sum SQL does)."""
    return int(seconds * 10 + 0.5)


def count_labels(session: Session, changes: list[tuple[Label, int]]) -> None:
    """Count each current label row (+1) or take it away (-1) in every tally. The changes are
    summed first and written table by table in key order, the order every writer takes these
    rows in (a void and its labeler's own label cannot deadlock)."""
    answers, seconds, judged, matches = Counter(), Counter(), Counter(), Counter()
    for row, sign in changes:
        answers[row.user_id, row.label] += sign
        if row.seconds is not None:
            seconds[row.user_id, tenths(row.seconds)] += sign
        if row.label != settings.UNSURE:
            for version_id, predicted in session.execute(_PREDICTIONS, {"image_id": row.image_id}):
                judged[version_id, row.user_id] += sign
                matches[version_id, row.user_id] += sign if predicted == row.label else 0
    rows = [dict(user_id=u, label=label, labels=n) for (u, label), n in sorted(answers.items())]
    db.add_counts(session, LabelerAnswers, rows)
    rows = [dict(user_id=u, tenths=t, labels=n) for (u, t), n in sorted(seconds.items())]
    db.add_counts(session, LabelerSeconds, rows)
    rows = [
        dict(model_version_id=v, user_id=u, judged=n, matches=matches[v, u])
        for (v, u), n in sorted(judged.items())
    ]
    db.add_counts(session, LabelerAgreement, rows)


def count_scores(session: Session, version_id: int, image_ids: list[int]) -> None:
    """Count the current labels of ``image_ids`` for ``version_id``, whose scores rows for
    them were just written (one grouped statement and an upsert per labeler)."""
    from reviewer.review.labels import current_labels_query

    current = current_labels_query().where(Label.image_id.in_(image_ids))
    stmt = _agreement(current.subquery()).where(Score.model_version_id == version_id)
    rows = [  # in labeler order, the same order in every writer: no deadlock
        dict(model_version_id=v, user_id=u, judged=judged, matches=int(m or 0))
        for v, u, judged, m in session.execute(stmt.order_by(*stmt.selected_columns[:2])).all()
    ]
    db.add_counts(session, LabelerAgreement, rows)


def _agreement(current):
    """(version, labeler, judged, matches) over the ``current`` labels subquery: the labels
    other than ``unsure`` on items each version scored, and of them the version's prediction."""
    matches = func.sum(case((Score.predicted_label == current.c.label, 1), else_=0))
    return (
        select(Score.model_version_id, current.c.user_id, func.count(), matches)
        .join(Score, Score.image_id == current.c.image_id)
        .where(current.c.label != settings.UNSURE)
        .group_by(Score.model_version_id, current.c.user_id)
    )


def forget_version(session: Session, version_id: int) -> None:
    """The version's scores were deleted: so are its agreement tallies and its score bins."""
    session.execute(delete(LabelerAgreement).where(LabelerAgreement.model_version_id == version_id))
    score_bins.forget_version(session, version_id)


def rebuild(session: Session) -> None:
    """Recount every tally and the score bins from the label history and the scores (after
    a bulk load)."""
    from reviewer.review.labels import current_labels_query

    for table in (LabelerAnswers, LabelerSeconds, LabelerAgreement):
        session.execute(delete(table))
    current = current_labels_query().subquery()
    answers = select(current.c.user_id, current.c.label, func.count())
    answers = answers.group_by(current.c.user_id, current.c.label)
    session.execute(insert(LabelerAnswers).from_select(["user_id", "label", "labels"], answers))
    rounded = db.floor_to_int(session, current.c.seconds * 10 + 0.5)  # as tenths()
    timed = select(current.c.user_id, rounded, func.count()).where(current.c.seconds.is_not(None))
    timed = timed.group_by(current.c.user_id, rounded)
    session.execute(insert(LabelerSeconds).from_select(["user_id", "tenths", "labels"], timed))
    columns = ["model_version_id", "user_id", "judged", "matches"]
    session.execute(insert(LabelerAgreement).from_select(columns, _agreement(current)))
    score_bins.rebuild(session)  # the bins last, as every writer takes them
