"""Calibration, selective prediction, AUROC, FPR@TPR and bootstrap intervals against
hand-computed values (numpy only)."""

from __future__ import annotations

import numpy as np
import pytest

from reviewer.ml import evaluation
from reviewer.ml.evaluation import auroc, bootstrap_interval, fpr_at_tpr


def test_ece_is_zero_when_calibrated():
    # 10 items at confidence 0.8 with 8 right, 5 items at 0.6 with 3 right.
    probs = np.array([[0.8, 0.2]] * 10 + [[0.6, 0.4]] * 5)
    labels = np.array([0] * 8 + [1] * 2 + [0] * 3 + [1] * 2)
    assert evaluation.expected_calibration_error(probs, labels) == pytest.approx(0.0, abs=1e-12)


def test_ece_of_a_known_miscalibration():
    # 4 items at 0.9 with 2 right: gap 0.4; 6 items at 0.7 with 5 right: gap 5/6 - 0.7.
    probs = np.array([[0.9, 0.1]] * 4 + [[0.7, 0.3]] * 6)
    labels = np.array([0, 0, 1, 1] + [0] * 5 + [1])
    expected = 4 / 10 * 0.4 + 6 / 10 * (5 / 6 - 0.7)  # = 0.16 + 0.08
    assert evaluation.expected_calibration_error(probs, labels) == pytest.approx(expected)
    assert expected == pytest.approx(0.24)
    with pytest.raises(ValueError, match="out of range"):
        evaluation.expected_calibration_error(probs, [-1] * 10)  # ECE needs every label


def test_reliability_bins_edges_and_empty_bins():
    bins = evaluation.reliability_bins([0.0, 0.5, 0.5, 0.75, 1.0], [1, 0, 1, 1, 0], n_bins=2)
    assert [(b["lower"], b["upper"], b["count"]) for b in bins] == [(0.0, 0.5, 3), (0.5, 1.0, 2)]
    assert bins[0]["confidence"] == pytest.approx(1 / 3) and bins[0]["accuracy"] == 2 / 3
    assert bins[1]["confidence"] == pytest.approx(0.875) and bins[1]["accuracy"] == 0.5
    empty = evaluation.reliability_bins([0.95], [True], n_bins=10)
    assert empty[0] == {
        "lower": 0.0,
        "upper": 0.1,
        "count": 0,
        "confidence": None,
        "accuracy": None,
    }
    assert empty[9]["count"] == 1 and len(empty) == 10
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        evaluation.reliability_bins([1.5], [True])


def test_risk_coverage_by_hand():
    uncertainty = [0.9, 0.2, 0.1, 0.5, 0.2]
    correct = [False, True, True, True, False]
    thresholds, coverage, risk = evaluation.risk_coverage(uncertainty, correct)
    # Sorted: 0.1 ok | 0.2 ok, 0.2 wrong (ties accepted together) | 0.5 ok | 0.9 wrong.
    np.testing.assert_allclose(thresholds, [0.1, 0.2, 0.5, 0.9])
    np.testing.assert_allclose(coverage, [1 / 5, 3 / 5, 4 / 5, 5 / 5])
    np.testing.assert_allclose(risk, [0 / 1, 1 / 3, 1 / 4, 2 / 5])
    assert evaluation.threshold_for_risk(uncertainty, correct, target=0.0) == 0.1
    assert evaluation.threshold_for_risk(uncertainty, correct, target=0.25) == 0.5  # 1/4 <= 0.25
    assert evaluation.threshold_for_risk(uncertainty, correct, target=0.3) == 0.5
    assert evaluation.threshold_for_risk(uncertainty, correct, target=0.4) == 0.9
    assert (
        evaluation.threshold_for_risk([0.1, 0.3], [False, True], target=0.4) is None
    )  # risks 1, 1/2
    with pytest.raises(ValueError, match="target"):
        evaluation.threshold_for_risk(uncertainty, correct, target=1.5)


def test_auroc_by_hand_with_ties():
    # Positives 0.9, 0.5; negatives 0.5, 0.1, 0.3. Pairs won: 0.9 beats all 3; 0.5 beats
    # 0.1 and 0.3 and ties 0.5 (counts 1/2). AUROC = (3 + 2.5) / (2 * 3).
    scores = [0.9, 0.5, 0.5, 0.1, 0.3]
    positives = [True, True, False, False, False]
    assert evaluation.auroc(scores, positives) == pytest.approx(5.5 / 6)
    assert evaluation.auroc([1, 2, 3], [False, True, True]) == 1.0
    assert evaluation.auroc([1, 2, 3], [True, False, False]) == 0.0
    assert evaluation.auroc([7, 7, 7, 7], [True, False, True, False]) == 0.5
    with pytest.raises(ValueError, match="positive and one negative"):
        evaluation.auroc([1, 2], [True, True])
    with pytest.raises(ValueError, match="length"):
        evaluation.auroc([1, 2], [True])


def test_fpr_at_tpr_by_hand():
    scores = [0.9, 0.8, 0.7, 0.6, 0.5, 0.85, 0.4, 0.3, 0.2, 0.7]
    positives = [1, 1, 1, 1, 1, 0, 0, 0, 0, 0]
    # 95% of 5 positives: all five, so the threshold is the lowest positive, 0.5: the
    # negatives at 0.85 and 0.7 (a tie with a positive counts too) are flagged, 2 of 5.
    assert fpr_at_tpr(scores, positives) == pytest.approx(2 / 5)
    assert fpr_at_tpr(scores, positives, tpr=0.6) == pytest.approx(2 / 5)  # threshold 0.7
    assert fpr_at_tpr(scores, positives, tpr=0.4) == pytest.approx(1 / 5)  # threshold 0.8
    with pytest.raises(ValueError, match="both classes"):
        fpr_at_tpr([0.1, 0.2], [1, 1])
    with pytest.raises(ValueError, match="tpr"):
        fpr_at_tpr(scores, positives, tpr=0.0)


def test_bootstrap_interval_holds_the_estimate_and_narrows_with_data():
    rng = np.random.default_rng(0)
    small = np.r_[rng.normal(1, 1, 30), rng.normal(0, 1, 300)], np.r_[np.ones(30), np.zeros(300)]
    large = (
        np.r_[rng.normal(1, 1, 300), rng.normal(0, 1, 3000)],
        np.r_[np.ones(300), np.zeros(3000)],
    )
    low, high = bootstrap_interval(auroc, *small, rounds=300)
    assert low < auroc(*small) < high
    narrow = bootstrap_interval(auroc, *large, rounds=300)
    assert narrow[1] - narrow[0] < (high - low) / 2
    assert bootstrap_interval(auroc, *small, rounds=50, seed=3) == bootstrap_interval(
        auroc, *small, rounds=50, seed=3
    )
    perfect = bootstrap_interval(auroc, [1.0, 2.0, 0.0, 0.5], [1, 1, 0, 0], rounds=20)
    assert perfect == (1.0, 1.0)  # each resample keeps its positives and negatives
