"""The random audit and the certificate it gives: what the model may label alone.

The audit walks the pool in ``audit_key`` order (random, fixed once per image, the same for
every version). The walk's frontier is the first item, in that order, that still needs its
labels; the **audit set** is every item before it. Items the queue labeled further ahead are
counted only once the walk reaches them, and a skipped or expired audit item holds the walk,
so the audit set is a simple random sample of the pool. New images get keys too: one that
falls before the frontier becomes the frontier, and the audit set waits for it.

`certificate` counts the active version's pool at the thresholds worth testing (the audit
items' confidences; reviewer.review.pool, in SQL) and asks
:func:`reviewer.ml.certify.certify_tally` for the threshold; an answer is wrong when it
differs from the version's prediction (``none_of_these``, ``unsure`` and ties count as wrong).

Held out across versions: a version's card lists the sha256 of the images it and its
ancestors trained on (``trained_on``). Those images are left out of its audit and of the pool
it is certified on: they cannot measure it, and, being labeled by people, they are never
auto-accepted. When they were audit items the walk goes on past them and its later items make
a fresh audit. Read-only; the caller owns the session.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from reviewer.core import settings
from reviewer.core.schema import Image, ModelVersion, Score
from reviewer.core.versions import active_version, version_name
from reviewer.ml import certify as certify_math
from reviewer.ml import evaluation
from reviewer.review import pool as pool_counts

NO_AUDIT_KEY = 2**63 - 1  # the frontier when every audited item is answered: the whole pool


def _scored(version: ModelVersion):
    return (
        select(Score.image_id)
        .join(Image, Image.id == Score.image_id)
        .where(Score.model_version_id == version.id, Image.status == "ok")
    )


def frontier(session: Session, version: ModelVersion) -> int:
    """The audit key of the walk's next item (the first that still needs labels)."""
    waiting = _scored(version).where(Score.needs_review.is_(True), Score.audit_key.is_not(None))
    # The queue's audit index in key order, stopping at the first ok image: min() over the
    # join would make PostgreSQL hash every waiting row with the images (0.3 s at 1M).
    first = waiting.with_only_columns(Score.audit_key).order_by(Score.audit_key).limit(1)
    key = session.scalar(first)
    return NO_AUDIT_KEY if key is None else int(key)


def _passed(session: Session, version: ModelVersion) -> list[tuple]:
    """(image id, sha256, confidence, human_label, predicted_label) of every item the walk has
    passed, in walk order."""
    # Before the frontier no ok item needs labels: saying so lets the queue's audit index
    # range over the walk instead of the pool.
    before = (Score.needs_review.is_(False), Score.audit_key < frontier(session, version))
    columns = (Image.id, Image.sha256, Score.confidence, Score.human_label, Score.predicted_label)
    stmt = _scored(version).where(*before).order_by(Score.audit_key)
    return [tuple(row) for row in session.execute(stmt.with_only_columns(*columns))]


def audit_set(session: Session, version: ModelVersion) -> list[int]:
    """Image ids of the version's audit set, in walk order: every item the walk has passed,
    less the images the version trained on."""
    trained = set(version.trained_on or ())
    return [row[0] for row in _passed(session, version) if row[1] not in trained]


def read_pool(session: Session, version: ModelVersion) -> pool_counts.Pool:
    """The version's pool, counted (reviewer.review.pool)."""
    return pool_counts.read(session, version, _passed(session, version))


@dataclass
class AutoAccept:
    """The certificate and what it rests on, as the CLI, the API and the dashboard show it."""

    model_version: str | None
    risk: float
    confidence: float
    threshold: float | None
    bound: float | None
    accepted: int
    unlabeled: int
    pool: int
    audit: int
    audit_errors: int
    audit_unsure: int
    reason: str
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return asdict(self)


def certificate(session: Session, *, risk=None, confidence=None) -> AutoAccept:
    """The certified auto-accept threshold of the active version at α = ``risk`` and
    1 − δ = ``confidence`` (default: the project's settings)."""
    alpha = settings.get_risk_target(session) if risk is None else float(risk)
    level = settings.get_risk_confidence(session) if confidence is None else float(confidence)
    version = active_version(session)
    if version is None:
        return AutoAccept(None, alpha, level, None, None, 0, 0, 0, 0, 0, 0, "no active version")
    return _certify(version, read_pool(session, version), alpha, level)


def _certify(version: ModelVersion, pool, alpha: float, level: float) -> AutoAccept:
    notes = [] if version.trained_on is not None else [UNSTATED]
    if pool.trained:
        notes.append(TRAINED_ON.format(n=pool.trained, audit=pool.trained_audit))
    cert = certify_math.certify_tally(pool.tally, alpha=alpha, delta=1 - level)
    return AutoAccept(
        model_version=version_name(version),
        risk=alpha,
        confidence=level,
        threshold=cert.threshold,
        bound=cert.bound,
        accepted=cert.accepted,
        unlabeled=pool.tally.unanswered_total,
        pool=pool.tally.pool,
        audit=pool.tally.audit,
        audit_errors=pool.tally.audit_errors_total,
        audit_unsure=int(pool.audit_unsure.sum()),
        reason=cert.reason,
        notes=notes,
    )


def figures(session: Session, version: ModelVersion | None) -> dict:
    """The dashboard's audit figures: the certificate at the project's settings, the audit's
    risk-coverage curve (estimate and bound per threshold) and its reliability diagram (items
    answered with a class or none_of_these; unsure says nothing about calibration)."""
    alpha, level = settings.get_risk_target(session), settings.get_risk_confidence(session)
    empty = {"bins": evaluation.reliability_bins([], []), "ece": None, "count": 0}
    if version is None:
        return {"certificate": certificate(session).as_dict(), "curve": [], "reliability": empty}
    pool = read_pool(session, version)
    curve = certify_math.curve_from_tally(pool.tally, delta=1 - level)
    judged = ~pool.audit_unsure
    reliability = empty
    if judged.any():
        confidence, correct = (
            np.clip(pool.audit_confidence[judged], 0, 1),
            ~pool.audit_wrong[judged],
        )
        reliability = {
            "bins": evaluation.reliability_bins(confidence, correct),
            "ece": evaluation.calibration_error(confidence, correct),
            "count": int(judged.sum()),
        }
    cert = _certify(version, pool, alpha, level).as_dict()
    return {"certificate": cert, "curve": curve, "reliability": reliability}


def accepted_images(session: Session, version: ModelVersion, threshold: float) -> list:
    """(image, score) of A(τ): the pool's images at or above ``threshold`` that nobody
    answered and the version did not train on, which the model labels alone."""
    stmt = (
        select(Image, Score)
        .join(Score, Score.image_id == Image.id)
        .where(Score.model_version_id == version.id, Image.status == "ok")
        .where(Image.label_count == 0, Score.confidence >= threshold)
        .order_by(Image.id)
    )
    trained = set(version.trained_on or ())
    return [(image, score) for image, score in session.execute(stmt) if image.sha256 not in trained]


def describe(result) -> list[str]:
    """A certificate in words, for the CLI and the export's report."""
    lines = [
        f"model version: {result.model_version}",
        f"risk target (α): {result.risk:g}; confidence (1 − δ): {result.confidence:g}",
        f"audit set: {result.audit} labels, {result.audit_errors} errors "
        f"({result.audit_unsure} of them 'unsure', counted as errors)",
        f"pool: {result.pool} scored images, {result.unlabeled} without a human answer",
    ]
    if result.threshold is None:
        lines.append(f"no certificate: {result.reason}")
    else:
        share = result.accepted / result.unlabeled if result.unlabeled else 0.0
        lines += [
            f"threshold: confidence >= {result.threshold:.6f}",
            f"auto-accepted: {result.accepted} images ({share:.1%} of those without an answer)",
            f"with probability >= {result.confidence:g}, their error rate is at most "
            f"{result.bound:.4f} (<= {result.risk:g})",
        ]
    return lines + [f"note: {note}" for note in result.notes]


UNSTATED = (
    "the active version states no training data from this pool: the certificate assumes none "
    "of the pool was trained on"
)
TRAINED_ON = (
    "the active version trained on {n} images of the pool ({audit} of them passed by the audit "
    "walk): they are left out of its audit and of the pool certified; the walk goes on to "
    "audit the rest"
)
