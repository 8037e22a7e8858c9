"""The OOD methods ``reviewer bench quality`` sets beside the product's `ood`, in pure numpy:
each fitted on in-distribution images only (the version's training digits, its held-out digits
as the reference) and scored higher = stranger.

- ``energy``: −logsumexp of the deterministic logits (Liu et al. 2020).
- ``mahalanobis``: the smallest squared Mahalanobis distance of the penultimate features to a
  class mean under one shared covariance (Lee et al. 2018).
- ``gaussian_density``: the negative log-density under the best class of a per-class Gaussian
  of the penultimate features (the density DDU reads, Mukhoti et al. 2023).
- ``knn_penultimate``: the cosine distance to the nearest training image's penultimate features
  (Sun et al. 2022), and ``knn_prefix``, the same on the prefix features `ood` uses.
- ``max_z``: the score `ood` replaced, the larger of the robustly standardised Mahalanobis
  distance and entropy.
- ``entropy`` and ``mutual_info`` of the MC-dropout samples as the worker stored them.
"""

from __future__ import annotations

import numpy as np

from reviewer.ml import ood

RIDGE = 1e-3  # added to a covariance's diagonal, as a share of its mean variance


def _ridged_inverse(covariance: np.ndarray) -> tuple[np.ndarray, float]:
    dim = covariance.shape[0]
    ridged = covariance + RIDGE * max(np.trace(covariance) / dim, 1e-12) * np.eye(dim)
    sign, log_det = np.linalg.slogdet(ridged)
    return np.linalg.inv(ridged), float(log_det if sign > 0 else np.inf)


def _squared_distances(x, means, precisions) -> np.ndarray:
    """[N, C] squared Mahalanobis distance of each row to each class mean."""
    out = np.empty((len(x), len(means)))
    for c, (mean, precision) in enumerate(zip(means, precisions, strict=True)):
        centred = x - mean
        out[:, c] = np.einsum("nd,de,ne->n", centred, precision, centred)
    return out


def fit_gaussians(features, y) -> dict:
    """Class means, the shared (tied) precision, and per-class precisions and log-determinants."""
    features, classes = np.asarray(features, np.float64), np.unique(y)
    means = np.stack([features[y == c].mean(axis=0) for c in classes])
    centred = features - means[np.searchsorted(classes, y)]
    tied, _ = _ridged_inverse(centred.T @ centred / len(features))
    per_class = [_ridged_inverse(np.cov(features[y == c], rowvar=False)) for c in classes]
    return {"means": means, "tied": tied, "per_class": per_class}


def mahalanobis(fit: dict, features) -> np.ndarray:
    tied = [fit["tied"]] * len(fit["means"])
    return _squared_distances(np.asarray(features, np.float64), fit["means"], tied).min(axis=1)


def gaussian_density(fit: dict, features) -> np.ndarray:
    precisions = [p for p, _ in fit["per_class"]]
    log_dets = np.array([d for _, d in fit["per_class"]])
    squared = _squared_distances(np.asarray(features, np.float64), fit["means"], precisions)
    return (0.5 * (squared + log_dets[None, :])).min(axis=1)


def energy(logits) -> np.ndarray:
    logits = np.asarray(logits, np.float64)
    top = logits.max(axis=1, keepdims=True)
    return -(top[:, 0] + np.log(np.exp(logits - top).sum(axis=1)))


def knn(train_features, features) -> np.ndarray:
    return ood.nearest_distance(features, ood.normalise_rows(train_features))


def _robust_z(values, reference) -> np.ndarray:
    q1, median, q3 = np.percentile(reference, [25, 50, 75])
    return (np.asarray(values) - median) / max((q3 - q1) / 1.349, 1e-6)


def all_methods(train: dict, held: dict, evaluated: dict) -> dict[str, np.ndarray]:
    """Every method's scores of ``evaluated``. Each argument holds ``penultimate`` and
    ``prefix`` features and ``logits``; ``train`` its ``y``; ``held`` and ``evaluated`` their
    ``entropy`` (``evaluated`` also ``mutual_info``). ``held`` is the max_z reference."""
    gaussians = fit_gaussians(train["penultimate"], train["y"])
    distance = lambda part: np.sqrt(mahalanobis(gaussians, part["penultimate"]))  # noqa: E731
    return {
        "entropy": np.asarray(evaluated["entropy"]),
        "mutual_info": np.asarray(evaluated["mutual_info"]),
        "energy": energy(evaluated["logits"]),
        "mahalanobis": mahalanobis(gaussians, evaluated["penultimate"]),
        "gaussian_density": gaussian_density(gaussians, evaluated["penultimate"]),
        "knn_penultimate": knn(train["penultimate"], evaluated["penultimate"]),
        "knn_prefix": knn(train["prefix"], evaluated["prefix"]),
        "max_z": np.maximum(
            _robust_z(distance(evaluated), distance(held)),
            _robust_z(evaluated["entropy"], held["entropy"]),
        ),
    }
