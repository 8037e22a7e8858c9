"""A version's pool in counts: what the certificate, its risk curve and the dashboard need,
counted by the database instead of read row by row.

The pool is every ok image the version scored and did not train on. Its figures at a
confidence threshold τ (items at or above τ, of them answered, of them wrong) are counted
per interval between the thresholds asked about, one index range each (``ix_scores_pool``
holds everything the count reads), and summed from the most confident down. The few rows that
are not in the pool (images that failed after scoring, images the version trained on) are
read and subtracted; the audit's items, a few thousand at most, are read whole. An answer is
the mirrored ``scores.human_label`` (review.labels.human_answer); it is wrong when it is not
the version's prediction (another class, ``none_of_these``, ``unsure``, a tie). A missing
confidence counts as 0, as it always has. Read-only; the caller owns the session.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from sqlalchemy import Float, Integer, and_, case, column, func, select, text
from sqlalchemy.orm import Session

from reviewer.core import settings, versions
from reviewer.core.schema import Image, ModelVersion, Score
from reviewer.ml import certify
from reviewer.review import score_bins

KEY_CHUNK = 5_000  # image ids or trained-on digests per IN list


@dataclass
class Pool:
    """The pool's tally at the thresholds the certificate and the curve test, and the audit."""

    tally: certify.Tally
    audit_confidence: np.ndarray  # the audit set's items (answered, not trained on)
    audit_wrong: np.ndarray
    audit_unsure: np.ndarray
    trained: int = 0  # images of the pool the version trained on, left out
    trained_audit: int = 0  # of them, items the walk has passed


def read(session: Session, version: ModelVersion, passed: list[tuple]) -> Pool:
    """The pool of ``version``; ``passed``: (image id, sha256, confidence, human_label,
    predicted_label) of every item the audit's walk has passed."""
    trained_on = set(version.trained_on or ())
    trained_audit = sum(row[1] in trained_on for row in passed)
    audit = [row for row in passed if row[1] not in trained_on and row[3] is not None]
    confidence = np.array([row[2] or 0.0 for row in audit], dtype=np.float64)
    wrong = np.array([score_bins.is_wrong(row[3], row[4]) for row in audit], dtype=bool)
    unsure = np.array([row[3] == settings.UNSURE for row in audit], dtype=bool)
    thresholds = certify.tested_thresholds(confidence, points=certify.CURVE_POINTS)
    counts = _interval_counts(session, version, thresholds)
    left_out, trained = _left_out(session, version, trained_on)
    counts -= _bucketed(left_out, thresholds)
    above, answered, known = np.cumsum(counts, axis=0).T
    every = np.ones(len(audit), dtype=bool)  # the audit items are all answered and audited
    of_audit = certify.tally(confidence, every, wrong, every, thresholds)
    tally = certify.Tally(
        thresholds=thresholds,
        above=above[:-1],
        audited=of_audit.audited,
        audit_errors=of_audit.audit_errors,
        known_errors=known[:-1],
        unanswered=(above - answered)[:-1],
        candidates=of_audit.candidates,
        pool=int(above[-1]),
        audit=of_audit.audit,
        audit_errors_total=of_audit.audit_errors_total,
        unanswered_total=int(above[-1] - answered[-1]),
    )
    return Pool(tally, confidence, wrong, unsure, trained, trained_audit)


def _interval_counts(session: Session, version: ModelVersion, thresholds) -> np.ndarray:
    """[len(thresholds) + 1, 3]: (rows, answered, wrong) of the version's scores in
    [τ_0, ∞), [τ_1, τ_0), …, [−∞, τ_last), a missing confidence counted as 0. Whole from the
    version's confidence bins; a bin a threshold splits is counted in SQL below its highest
    threshold, the rest of it is the bin's total less those pieces."""
    classes = len(version.classes)
    bins = score_bins.read(session, version.id, "confidence", classes)[:, :3]
    upper = np.append(score_bins.edges("confidence", classes)[1:], math.inf)
    ascending = np.sort(np.asarray(thresholds, dtype=np.float64))
    whole = len(ascending) - np.searchsorted(ascending, upper, side="left")  # thresholds ≥ hi
    counts = np.zeros((len(ascending) + 1, 3), dtype=np.int64)
    np.add.at(counts, whole, bins)
    pieces = []  # (interval, the bin's top interval, lo, hi) below each split bin's top
    for b in np.unique(score_bins.bins_of("confidence", classes, ascending)).tolist():
        lo, hi = score_bins.bin_range("confidence", classes, b)
        inside = ascending[(ascending > lo) & (ascending < hi)][::-1].tolist()
        top, cuts = int(whole[b]), [*inside, lo]
        pieces += [(top + k + 1, top, cuts[k + 1], cuts[k]) for k in range(len(inside))]
        if b == 0 and inside and inside[0] > 0.0:  # a missing confidence counts as 0.0
            pieces.append((top + sum(t > 0.0 for t in inside), top, None, None))
    for (interval, top, *_), found in zip(
        pieces, _piece_counts(session, version.id, pieces), strict=True
    ):
        counts[interval] += found
        counts[top] -= found
    return counts


def _piece_counts(session: Session, version_id: int, pieces: list[tuple]) -> np.ndarray:
    """[len(pieces), 3]: (rows, answered, wrong) of the version's scores with a confidence
    in each piece's [lo, hi), one grouped statement on ``ix_scores_pool``; a piece without a
    range counts the rows without a confidence."""
    counts = np.zeros((len(pieces), 3), dtype=np.int64)
    tallied = (
        func.count(),
        func.count(Score.human_label),
        func.sum(case((score_bins.WRONG, 1), else_=0)),
    )
    ranged = [(i, lo, hi) for i, (*_, lo, hi) in enumerate(pieces) if lo is not None]
    if ranged:
        bounds = _bounds(ranged)
        in_range = and_(
            Score.model_version_id == version_id,
            Score.confidence >= bounds.c.column2,
            Score.confidence < bounds.c.column3,
        )
        stmt = select(bounds.c.column1, *tallied).select_from(bounds).join(Score, in_range)
        params = {
            f"{name}{k}": x
            for k, row in enumerate(ranged)
            for name, x in zip("ilh", row, strict=True)
        }
        for i, *row in session.execute(stmt.group_by(bounds.c.column1), params):
            counts[i] = [int(x or 0) for x in row]
    for i in [i for i, (*_, lo, _hi) in enumerate(pieces) if lo is None]:
        missing = select(*tallied).where(
            Score.model_version_id == version_id, Score.confidence.is_(None)
        )
        counts[i] = [int(x or 0) for x in session.execute(missing).one()]
    return counts


def _bounds(ranged: list[tuple]):
    """WITH bounds AS (VALUES (:i0, :l0, :h0), …): the pieces as rows (i, lo, hi), named
    column1.. as both databases name a VALUES list's columns. Written as text with bound
    floats: compiling thousands of rows as a ``values()`` construct costs 0.1 s a call."""
    rows = ", ".join(f"(:i{k}, :l{k}, :h{k})" for k in range(len(ranged)))
    names = (column("column1", Integer), column("column2", Float), column("column3", Float))
    return text(f"VALUES {rows}").columns(*names).cte("bounds")


def _interval_of(thresholds: np.ndarray, confidence: float) -> int:
    """The interval of `_interval_counts` that holds ``confidence``: thresholds above it."""
    return int(np.searchsorted(-thresholds, -confidence, side="left"))


def _left_out(session: Session, version: ModelVersion, trained_on: set[str]) -> tuple:
    """((confidence, human_label, predicted_label) of the version's scores that are not in
    the pool, the number of them it trained on): failed images and trained-on ones."""
    columns = (Image.id, Image.sha256, Image.status, Score.confidence, Score.human_label)
    base = (
        select(*columns, Score.predicted_label)
        .join(Score, Score.image_id == Image.id)
        .where(Score.model_version_id == version.id)
    )
    # The non-ok images' ids first (the status index), then their rows by id: joined in one
    # statement, SQLite's planner drives it from the version's scores and reads all of them.
    not_ok = sorted(session.scalars(select(Image.id).where(versions.NOT_OK)))
    found = {}
    for key, keys in ((Image.id, not_ok), (Image.sha256, sorted(trained_on))):
        for start in range(0, len(keys), KEY_CHUNK):
            chunk = keys[start : start + KEY_CHUNK]
            found.update((row[0], row) for row in session.execute(base.where(key.in_(chunk))))
    trained = sum(row[1] in trained_on and row[2] == "ok" for row in found.values())
    return [row[3:] for row in found.values()], trained


def _bucketed(rows: list[tuple], thresholds: np.ndarray) -> np.ndarray:
    """`_interval_counts` of rows read into Python."""
    counts = np.zeros((len(thresholds) + 1, 3), dtype=np.int64)
    for confidence, answer, predicted in rows:
        counts[_interval_of(thresholds, confidence or 0.0)] += [
            1,
            answer is not None,
            score_bins.is_wrong(answer, predicted),
        ]
    return counts
