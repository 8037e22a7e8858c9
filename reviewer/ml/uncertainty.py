"""Pure-numpy uncertainty of Monte-Carlo dropout ``samples`` [T, N, K]: the per-item metrics.

`summarize` turns samples into the mean, std, entropy, expected entropy, mutual information,
variance, variation ratio, margin and the label-quality scores (self-confidence, normalized
margin) of docs/architecture.md's uncertainty table. `METRICS` is the one list of the scalar
metrics a scores row stores, in order; the queue, the API, the export and the schema all use
it. Arrays in, arrays out; logs are natural (nats), 0 · log 0 = 0, and ties in an argmax go to
the lowest class index. No TensorFlow, no database.
"""

import math
from dataclasses import dataclass

import numpy as np

from reviewer.ml.checks import (
    NO_CLASS,
    as_classes,
    as_float,
    as_probs,
    fail_unless,
    validate_samples,
)

# The scalar per-item metrics `summarize` computes, in the order of the scores table.
SUMMARY_METRICS = ("entropy", "expected_entropy", "mutual_info", "variance", "variation_ratio")
SUMMARY_METRICS += ("margin", "confidence", "self_confidence", "normalized_margin")
# Every scalar metric of a scores row: the summary's, then the OOD score (reviewer.ml.ood).
METRICS = (*SUMMARY_METRICS, "ood")


def entropy(probs) -> np.ndarray:
    """Shannon entropy in nats over the last axis: probs [..., K] -> [...]."""
    array = as_float(probs, "probs", max(np.ndim(probs), 1))  # any shape with a class axis
    fail_unless(not (array < 0).any(), "probs contains negative probabilities")
    return _entropy(array)


def _entropy(array: np.ndarray) -> np.ndarray:
    logs = np.zeros_like(array)
    np.log(array, out=logs, where=array > 0)  # 0 · log 0 = 0, without a warning
    return 0.0 - (array * logs).sum(axis=-1)  # 0.0 - x, not -x: a certain item gets 0.0, not -0.0


def _mean_and_classes(mean, y) -> tuple[np.ndarray, np.ndarray]:
    mean = as_probs(mean, "mean", 2)
    return mean, as_classes(y, mean.shape[0], mean.shape[1], allow_missing=True)


def self_confidence(mean, y) -> np.ndarray:
    """p̄_y for each item's label as a class index y: mean [N, K], y [N] (-1 = none) -> [N],
    NaN where there is none."""
    return _label_scores(*_mean_and_classes(mean, y))[0]


def normalized_margin(mean, y) -> np.ndarray:
    """p̄_y − max_{k≠y} p̄_k: mean [N, K], y [N] (-1 = none) -> [N], NaN where there is none."""
    return _label_scores(*_mean_and_classes(mean, y))[1]


def _label_scores(mean: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(self_confidence, normalized_margin), each [N], NaN where y is NO_CLASS."""
    has = np.flatnonzero(y != NO_CLASS)
    given = mean[has, y[has]]
    others = mean[has].copy()
    others[np.arange(len(has)), y[has]] = -np.inf
    best_other = np.maximum(others.max(axis=1), 0.0)  # K = 1: no other class, count it as 0
    confidence, margin = np.full(len(mean), np.nan), np.full(len(mean), np.nan)
    confidence[has], margin[has] = given, given - best_other
    return confidence, margin


@dataclass(frozen=True, eq=False)
class Summary:
    """Per-item uncertainty metrics of samples [T, N, K] (docs/architecture.md defines them)."""

    mean: np.ndarray  # [N, K]
    std: np.ndarray  # [N, K], population std (divides by T)
    predicted: np.ndarray  # [N] int, argmax of mean
    entropy: np.ndarray  # [N]
    expected_entropy: np.ndarray  # [N]
    mutual_info: np.ndarray  # [N]
    variance: np.ndarray  # [N]
    variation_ratio: np.ndarray  # [N]
    margin: np.ndarray  # [N]
    confidence: np.ndarray  # [N], p̄ of the predicted class: the auto-accept score
    self_confidence: np.ndarray  # [N], NaN where unlabeled
    normalized_margin: np.ndarray  # [N], NaN where unlabeled

    def row(self, i: int) -> dict:
        """Item ``i`` as plain Python values (NaN -> None), ready for a DB row or JSON."""
        values = {name: float(getattr(self, name)[i]) for name in SUMMARY_METRICS}
        row = {name: None if math.isnan(v) else v for name, v in values.items()}
        vectors = {"mean": self.mean[i].tolist(), "std": self.std[i].tolist()}
        return {"predicted": int(self.predicted[i]), **row, **vectors}


def summarize(samples, *, y=None) -> Summary:
    """Summarise MC-dropout ``samples`` [T, N, K]; ``y`` [N] (optional) is the class index of
    each item's label (its human consensus, else its given label), -1 where it has none."""
    samples = validate_samples(samples)
    t, n, k = samples.shape
    y = as_classes(np.full(n, NO_CLASS) if y is None else y, n, k, allow_missing=True)
    mean = samples.mean(axis=0)
    predicted = mean.argmax(axis=1)
    std = samples.std(axis=0)  # ddof=0: the population std of the definitions
    total = _entropy(mean)
    expected = _entropy(samples).mean(axis=0)
    votes = samples.argmax(axis=2)  # [T, N]
    counts = (votes[:, :, None] == np.arange(k)).sum(axis=0)  # [N, K]
    ordered = np.sort(mean, axis=1)
    second = ordered[:, -2] if k > 1 else 0.0  # one class: nothing to be close to
    label_confidence, label_margin = _label_scores(mean, y)
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
        confidence=ordered[:, -1],
        self_confidence=label_confidence,
        normalized_margin=label_margin,
    )
