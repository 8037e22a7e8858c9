"""Scoring's arithmetic, outside any transaction: load the claimed images as the version expects
them, sample them, and summarise the samples into scores rows, the OOD score included (the version's
fit, reviewer.ml.ood, or without one its fallback score). No database.
"""

from __future__ import annotations

import numpy as np

from reviewer.core.config import DEFAULT_MAX_DECODED_BYTES
from reviewer.core.files import FileStore
from reviewer.core.images import load_batch_tolerant
from reviewer.core.objects import ObjectStore
from reviewer.ml import ood, uncertainty
from reviewer.ml.checks import NO_CLASS


def load_images(
    version, store: FileStore | ObjectStore, claimed, *, max_decoded_bytes=DEFAULT_MAX_DECODED_BYTES
):
    """Load the images of ``claimed`` (anything with ``id`` and ``path``) as ``version`` expects
    them (no database). Returns (array, the items loaded in the array's order, failure reasons
    by image id)."""
    spec = version.input_spec
    paths, failures = [], {}
    for item, source in zip(claimed, store.sources([item.path for item in claimed]), strict=True):
        if isinstance(source, Exception):  # leaves the store, or (object storage) unreadable
            paths.append(None)
            failures[item.id] = _unreadable(source)
        else:
            paths.append(source)
    options = dict(
        size=(spec["height"], spec["width"]),
        channels=spec["channels"],
        scale=spec.get("scale", 255.0),
        max_decoded_bytes=max_decoded_bytes,
    )
    loadable = [(item, path) for item, path in zip(claimed, paths, strict=True) if path]
    array, good, failed = load_batch_tolerant([p for _, p in loadable], **options)
    failures.update({loadable[i][0].id: reason for i, reason in failed.items()})
    return array, [loadable[i][0] for i in good], failures


def _unreadable(exc: Exception) -> str:
    return "file not found" if isinstance(exc, FileNotFoundError) else str(exc)


def compute(
    sampler, version, ood_fit, store: FileStore | ObjectStore, claimed, T: int, **load_options
):
    """Load and sample ``claimed`` (no database). Returns (rows by image id, failures by id);
    ``load_options`` go to `load_images`."""
    array, items, failures = load_images(version, store, claimed, **load_options)
    return score_loaded(sampler, version, ood_fit, array, items, T), failures


def score_loaded(sampler, version, ood_fit: ood.Fit | None, array, items, T: int) -> dict:
    """Sample the loaded images (``array``, one per item of ``items``) and summarise them:
    the scores rows by image id (no database, no files). ``ood_fit`` None: the fallback."""
    if not items:
        return {}
    index = {name: k for k, name in enumerate(version.classes)}
    given = np.array([index.get(item.given_label, NO_CLASS) for item in items])
    if ood_fit is not None:
        samples, feats = sampler.sample_with_features(version, array, T)
        summary = uncertainty.summarize(samples, y=given)
        ood_values = ood_fit.score(feats, summary.entropy).tolist()
    else:  # a version registered without in-distribution data to fit on
        summary = uncertainty.summarize(sampler.sample(version, array, T), y=given)
        ood_values = ood.fallback_score(summary.entropy, len(version.classes)).tolist()
    rows = {}
    for k, item in enumerate(items):
        row = summary.row(k)
        row["predicted_label"] = version.classes[row.pop("predicted")]
        rows[item.id] = {**row, "ood": ood_values[k], "samples": T}
    return rows
