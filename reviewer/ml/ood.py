"""Pure-numpy out-of-distribution score: how strange an image is to the active model, combining
a feature-space distance (Mahalanobis distance to the nearest class mean under one shared, tied
covariance, as in Lee et al. 2018) with predictive uncertainty (the entropy of the MC-dropout
mean). ``fit_ood`` fits the class means and covariance on training features and standardises
both signals on held-out in-distribution reference data; its parameters are a JSON-serialisable
dict stored in the model's card.json. No TensorFlow, no database.
"""

import numpy as np

from reviewer.ml.checks import as_float, fail_unless

PARAMS_VERSION = 1
RIDGE = 1e-6  # added to the covariance diagonal as a fraction of its mean variance (trace / D)
IQR_TO_SIGMA = 1.349  # IQR of a normal distribution in units of its standard deviation
PARAMS_KEYS = {"dim", "classes", "class_means", "precision", "distance", "entropy"}
MIN_SCALE = 1e-6  # floor for a scale, so a constant reference signal cannot divide by zero


def _robust_location_scale(values: np.ndarray) -> dict:
    """Median and IQR-based sigma: a few outliers in the reference set barely move either."""
    q1, median, q3 = np.percentile(values, [25, 50, 75])
    return {"location": float(median), "scale": float(max((q3 - q1) / IQR_TO_SIGMA, MIN_SCALE))}


def fit_ood(features, y, *, num_classes: int, reference_features, reference_entropy) -> dict:
    """Fit the OOD score's parameters.

    Parameters
    ----------
    features : [N, D] float, training-set features (e.g. the penultimate layer).
    y : [N] int in [0, num_classes), their classes.
    num_classes : K. Classes without any training feature get no mean (ignored by the distance).
    reference_features : [M, D] float, held-out in-distribution features.
    reference_entropy : [M] float, the predictive entropy (nats) of those same items.

    Returns
    -------
    dict, JSON-serialisable (lists of floats): version, dim, num_classes, classes (those with a
    mean), class_means [C, D], precision [D, D] (inverse of the ridged tied covariance), and the
    robust ``location``/``scale`` of the reference ``distance`` and ``entropy``.
    """
    features = as_float(features, "features", 2)
    n, dim = features.shape
    fail_unless(n >= 2 and dim >= 1, f"features needs >= 2 rows and >= 1 column, got {(n, dim)}")
    fail_unless(int(num_classes) == num_classes >= 1, f"num_classes must be >= 1: {num_classes}")
    y = np.asarray(y)
    fail_unless(y.shape == (n,), f"y must have shape ({n},), got {y.shape}")
    fail_unless(y.dtype.kind in "iu", f"y must be integers (class indices), got dtype {y.dtype}")
    fail_unless(
        bool(((y >= 0) & (y < num_classes)).all()),
        f"class indices out of range [0, {num_classes})",
    )
    reference = as_float(reference_features, "reference_features", 2)
    fail_unless(reference.shape[1] == dim, f"reference_features must have D={dim} columns")
    fail_unless(len(reference) >= 1, "reference_features needs at least one row")
    ref_entropy = as_float(reference_entropy, "reference_entropy", 1)
    fail_unless(len(ref_entropy) == len(reference), "reference_entropy must have length M")

    classes = np.unique(y)
    means = np.stack([features[y == c].mean(axis=0) for c in classes])
    centred = features - means[np.searchsorted(classes, y)]
    covariance = centred.T @ centred / n
    # A ridge keeps the inverse finite when D > N or features are collinear (ReLU units that
    # are always zero); scaled by the mean variance so it is unit-free.
    ridge = RIDGE * max(float(np.trace(covariance)) / dim, MIN_SCALE)
    precision = np.linalg.pinv(covariance + ridge * np.eye(dim), hermitian=True)
    precision = (precision + precision.T) / 2.0  # exactly symmetric, so d² cannot go negative
    params = {
        "version": PARAMS_VERSION,
        "dim": int(dim),
        "num_classes": int(num_classes),
        "classes": [int(c) for c in classes],
        "class_means": means.tolist(),
        "precision": precision.tolist(),
    }
    params["distance"] = _robust_location_scale(_distance(reference, means, precision))
    params["entropy"] = _robust_location_scale(ref_entropy)
    return params


def _check_params(params: dict) -> tuple[np.ndarray, np.ndarray]:
    fail_unless(isinstance(params, dict), "params must be the dict returned by fit_ood")
    version = params.get("version")
    fail_unless(version == PARAMS_VERSION, f"unsupported OOD params version {version!r}")
    missing = sorted(PARAMS_KEYS - params.keys())
    fail_unless(not missing, f"OOD params are missing {missing}")
    means = np.asarray(params["class_means"], dtype=np.float64)
    precision = np.asarray(params["precision"], dtype=np.float64)
    dim = params["dim"]
    ok = means.ndim == 2 and means.shape[1] == dim and precision.shape == (dim, dim)
    fail_unless(ok, "OOD params are inconsistent: class_means / precision do not match dim")
    return means, precision


def _checked_distance(features: np.ndarray, params: dict) -> np.ndarray:
    means, precision = _check_params(params)
    fail_unless(
        features.shape[1] == means.shape[1],
        f"features have D={features.shape[1]} but the OOD params were fit with D={means.shape[1]}",
    )
    return _distance(features, means, precision)


def _distance(features: np.ndarray, means: np.ndarray, precision: np.ndarray) -> np.ndarray:
    # d²(x, μ) = xᵀPx − 2 xᵀPμ + μᵀPμ for all classes at once: one [N, D] x [D, D] product.
    projected = features @ precision
    squared = (
        (projected * features).sum(axis=1)[:, None]
        - 2.0 * projected @ means.T
        + ((means @ precision) * means).sum(axis=1)[None, :]
    )
    return np.sqrt(np.maximum(squared.min(axis=1), 0.0))  # clip rounding below zero


def mahalanobis_distance(features, params: dict) -> np.ndarray:
    """Min over classes of the (not squared) Mahalanobis distance: features [N, D] -> [N].

    Uses the class means and tied precision from ``fit_ood``; a different D raises ValueError.
    """
    return _checked_distance(as_float(features, "features", 2), params)


def ood_score(features, entropy, params: dict) -> np.ndarray:
    """Out-of-distribution score, higher = stranger: features [N, D], entropy [N] -> [N].

    Each signal is standardised against the reference data, (x − median) / (IQR / 1.349), and
    the score is the larger of the two: about 0 is typical of in-distribution data, and values
    above about 3 are rare there.
    """
    features = as_float(features, "features", 2)
    entropy = as_float(entropy, "entropy", 1)
    fail_unless(len(entropy) == len(features), "entropy must have one value per feature row")
    distance = _checked_distance(features, params)  # validates params before they are read
    dist, ent = params["distance"], params["entropy"]
    z_distance = (distance - dist["location"]) / dist["scale"]
    z_entropy = (entropy - ent["location"]) / ent["scale"]
    # max, not a sum: an input far from every class is often classified with LOW entropy (the
    # classic confident-on-garbage failure), and a sum would let that low entropy cancel the
    # large distance. With max, either signal alone is enough to surface the item.
    return np.maximum(z_distance, z_entropy)
