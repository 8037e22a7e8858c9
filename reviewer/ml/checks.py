"""Input checks for the pure-numpy math: every public function of ml/ validates its arrays once.

Each check returns a float64 (or int64) copy of its input, or raises ValueError with a message
that names the argument and the problem (shape, length, NaN, negative or unnormalised
probabilities, class indices out of range). No TensorFlow, no database.
"""

from __future__ import annotations

import numpy as np

SUM_TOLERANCE = 1e-3  # softmax rows in float32 can be off by ~1e-6; anything larger is a bug
NO_CLASS = -1  # class index meaning "this item has no label (human or given) yet"


def fail_unless(condition: bool, message: str) -> None:
    if not condition:
        raise ValueError(message)


def as_float(values, name: str, ndim: int, n: int | None = None) -> np.ndarray:
    """Float64 copy of ``values`` checked for dimensionality, length and finiteness."""
    array = np.asarray(values, dtype=np.float64)  # a ragged or non-numeric input raises here
    fail_unless(array.ndim == ndim, f"{name} must be {ndim}-D, got shape {array.shape}")
    fail_unless(n is None or len(array) == n, f"{name} must have length {n}, got {len(array)}")
    fail_unless(bool(np.isfinite(array).all()), f"{name} contains non-finite values (NaN/inf)")
    return array


def as_probs(probs, name: str, ndim: int) -> np.ndarray:
    """Probabilities [..., K]: finite, non-negative, rows summing to 1 within SUM_TOLERANCE."""
    array = as_float(probs, name, ndim)
    fail_unless(array.shape[-1] >= 1, f"{name} needs at least one class, got {array.shape}")
    fail_unless(not (array < 0).any(), f"{name} contains negative probabilities")
    worst = float(np.abs(array.sum(axis=-1) - 1.0).max(initial=0.0))
    fail_unless(worst <= SUM_TOLERANCE, f"{name} rows do not sum to 1 (off by up to {worst:.3g})")
    return array


def as_classes(y, n: int, num_classes: int, *, allow_missing: bool) -> np.ndarray:
    """Int64 class indices ``y`` [N] in [0, K), or NO_CLASS where ``allow_missing``."""
    array = np.asarray(y)
    fail_unless(array.shape == (n,), f"y must have shape ({n},), got {array.shape}")
    integral = array.dtype.kind == "f" and np.isfinite(array).all() and (array % 1 == 0).all()
    fail_unless(array.dtype.kind in "iu" or bool(integral), "y must be integers (class indices)")
    array = array.astype(np.int64)
    low = NO_CLASS if allow_missing else 0
    bad = (array < low) | (array >= num_classes)
    fail_unless(
        not bad.any(), f"class indices out of range [{low}, {num_classes}): {array[bad][:5]}"
    )
    return array


def as_flags(values, name: str, n: int) -> np.ndarray:
    array = as_float(values, name, 1, n)
    fail_unless(bool(np.isin(array, (0.0, 1.0)).all()), f"{name} must be booleans (0/1)")
    return array


def validate_samples(samples) -> np.ndarray:
    """Samples as float64 [T, N, K]; ValueError unless 3-D, T >= 1, finite, non-negative and
    each row sums to 1 within ``SUM_TOLERANCE``."""
    array = as_probs(samples, "samples", 3)
    fail_unless(array.shape[0] >= 1, "samples needs at least one sample (T >= 1)")
    return array
