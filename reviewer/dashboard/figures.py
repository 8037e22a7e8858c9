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
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from datetime import datetime, timedelta

import numpy as np
from sqlalchemy import case, exists, func, select
from sqlalchemy.orm import Session

from reviewer.core import settings, strategies, versions, workers
from reviewer.core.schema import (
    Image,
    Label,
    ModelVersion,
    Score,
    User,
    WorkerHeartbeat,
    as_utc,
    utcnow,
)
from reviewer.review import audit
from reviewer.review.labels import consensus, current_labels_query

DECILES = 10
HISTOGRAM_BINS = 20
MAX_CURVE_POINTS = 50
RECENT = timedelta(hours=1)


def _mean(values) -> float | None:
    return float(np.mean(values)) if len(values) else None


def _version_name(version: ModelVersion | None) -> str | None:
    return None if version is None else versions.version_name(version)


def _core(session: Session, statement):
    """Run a column query on the session's connection: no ORM row processing (1e5 rows)."""
    return session.connection().execute(statement)


def _count(session: Session, statement) -> int:
    return int(session.scalar(statement) or 0)


def dashboard_figures(session: Session, *, now: datetime | None = None) -> dict:
    """Every dashboard figure as plain Python values (see the module docstring)."""
    now = as_utc(now or utcnow())
    active, pending = versions.active_version(session), versions.pending_version(session)
    current = current_labels_query()
    # "Recent" is decided in SQL: parsing 1e5 datetimes in Python costs seconds on SQLite.
    recent = case((Label.labeled_at >= now - RECENT, 1), else_=0)
    columns = (Label.image_id, Label.user_id, Label.label, recent, Label.seconds)
    rows = [
        tuple(r) for r in _core(session, current.with_only_columns(*columns).order_by(Label.id))
    ]
    by_image: dict[int, list[str]] = defaultdict(list)
    for image_id, _, label, _, _ in rows:
        by_image[image_id].append(label)
    # Most items have one label: skip the Counter for them (it dominates at 1e5 items).
    human = {i: given[0] if len(given) == 1 else consensus(given) for i, given in by_image.items()}
    scored = {}  # image_id -> (entropy, predicted_label) of reviewed items, active version
    if active is not None:
        reviewed = Score.image_id.in_(current.with_only_columns(Label.image_id))
        query = select(Score.image_id, Score.entropy, Score.predicted_label)
        found = _core(session, query.where(Score.model_version_id == active.id, reviewed))
        scored = {r[0]: (r[1], r[2]) for r in found}
    # Queue-reviewed items whose human label says whether the model was right, in id order
    # (the audit's labels have their own figures: they are a random sample, not the queue's).
    audited = current.with_only_columns(Label.image_id).where(Label.strategy == strategies.AUDIT)
    by_audit = set(session.scalars(audited))
    judged = sorted(
        i
        for i, label in human.items()
        if label not in (None, settings.UNSURE) and i in scored and i not in by_audit
    )
    entropy = np.array([scored[i][0] for i in judged], dtype=np.float64)
    correct = np.array([human[i] == scored[i][1] for i in judged], dtype=bool)
    counts = _counts(session, active, pending, rows, by_image)
    mean_entropy = defaultdict(list)
    for i, label in human.items():
        if label is not None and i in scored:
            mean_entropy[label].append(scored[i][0])
    return {
        "generated_at": now.isoformat(),
        "active_version": None
        if active is None
        else {"id": active.id, "name": _version_name(active), "classes": list(active.classes)},
        "counts": counts,
        "labels_per_class": _labels_per_class(session, active, rows),
        "yield_by_decile": _yield_by_decile(entropy, ~correct),
        "histograms": _histograms(session, active),
        "uncertainty_by_label": {
            label: {"count": len(values), "mean_entropy": _mean(values)}
            for label, values in sorted(mean_entropy.items())
        },
        "audit": audit.figures(session, active),
        "labelers": _labelers(session, rows, by_image, human, scored),
        "workers": _workers(session, active, pending, counts["failed"], now),
    }


def _labels_per_class(session, active, rows) -> dict[str, int]:
    """Current labels per answer: every class of the version (or project) in its order, zeros
    included, then the special answers, then any other label still in the history."""
    classes = list(active.classes) if active is not None else settings.get_classes(session)
    counted = Counter(row[2] for row in rows)
    order = [*classes, *settings.SPECIAL_LABELS]
    return {name: counted.get(name, 0) for name in order} | {
        name: n for name, n in sorted(counted.items()) if name not in order
    }


def _counts(session, active, pending, rows, by_image) -> dict:
    statuses = select(Image.status, func.count()).group_by(Image.status)
    by_status = dict(session.execute(statuses).tuples().all())
    ok, scored = int(by_status.get("ok", 0)), versions.scored_images(session, active)
    counts = dict(images=int(sum(by_status.values())), ok=ok, failed=by_status.get("failed", 0))
    counts.update(scored=scored, reviewed=len(by_image), labels=len(rows), pending_version=None)
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


def _yield_by_decile(entropy: np.ndarray, wrong: np.ndarray) -> list[dict]:
    """Deciles by entropy rank (ties broken by image id): decile 1 is the least uncertain."""
    order = np.argsort(entropy, kind="stable")
    decile = np.empty(len(entropy), dtype=np.int64)
    decile[order] = np.arange(len(entropy)) * DECILES // max(len(entropy), 1)
    out = []
    for d in range(DECILES):
        members = decile == d
        n, errors = int(members.sum()), int(wrong[members].sum())
        values = entropy[members]
        out.append(
            dict(
                decile=d + 1,
                count=n,
                errors=errors,
                rate=errors / n if n else None,
                entropy_min=float(values.min()) if n else None,
                entropy_max=float(values.max()) if n else None,
            )
        )
    return out


def _histogram(session, column, version_id: int | None, upper: float) -> dict:
    """HISTOGRAM_BINS equal bins of ``column`` over [0, upper] (values outside go to the end
    bins, the last bin is closed, as numpy's), counted in SQL: one scan, no rows to Python."""
    upper = upper if upper > 0 else 1.0  # one class, or nothing uncertain yet
    edges = np.linspace(0.0, upper, HISTOGRAM_BINS + 1)
    counts = [0] * HISTOGRAM_BINS
    if version_id is not None:  # rows below each inner edge; the bins are their differences
        below = [func.count(case((column < float(edge), 1))) for edge in edges[1:-1]]
        where = Score.model_version_id == version_id
        total, *cumulative = session.execute(select(func.count(), *below).where(where)).one()
        counts = np.diff([0, *cumulative, total]).tolist()
    return {"edges": edges.tolist(), "counts": counts}


def _histograms(session, active) -> dict:
    version_id = None if active is None else active.id
    classes, top = 1, 0.0
    if active is not None:
        where = Score.model_version_id == active.id
        top = float(session.scalar(select(func.max(Score.mutual_info)).where(where)) or 0.0)
        classes = len(active.classes)
    return {  # entropy spans 0..log K, the most a mean can have
        "entropy": _histogram(session, Score.entropy, version_id, math.log(classes)),
        "mutual_info": _histogram(session, Score.mutual_info, version_id, top),
    }


def _labelers(session, rows, by_image, human, scored) -> list[dict]:
    labels, recent, seconds = Counter(), Counter(), defaultdict(list)
    peers, model = defaultdict(list), defaultdict(list)
    for image_id, user_id, label, is_recent, spent in rows:
        labels[user_id] += 1
        recent[user_id] += is_recent
        if spent is not None:
            seconds[user_id].append(spent)
        if len(by_image[image_id]) >= 2:  # a tie has no consensus: nobody matches it
            peers[user_id].append(label == human[image_id])
        if image_id in scored and label != settings.UNSURE:
            model[user_id].append(label == scored[image_id][1])
    return [
        dict(
            user_id=u,
            username=name,
            labels=labels[u],
            last_hour=int(recent[u]),
            median_seconds=float(np.median(seconds[u])) if seconds[u] else None,
            agreement=_mean(peers[u]),
            model_agreement=_mean(model[u]),
        )
        for u, name in session.execute(select(User.id, User.username).order_by(User.username))
    ]


def _workers(session, active, pending, failed: int, now) -> dict:
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
    if target is not None:
        has_score = exists().where(Score.image_id == Image.id, Score.model_version_id == target.id)
        unscored = select(func.count()).select_from(Image).where(Image.status == "ok", ~has_score)
        backlog = _count(session, unscored)
    return dict(
        heartbeats=heartbeats, backlog=backlog, backlog_version=_version_name(target), failed=failed
    )
