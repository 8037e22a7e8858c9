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

from reviewer.ml import ood, uncertainty
from reviewer.training import datasets
from reviewer.training.errors import TrainingError

logger = logging.getLogger(__name__)

REFERENCE_FRACTION = 0.15  # of --fit-data's images: the p-values' reference, the rest indexed
REFERENCE_ROWS = 2000  # at most this many reference images (p-values to 1/2001 and the tail)
MIN_FIT_IMAGES = 100  # fewer gives p-values too coarse to rank by (a reference under 15)
LARGE_INDEX_BYTES = 256 * 2**20  # an index above this is said in the log


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
    if index.nbytes > LARGE_INDEX_BYTES:
        logger.warning(
            "the OOD index is %d x %d floats (%.0f MiB): the features (the input of the model's "
            "first dropout) are wide; a dropout after a pooling layer makes them narrower",
            *index.shape, index.nbytes / 2**20,
        )  # fmt: skip
    return ood.Fit(params, index)


def fit_from_folder(model, folder, spec: dict, *, T: int, seed: int = 0) -> ood.Fit:
    """The OOD fit on the images under ``folder`` (any layout, class folders included), loaded
    as the worker loads images: a seeded REFERENCE_FRACTION (at most REFERENCE_ROWS) is the
    reference, at most ood.INDEX_ROWS of the rest the index; only those are decoded.
    TrainingError when fewer than MIN_FIT_IMAGES images are usable."""
    folder = Path(folder)
    if not folder.is_dir():
        raise TrainingError(f"--fit-data {folder}: not a directory")
    paths = datasets.list_images(folder)
    order = np.random.default_rng(seed).permutation(len(paths))
    n_reference = min(max(2, round(REFERENCE_FRACTION * len(paths))), REFERENCE_ROWS)
    chosen = [paths[i] for i in order[: n_reference + ood.INDEX_ROWS]]
    x, good = datasets.load_paths(chosen, spec, what="--fit-data: ")
    if len(x) < MIN_FIT_IMAGES:
        raise TrainingError(
            f"--fit-data {folder}: {len(x)} usable images; the OOD fit needs at least "
            f"{MIN_FIT_IMAGES} in-distribution images (a few hundred give finer p-values)"
        )
    is_reference = np.array(good) < n_reference  # the first n_reference chosen, less failures
    logger.info("OOD fit: %d images indexed, %d as the reference", (~is_reference).sum(),
                is_reference.sum())  # fmt: skip
    return fit(model, x[~is_reference], x[is_reference], T=T, seed=seed)
