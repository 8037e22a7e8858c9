"""Build a scored pool directly in the database (no TensorFlow): versions, images, scores, users."""

from __future__ import annotations

import hashlib

import numpy as np

from reviewer.core.schema import Image, ModelVersion, Score, User

CLASSES = [str(d) for d in range(10)]
LEASE = 300  # seconds a review lease lasts in the review tests
# The keys docs/architecture.md promises for an item, in the CLI, the API and the UI.
ITEM_KEYS = (
    "id",
    "sha256",
    "path",
    "original_filename",
    "given_label",
    "predicted_label",
    "strategy",
    "rank_value",
    "mean",
    "std",
    "entropy",
    "expected_entropy",
    "mutual_info",
    "variance",
    "variation_ratio",
    "margin",
    "self_confidence",
    "normalized_margin",
    "ood",
    "samples",
    "classes",
    "model_version",
)


def add_version(session, *, name="digits", version=1, active=True, classes=CLASSES) -> ModelVersion:
    row = ModelVersion(
        name=name,
        version=version,
        path=f"models/{name}/{version}",
        classes=list(classes),
        input_spec={"height": 28, "width": 28, "channels": 1, "scale": 255.0},
        mc_samples=20,
        metrics={},
        is_active=active,
    )
    session.add(row)
    session.flush()
    return row


def add_user(session, name: str, role: str = "labeler") -> User:
    user = User(username=name, password_hash="x", role=role)
    session.add(user)
    session.flush()
    return user


def add_scored_images(
    session,
    version: ModelVersion,
    n: int,
    *,
    seed: int = 0,
    given_labels=None,
    metrics=None,
    audit_keys=None,
) -> list[Image]:
    """N images with scores whose metrics are random (or given per item in ``metrics``); the
    random audit walks them in ``audit_keys`` order when given (else it has none to walk)."""
    rng = np.random.default_rng(seed)
    images = []
    for i in range(n):
        sha = hashlib.sha256(f"{seed}-{version.id}-{i}".encode()).hexdigest()
        given = None if given_labels is None else given_labels[i]
        image = Image(
            sha256=sha,
            path=f"{sha[:2]}/{sha}.png",
            original_filename=f"img_{i}.png",
            width=28,
            height=28,
            mode="L",
            given_label=given,
            status="ok",
        )
        session.add(image)
        session.flush()
        mean = rng.dirichlet(np.ones(len(version.classes)))
        values = {
            "entropy": float(rng.uniform(0, 2)),
            "expected_entropy": 0.1,
            "mutual_info": float(rng.uniform(0, 1)),
            "variance": float(rng.uniform(0, 0.1)),
            "variation_ratio": float(rng.choice([0.0, 0.1, 0.5])),
            "margin": float(rng.uniform(0, 1)),
            "self_confidence": None if given is None else float(rng.uniform(0, 1)),
            "normalized_margin": None,
            "ood": float(rng.uniform(0, 5)),
        }
        values.update((metrics or {}).get(i, {}))
        session.add(
            Score(
                image_id=image.id,
                model_version_id=version.id,
                predicted_label=version.classes[int(mean.argmax())],
                mean=mean.tolist(),
                std=[0.01] * len(mean),
                samples=20,
                needs_review=True,
                confidence=float(mean.max()),
                audit_key=None if audit_keys is None else audit_keys[i],
                **values,
            )
        )
        images.append(image)
    session.flush()
    return images
