"""Uncertainty math against hand-computed values (numpy only, no TensorFlow, no database)."""

import json
import math

import numpy as np
import pytest

from reviewer.ml import checks
from reviewer.ml import uncertainty as u
from reviewer.ml.uncertainty import summarize


def h(*p):
    """Entropy in nats written out by hand, skipping zeros (0 · log 0 = 0)."""
    return -sum(x * math.log(x) for x in p if x > 0)


# T=2, N=2, K=2. Item 0: samples [0.9, 0.1] and [0.5, 0.5]. Item 1: [0.2, 0.8] and [0.6, 0.4].
HAND = np.array(
    [
        [[0.9, 0.1], [0.2, 0.8]],
        [[0.5, 0.5], [0.6, 0.4]],
    ]
)


def test_hand_example_item_0():
    s = summarize(HAND)
    # mean = ([0.9, 0.1] + [0.5, 0.5]) / 2 = [0.7, 0.3]; both classes deviate by ±0.2.
    np.testing.assert_allclose(s.mean[0], [0.7, 0.3])
    np.testing.assert_allclose(s.std[0], [0.2, 0.2])
    assert s.predicted[0] == 0
    assert s.entropy[0] == pytest.approx(-(0.7 * math.log(0.7) + 0.3 * math.log(0.3)))
    assert s.entropy[0] == pytest.approx(0.6108643, abs=1e-7)
    expected = (h(0.9, 0.1) + math.log(2)) / 2  # H[0.5, 0.5] = ln 2
    assert s.expected_entropy[0] == pytest.approx(expected)
    assert s.expected_entropy[0] == pytest.approx(0.5091150, abs=1e-7)
    assert s.mutual_info[0] == pytest.approx(0.6108643 - 0.5091150, abs=1e-7)
    assert s.variance[0] == pytest.approx(0.2**2)  # class 0 takes 0.9 and 0.5 around 0.7
    # Votes: argmax [0.9, 0.1] = 0 and argmax [0.5, 0.5] = 0 (a tie goes to the lower index).
    assert s.variation_ratio[0] == 0.0
    assert s.margin[0] == pytest.approx(0.7 - 0.3)


def test_hand_example_item_1():
    s = summarize(HAND)
    np.testing.assert_allclose(s.mean[1], [0.4, 0.6])
    assert s.predicted[1] == 1
    assert s.entropy[1] == pytest.approx(h(0.4, 0.6))
    assert s.entropy[1] == pytest.approx(0.6730117, abs=1e-7)
    assert s.expected_entropy[1] == pytest.approx((h(0.2, 0.8) + h(0.6, 0.4)) / 2)
    assert s.expected_entropy[1] == pytest.approx((0.5004024 + 0.6730117) / 2, abs=1e-7)
    # Class 1 (the prediction) takes 0.8 and 0.4 around 0.6: population variance 0.2² = 0.04.
    assert s.variance[1] == pytest.approx(0.04)
    # Votes 1 and 0: the modal class wins 1 of 2 samples -> 1 - 1/2.
    assert s.variation_ratio[1] == pytest.approx(0.5)
    assert s.margin[1] == pytest.approx(0.6 - 0.4)


def test_labels_give_self_confidence_and_normalized_margin():
    s = summarize(HAND, y=[1, -1])
    assert s.self_confidence[0] == pytest.approx(0.3)  # p̄ of the given class 1
    assert s.normalized_margin[0] == pytest.approx(0.3 - 0.7)
    assert math.isnan(s.self_confidence[1]) and math.isnan(s.normalized_margin[1])
    unlabeled = summarize(HAND)
    assert np.isnan(unlabeled.self_confidence).all()
    assert np.isnan(unlabeled.normalized_margin).all()


def test_row_is_plain_python_with_none_for_nan():
    s = summarize(HAND, y=[1, -1])
    row = s.row(0)
    assert set(row) == {"predicted", "mean", "std", *u.SUMMARY_METRICS}
    assert row["predicted"] == 0 and type(row["predicted"]) is int
    assert row["entropy"] == pytest.approx(0.6108643, abs=1e-7) and type(row["entropy"]) is float
    assert row["mean"] == pytest.approx([0.7, 0.3]) and row["std"] == pytest.approx([0.2, 0.2])
    assert s.row(1)["self_confidence"] is None and s.row(1)["normalized_margin"] is None
    assert json.loads(json.dumps(s.row(1)))["margin"] == pytest.approx(0.2)


def test_single_sample_has_no_epistemic_uncertainty():
    s = summarize(np.array([[[0.6, 0.3, 0.1], [0.2, 0.2, 0.6]]]))  # T = 1
    np.testing.assert_array_equal(s.mutual_info, [0.0, 0.0])
    np.testing.assert_array_equal(s.variation_ratio, [0.0, 0.0])
    np.testing.assert_array_equal(s.variance, [0.0, 0.0])
    np.testing.assert_array_equal(s.std, np.zeros((2, 3)))
    np.testing.assert_allclose(s.entropy, s.expected_entropy)
    assert s.entropy[0] == pytest.approx(h(0.6, 0.3, 0.1))


def test_one_hot_mean_has_zero_entropy_and_no_nan():
    s = summarize(np.tile([0.0, 1.0, 0.0], (3, 1, 1)))  # T = 3 identical one-hot samples
    assert s.entropy[0] == 0.0 and s.expected_entropy[0] == 0.0 and s.mutual_info[0] == 0.0
    assert math.copysign(1.0, s.row(0)["entropy"]) == 1.0  # 0.0, not -0.0, in JSON
    assert u.entropy([0.0, 1.0, 0.0]) == 0.0
    np.testing.assert_array_equal(u.entropy([[0.0, 1.0], [0.5, 0.5]]), [0.0, math.log(2)])


def test_uniform_mean_has_entropy_log_k():
    # T = 4 one-hot samples, each voting for a different class of K = 4.
    s = summarize(np.eye(4)[:, None, :])
    np.testing.assert_allclose(s.mean[0], [0.25] * 4)
    assert s.entropy[0] == pytest.approx(math.log(4))
    assert s.expected_entropy[0] == 0.0
    assert s.mutual_info[0] == pytest.approx(math.log(4))  # all of it is disagreement
    assert s.variation_ratio[0] == pytest.approx(1 - 1 / 4)
    assert s.margin[0] == 0.0
    # Variance of the predicted class (0, by the tie rule) over samples 1, 0, 0, 0: 3/16.
    assert s.variance[0] == pytest.approx(3 / 16)


def test_variation_ratio_counts_votes():
    votes = [0, 0, 2, 1, 0]  # the modal class 0 has 3 of T = 5 votes
    samples = np.full((5, 1, 3), 0.1)
    samples[np.arange(5), 0, votes] = 0.8
    assert summarize(samples).variation_ratio[0] == pytest.approx(1 - 3 / 5)


def test_margin_is_top1_minus_top2_of_the_mean():
    s = summarize(np.array([[[0.2, 0.5, 0.3]], [[0.2, 0.5, 0.3]]]))
    assert s.margin[0] == pytest.approx(0.5 - 0.3)
    assert s.predicted[0] == 1


@pytest.mark.parametrize("seed", range(20))
def test_mutual_info_is_never_negative(seed):
    rng = np.random.default_rng(seed)
    t, n, k = rng.integers(1, 30), 50, rng.integers(2, 12)
    samples = rng.dirichlet(np.full(k, rng.uniform(0.05, 5.0)), size=(t, n))
    samples[:, :5] = samples[:1, :5]  # identical samples: the true MI is exactly 0
    s = summarize(samples)
    assert (s.mutual_info >= 0.0).all()
    raw = s.entropy - s.expected_entropy
    assert raw.min() > -1e-12  # any negative really is rounding
    np.testing.assert_allclose(s.mutual_info, np.maximum(raw, 0.0))
    assert np.allclose(s.mutual_info[:5], 0.0, atol=1e-12)


def test_label_scores_as_functions():
    mean = np.array([[0.2, 0.5, 0.3], [0.6, 0.3, 0.1], [0.6, 0.3, 0.1]])
    labels = np.array([0, -1, 0])
    conf = u.self_confidence(mean, labels)
    marg = u.normalized_margin(mean, labels)
    assert conf[0] == pytest.approx(0.2) and conf[2] == pytest.approx(0.6)
    assert marg[0] == pytest.approx(0.2 - 0.5)  # given 0.2 against the best other, 0.5
    assert marg[2] == pytest.approx(0.6 - 0.3)
    assert math.isnan(conf[1]) and math.isnan(marg[1])


GOOD = np.array([[[0.5, 0.5]]])


@pytest.mark.parametrize(
    ("samples", "message"),
    [
        (np.array([[0.5, 0.5]]), "3-D"),
        (np.array([[[np.nan, 1.0]]]), "non-finite"),
        (np.array([[[np.inf, 0.0]]]), "non-finite"),
        (np.array([[[-0.1, 1.1]]]), "negative"),
        (np.array([[[0.5, 0.6]]]), "sum to 1"),
        (np.zeros((0, 1, 2)), "T >= 1"),
    ],
)
def test_bad_samples_raise(samples, message):
    with pytest.raises(ValueError, match=message):
        checks.validate_samples(samples)
    with pytest.raises(ValueError, match=message):
        summarize(samples)


def test_rows_within_tolerance_are_accepted():
    off = checks.SUM_TOLERANCE / 2
    assert checks.validate_samples([[[0.5 + off, 0.5]]]).dtype == np.float64


@pytest.mark.parametrize(
    ("labels", "message"),
    [([2], "out of range"), ([-2], "out of range"), ([0, 1], "shape"), ([0.5], "integers")],
)
def test_bad_labels_raise(labels, message):
    with pytest.raises(ValueError, match=message):
        summarize(GOOD, y=labels)
    with pytest.raises(ValueError, match=message):
        u.self_confidence(GOOD[0], labels)
