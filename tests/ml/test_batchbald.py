"""BatchBALD's greedy batch on hand-worked samples and against an exact enumeration."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from reviewer.ml import uncertainty
from reviewer.ml.batchbald import batchbald

# T = 4 equally likely dropout masks, K = 2 classes. Item a splits the masks {1,2} | {3,4};
# a_copy is the same image again; b splits them {1,3} | {2,4}, less sharply.
A = [[1, 0], [1, 0], [0, 1], [0, 1]]
B = [[0.9, 0.1], [0.1, 0.9], [0.9, 0.1], [0.1, 0.9]]
SAMPLES = np.array([A, A, B], dtype=np.float64).transpose(1, 0, 2)  # [T=4, N=3, K=2]


def _bald(samples):
    return uncertainty.summarize(samples).mutual_info


def test_top_k_bald_takes_both_copies_where_batchbald_takes_the_other_item():
    # BALD: a and a_copy ln 2 = 0.693 each, b ln 2 - H(0.9) = 0.368: top two are the copies.
    h_09 = -(0.9 * math.log(0.9) + 0.1 * math.log(0.1))
    assert _bald(SAMPLES) == pytest.approx([math.log(2), math.log(2), math.log(2) - h_09])
    # With a chosen, a_copy adds nothing: H(y_a, y_copy) = ln 2 -> gain ln 2 - 0.
    # b adds: its joint with a is uniform over 4 configurations, H = ln 4, gain ln 4 - H(0.9)
    # = 1.061 > 0.693. Then a_copy last.
    assert batchbald(SAMPLES, 2) == [0, 2]
    assert batchbald(SAMPLES, 3) == [0, 2, 1]


def test_batch_size_is_capped_by_the_items_and_zero_is_empty():
    assert batchbald(SAMPLES, 10) == [0, 2, 1]
    assert batchbald(SAMPLES, 0) == []


def _random_samples(T, N, K, seed):
    logits = np.random.default_rng(seed).normal(size=(T, N, K)) * 2
    return np.exp(logits) / np.exp(logits).sum(axis=2, keepdims=True)


def _greedy_by_enumeration(samples, size):
    """Greedy over the exact joint mutual information, every configuration written out."""
    T, N, K = samples.shape
    expected = uncertainty.summarize(samples).expected_entropy
    chosen = []
    for _ in range(size):
        best, best_gain = None, -np.inf
        for n in range(N):
            if n in chosen:
                continue
            batch = [*chosen, n]
            joint = 0.0
            for labels in itertools.product(range(K), repeat=len(batch)):
                per_mask = [
                    np.prod([samples[t, i, y] for i, y in zip(batch, labels, strict=True)])
                    for t in range(T)
                ]
                p = np.mean(per_mask)
                joint -= p * math.log(p) if p > 0 else 0.0
            gain = joint - expected[batch].sum()
            if gain > best_gain:
                best, best_gain = n, gain
        chosen.append(best)
    return chosen


def test_the_exact_greedy_matches_an_enumeration_of_every_configuration():
    samples = _random_samples(T=6, N=8, K=3, seed=1)
    assert batchbald(samples, 4, exact_until=4) == _greedy_by_enumeration(samples, 4)


def test_drawn_configurations_agree_with_the_exact_sum():
    samples = _random_samples(T=20, N=30, K=4, seed=1)
    exact = batchbald(samples, 5, exact_until=5)
    assert batchbald(samples, 5, exact_until=1, configurations=50_000, seed=0) == exact


def test_the_same_seed_gives_the_same_batch():
    samples = _random_samples(T=10, N=40, K=5, seed=2)
    first = batchbald(samples, 8, exact_until=1, configurations=500, seed=3)
    assert batchbald(samples, 8, exact_until=1, configurations=500, seed=3) == first
    assert len(set(first)) == 8


@pytest.mark.parametrize(
    "samples, size, message",
    [
        (np.ones((2, 3)), 1, "samples must be 3-D"),
        (np.full((2, 3, 2), 0.7), 1, "samples rows do not sum to 1"),
        (SAMPLES, -1, "size must be >= 0"),
    ],
)
def test_bad_input_is_refused_with_the_reason(samples, size, message):
    with pytest.raises(ValueError, match=message):
        batchbald(samples, size)
