"""The dashboard's running tallies, kept in step with the label history and the score writes.

A label row counts while it is current: ``count_label`` adds it when it is written (a label, a
restore) and takes it away when it is cancelled (an undo, a void), in the same transaction. It
counts in three tables (core.tally_tables): its labeler's answers, its labeler's time in tenths
of a second (rounded half up; a label without a time is left out), and, per version that scored
its item, whether it is the version's prediction (``unsure`` left out). A scores row written
for an item that already has labels counts them for its version (``count_scores``); deleting a
version's scores deletes its agreement rows (``forget_version``). ``rebuild`` recounts every
tally from the history (a bulk load, the migration's check). The caller owns the transaction.
"""

from __future__ import annotations

from sqlalchemy import Integer, case, delete, func, insert, select
from sqlalchemy.orm import Session

from reviewer.core import db, settings
from reviewer.core.schema import Label, LabelerAgreement, LabelerAnswers, LabelerSeconds, Score


def tenths(seconds: float) -> int:
    """A label's time in tenths of a second, rounded half up (the same sum SQL does)."""
    return int(seconds * 10 + 0.5)


def _add(session: Session, table, keys: dict, counts: dict) -> None:
    """Upsert: add ``counts`` to the row at ``keys`` (created at ``counts``)."""
    stmt = db.dialect_insert(session)(table).values(**keys, **counts)
    excluded = stmt.excluded
    update = {name: getattr(table, name) + getattr(excluded, name) for name in counts}
    session.execute(stmt.on_conflict_do_update(index_elements=list(keys), set_=update))


def count_label(session: Session, row: Label, sign: int) -> None:
    """Count the current label ``row`` (+1) or take it away (-1) in every tally."""
    user = {"user_id": row.user_id}
    _add(session, LabelerAnswers, user | {"label": row.label}, {"labels": sign})
    if row.seconds is not None:
        _add(session, LabelerSeconds, user | {"tenths": tenths(row.seconds)}, {"labels": sign})
    if row.label == settings.UNSURE:
        return
    predictions = select(Score.model_version_id, Score.predicted_label).where(
        Score.image_id == row.image_id
    )  # in version order, as every writer takes these rows: (version, labeler) ascending
    predictions = predictions.order_by(Score.model_version_id)
    for version_id, predicted in session.execute(predictions).all():
        counts = {"judged": sign, "matches": sign if predicted == row.label else 0}
        _add(session, LabelerAgreement, user | {"model_version_id": version_id}, counts)


def count_scores(session: Session, version_id: int, image_ids: list[int]) -> None:
    """Count the current labels of ``image_ids`` for ``version_id``, whose scores rows for
    them were just written (one grouped statement and an upsert per labeler)."""
    from reviewer.review.labels import current_labels_query

    current = current_labels_query().where(Label.image_id.in_(image_ids))
    current = current.where(Label.label != settings.UNSURE).subquery()
    matches = func.sum(case((Score.predicted_label == current.c.label, 1), else_=0))
    stmt = (
        select(current.c.user_id, func.count(), matches)
        .join(Score, Score.image_id == current.c.image_id)
        .where(Score.model_version_id == version_id)
        .group_by(current.c.user_id)
        .order_by(current.c.user_id)  # the same order in every writer: no deadlock
    )
    for user_id, judged, matched in session.execute(stmt).all():
        keys = {"model_version_id": version_id, "user_id": user_id}
        _add(session, LabelerAgreement, keys, {"judged": judged, "matches": int(matched or 0)})


def forget_version(session: Session, version_id: int) -> None:
    """The version's scores were deleted: so are its agreement tallies."""
    session.execute(delete(LabelerAgreement).where(LabelerAgreement.model_version_id == version_id))


def rebuild(session: Session) -> None:
    """Recount every tally from the label history and the scores (after a bulk load)."""
    from reviewer.review.labels import current_labels_query

    for table in (LabelerAnswers, LabelerSeconds, LabelerAgreement):
        session.execute(delete(table))
    current = current_labels_query().subquery()
    answers = select(current.c.user_id, current.c.label, func.count())
    answers = answers.group_by(current.c.user_id, current.c.label)
    session.execute(insert(LabelerAnswers).from_select(["user_id", "label", "labels"], answers))
    rounded = current.c.seconds * 10 + 0.5  # PostgreSQL's cast rounds, SQLite's truncates
    rounded = func.cast(rounded if db.is_sqlite(session) else func.floor(rounded), Integer)
    timed = select(current.c.user_id, rounded, func.count()).where(current.c.seconds.is_not(None))
    timed = timed.group_by(current.c.user_id, rounded)
    session.execute(insert(LabelerSeconds).from_select(["user_id", "tenths", "labels"], timed))
    matches = func.sum(case((Score.predicted_label == current.c.label, 1), else_=0))
    agreement = (
        select(Score.model_version_id, current.c.user_id, func.count(), matches)
        .join(Score, Score.image_id == current.c.image_id)
        .where(current.c.label != settings.UNSURE)
        .group_by(Score.model_version_id, current.c.user_id)
    )
    columns = ["model_version_id", "user_id", "judged", "matches"]
    session.execute(insert(LabelerAgreement).from_select(columns, agreement))
