"""Out-of-distribution score: hand-checked distances and a synthetic Gaussian problem."""

import json
import math

import numpy as np
import pytest

from reviewer.ml import ood
from reviewer.ml.evaluation import auroc

# Class 0 around (0, 0) and class 1 around (10, 0), each spread (±1, 0) and (0, ±2).
# Centred rows: (±1, 0) four times and (0, ±2) four times over N = 8, so the tied covariance
# is diag(4 * 1 / 8, 4 * 4 / 8) = diag(0.5, 2.0) and the precision diag(2.0, 0.5).
HAND_FEATURES = np.array(
    [[1, 0], [-1, 0], [0, 2], [0, -2], [11, 0], [9, 0], [10, 2], [10, -2]], dtype=float
)
HAND_LABELS = np.array([0, 0, 0, 0, 1, 1, 1, 1])
REF_ENTROPY = [0.0, 1.0, 2.0, 3.0, 4.0]  # median 2, IQR 3 - 1 = 2


def hand_params():
    return ood.fit_ood(
        HAND_FEATURES,
        HAND_LABELS,
        num_classes=2,
        reference_features=HAND_FEATURES[:5],
        reference_entropy=REF_ENTROPY,
    )


def test_fit_recovers_hand_means_and_precision():
    params = hand_params()
    assert params["version"] == 1 and params["dim"] == 2 and params["classes"] == [0, 1]
    np.testing.assert_allclose(params["class_means"], [[0, 0], [10, 0]], atol=1e-12)
    np.testing.assert_allclose(params["precision"], [[2.0, 0], [0, 0.5]], rtol=1e-5, atol=1e-9)
    assert params["entropy"]["location"] == 2.0
    assert params["entropy"]["scale"] == pytest.approx(2.0 / 1.349)


def test_mahalanobis_distance_by_hand():
    params = hand_params()
    points = np.array([[0.0, 3.0], [5.0, 0.0], [10.0, 0.0]])
    # (0, 3): 0²·2 + 3²·0.5 = 4.5 to class 0 (class 1: 10²·2 + 4.5 = 204.5) -> √4.5.
    # (5, 0): 5²·2 = 50 to either class -> √50.   (10, 0): on class 1's mean -> 0.
    expected = [math.sqrt(4.5), math.sqrt(50.0), 0.0]
    np.testing.assert_allclose(
        ood.mahalanobis_distance(points, params), expected, rtol=1e-5, atol=1e-6
    )


def test_reference_distance_is_standardised_robustly():
    params = hand_params()
    # Reference rows (±1, 0), (0, ±2) and (11, 0) all lie at d² = 1²·2 = 2²·0.5 = 2 from their
    # class mean, so the median distance is √2.
    assert params["distance"]["location"] == pytest.approx(math.sqrt(2), rel=1e-5)
    # A constant reference signal has IQR 0: the scale falls back to MIN_SCALE, no division by 0.
    flat = ood.fit_ood(
        HAND_FEATURES,
        HAND_LABELS,
        num_classes=2,
        reference_features=np.zeros((4, 2)),  # all at distance 0 from class 0
        reference_entropy=[0.5] * 4,
    )
    assert flat["distance"] == {"location": 0.0, "scale": ood.MIN_SCALE}
    assert flat["entropy"] == {"location": 0.5, "scale": ood.MIN_SCALE}
    score = ood.ood_score(np.array([[0.0, 0.0], [0.0, 1.0]]), [0.5, 0.5], flat)
    assert score[0] == 0.0 and score[1] == pytest.approx(math.sqrt(0.5) / ood.MIN_SCALE, rel=1e-5)


def gaussian_problem(seed=0, dim=5):
    rng = np.random.default_rng(seed)
    mixing = rng.normal(size=(dim, dim)) / math.sqrt(dim)  # a shared, correlated covariance
    centres = np.zeros((2, dim))
    centres[1, 0] = 6.0

    def draw(n):
        labels = rng.integers(0, 2, size=n)
        return centres[labels] + rng.normal(size=(n, dim)) @ mixing, labels

    train, train_labels = draw(1000)
    reference, _ = draw(300)
    params = ood.fit_ood(
        train,
        train_labels,
        num_classes=2,
        reference_features=reference,
        reference_entropy=rng.uniform(0.0, 0.3, size=300),
    )
    return rng, draw, params


def test_far_points_score_higher_than_in_distribution():
    rng, draw, params = gaussian_problem()
    inside, _ = draw(300)
    far = rng.normal(size=(300, 5)) + 40.0  # far from both classes
    low_entropy = np.full(300, 0.05)  # confident on both: only the distance can tell them apart
    inside_scores = ood.ood_score(inside, low_entropy, params)
    far_scores = ood.ood_score(far, low_entropy, params)
    assert far_scores.min() > np.percentile(inside_scores, 99)
    assert auroc(np.r_[far_scores, inside_scores], np.r_[np.ones(300), np.zeros(300)]) == 1.0
    assert np.median(inside_scores) < 2.0  # standardised: typical data sits near 0


def test_high_entropy_alone_raises_the_score():
    _, draw, params = gaussian_problem(seed=1)
    inside, _ = draw(50)
    calm = ood.ood_score(inside, np.full(50, 0.1), params)
    confused = ood.ood_score(inside, np.full(50, 2.0), params)  # far above the 0-0.3 reference
    assert (confused > calm).all()
    assert confused.min() > 5.0


def test_params_round_trip_through_json():
    _, draw, params = gaussian_problem(seed=2)

    def plain(value):
        if isinstance(value, dict):
            return all(isinstance(k, str) and plain(v) for k, v in value.items())
        if isinstance(value, list):
            return all(plain(v) for v in value)
        return type(value) in (int, float, str)

    assert plain(params)
    loaded = json.loads(json.dumps(params))
    assert loaded == params
    points, _ = draw(20)
    entropy = np.linspace(0, 1, 20)
    np.testing.assert_array_equal(
        ood.ood_score(points, entropy, loaded), ood.ood_score(points, entropy, params)
    )


def test_mismatched_dimension_raises():
    params = hand_params()
    with pytest.raises(ValueError, match="D=2"):
        ood.mahalanobis_distance(np.zeros((3, 3)), params)
    with pytest.raises(ValueError, match="D=2"):
        ood.ood_score(np.zeros((3, 3)), np.zeros(3), params)
    with pytest.raises(ValueError, match="D=2"):
        ood.fit_ood(
            HAND_FEATURES,
            HAND_LABELS,
            num_classes=2,
            reference_features=np.zeros((5, 3)),
            reference_entropy=REF_ENTROPY,
        )


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"features": np.full((8, 2), np.nan)}, "non-finite"),
        ({"features": np.zeros(8)}, "2-D"),
        ({"labels": np.array([0, 0, 0, 0, 1, 1, 1, 2])}, "out of range"),
        ({"labels": HAND_LABELS[:4]}, "shape"),
        ({"reference_entropy": [0.0, 1.0]}, "length M"),
        ({"num_classes": 0}, "num_classes"),
    ],
)
def test_fit_rejects_bad_inputs(change, message):
    kwargs = {
        "features": HAND_FEATURES,
        "labels": HAND_LABELS,
        "num_classes": 2,
        "reference_features": HAND_FEATURES[:5],
        "reference_entropy": REF_ENTROPY,
    }
    kwargs.update(change)
    features, labels = kwargs.pop("features"), kwargs.pop("labels")
    with pytest.raises(ValueError, match=message):
        ood.fit_ood(features, labels, **kwargs)


def test_score_rejects_bad_inputs_and_params():
    params = hand_params()
    with pytest.raises(ValueError, match="one value per feature row"):
        ood.ood_score(np.zeros((3, 2)), np.zeros(2), params)
    with pytest.raises(ValueError, match="non-finite"):
        ood.ood_score(np.zeros((1, 2)), [np.nan], params)
    with pytest.raises(ValueError, match="version"):
        ood.mahalanobis_distance(np.zeros((1, 2)), {**params, "version": 2})
    with pytest.raises(ValueError, match="missing"):
        ood.mahalanobis_distance(np.zeros((1, 2)), {"version": 1})
