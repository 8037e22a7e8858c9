"""Scoring without TensorFlow: a fake sampler, versions with a placeholder model file, and the
small steps the worker tests repeat (ingest PNGs, count rows, claim, build a worker)."""

from __future__ import annotations

import hashlib
import time
from collections import Counter
from pathlib import Path

import numpy as np
from sqlalchemy import func, select

from reviewer.core.files import FileStore
from reviewer.core.schema import utcnow
from reviewer.ingest import run_ingest
from reviewer.scoring.claims import claim_batch
from reviewer.scoring.worker import Worker
from reviewer.training import registry
from tests.support.images import write_pngs

REPO_ROOT = Path(__file__).resolve().parents[2]
DIGITS = [str(d) for d in range(10)]


class FakeSampler:
    """Samples that depend on the image only (plus noise per sample); optionally slow."""

    def __init__(self, delay: float = 0.0):
        self.delay, self.calls = delay, 0
        self.sampled = Counter()  # scoring passes per image (by content), BatchBALD's left out

    def sample(self, version, images, T, *, shared_masks=False):
        self.calls += 1
        if not shared_masks:
            self.sampled.update(hashlib.sha1(row.tobytes()).hexdigest() for row in images)
        self.shared_masks = shared_masks
        time.sleep(self.delay)
        k = len(version.classes)
        base = images.reshape(len(images), -1).mean(axis=1)  # [N]
        logits = np.cos(np.arange(k)[None, :] * (1 + 10 * base[:, None]))  # [N, K]
        # Shared masks: sample t shifts every image's logits the same way.
        shape = (T, 1 if shared_masks else len(images), k)
        noise = np.random.default_rng(0).normal(0, 0.3, shape)
        e = np.exp(logits[None] + noise)
        return e / e.sum(axis=2, keepdims=True)

    def sample_with_features(self, version, images, T):
        return self.sample(version, images, T), self.features(version, images)

    def features(self, version, images):
        return images.reshape(len(images), -1)[:, :8]


def make_version(sessions, config, *, name="m", classes=DIGITS, activate=True, samples=5):
    """A registered version with a placeholder model file (the fake sampler never reads it)."""
    card = {
        "name": name,
        "classes": list(classes),
        "mc_samples": samples,
        "metrics": {},
        "input_spec": registry.input_spec(28, 28, 1),
        "ood": None,
    }
    card, path = registry.write_version(config.model_dir, card, lambda p: p.write_bytes(b"x"))
    with sessions() as session, session.begin():
        version = registry.record_version(session, card, path)
        if activate:
            registry.request_activation(session, version)
    return version


def ingest_pngs(sessions, config, tmp_path, count, start_seed=0) -> list[Path]:
    paths = write_pngs(tmp_path / f"in{start_seed}", count, start_seed)
    run_ingest(sessions, FileStore(config.data_dir), paths, max_pixels=10**7)
    return paths


def count(sessions, model, *where) -> int:
    with sessions() as session:
        return session.scalar(select(func.count()).select_from(model).where(*where))


def make_worker(sessions, config, **kwargs) -> Worker:
    options = {"lease_seconds": 60, "batch_size": 4, "sampler": FakeSampler(), **kwargs}
    return Worker(sessions, FileStore(config.data_dir), **options)


def claim(sessions, version, worker_id, n, now=None, lease=60):
    with sessions() as session, session.begin():
        return claim_batch(session, version, worker_id, n, lease, now or utcnow())
