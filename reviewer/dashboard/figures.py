"""Dashboard figures: what the review loop has done and how well the active model does.

This module owns the numbers behind the dashboard page and ``GET /api/stats``: image and label
counts, labels per class, the review yield per entropy decile over the queue-reviewed labels
(the proof that the queue puts the model's mistakes first), uncertainty histograms, the random
audit's figures (the certificate, risk-coverage and reliability, from reviewer.review.audit:
the queue's labels are chosen because they are hard, so they say little about the confident
items), per-labeler figures and the workers. It only reads: it takes a session (the caller owns
it) and returns a JSON-ready dict. An item's human label is the majority of its current labels
(a tie has none); ``unsure`` says nothing about whether the model is right, so it is left out
of the yield, while ``none_of_these`` counts as the model being wrong.

Every figure is counted by the database or kept counted by the writes (the per-labeler
tallies, each version's score bins: reviewer.review.score_bins); what comes back to Python is
a few thousand rows per figure at most, never a row per image or label: the items people
answered (reviewer.dashboard.answers), the labels (reviewer.dashboard.labelers) and the
audit's pool (reviewer.review.pool). The histograms: entropy over [0, log K), mutual
information over the narrowest [0, log K / 2^j) (j ≤ 7) that holds it, 20 bins each.
"""

from __future__ import annotations

from datetime import datetime

import numpy as np
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from reviewer.core import versions, workers
from reviewer.core.schema import Image, ModelVersion, WorkerHeartbeat, as_utc, utcnow
from reviewer.dashboard import answers, labelers
from reviewer.review import audit, score_bins


def _version_name(version: ModelVersion | None) -> str | None:
    return None if version is None else versions.version_name(version)


def dashboard_figures(session: Session, *, now: datetime | None = None) -> dict:
    """Every dashboard figure as plain Python values (see the module docstring)."""
    now = as_utc(now or utcnow())
    active, pending = versions.active_version(session), versions.pending_version(session)
    counts = _counts(session, active, pending)
    tallied = labelers.tallies(session)
    return {
        "generated_at": now.isoformat(),
        "active_version": None
        if active is None
        else {"id": active.id, "name": _version_name(active), "classes": list(active.classes)},
        "counts": counts,
        "labels_per_class": labelers.labels_per_class(session, active, tallied),
        "yield_by_decile": answers.yield_by_decile(session, active),
        "histograms": _histograms(session, active),
        "uncertainty_by_label": answers.uncertainty_by_label(session, active),
        "audit": audit.figures(session, active),
        "labelers": labelers.labelers(session, tallied, active, now),
        "workers": _workers(session, active, pending, counts, now),
    }


REVIEWED = select(func.count(), func.sum(Image.label_count)).where(Image.label_count > 0)


def _counts(session, active, pending) -> dict:
    statuses = select(Image.status, func.count()).group_by(Image.status)
    by_status = dict(session.execute(statuses).tuples().all())
    ok, scored = int(by_status.get("ok", 0)), versions.scored_images(session, active)
    reviewed, labels = session.execute(REVIEWED).one()
    counts = dict(images=int(sum(by_status.values())), ok=ok, failed=by_status.get("failed", 0))
    counts.update(scored=scored, reviewed=int(reviewed), labels=int(labels or 0))
    counts["pending_version"] = None
    if pending is not None:
        done = versions.scored_images(session, pending)
        counts["pending_version"] = dict(
            id=pending.id,
            name=_version_name(pending),
            scored=done,
            total=ok,
            fraction=done / ok if ok else None,
        )
    return counts


def _histograms(session, active) -> dict:
    """The entropy over [0, log K) and the mutual information over the narrowest
    [0, log K / 2^j) that holds it, 20 bins each, from the version's score bins."""
    if active is None:
        empty = score_bins.histogram(np.zeros(score_bins.UNCERTAINTY_BINS, int), 1, fit=False)
        return {"entropy": empty, "mutual_info": empty}
    classes = len(active.classes)
    hist = {}
    for figure in ("entropy", "mutual_info"):
        rows = score_bins.read(session, active.id, figure, classes)[:, 0]
        hist[figure] = score_bins.histogram(rows, classes, fit=figure == "mutual_info")
    return hist


def _workers(session, active, pending, counts: dict, now) -> dict:
    beats = session.execute(
        select(WorkerHeartbeat, ModelVersion)
        .outerjoin(ModelVersion, WorkerHeartbeat.model_version_id == ModelVersion.id)
        .order_by(WorkerHeartbeat.worker_id)
    ).all()
    heartbeats = [
        dict(
            worker_id=beat.worker_id,
            host=beat.host,
            pid=beat.pid,
            state=beat.state,
            liveness=workers.liveness(beat, now),
            model_version=_version_name(version),
            last_seen=as_utc(beat.last_seen).isoformat(),
            seconds_since_seen=(now - as_utc(beat.last_seen)).total_seconds(),
            images_scored=beat.images_scored,
            failures=beat.failures,
        )
        for beat, version in beats
    ]
    target = pending or active
    backlog = None
    if target is not None:  # ok images without a scores row for it (counted once, above)
        done = counts["scored"] if pending is None else counts["pending_version"]["scored"]
        backlog = counts["ok"] - done
    return dict(
        heartbeats=heartbeats,
        backlog=backlog,
        backlog_version=_version_name(target),
        failed=counts["failed"],
    )
