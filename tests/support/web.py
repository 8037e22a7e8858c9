"""Helpers for the web tests: a scored database without TensorFlow, logging in, CSRF tokens.

A "scored database" is a model_versions row (active, the digit classes) plus N
images in the file store with one scores row each, written directly: the web
layer only reads what the worker would have written. The fixtures built on these are in
tests/web/conftest.py.
"""

from __future__ import annotations

import re

import numpy as np

from reviewer.core.files import FileStore
from reviewer.core.images import inspect_image
from reviewer.core.schema import Image, ModelVersion, Score
from tests.support.images import png_bytes
from tests.support.pool import add_version

PASSWORDS = {"ada": "ada-password", "lee": "lee-password", "leo": "leo-password"}


def add_scored_items(session, store: FileStore, count: int, *, seed: int = 0, names=None) -> list:
    """``count`` images with scores for the active version; returns their ids."""
    version = session.query(ModelVersion).filter_by(is_active=True).one_or_none()
    version = version or add_version(session)
    rng = np.random.default_rng(seed)
    ids = []
    for i in range(count):
        data = png_bytes(seed * 1000 + i)
        info = inspect_image(data, max_pixels=10**6)
        k = len(version.classes)
        logits = rng.normal(0, 1.5 + i % 3, k)
        mean = np.exp(logits) / np.exp(logits).sum()
        order = np.argsort(mean)[::-1]
        entropy = float(-(mean * np.log(mean)).sum())
        given = version.classes[int(order[i % 2])]  # every other item disagrees with the model
        image = Image(
            sha256=info.sha256,
            path=store.put(data, info),
            original_filename=(names or {}).get(i, f"digit_{i:03d}.png"),
            width=info.width,
            height=info.height,
            mode=info.mode,
            given_label=given,
        )
        session.add(image)
        session.flush()
        session.add(
            Score(
                image_id=image.id,
                model_version_id=version.id,
                predicted_label=version.classes[int(order[0])],
                mean=mean.tolist(),
                std=(mean * 0.2).tolist(),
                entropy=entropy,
                expected_entropy=entropy * 0.7,
                mutual_info=entropy * 0.3,
                variance=float(mean[order[0]] * 0.05),
                variation_ratio=0.1 * (i % 5),
                margin=float(mean[order[0]] - mean[order[1]]),
                self_confidence=float(mean[version.classes.index(given)]),
                normalized_margin=0.0,
                ood=float(i) / count,
                samples=20,
            )
        )
        ids.append(image.id)
    store.sync()
    return ids


def csrf_from(html: str) -> str:
    found = re.search(r'name="csrf-token" content="([^"]+)"', html) or re.search(
        r'name="csrf_token" value="([^"]+)"', html
    )
    assert found, "no CSRF token in the page"
    return found.group(1)


def login(client, username: str, password: str | None = None):
    """Log ``client`` in through the form; returns the CSRF token for later calls."""
    token = csrf_from(client.get("/login").get_data(as_text=True))
    response = client.post(
        "/login",
        data={
            "username": username,
            "password": password or PASSWORDS[username],
            "csrf_token": token,
        },
    )
    assert response.status_code == 302, response.get_data(as_text=True)
    return csrf_from(client.get("/account/password").get_data(as_text=True))
