"""Fitting a version's OOD score (reviewer.ml.ood) on in-distribution images only: the
neighbour index from one set, the p-values' reference (features and MC-dropout entropy at the
card's T) from another. Training fits on its training and held-out digits; ``reviewer register
--fit-data DIR`` on a folder of the user's in-distribution images, split here. TensorFlow is
reached only through `reviewer.ml.mc`, imported inside the functions.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from reviewer.core import images
from reviewer.ml import ood, uncertainty
from reviewer.training.errors import TrainingError

logger = logging.getLogger(__name__)

REFERENCE_FRACTION = 0.15  # of --fit-data's images: the p-values' reference, the rest indexed
MIN_FIT_IMAGES = 20  # fewer gives p-values too coarse to rank by (a reference of 3 or so)


def fit(model, index_images, reference_images, *, T: int, seed: int) -> ood.Fit:
    """The OOD fit of ``model``: ``index_images`` [N, ...] become the neighbour index,
    ``reference_images`` [M, ...] (others, never indexed) give the p-values' reference."""
    from reviewer.ml import mc

    samples, reference = mc.sample(model, reference_images, T, seed=seed, with_features=True)
    params, index = ood.fit_ood(
        mc.features(model, index_images),
        reference_features=reference,
        reference_entropy=uncertainty.summarize(samples).entropy,
        seed=seed,
    )
    return ood.Fit(params, index)


def fit_from_folder(model, folder, spec: dict, *, T: int, seed: int = 0) -> ood.Fit:
    """The OOD fit on every image under ``folder`` (any layout, class folders included),
    loaded as the worker loads images; a seeded REFERENCE_FRACTION is the reference.
    TrainingError when the folder has fewer than MIN_FIT_IMAGES usable images."""
    folder = Path(folder)
    if not folder.is_dir():
        raise TrainingError(f"--fit-data {folder}: not a directory")
    paths = sorted(p for p in folder.rglob("*") if p.is_file() and images.has_image_extension(p))
    options = dict(size=(spec["height"], spec["width"]), channels=spec["channels"])
    x, _, failed = images.load_batch_tolerant(paths, **options, scale=spec["scale"])
    for index, reason in failed.items():
        logger.warning("--fit-data: skipping %s: %s", paths[index], reason)
    if len(x) < MIN_FIT_IMAGES:
        raise TrainingError(
            f"--fit-data {folder}: {len(x)} usable images; the OOD fit needs at least "
            f"{MIN_FIT_IMAGES} in-distribution images (a few hundred give finer p-values)"
        )
    order = np.random.default_rng(seed).permutation(len(x))
    n_reference = max(2, round(REFERENCE_FRACTION * len(x)))
    reference, indexed = order[:n_reference], order[n_reference:]
    logger.info("OOD fit: %d images indexed, %d as the reference", len(indexed), len(reference))
    return fit(model, x[indexed], x[reference], T=T, seed=seed)
