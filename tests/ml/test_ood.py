"""Out-of-distribution score: hand-checked distances and p-values, Fisher's combination, and a
synthetic problem where each signal alone misses a kind of stranger that the score finds."""

import json
import math

import numpy as np
import pytest

from reviewer.ml import ood
from reviewer.ml.evaluation import auroc


def test_nearest_distance_is_one_minus_the_best_cosine_by_hand():
    index = ood.normalise_rows([[1.0, 0.0], [0.0, 2.0]])
    points = np.array([[3.0, 0.0], [1.0, 1.0], [-1.0, 0.0], [0.0, 0.0]])
    expected = [0.0, 1 - 1 / math.sqrt(2), 1.0, 1.0]  # an all-zero row is like nothing
    np.testing.assert_allclose(ood.nearest_distance(points, index), expected, atol=1e-6)


def test_nearest_distance_in_chunks_matches_one_pass(monkeypatch):
    rng = np.random.default_rng(0)
    index, points = ood.normalise_rows(rng.normal(size=(50, 8))), rng.normal(size=(37, 8))
    whole = ood.nearest_distance(points, index)
    monkeypatch.setattr(ood, "CHUNK_ROWS", 5)
    np.testing.assert_allclose(ood.nearest_distance(points, index), whole, atol=1e-6)


def test_p_values_are_the_reference_share_then_an_exponential_tail():
    reference = ood._reference(np.arange(1.0, 101.0))  # 1..100; the top tenth is the tail
    start = reference["tail_start"]
    assert start == pytest.approx(90.1)  # numpy's 90th percentile of 1..100
    excess = np.arange(91.0, 101.0) - start
    assert reference["tail_scale"] == pytest.approx(excess.mean())
    log_p = ood.log_p_value([0.5, 50.0, 50.5, 95.0, 1000.0], reference)
    assert np.exp(log_p[0]) == pytest.approx(101 / 101)  # below every reference value
    assert np.exp(log_p[1]) == pytest.approx(52 / 101)  # 50..100 are at least 50
    assert np.exp(log_p[2]) == pytest.approx(51 / 101)
    tail = math.log(ood.TAIL) - (95.0 - start) / reference["tail_scale"]
    assert log_p[3] == pytest.approx(min(tail, math.log(6 / 101)))
    assert log_p[4] == pytest.approx(math.log(ood.TAIL) - (1000 - start) / excess.mean())
    assert np.all(np.diff(ood.log_p_value(np.linspace(0, 300, 500), reference)) <= 0)


def test_a_tail_with_too_few_points_is_not_fitted_and_p_values_stay_bounded():
    constant = ood._reference(np.zeros(50))  # a saturated softmax: every entropy exactly 0
    assert constant["tail_scale"] is None
    log_p = ood.log_p_value([0.0, 1e-6, 5.0], constant)
    np.testing.assert_allclose(np.exp(log_p), [1.0, 1 / 51, 1 / 51])
    few = ood._reference(np.r_[np.zeros(96), [1.0, 2.0, 3.0, 4.0]])  # 4 values above the 90th
    assert few["tail_scale"] is None
    assert ood._reference(np.r_[np.zeros(95), [1.0, 2.0, 3.0, 4.0, 5.0]])["tail_scale"] > 0


def test_score_is_minus_log10_of_fishers_combination():
    rng = np.random.default_rng(1)
    train, reference = rng.normal(size=(200, 4)), rng.normal(size=(100, 4))
    entropy = rng.uniform(0, 1, 100)
    params, index = ood.fit_ood(train, reference_features=reference, reference_entropy=entropy)
    points, point_entropy = rng.normal(size=(20, 4)) * 3, rng.uniform(0, 3, 20)
    log_p = ood.log_p_value(ood.nearest_distance(points, index), params["distance"])
    log_p += ood.log_p_value(point_entropy, params["entropy"])
    statistic = -2 * log_p  # chi-squared with 4 degrees of freedom: sf = e^(-x/2) (1 + x/2)
    combined = np.exp(-statistic / 2) * (1 + statistic / 2)
    score = ood.ood_score(points, point_entropy, params, index)
    np.testing.assert_allclose(score, -np.log10(combined), rtol=1e-9, atol=1e-12)


def test_reference_images_score_about_a_uniform_p_value():
    rng = np.random.default_rng(2)
    params, index = ood.fit_ood(
        rng.normal(size=(500, 6)),
        reference_features=rng.normal(size=(400, 6)),
        reference_entropy=rng.uniform(0, 1, 400),
    )
    fresh = ood.ood_score(rng.normal(size=(2000, 6)), rng.uniform(0, 1, 2000), params, index)
    combined_p = 10.0**-fresh
    assert 0.4 < np.median(combined_p) < 0.6  # uniform under the null
    assert np.mean(fresh >= 3) < 0.005  # independent signals: about one in a thousand


def _two_kinds_of_stranger(rng):
    """In-distribution: directions near the first axes with low entropy. Far strangers point
    elsewhere (distance finds them, entropy does not); confused ones sit among the training
    images with high entropy (entropy finds them, distance does not)."""
    inside = lambda n: np.abs(rng.normal(size=(n, 8)) * [3, 3, 0.3, 0.3, 0.3, 0.3, 0.3, 0.3])  # noqa: E731
    calm = lambda n: rng.uniform(0.0, 0.4, n)  # noqa: E731
    far = np.abs(rng.normal(size=(300, 8)) * [0.3, 0.3, 3, 3, 3, 3, 3, 3])
    return inside, calm, (far, calm(300)), (inside(300), rng.uniform(0.8, 2.0, 300))


def test_the_score_finds_strangers_either_signal_alone_would_miss():
    rng = np.random.default_rng(3)
    inside, calm, far, confused = _two_kinds_of_stranger(rng)
    params, index = ood.fit_ood(
        inside(1000), reference_features=inside(300), reference_entropy=calm(300)
    )
    digits, digit_entropy = inside(1000), calm(1000)
    base = ood.ood_score(digits, digit_entropy, params, index)
    for features, entropy in (far, confused):
        score = ood.ood_score(features, entropy, params, index)
        flags = np.r_[np.zeros(1000), np.ones(300)]
        assert auroc(np.r_[base, score], flags) > 0.97
    flags = np.r_[np.zeros(1000), np.ones(300)]
    assert auroc(np.r_[digit_entropy, far[1]], flags) < 0.6  # entropy alone misses the far
    distance = lambda f: ood.nearest_distance(f, index)  # noqa: E731
    assert auroc(np.r_[distance(digits), distance(confused[0])], flags) < 0.6  # and distance
    # alone misses the confused ones


def test_index_is_subsampled_to_its_bound_and_the_fit_round_trips_through_json():
    rng = np.random.default_rng(4)
    params, index = ood.fit_ood(
        rng.normal(size=(300, 5)),
        reference_features=rng.normal(size=(40, 5)),
        reference_entropy=rng.uniform(0, 1, 40),
        max_index_rows=64,
    )
    assert index.shape == (64, 5) and index.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(index, axis=1), 1.0, rtol=1e-6)
    assert params["index_rows"] == 64 and params["dim"] == 5 and ood.is_fitted(params)
    loaded = json.loads(json.dumps(params))
    points, entropy = rng.normal(size=(10, 5)), rng.uniform(0, 2, 10)
    fit = ood.Fit(loaded, index)
    np.testing.assert_array_equal(
        fit.score(points, entropy), ood.ood_score(points, entropy, params, index)
    )


def test_fallback_is_the_entropy_as_a_share_of_log_k():
    np.testing.assert_allclose(ood.fallback_score([0.0, math.log(10)], 10), [0.0, 1.0])
    assert ood.fallback_score([0.0], 1).tolist() == [0.0]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (dict(train_features=np.zeros((0, 3))), "train_features needs"),
        (dict(reference_features=np.zeros((5, 2))), "D=3 columns"),
        (dict(reference_features=np.zeros((1, 3)), reference_entropy=[0.0]), "two rows"),
        (dict(reference_entropy=[0.0, 1.0]), "one value per row"),
        (dict(train_features=np.full((4, 3), np.nan)), "train_features"),
        (dict(max_index_rows=0), "max_index_rows"),
    ],
)
def test_fit_rejects_bad_inputs(change, message):
    arguments = (
        dict(
            train_features=np.ones((4, 3)),
            reference_features=np.ones((5, 3)),
            reference_entropy=np.zeros(5),
        )
        | change
    )
    train = arguments.pop("train_features")
    with pytest.raises(ValueError, match=message):
        ood.fit_ood(train, **arguments)


def test_score_rejects_bad_inputs_and_other_fits():
    rng = np.random.default_rng(5)
    params, index = ood.fit_ood(
        rng.normal(size=(10, 2)), reference_features=rng.normal(size=(5, 2)),
        reference_entropy=np.zeros(5),
    )  # fmt: skip
    with pytest.raises(ValueError, match="D=3 but the OOD fit has D=2"):
        ood.ood_score(np.zeros((1, 3)), [0.0], params, index)
    with pytest.raises(ValueError, match="one value per feature row"):
        ood.ood_score(np.zeros((3, 2)), np.zeros(2), params, index)
    with pytest.raises(ValueError, match="entropy"):
        ood.ood_score(np.zeros((1, 2)), [np.nan], params, index)
    with pytest.raises(ValueError, match="index has shape"):
        ood.ood_score(np.zeros((1, 2)), [0.0], params, index[:3])
    old = {"version": 1, "dim": 2, "class_means": [], "precision": []}  # the Mahalanobis fit
    assert not ood.is_fitted(old)
    with pytest.raises(ValueError, match="returned by fit_ood"):
        ood.ood_score(np.zeros((1, 2)), [0.0], old, index)
    with pytest.raises(ValueError, match="missing"):
        ood.ood_score(np.zeros((1, 2)), [0.0], {"version": 2}, index)
