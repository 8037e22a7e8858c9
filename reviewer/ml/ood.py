"""Pure-numpy out-of-distribution score: how strange an image is to a model version.

Two signals, each turned into an in-distribution p-value on held-out images, then combined:

- **distance**: the cosine distance, 1 − cos, from an image's features to its nearest
  neighbour among the training images' features (kNN with k = 1 on L2-normalised features,
  Sun et al. 2022). The features are the model's deterministic prefix (the input of its first
  MC-dropout layer), averaged onto at most a 4x4 grid (reviewer.ml.mc.features).
- **entropy**: the predictive entropy (nats) of the MC-dropout mean.

A signal's p-value is the share of the held-out reference that is at least as large,
(1 + #{reference ≥ s}) / (M + 1); above the reference's 90th percentile it is the smaller of
that and an exponential tail fitted to the reference's excesses there (five at least, else the
share alone), so values beyond every reference image still rank. The two p-values are combined
by Fisher's method (−2 Σ log p is χ² with 4 degrees of freedom when both are uniform and
independent) and the score is −log10 of the combined p-value: about 0.3 is typical of
in-distribution images, and 3 or more would happen to one in a thousand of them if the two
signals were independent; they are correlated, so it happens more often (``reviewer bench
quality`` measures the share). `fit_ood` returns the JSON-ready parameters (the version's
card.json) and the neighbour index (a float32 array stored beside model.keras). Without a fit,
`fallback_score` (entropy / log K) ranks by uncertainty alone. No TensorFlow, no database.
"""

import math
from dataclasses import dataclass

import numpy as np

from reviewer.ml.checks import as_float, fail_unless

PARAMS_VERSION = 2
PARAMS_KEYS = {"version", "dim", "index_rows", "distance", "entropy"}
INDEX_ROWS = 4096  # at most this many training images in the neighbour index
TAIL = 0.10  # share of the reference above which p-values follow the fitted exponential tail
MIN_TAIL_POINTS = 5  # excesses needed to fit the tail; with fewer, the empirical share alone
MIN_SCALE = 1e-9  # floor for the tail's scale
CHUNK_ROWS = 1024  # feature rows compared with the index at a time (bounds the memory)


def normalise_rows(features) -> np.ndarray:
    """Rows scaled to unit length (an all-zero row stays zero), as float32."""
    features = np.asarray(features, dtype=np.float32)
    norms = np.linalg.norm(features, axis=1, keepdims=True)
    return features / np.maximum(norms, np.float32(1e-12))


def nearest_distance(features, index: np.ndarray) -> np.ndarray:
    """1 − the largest cosine similarity of each row of ``features`` [N, D] to a row of
    ``index`` [R, D] (unit rows, from `fit_ood`): [N] in [0, 2]."""
    unit = normalise_rows(features)
    out = np.empty(len(unit), np.float64)
    for start in range(0, len(unit), CHUNK_ROWS):
        similarity = unit[start : start + CHUNK_ROWS] @ index.T
        out[start : start + CHUNK_ROWS] = 1.0 - similarity.max(axis=1)
    return np.clip(out, 0.0, 2.0)


def _reference(values: np.ndarray) -> dict:
    """A signal's held-out values (sorted) and the exponential tail above their top TAIL
    (``tail_scale`` None: fewer than MIN_TAIL_POINTS values above it to fit one)."""
    ordered = np.sort(values)
    start = float(np.quantile(ordered, 1.0 - TAIL))
    excess = ordered[ordered > start] - start
    scale = max(float(excess.mean()), MIN_SCALE) if len(excess) >= MIN_TAIL_POINTS else None
    return {"sorted": ordered.tolist(), "tail_start": start, "tail_scale": scale}


def log_p_value(values, reference: dict) -> np.ndarray:
    """Natural log of the upper-tail in-distribution p-value of each value (see the module
    docstring): the empirical share, and in the tail the smaller of it and the exponential."""
    values = np.asarray(values, dtype=np.float64)
    ordered = np.asarray(reference["sorted"], dtype=np.float64)
    m = len(ordered)
    at_least = m - np.searchsorted(ordered, values, side="left")
    empirical = np.log((1.0 + at_least) / (m + 1.0))
    start, scale = reference["tail_start"], reference["tail_scale"]
    if scale is None:
        return empirical
    tail = math.log(TAIL) - (values - start) / scale
    return np.where(values > start, np.minimum(tail, empirical), empirical)


def fit_ood(
    train_features, *, reference_features, reference_entropy, max_index_rows=INDEX_ROWS, seed=0
) -> tuple[dict, np.ndarray]:
    """Fit the OOD score on in-distribution images only.

    Parameters
    ----------
    train_features : [N, D] float, features of the images the neighbour index holds (the
        training images); more than ``max_index_rows`` are subsampled with ``seed``.
    reference_features : [M, D] float, features of held-out in-distribution images.
    reference_entropy : [M] float, the predictive entropy (nats) of those same images.

    Returns
    -------
    (params, index): params is JSON-ready (version, dim, index_rows and each signal's
    reference); index is float32 [R, D], unit rows, R ≤ max_index_rows.
    """
    train = as_float(train_features, "train_features", 2)
    n, dim = train.shape
    fail_unless(n >= 1 and dim >= 1, f"train_features needs >= 1 row and column, got {(n, dim)}")
    fail_unless(int(max_index_rows) == max_index_rows >= 1, "max_index_rows must be >= 1")
    reference = as_float(reference_features, "reference_features", 2)
    fail_unless(reference.shape[1] == dim, f"reference_features must have D={dim} columns")
    fail_unless(len(reference) >= 2, "reference_features needs at least two rows")
    entropy = as_float(reference_entropy, "reference_entropy", 1)
    fail_unless(len(entropy) == len(reference), "reference_entropy must have one value per row")
    if n > max_index_rows:
        rows = np.sort(np.random.default_rng(seed).choice(n, size=max_index_rows, replace=False))
        train = train[rows]
    index = normalise_rows(train)
    params = {
        "version": PARAMS_VERSION,
        "dim": int(dim),
        "index_rows": int(len(index)),
        "distance": _reference(nearest_distance(reference, index)),
        "entropy": _reference(entropy),
    }
    return params, index


def is_fitted(params) -> bool:
    """Whether ``params`` are a fit this module scores with (older fits are not)."""
    return isinstance(params, dict) and params.get("version") == PARAMS_VERSION


def _check(params: dict, index: np.ndarray, features: np.ndarray) -> None:
    fail_unless(is_fitted(params), "params must be the dict returned by fit_ood")
    missing = sorted(PARAMS_KEYS - params.keys())
    fail_unless(not missing, f"OOD params are missing {missing}")
    shape = (params["index_rows"], params["dim"])
    fail_unless(index.shape == shape, f"the OOD index has shape {index.shape}, expected {shape}")
    fail_unless(
        features.shape[1] == params["dim"],
        f"features have D={features.shape[1]} but the OOD fit has D={params['dim']}",
    )


def ood_score(features, entropy, params: dict, index) -> np.ndarray:
    """OOD score, higher = stranger: −log10 of the Fisher-combined p-value of the distance
    and the entropy (see the module docstring). features [N, D], entropy [N] -> [N]."""
    features = as_float(features, "features", 2)
    entropy = as_float(entropy, "entropy", 1)
    fail_unless(len(entropy) == len(features), "entropy must have one value per feature row")
    index = np.asarray(index, dtype=np.float32)
    _check(params, index, features)
    log_p = log_p_value(nearest_distance(features, index), params["distance"])
    log_p = log_p + log_p_value(entropy, params["entropy"])
    half = -log_p  # half of Fisher's statistic X = −2 Σ log p
    log_combined = -half + np.log1p(half)  # log of the χ²₄ survival e^(−X/2) (1 + X/2)
    return np.maximum(-log_combined / math.log(10.0), 0.0)


@dataclass(frozen=True)
class Fit:
    """A version's fitted OOD score: the card's parameters and the neighbour index."""

    params: dict
    index: np.ndarray

    def score(self, features, entropy) -> np.ndarray:
        return ood_score(features, entropy, self.params, self.index)


def fallback_score(entropy, num_classes: int) -> np.ndarray:
    """The score of a version without a fit: the entropy as a share of its most, log K
    (0 certain, 1 uniform); it needs no in-distribution data, and only ranks by uncertainty."""
    entropy = as_float(entropy, "entropy", 1)
    fail_unless(int(num_classes) == num_classes >= 1, f"num_classes must be >= 1: {num_classes}")
    return entropy / math.log(max(num_classes, 2))  # one class: the entropy is 0 anyway
