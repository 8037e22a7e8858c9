"""Pure-numpy uncertainty math: summaries of Monte-Carlo dropout ``samples`` [T, N, K] (mean,
std, entropy, expected entropy, mutual information, variance, variation ratio, margin), label-
quality scores, and the calibration / selective-prediction helpers used by training, benchmarks
and the dashboard (ECE, reliability bins, risk-coverage, AUROC). No TensorFlow, no database:
arrays in, arrays or plain Python values out. Logs are natural (nats), 0 · log 0 = 0, and ties
in an argmax go to the lowest class index.
"""

import math
from dataclasses import dataclass

import numpy as np

SUM_TOLERANCE = 1e-3  # softmax rows in float32 can be off by ~1e-6; anything larger is a bug
NO_LABEL = -1  # label value meaning "this item has no label"
ECE_BINS = 15
RELIABILITY_BINS = 10
RISK_SLACK = 1e-12  # a risk k/n compared with a target typed as a decimal, e.g. 1/10 vs 0.1
# The scalar per-item metrics of a Summary, in the order of the scores table.
SCALAR_METRICS = ("entropy", "expected_entropy", "mutual_info", "variance", "variation_ratio")
SCALAR_METRICS += ("margin", "self_confidence", "normalized_margin")


def _fail_unless(condition: bool, message: str) -> None:
    if not condition:
        raise ValueError(message)


def _as_float(values, name: str, ndim: int, n: int | None = None) -> np.ndarray:
    """Float64 copy of ``values`` checked for dimensionality, length and finiteness."""
    array = np.asarray(values, dtype=np.float64)  # a ragged or non-numeric input raises here
    _fail_unless(array.ndim == ndim, f"{name} must be {ndim}-D, got shape {array.shape}")
    _fail_unless(n is None or len(array) == n, f"{name} must have length {n}, got {len(array)}")
    _fail_unless(bool(np.isfinite(array).all()), f"{name} contains non-finite values (NaN/inf)")
    return array


def _as_probs(probs, name: str, ndim: int) -> np.ndarray:
    """Probabilities [..., K]: finite, non-negative, rows summing to 1 within SUM_TOLERANCE."""
    array = _as_float(probs, name, ndim)
    _fail_unless(array.shape[-1] >= 1, f"{name} needs at least one class, got {array.shape}")
    _fail_unless(not (array < 0).any(), f"{name} contains negative probabilities")
    worst = float(np.abs(array.sum(axis=-1) - 1.0).max(initial=0.0))
    _fail_unless(worst <= SUM_TOLERANCE, f"{name} rows do not sum to 1 (off by up to {worst:.3g})")
    return array


def _as_labels(labels, n: int, num_classes: int, *, allow_missing: bool) -> np.ndarray:
    """Int64 labels [N] in [0, K), or NO_LABEL where ``allow_missing``."""
    array = np.asarray(labels)
    _fail_unless(array.shape == (n,), f"labels must have shape ({n},), got {array.shape}")
    integral = array.dtype.kind == "f" and np.isfinite(array).all() and (array % 1 == 0).all()
    _fail_unless(array.dtype.kind in "iu" or bool(integral), "labels must be integers")
    array = array.astype(np.int64)
    low = NO_LABEL if allow_missing else 0
    bad = (array < low) | (array >= num_classes)
    _fail_unless(not bad.any(), f"labels out of range [{low}, {num_classes}): {array[bad][:5]}")
    return array


def _as_flags(values, name: str, n: int) -> np.ndarray:
    array = _as_float(values, name, 1, n)
    _fail_unless(bool(np.isin(array, (0.0, 1.0)).all()), f"{name} must be booleans (0/1)")
    return array


def validate_samples(samples) -> np.ndarray:
    """Samples as float64 [T, N, K]; ValueError unless 3-D, T >= 1, finite, non-negative and
    each row sums to 1 within ``SUM_TOLERANCE``."""
    array = _as_probs(samples, "samples", 3)
    _fail_unless(array.shape[0] >= 1, "samples needs at least one sample (T >= 1)")
    return array


def entropy(probs) -> np.ndarray:
    """Shannon entropy in nats over the last axis: probs [..., K] -> [...]."""
    array = _as_float(probs, "probs", max(np.ndim(probs), 1))  # any shape with a class axis
    _fail_unless(not (array < 0).any(), "probs contains negative probabilities")
    return _entropy(array)


def _entropy(array: np.ndarray) -> np.ndarray:
    logs = np.zeros_like(array)
    np.log(array, out=logs, where=array > 0)  # 0 · log 0 = 0, without a warning
    return 0.0 - (array * logs).sum(axis=-1)  # 0.0 - x, not -x: a certain item gets 0.0, not -0.0


def _mean_and_labels(mean, labels) -> tuple[np.ndarray, np.ndarray]:
    mean = _as_probs(mean, "mean", 2)
    return mean, _as_labels(labels, mean.shape[0], mean.shape[1], allow_missing=True)


def self_confidence(mean, labels) -> np.ndarray:
    """p̄_y for each item's label y: mean [N, K], labels [N] (-1 = none) -> [N], NaN if none."""
    return _label_scores(*_mean_and_labels(mean, labels))[0]


def normalized_margin(mean, labels) -> np.ndarray:
    """p̄_y − max_{k≠y} p̄_k: mean [N, K], labels [N] (-1 = none) -> [N], NaN if none."""
    return _label_scores(*_mean_and_labels(mean, labels))[1]


def _label_scores(mean: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(self_confidence, normalized_margin), each [N], NaN where the label is NO_LABEL."""
    has = np.flatnonzero(labels != NO_LABEL)
    given = mean[has, labels[has]]
    others = mean[has].copy()
    others[np.arange(len(has)), labels[has]] = -np.inf
    best_other = np.maximum(others.max(axis=1), 0.0)  # K = 1: no other class, count it as 0
    confidence, margin = np.full(len(mean), np.nan), np.full(len(mean), np.nan)
    confidence[has], margin[has] = given, given - best_other
    return confidence, margin


@dataclass(frozen=True, eq=False)
class Summary:
    """Per-item uncertainty metrics of samples [T, N, K]; see DESIGN.md for definitions."""

    mean: np.ndarray  # [N, K]
    std: np.ndarray  # [N, K], population std (divides by T)
    predicted: np.ndarray  # [N] int, argmax of mean
    entropy: np.ndarray  # [N]
    expected_entropy: np.ndarray  # [N]
    mutual_info: np.ndarray  # [N]
    variance: np.ndarray  # [N]
    variation_ratio: np.ndarray  # [N]
    margin: np.ndarray  # [N]
    self_confidence: np.ndarray  # [N], NaN where unlabeled
    normalized_margin: np.ndarray  # [N], NaN where unlabeled

    def row(self, i: int) -> dict:
        """Item ``i`` as plain Python values (NaN -> None), ready for a DB row or JSON."""
        values = {name: float(getattr(self, name)[i]) for name in SCALAR_METRICS}
        row = {name: None if math.isnan(v) else v for name, v in values.items()}
        vectors = {"mean": self.mean[i].tolist(), "std": self.std[i].tolist()}
        return {"predicted": int(self.predicted[i]), **row, **vectors}


def summarize(samples, *, labels=None) -> Summary:
    """Summarise MC-dropout ``samples`` [T, N, K]; ``labels`` [N] ints, -1 = none (optional)."""
    samples = validate_samples(samples)
    t, n, k = samples.shape
    given = np.full(n, NO_LABEL) if labels is None else labels
    labels = _as_labels(given, n, k, allow_missing=True)
    mean = samples.mean(axis=0)
    predicted = mean.argmax(axis=1)
    std = samples.std(axis=0)  # ddof=0: the population std of DESIGN.md
    total = _entropy(mean)
    expected = _entropy(samples).mean(axis=0)
    votes = samples.argmax(axis=2)  # [T, N]
    counts = (votes[:, :, None] == np.arange(k)).sum(axis=0)  # [N, K]
    ordered = np.sort(mean, axis=1)
    second = ordered[:, -2] if k > 1 else 0.0  # one class: nothing to be close to
    label_confidence, label_margin = _label_scores(mean, labels)
    return Summary(
        mean=mean,
        std=std,
        predicted=predicted,
        entropy=total,
        expected_entropy=expected,
        # Jensen makes this >= 0 exactly; any negative is floating-point rounding.
        mutual_info=np.maximum(total - expected, 0.0),
        variance=std[np.arange(n), predicted] ** 2,
        variation_ratio=1.0 - counts.max(axis=1, initial=0) / t,
        margin=ordered[:, -1] - second,
        self_confidence=label_confidence,
        normalized_margin=label_margin,
    )


def _binned(confidence: np.ndarray, correct: np.ndarray, n_bins) -> tuple[np.ndarray, ...]:
    """Bin edges [B+1] and per-bin count, confidence sum and correct sum [B]."""
    _fail_unless(int(n_bins) == n_bins and n_bins >= 1, f"n_bins must be >= 1, got {n_bins}")
    edges = np.linspace(0.0, 1.0, int(n_bins) + 1)
    # Bins are (lower, upper]: a confidence equal to an edge belongs to the bin below it.
    index = np.clip(np.searchsorted(edges, confidence, side="left") - 1, 0, int(n_bins) - 1)
    sums = [np.bincount(index, weights=w, minlength=int(n_bins)) for w in (None, confidence)]
    return edges, *sums, np.bincount(index, weights=correct, minlength=int(n_bins))


def reliability_bins(confidence, correct, *, n_bins: int = RELIABILITY_BINS) -> list[dict]:
    """Equal-width bins (lower, upper] over [0, 1] (0 falls in the first bin): confidence [N] in
    [0, 1], correct [N] bool -> ``n_bins`` dicts {lower, upper, count, confidence, accuracy}
    (confidence = mean confidence in the bin; None and None for an empty bin)."""
    confidence = _as_float(confidence, "confidence", 1)
    correct = _as_flags(correct, "correct", len(confidence))
    _fail_unless(not ((confidence < 0) | (confidence > 1)).any(), "confidence must be in [0, 1]")
    edges, count, conf_sum, acc_sum = _binned(confidence, correct, n_bins)
    bins = []
    for b, c in enumerate(count.astype(int).tolist()):
        conf, acc = (float(conf_sum[b] / c), float(acc_sum[b] / c)) if c else (None, None)
        bins.append({"lower": float(edges[b]), "upper": float(edges[b + 1]), "count": c})
        bins[-1].update(confidence=conf, accuracy=acc)
    return bins


def expected_calibration_error(probs, labels, *, n_bins: int = ECE_BINS) -> float:
    """ECE = Σ_b (n_b / N) |accuracy_b − confidence_b| over bins of top-class confidence:
    probs [N, K] (rows sum to 1, N >= 1), labels [N] class indices in [0, K)."""
    probs = _as_probs(probs, "probs", 2)
    _fail_unless(probs.shape[0] >= 1, "probs needs at least one item")
    labels = _as_labels(labels, probs.shape[0], probs.shape[1], allow_missing=False)
    correct = (probs.argmax(axis=1) == labels).astype(np.float64)
    _, _, conf, acc = _binned(np.clip(probs.max(axis=1), 0.0, 1.0), correct, n_bins)
    # (n_b / N) |acc_b/n_b - conf_b/n_b| = |acc_sum_b - conf_sum_b| / N
    return float(np.abs(acc - conf).sum() / probs.shape[0])


def risk_coverage(uncertainty, correct) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Selective prediction: accept items with uncertainty <= threshold.

    uncertainty [N], correct [N] bool -> (thresholds, coverage, risk), each [U] over the U distinct
    uncertainties ascending: coverage = fraction accepted, risk = error rate among the accepted.
    """
    uncertainty = _as_float(uncertainty, "uncertainty", 1)
    correct = _as_flags(correct, "correct", len(uncertainty))
    _fail_unless(len(uncertainty) >= 1, "risk_coverage needs at least one item")
    order = np.argsort(uncertainty, kind="stable")
    ordered = uncertainty[order]
    errors = np.cumsum(1.0 - correct[order])
    # The last position of each distinct value: everything tied with it is accepted too.
    last = np.flatnonzero(np.append(ordered[1:] != ordered[:-1], True))
    accepted = last + 1.0
    return ordered[last], accepted / len(uncertainty), errors[last] / accepted


def threshold_for_risk(uncertainty, correct, *, target: float) -> float | None:
    """Largest threshold whose risk is <= ``target`` (in [0, 1]); None if there is none."""
    _fail_unless(0.0 <= target <= 1.0, f"target must be in [0, 1], got {target}")
    thresholds, _, risk = risk_coverage(uncertainty, correct)
    ok = np.flatnonzero(risk <= target + RISK_SLACK)
    return float(thresholds[ok[-1]]) if len(ok) else None


def auroc(scores, positives) -> float:
    """Area under the ROC curve (Mann–Whitney U; a tie counts 1/2): P(score_pos > score_neg).

    scores [N] floats, positives [N] bool; both classes must be present.
    """
    scores = _as_float(scores, "scores", 1)
    positives = _as_flags(positives, "positives", len(scores)).astype(bool)
    n_pos = int(positives.sum())
    n_neg = len(scores) - n_pos
    _fail_unless(n_pos > 0 and n_neg > 0, "auroc needs at least one positive and one negative")
    _, inverse, counts = np.unique(scores, return_inverse=True, return_counts=True)
    below = np.cumsum(counts) - counts
    ranks = (below + (counts + 1) / 2.0)[inverse]  # 1-based ranks, ties averaged
    u = ranks[positives].sum() - n_pos * (n_pos + 1) / 2.0
    return float(u / (n_pos * n_neg))
