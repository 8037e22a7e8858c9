"""Dashboard figures over the items people answered: the review yield per entropy decile (from
the version's entropy bins, reviewer.review.score_bins) and the mean entropy per human answer
(counted by the database).

An item's answer is the mirrored ``scores.human_label`` of the active version (the consensus
of its current labels, ``unsure`` for a tie). The yield is over the queue-reviewed items
whose answer says whether the model was right (a class or ``none_of_these``; the audit's
labels have their own figures). Read-only; the caller owns the session.
"""

from __future__ import annotations

import numpy as np
from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from reviewer.core import settings, strategies
from reviewer.core.schema import Label, LabelerAnswers, ModelVersion, Score
from reviewer.review import score_bins
from reviewer.review.labels import consensus, current_labels_query

DECILES = 10


def audit_labeled():
    """Image ids with a current label handed out by the audit."""
    current = current_labels_query().where(Label.strategy == strategies.AUDIT)
    return current.with_only_columns(Label.image_id)


_AUDITED = Score.image_id.in_(audit_labeled())


def yield_by_decile(session: Session, version: ModelVersion | None) -> list[dict]:
    """Deciles by entropy rank (ties broken by image id): decile 1 is the least uncertain;
    per decile the judged items, the model's errors among them, their rate and entropy span.

    Counted from the version's entropy bins less the audit's items; only the bins that hold
    a decile's first or last item are read back, row by row, to place its boundary."""
    ranked = _RankedJudged(session, version) if version is not None else None
    n = 0 if ranked is None else ranked.total
    starts = [-(-d * n // DECILES) for d in range(DECILES + 1)]  # decile = rank * 10 // n
    out = []
    for d in range(DECILES):
        first, end = starts[d], starts[d + 1]
        count = end - first
        errors = ranked.errors_before(end) - ranked.errors_before(first) if count else 0
        out.append(
            dict(
                decile=d + 1,
                count=count,
                errors=errors,
                rate=errors / count if count else None,
                entropy_min=ranked.entropy_at(first) if count else None,
                entropy_max=ranked.entropy_at(end - 1) if count else None,
            )
        )
    return out


class _RankedJudged:
    """The version's queue-judged items in (entropy, image id) order, as bin counts, with
    the rows of a bin read back when a rank inside it is asked for."""

    def __init__(self, session: Session, version: ModelVersion):
        self.session, self.version = session, version
        self.classes = len(version.classes)
        self.judged_rows = self._judged()
        bins = score_bins.read(session, version.id, "entropy", self.classes)
        judged, wrong = bins[:, 3].copy(), bins[:, 4].copy()
        audit = session.execute(self.judged_rows.where(_AUDITED)).all()
        self.audit_ids = {row[1] for row in audit}
        found = score_bins.bins_of("entropy", self.classes, [row[0] for row in audit])
        np.subtract.at(judged, found, 1)
        np.subtract.at(wrong, found, [int(row[2]) for row in audit])
        self.judged_before = np.concatenate([[0], np.cumsum(judged)])
        self.wrong_before = np.concatenate([[0], np.cumsum(wrong)])
        self.total = int(self.judged_before[-1])
        self.rows_of_bin: dict[int, list[tuple]] = {}

    def _judged(self):
        """(entropy, image id, wrong) of the version's judged items, as a statement."""
        labels = select(LabelerAnswers.label).distinct()
        judged = [x for x in self.session.scalars(labels) if x != settings.UNSURE]
        return select(Score.entropy, Score.image_id, case((score_bins.WRONG, 1), else_=0)).where(
            Score.model_version_id == self.version.id, Score.human_label.in_(judged)
        )  # an IN list of answers: the answers index ranges over entropy under each

    def _rows(self, b: int) -> list[tuple]:
        if b not in self.rows_of_bin:
            lo, hi = score_bins.bin_range("entropy", self.classes, b)
            stmt = self.judged_rows.where(Score.entropy >= lo, Score.entropy < hi)
            rows = [row for row in self.session.execute(stmt) if row[1] not in self.audit_ids]
            self.rows_of_bin[b] = sorted((float(e), i, int(w)) for e, i, w in rows)
        return self.rows_of_bin[b]

    def _place(self, rank: int) -> tuple[int, int]:
        b = int(np.searchsorted(self.judged_before, rank, side="right")) - 1
        return b, rank - int(self.judged_before[b])

    def errors_before(self, rank: int) -> int:
        """The model's errors among the items ranked below ``rank``."""
        if rank >= self.total:
            return int(self.wrong_before[-1])
        b, k = self._place(rank)
        inside = sum(row[2] for row in self._rows(b)[:k]) if k else 0
        return int(self.wrong_before[b]) + inside

    def entropy_at(self, rank: int) -> float:
        b, k = self._place(rank)
        return self._rows(b)[k][0]


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
