"""Scoring one batch: claim -> load -> sample -> summarise -> write.

This module owns the steps the worker loop repeats: `claim_batch` leases a
batch of images that have no scores for a version (``FOR UPDATE SKIP LOCKED``
on PostgreSQL, ``BEGIN IMMEDIATE`` on SQLite), `compute` loads and samples
it outside any transaction, and `write_batch` writes one scores row per image
(and the failures) in ONE transaction, only for the images whose lease this
worker still holds. TensorFlow loads only in `MCSampler`, lazily.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
from sqlalchemy import delete, exists, select
from sqlalchemy.orm import Session

from reviewer.core import db, settings
from reviewer.core.files import FileStore
from reviewer.core.images import load_batch_tolerant
from reviewer.core.schema import Image, ModelVersion, Score, ScoreLease
from reviewer.ml import ood, uncertainty
from reviewer.review import labels as label_history
from reviewer.training import registry

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Claimed:
    """What scoring needs of a claimed image, read inside the claim transaction."""

    id: int
    path: str
    given_label: str | None
    label_count: int


class MCSampler:
    """The real sampler: each version's model (and card) is loaded once, through reviewer.mc.

    A test passes any object with the same ``sample`` and ``features`` methods instead.
    """

    def __init__(self, loader=None):
        self._loader = loader
        self._models: dict[int, object] = {}

    def _model(self, version: ModelVersion):
        if version.id not in self._models:
            from reviewer.ml import mc

            load = self._loader or mc.load_model
            self._models = {version.id: load(os.path.join(version.path, registry.MODEL_FILE))}
            logger.info("loaded model %s", registry.label(version))
        return self._models[version.id]

    def sample(self, version: ModelVersion, images: np.ndarray, T: int, *, shared_masks=False):
        """[T, N, K]; ``shared_masks``: sample t of every image from the same mask t (BatchBALD)."""
        from reviewer.ml import mc

        return mc.sample(self._model(version), images, T, shared_masks=shared_masks)

    def features(self, version: ModelVersion, images: np.ndarray) -> np.ndarray:
        from reviewer.ml import mc

        return mc.features(self._model(version), images)


def claim_batch(
    session: Session,
    version: ModelVersion,
    worker_id: str,
    batch_size: int,
    lease_seconds: float,
    now: datetime,
) -> list[Claimed]:
    """Lease up to ``batch_size`` ok images that have no scores and no live lease for ``version``.

    Must start the session's transaction (it issues BEGIN IMMEDIATE on SQLite); the caller
    commits. Claims of concurrent callers never overlap.
    """
    db.begin_write(session)
    vid = version.id
    scored = exists().where(Score.image_id == Image.id, Score.model_version_id == vid)
    leased = exists().where(
        ScoreLease.image_id == Image.id,
        ScoreLease.model_version_id == vid,
        ScoreLease.expires_at > now,
    )
    stmt = select(Image).where(Image.status == "ok", ~scored, ~leased)
    stmt = stmt.order_by(Image.id).limit(batch_size)
    if not db.is_sqlite(session):
        stmt = stmt.with_for_update(skip_locked=True, of=Image)
    images = {image.id: image for image in session.scalars(stmt)}
    if not images:
        return []
    session.execute(  # expired leases are free again
        delete(ScoreLease).where(
            ScoreLease.model_version_id == vid,
            ScoreLease.image_id.in_(list(images)),
            ScoreLease.expires_at <= now,
        )
    )
    expires = now + timedelta(seconds=lease_seconds)
    rows = [
        dict(image_id=i, model_version_id=vid, worker_id=worker_id, expires_at=expires)
        for i in images
    ]
    # ON CONFLICT DO NOTHING: on PostgreSQL a claimer whose snapshot predates another's commit
    # can still pick a row that was just leased; the conflict leaves it to its first owner.
    insert = db.dialect_insert(session)(ScoreLease).values(rows).on_conflict_do_nothing()
    won = set(session.scalars(insert.returning(ScoreLease.image_id)))
    return [
        Claimed(i.id, i.path, i.given_label, i.label_count) for i in images.values() if i.id in won
    ]


@dataclass
class BatchResult:
    scored: int = 0
    failed: int = 0
    lost: int = 0  # leases that expired and went to another worker meanwhile


def choose_samples(version: ModelVersion, samples: int | None, config_samples: int | None) -> int:
    """T: ``--samples``, else REVIEWER_MC_SAMPLES, else the model card."""
    return int(samples or config_samples or version.mc_samples)


def load_claimed(version, store: FileStore, claimed: list[Claimed]):
    """Load ``claimed``'s images as ``version`` expects them (no database). Returns (array,
    the items loaded in the array's order, failure reasons by image id)."""
    spec = version.input_spec
    paths, failures = [], {}
    for item in claimed:
        try:
            paths.append(store.absolute(item.path))
        except ValueError as exc:
            paths.append(None)
            failures[item.id] = str(exc)
    options = dict(
        size=(spec["height"], spec["width"]),
        channels=spec["channels"],
        scale=spec.get("scale", 255.0),
    )
    loadable = [(item, path) for item, path in zip(claimed, paths, strict=True) if path]
    array, good, failed = load_batch_tolerant([p for _, p in loadable], **options)
    failures.update({loadable[i][0].id: reason for i, reason in failed.items()})
    return array, [loadable[i][0] for i in good], failures


def compute(sampler, version, card, store: FileStore, claimed: list[Claimed], T: int):
    """Load and sample ``claimed`` (no database). Returns (rows by image id, failures by id)."""
    array, items, failures = load_claimed(version, store, claimed)
    if not items:
        return {}, failures
    index = {name: k for k, name in enumerate(version.classes)}
    labels = np.array([index.get(item.given_label, -1) for item in items])
    summary = uncertainty.summarize(sampler.sample(version, array, T), labels=labels)
    ood_values = [None] * len(items)
    if card.get("ood"):  # models registered without training data have no OOD parameters
        feats = sampler.features(version, array)
        ood_values = ood.ood_score(feats, summary.entropy, card["ood"]).tolist()
    rows = {}
    for k, item in enumerate(items):
        row = summary.row(k)
        row["predicted_label"] = version.classes[row.pop("predicted")]
        rows[item.id] = {**row, "ood": ood_values[k], "samples": T}
    return rows, failures


def write_batch(session, version, worker_id, claimed, rows, failures, now) -> BatchResult:
    """Write scores rows and failures for the images whose lease this worker still holds.

    Must start the session's transaction; the caller commits. Also promotes a pending
    version that this batch completed.
    """
    db.begin_write(session)
    ids = [item.id for item in claimed]
    held = set(
        session.scalars(
            delete(ScoreLease)
            .where(ScoreLease.model_version_id == version.id, ScoreLease.image_id.in_(ids))
            .where(ScoreLease.worker_id == worker_id)
            .returning(ScoreLease.image_id)
        )
    )
    wanted = settings.get_labels_per_item(session)
    result = BatchResult(lost=len(set(ids) - held))
    for item in claimed:
        if item.id not in held:
            continue
        if item.id in failures:
            image = session.get(Image, item.id)
            image.status, image.failure_reason = "failed", failures[item.id]
            result.failed += 1
        elif item.id in rows:
            needs_review = item.label_count < wanted
            row = Score(image_id=item.id, model_version_id=version.id, **rows[item.id])
            row.needs_review, row.scored_at = needs_review, now
            session.add(row)
            result.scored += 1
    session.flush()
    for item in claimed:
        if item.id in held and item.id in rows and item.label_count > 0:
            # self_confidence judges the human label once there is one (DESIGN.md).
            label_history.refresh_label_quality(session, session.get(Image, item.id))
    promoted = registry.promote_if_scored(session)
    if promoted is not None:
        logger.info("%s is scored for every image and is now active", registry.label(promoted))
    return result
