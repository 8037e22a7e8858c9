"""Dashboard figures over the items people answered: the review yield per entropy decile and
the mean entropy per human answer, counted by the database.

An item's answer is the mirrored ``scores.human_label`` of the active version (the consensus
of its current labels, ``unsure`` for a tie). The yield is over the queue-reviewed items
whose answer says whether the model was right (a class or ``none_of_these``; the audit's
labels have their own figures). Read-only; the caller owns the session.
"""

from __future__ import annotations

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from reviewer.core import settings, strategies
from reviewer.core.schema import Label, ModelVersion, Score
from reviewer.review import pool
from reviewer.review.labels import consensus, current_labels_query

DECILES = 10


def audit_labeled():
    """Image ids with a current label handed out by the audit."""
    current = current_labels_query().where(Label.strategy == strategies.AUDIT)
    return current.with_only_columns(Label.image_id)


def yield_by_decile(session: Session, version: ModelVersion | None) -> list[dict]:
    """Deciles by entropy rank (ties broken by image id): decile 1 is the least uncertain;
    per decile the judged items, the model's errors among them, their rate and entropy span."""
    found = {}
    if version is not None:
        wrong = case((pool.WRONG, 1), else_=0)
        rank = func.row_number().over(order_by=(Score.entropy, Score.image_id)) - 1
        judged = (
            select(
                Score.entropy,
                wrong.label("wrong"),
                rank.label("rank"),
                func.count().over().label("n"),
            )
            .where(Score.model_version_id == version.id, Score.human_label.is_not(None))
            .where(Score.human_label != settings.UNSURE)
            .where(Score.image_id.not_in(audit_labeled()))
            .subquery()
        )
        decile = (judged.c.rank * DECILES // judged.c.n).label("decile")
        stmt = select(
            decile,
            func.count(),
            func.sum(judged.c.wrong),
            func.min(judged.c.entropy),
            func.max(judged.c.entropy),
        ).group_by(decile)
        found = {int(row[0]): row[1:] for row in session.execute(stmt)}
    out = []
    for d in range(DECILES):
        n, errors, low, high = found.get(d, (0, 0, None, None))
        n, errors = int(n), int(errors or 0)
        out.append(
            dict(
                decile=d + 1,
                count=n,
                errors=errors,
                rate=errors / n if n else None,
                entropy_min=None if low is None else float(low),
                entropy_max=None if high is None else float(high),
            )
        )
    return out


def uncertainty_by_label(session: Session, version: ModelVersion | None) -> dict:
    """{answer: {count, mean_entropy}} over the version's answered items, a tie left out."""
    if version is None:
        return {}
    of_version = (Score.model_version_id == version.id, Score.human_label.is_not(None))
    stmt = select(Score.human_label, func.count(), func.avg(Score.entropy)).where(*of_version)
    out = {
        label: {"count": int(n), "mean_entropy": float(mean)}
        for label, n, mean in session.execute(stmt.group_by(Score.human_label))
    }
    if settings.UNSURE in out:  # a tie is mirrored as unsure: read those few items again
        out[settings.UNSURE] = _unsure_without_ties(session, version)
        if not out[settings.UNSURE]["count"]:
            del out[settings.UNSURE]
    return dict(sorted(out.items()))


def _unsure_without_ties(session: Session, version: ModelVersion) -> dict:
    unsure = select(Score.image_id, Score.entropy).where(
        Score.model_version_id == version.id, Score.human_label == settings.UNSURE
    )
    entropy = dict(session.execute(unsure).tuples().all())
    labels = current_labels_query().where(
        Label.image_id.in_(unsure.with_only_columns(Score.image_id))
    )
    given: dict[int, list[str]] = {}
    for image_id, label in session.execute(labels.with_only_columns(Label.image_id, Label.label)):
        given.setdefault(image_id, []).append(label)
    kept = [entropy[i] for i, found in given.items() if consensus(found) == settings.UNSURE]
    return {"count": len(kept), "mean_entropy": sum(kept) / len(kept) if kept else None}
