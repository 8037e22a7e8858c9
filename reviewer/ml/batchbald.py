"""Pure-numpy BatchBALD: a batch of items that is informative together, not item by item.

Top-k BALD takes the k items of highest mutual information one by one, so a cluster of alike
items that the model is unsure about fills the whole batch and the labels repeat each other.
BatchBALD (Kirsch, van Amersfoort and Gal, NeurIPS 2019) scores a batch A by the mutual
information between the joint labels of A and the model:

    a(A) = H(y_A) − E_t Σ_{i∈A} H(y_i | t),   P(y_A) = mean_t Π_{i∈A} p_t(y_i)

and builds A greedily, each step adding the item that raises a(A) most. The joint entropy is
summed over every configuration of labels while there are at most ``exact_until`` items in A
and no more than ``configurations`` configurations (K^|A|), and estimated from
``configurations`` drawn configurations after that. Sample t of every item must come from the
same network (one dropout mask t for all: ``mc.sample(shared_masks=True)``); otherwise the
items look independent and the batch degrades to top-k BALD. Arrays in, indices out; nats; no
TensorFlow, no database.
"""

from __future__ import annotations

import numpy as np

from reviewer.ml.checks import validate_samples

EXACT_UNTIL = 3  # exact sums over K^|A| configurations up to |A| = 3 (1,000 at K = 10)
CONFIGURATIONS = 10_000  # drawn configurations after that (the paper's choice)
_TINY = 1e-30  # log(0) guard; terms with p = 0 contribute 0 either way
_CHUNK_BYTES = 128 * 2**20  # candidates per matrix product: [configurations, chunk, K] floats


def _joint_entropies(joint: np.ndarray, samples: np.ndarray, weights: np.ndarray | None):
    """H(y_A, y_n) for every candidate n.

    ``joint`` [T, C] holds Π_{i∈A} p_t(y_i) for C configurations of A. With ``weights`` None the
    C configurations are all of them and the sum is exact; else they were drawn from P(y_A)
    and ``weights`` [C] is P(configuration), so each term is importance-weighted by 1/P.
    """
    T, N, K = samples.shape
    out = np.empty(N)
    chunk = max(1, _CHUNK_BYTES // (8 * joint.shape[1] * K))
    for start in range(0, N, chunk):
        part = samples[:, start : start + chunk].reshape(T, -1)
        pairs = (joint.T @ part / T).reshape(joint.shape[1], -1, K)  # P(y_A = c, y_n = y)
        terms = pairs * np.log(np.maximum(pairs, _TINY))
        if weights is None:
            out[start : start + chunk] = -terms.sum(axis=(0, 2))
        else:
            out[start : start + chunk] = -(terms / weights[:, None, None]).sum(axis=2).mean(0)
    return out


def _draw(probs: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One class per row of ``probs`` [M, K], drawn from that row (inverse CDF)."""
    cumulative = probs.cumsum(axis=1)
    u = rng.random(len(probs))[:, None] * cumulative[:, -1:]
    return np.minimum((u > cumulative).sum(axis=1), probs.shape[1] - 1)


def batchbald(
    samples,
    size: int,
    *,
    exact_until: int = EXACT_UNTIL,
    configurations: int = CONFIGURATIONS,
    seed=None,
) -> list[int]:
    """Indices into the N items of ``samples`` [T, N, K], in the greedy order BatchBALD adds
    them, ``min(size, N)`` of them. The first is always the item of highest BALD. ``seed``
    fixes the drawn configurations (used once the batch holds more than ``exact_until``)."""
    samples = validate_samples(samples)
    if size < 0:
        raise ValueError(f"size must be >= 0, got {size}")
    if configurations < 1:
        raise ValueError(f"configurations must be >= 1, got {configurations}")
    T, N, K = samples.shape
    rng = np.random.default_rng(seed)
    logs = np.log(np.maximum(samples, _TINY))
    expected = -(samples * logs).sum(axis=2).mean(axis=0)  # E_t H(y_n | t), [N]
    chosen: list[int] = []
    joint, weights = np.ones((T, 1)), None  # the empty batch: one configuration, P = 1
    while len(chosen) < min(size, N):
        gain = _joint_entropies(joint, samples, weights) - expected
        gain[chosen] = -np.inf
        n = int(np.argmax(gain))
        chosen.append(n)
        exact = len(chosen) <= exact_until and K ** len(chosen) <= configurations
        if weights is None and exact:  # every configuration of A + n, no more than drawn
            joint = (joint[:, :, None] * samples[:, n, None, :]).reshape(T, -1)
            continue
        if weights is None:  # switch to drawn configurations: y_A ~ P(y_A) via t ~ U(T)
            t = rng.integers(0, T, configurations)
            joint = np.ones((T, configurations))
            for i in chosen:
                joint *= samples[:, i, _draw(samples[t, i], rng)]
        else:  # extend each drawn configuration by y_n ~ P(y_n | y_A = c)
            pairs = joint.T @ samples[:, n, :]  # [C, K] ∝ P(y_A = c, y_n)
            joint = joint * samples[:, n, _draw(pairs, rng)]
        weights = joint.mean(axis=0)
    return chosen
