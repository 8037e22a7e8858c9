"""Comparing Keras models in tests."""

from __future__ import annotations

import numpy as np


def same_weights(first: list, second: list) -> bool:
    """Whether two models' ``get_weights()`` lists are identical, array by array."""
    return all(np.array_equal(a, b) for a, b in zip(first, second, strict=True))
