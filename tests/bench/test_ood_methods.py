"""The OOD methods `bench quality` compares `ood` with: hand-checked on tiny inputs."""

from __future__ import annotations

import math

import numpy as np
import pytest

from reviewer.bench import ood_methods

# Two classes around (0, 0) and (10, 0); centred rows (±1, 0) and (0, ±2) twice each.
FEATURES = np.array([[1, 0], [-1, 0], [0, 2], [0, -2], [11, 0], [9, 0], [10, 2], [10, -2]], float)
LABELS = np.array([0, 0, 0, 0, 1, 1, 1, 1])


def test_mahalanobis_uses_the_shared_covariance_and_the_nearest_class():
    fit = ood_methods.fit_gaussians(FEATURES, LABELS)
    np.testing.assert_allclose(fit["means"], [[0, 0], [10, 0]])
    # Tied covariance diag(0.5, 2.0) (plus a 0.1% ridge): precision about diag(2, 0.5).
    np.testing.assert_allclose(np.diag(fit["tied"]), [2.0, 0.5], rtol=5e-3)
    distances = ood_methods.mahalanobis(fit, [[1.0, 0.0], [10.0, 2.0], [5.0, 0.0]])
    np.testing.assert_allclose(distances, [2.0, 2.0, 50.0], rtol=5e-3)


def test_gaussian_density_is_the_best_class_negative_log_density_up_to_a_constant():
    fit = ood_methods.fit_gaussians(FEATURES, LABELS)
    (precision, log_det), _ = fit["per_class"]
    point = np.array([[0.5, 1.0]])
    expected = 0.5 * (point[0] @ precision @ point[0] + log_det)
    assert ood_methods.gaussian_density(fit, point)[0] == pytest.approx(expected)
    assert ood_methods.gaussian_density(fit, [[5.0, 9.0]])[0] > expected


def test_energy_is_minus_logsumexp():
    logits = np.array([[0.0, 0.0], [1000.0, 0.0]])
    np.testing.assert_allclose(ood_methods.energy(logits), [-math.log(2), -1000.0])


def test_all_methods_score_every_image_and_the_far_ones_higher():
    rng = np.random.default_rng(0)
    inside, elsewhere = [3.0, 3.0, 0.1, 0.1], [0.1, 0.1, 3.0, 3.0]  # spread along other axes
    part = lambda n, spread=inside: {  # noqa: E731
        "penultimate": np.abs(rng.normal(size=(n, 4))) * spread,
        "prefix": np.abs(rng.normal(size=(n, 4))) * spread,
        "logits": rng.normal(size=(n, 2)),
        "entropy": rng.uniform(0, 0.3, n),
        "mutual_info": rng.uniform(0, 0.1, n),
    }
    train, held = part(60) | {"y": np.arange(60) % 2}, part(20)
    near, far = part(10), part(10, spread=elsewhere)
    near_scores = ood_methods.all_methods(train, held, near)
    far_scores = ood_methods.all_methods(train, held, far)
    assert set(near_scores) == {
        "entropy", "mutual_info", "energy", "mahalanobis", "gaussian_density",
        "knn_penultimate", "knn_prefix", "max_z",
    }  # fmt: skip
    for method in ("mahalanobis", "gaussian_density", "knn_penultimate", "knn_prefix", "max_z"):
        assert far_scores[method].min() > near_scores[method].max(), method
