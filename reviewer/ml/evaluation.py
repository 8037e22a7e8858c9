"""Pure-numpy evaluation of uncertainty: calibration, selective prediction and ranking quality.

Expected calibration error and reliability bins (top-class confidence against correctness),
the risk–coverage curve of accepting items below an uncertainty threshold, the largest
threshold that keeps the risk at a target, AUROC (Mann–Whitney), the false-positive rate at a
true-positive rate, and a stratified bootstrap interval of either. Used by training (held-out
ECE), the dashboard and the benchmarks. Arrays in, plain values out.
"""

import math

import numpy as np

from reviewer.ml.checks import as_classes, as_flags, as_float, as_probs, fail_unless

ECE_BINS = 15
RELIABILITY_BINS = 10
RISK_SLACK = 1e-12  # a risk k/n compared with a target typed as a decimal, e.g. 1/10 vs 0.1


def _binned(confidence: np.ndarray, correct: np.ndarray, n_bins) -> tuple[np.ndarray, ...]:
    """Bin edges [B+1] and per-bin count, confidence sum and correct sum [B]."""
    fail_unless(int(n_bins) == n_bins and n_bins >= 1, f"n_bins must be >= 1, got {n_bins}")
    edges = np.linspace(0.0, 1.0, int(n_bins) + 1)
    # Bins are (lower, upper]: a confidence equal to an edge belongs to the bin below it.
    index = np.clip(np.searchsorted(edges, confidence, side="left") - 1, 0, int(n_bins) - 1)
    sums = [np.bincount(index, weights=w, minlength=int(n_bins)) for w in (None, confidence)]
    return edges, *sums, np.bincount(index, weights=correct, minlength=int(n_bins))


def reliability_bins(confidence, correct, *, n_bins: int = RELIABILITY_BINS) -> list[dict]:
    """Equal-width bins (lower, upper] over [0, 1] (0 falls in the first bin): confidence [N] in
    [0, 1], correct [N] bool -> ``n_bins`` dicts {lower, upper, count, confidence, accuracy}
    (confidence = mean confidence in the bin; None and None for an empty bin)."""
    confidence = as_float(confidence, "confidence", 1)
    correct = as_flags(correct, "correct", len(confidence))
    fail_unless(not ((confidence < 0) | (confidence > 1)).any(), "confidence must be in [0, 1]")
    edges, count, conf_sum, acc_sum = _binned(confidence, correct, n_bins)
    bins = []
    for b, c in enumerate(count.astype(int).tolist()):
        conf, acc = (float(conf_sum[b] / c), float(acc_sum[b] / c)) if c else (None, None)
        bins.append({"lower": float(edges[b]), "upper": float(edges[b + 1]), "count": c})
        bins[-1].update(confidence=conf, accuracy=acc)
    return bins


def expected_calibration_error(probs, y, *, n_bins: int = ECE_BINS) -> float:
    """ECE = Σ_b (n_b / N) |accuracy_b − confidence_b| over bins of top-class confidence:
    probs [N, K] (rows sum to 1, N >= 1), y [N] the true class indices in [0, K)."""
    probs = as_probs(probs, "probs", 2)
    fail_unless(probs.shape[0] >= 1, "probs needs at least one item")
    y = as_classes(y, probs.shape[0], probs.shape[1], allow_missing=False)
    correct = probs.argmax(axis=1) == y
    return calibration_error(np.clip(probs.max(axis=1), 0.0, 1.0), correct, n_bins=n_bins)


def calibration_error(confidence, correct, *, n_bins: int = ECE_BINS) -> float:
    """ECE from each item's confidence [N] in [0, 1] and whether its prediction was right."""
    confidence = as_float(confidence, "confidence", 1)
    fail_unless(len(confidence) >= 1, "confidence needs at least one item")
    correct = as_flags(correct, "correct", len(confidence)).astype(np.float64)
    _, _, conf, acc = _binned(confidence, correct, n_bins)
    # (n_b / N) |acc_b/n_b - conf_b/n_b| = |acc_sum_b - conf_sum_b| / N
    return float(np.abs(acc - conf).sum() / len(confidence))


def risk_coverage(uncertainty, correct) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Selective prediction: accept items with uncertainty <= threshold.

    uncertainty [N], correct [N] bool -> (thresholds, coverage, risk), each [U] over the U distinct
    uncertainties ascending: coverage = fraction accepted, risk = error rate among the accepted.
    """
    uncertainty = as_float(uncertainty, "uncertainty", 1)
    correct = as_flags(correct, "correct", len(uncertainty))
    fail_unless(len(uncertainty) >= 1, "risk_coverage needs at least one item")
    order = np.argsort(uncertainty, kind="stable")
    ordered = uncertainty[order]
    errors = np.cumsum(1.0 - correct[order])
    # The last position of each distinct value: everything tied with it is accepted too.
    last = np.flatnonzero(np.append(ordered[1:] != ordered[:-1], True))
    accepted = last + 1.0
    return ordered[last], accepted / len(uncertainty), errors[last] / accepted


def threshold_for_risk(uncertainty, correct, *, target: float) -> float | None:
    """Largest threshold whose risk is <= ``target`` (in [0, 1]); None if there is none."""
    fail_unless(0.0 <= target <= 1.0, f"target must be in [0, 1], got {target}")
    thresholds, _, risk = risk_coverage(uncertainty, correct)
    ok = np.flatnonzero(risk <= target + RISK_SLACK)
    return float(thresholds[ok[-1]]) if len(ok) else None


def auroc(scores, positives) -> float:
    """Area under the ROC curve (Mann–Whitney U; a tie counts 1/2): P(score_pos > score_neg).

    scores [N] floats, positives [N] bool; both classes must be present.
    """
    scores = as_float(scores, "scores", 1)
    positives = as_flags(positives, "positives", len(scores)).astype(bool)
    n_pos = int(positives.sum())
    n_neg = len(scores) - n_pos
    fail_unless(n_pos > 0 and n_neg > 0, "auroc needs at least one positive and one negative")
    _, inverse, counts = np.unique(scores, return_inverse=True, return_counts=True)
    below = np.cumsum(counts) - counts
    ranks = (below + (counts + 1) / 2.0)[inverse]  # 1-based ranks, ties averaged
    u = ranks[positives].sum() - n_pos * (n_pos + 1) / 2.0
    return float(u / (n_pos * n_neg))


def fpr_at_tpr(scores, positives, tpr: float = 0.95) -> float:
    """The share of negatives flagged at the threshold that first flags ``tpr`` of the
    positives (higher score = flagged; a negative tied with the threshold counts as flagged)."""
    scores = as_float(scores, "scores", 1)
    positives = as_flags(positives, "positives", len(scores)).astype(bool)
    fail_unless(0.0 < tpr <= 1.0, f"tpr must be in (0, 1], got {tpr}")
    fail_unless(positives.any() and not positives.all(), "fpr_at_tpr needs both classes")
    ranked = np.sort(scores[positives])[::-1]
    threshold = ranked[math.ceil(tpr * len(ranked)) - 1]
    return float(np.mean(scores[~positives] >= threshold))


def bootstrap_interval(metric, scores, positives, *, rounds=1000, level=0.95, seed=0):
    """The percentile bootstrap interval of ``metric(scores, positives)``, positives and
    negatives resampled separately (each keeps its count): (low, high)."""
    scores = as_float(scores, "scores", 1)
    positives = as_flags(positives, "positives", len(scores)).astype(bool)
    rng = np.random.default_rng(seed)
    pos, neg = np.flatnonzero(positives), np.flatnonzero(~positives)
    values = []
    for _ in range(rounds):
        rows = np.concatenate([rng.choice(pos, len(pos)), rng.choice(neg, len(neg))])
        values.append(metric(scores[rows], positives[rows]))
    low, high = np.quantile(values, [(1 - level) / 2, (1 + level) / 2])
    return float(low), float(high)
