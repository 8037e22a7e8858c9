"""A pool for the certified auto-accept tests: scored images with real files, a known truth
whose error rate falls as the model's confidence rises, and a random audit order."""

from __future__ import annotations

import numpy as np

from reviewer.core.files import FileStore
from reviewer.core.images import inspect_image
from reviewer.core.schema import Image, Score
from tests.support.images import png_bytes
from tests.support.pool import add_version


def add_audited_pool(session, store: FileStore, n: int, *, seed: int = 0) -> dict[int, str]:
    """``n`` images scored by a new active version: confidence uniform in [0.5, 1), the
    prediction wrong with probability 0.3 (1 − confidence)²; audit keys a random permutation.
    Returns the truth {image id: class}."""
    version = add_version(session)
    classes, rng = version.classes, np.random.default_rng(seed)
    confidence = rng.uniform(0.5, 1.0, n)
    keys = rng.permutation(n)
    images = []
    for i in range(n):
        data = png_bytes(50_000 + seed * 1000 + i)
        info = inspect_image(data, max_pixels=10**6)
        image = Image(sha256=info.sha256, path=store.put(data, info), original_filename=f"{i}.png")
        image.width, image.height, image.mode = info.width, info.height, info.mode
        images.append(image)
    session.add_all(images)
    session.flush()  # one round trip for the ids
    truth = {}
    for i, image in enumerate(images):
        predicted = int(rng.integers(len(classes)))
        mean = np.full(len(classes), (1 - confidence[i]) / (len(classes) - 1))
        mean[predicted] = confidence[i]
        wrong = rng.random() < 0.3 * (1 - confidence[i]) ** 2
        true = (predicted + 1 + int(rng.integers(len(classes) - 1))) % len(classes)
        truth[image.id] = classes[true if wrong else predicted]
        entropy = float(-(mean * np.log(mean)).sum())
        session.add(
            Score(
                image_id=image.id,
                model_version_id=version.id,
                predicted_label=classes[predicted],
                mean=mean.tolist(),
                std=[0.01] * len(classes),
                entropy=entropy,
                expected_entropy=entropy / 2,
                mutual_info=entropy / 2,
                variance=0.0,
                variation_ratio=0.0,
                margin=float(confidence[i] - mean[(predicted + 1) % len(classes)]),
                confidence=float(confidence[i]),
                ood=0.0,
                samples=20,
                audit_key=int(keys[i]),
            )
        )
    store.sync()
    return truth
