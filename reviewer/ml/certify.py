"""Pure math of certified auto-accept: an upper confidence bound on the errors of the items the
model would label alone, and a threshold chosen so that the bound holds for the choice.

The audit is a simple random sample of the pool (without replacement). Among the items at or
above a confidence threshold τ (N of them), the m audit items are a simple random sample of
those N, so their k errors bound the errors E of all N: the hypergeometric upper bound is the
largest E for which seeing k or fewer errors in m draws still has probability above δ.
Subtracting the errors people already found among the N, and dividing by the items nobody
answered (A), bounds the error rate of the labels the model would give alone.

τ is chosen by fixed-sequence testing (Learn then Test): the candidate thresholds (the audit
items' confidences) are tested from the most confident down, starting where an audit with no
error there could pass (a matter of counts, never of answers), and a sequence stops at the
first threshold whose bound exceeds α. Two sequences with different starts (`STARTS`) run at
δ/2 each and the lower certified threshold wins; by the union bound, with probability at
least 1 − δ the exported labels' error rate is at most the reported bound ≤ α. Arrays in,
plain values out; no database.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from reviewer.ml.bounds import (  # noqa: F401 (the bounds are part of this module's API)
    clopper_pearson_upper,
    errors_upper_bound,
    hypergeometric_cdf,
    zero_error_sample,
)
from reviewer.ml.checks import as_float, fail_unless


@dataclass(frozen=True)
class Certificate:
    """The chosen threshold and what it rests on (None threshold: no certificate)."""

    threshold: float | None
    bound: float | None  # upper bound on the error rate of the auto-accepted items
    accepted: int  # |A(τ)|: items nobody answered, labeled by the model at τ
    above: int  # |P≥τ|: every pool item at or above τ
    audit: int  # m: audit items at or above τ
    audit_errors: int  # k
    known_errors: int  # errors people found among the items at or above τ
    reason: str  # why there is a certificate, or why not


@dataclass(frozen=True)
class Tally:
    """The pool's counts at or above each of a few thresholds (most confident first), so the
    figures at a threshold are a lookup instead of a pass over the pool. Built from per-item
    arrays by `tally`, or from a database's counts (reviewer.review.pool) without reading the
    pool's rows: only the thresholds asked about have counts."""

    thresholds: np.ndarray  # descending; the figures below are per threshold
    above: np.ndarray  # |P≥τ|: pool items at or above τ
    audited: np.ndarray  # m: audit items at or above τ
    audit_errors: np.ndarray  # k: of them, wrong
    known_errors: np.ndarray  # answered and wrong, at or above τ
    unanswered: np.ndarray  # |A(τ)|: nobody answered, at or above τ
    candidates: np.ndarray  # every audit item's confidence, unique, most confident first
    pool: int  # items in the pool
    audit: int  # audit items in all
    audit_errors_total: int  # of them, wrong
    unanswered_total: int  # items in the pool nobody answered

    def _row(self, tau: float) -> int:
        row = int(np.searchsorted(-self.thresholds, -tau, side="left"))
        fail_unless(
            row < len(self.thresholds) and self.thresholds[row] == tau,
            f"the tally has no counts at threshold {tau}",
        )
        return row

    def at(self, tau: float, *, delta: float) -> tuple:
        """(bound on A(τ)'s error rate or None, |A|, |P≥τ|, m, k, known errors) at τ."""
        row = self._row(tau)
        m, k, n_above = int(self.audited[row]), int(self.audit_errors[row]), int(self.above[row])
        known, unanswered = int(self.known_errors[row]), int(self.unanswered[row])
        errors = errors_upper_bound(k, m, n_above, delta=delta) if n_above else 0
        bound = None if unanswered == 0 else max(0, errors - known) / unanswered
        return bound, unanswered, n_above, m, k, known

    def testable(self, tau: float, *, alpha: float, delta: float) -> bool:
        """Whether τ could pass at all: an audit with no error there would bound A(τ)'s error
        rate by ``alpha``. It depends on how many items are audited, answered and above τ,
        never on the answers, so the sequence of tests is fixed before any is run."""
        row = self._row(tau)
        m, unanswered, n_above = int(self.audited[row]), int(self.unanswered[row]), self.above[row]
        return unanswered > 0 and errors_upper_bound(0, m, int(n_above), delta=delta) <= alpha * (
            unanswered
        )


def candidates(audit_confidence) -> np.ndarray:
    """The thresholds worth testing: the audit items' confidences, unique, most confident
    first."""
    return np.unique(np.asarray(audit_confidence, dtype=np.float64))[::-1]


def tested_thresholds(audit_confidence, *, points: int) -> np.ndarray:
    """Every threshold `certify_tally` and `curve_from_tally` (with ``points``) look up, most
    confident first: what a tally must hold counts at."""
    found = candidates(audit_confidence)
    return np.union1d(_thinned(found), _picks(found, points))[::-1]


def tally(confidence, answered, wrong, audited, thresholds=None) -> Tally:
    """The tally of per-item arrays at ``thresholds`` (default: `tested_thresholds` of the
    audit items for the default curve)."""
    confidence, answered, wrong, audited = _arrays(confidence, answered, wrong, audited)
    if thresholds is None:
        thresholds = tested_thresholds(confidence[audited], points=CURVE_POINTS)
    thresholds = np.asarray(thresholds, dtype=np.float64)
    order = np.argsort(-confidence, kind="stable")
    cumulative = lambda flags: np.concatenate([[0], np.cumsum(flags[order])])  # noqa: E731
    rows = np.searchsorted(-confidence[order], -thresholds, side="right")
    return Tally(
        thresholds=thresholds,
        above=rows,
        audited=cumulative(audited)[rows],
        audit_errors=cumulative(audited & wrong)[rows],
        known_errors=cumulative(answered & wrong)[rows],
        unanswered=cumulative(~answered)[rows],
        candidates=candidates(confidence[audited]),
        pool=len(confidence),
        audit=int(audited.sum()),
        audit_errors_total=int((audited & wrong).sum()),
        unanswered_total=int((~answered).sum()),
    )


def _arrays(confidence, answered, wrong, audited) -> tuple[np.ndarray, ...]:
    """The four per-item arrays of `certify`, checked; ``wrong`` only where answered."""
    confidence = as_float(confidence, "confidence", 1)
    n = len(confidence)
    answered, wrong, audited = (np.asarray(a, dtype=bool) for a in (answered, wrong, audited))
    fail_unless(all(len(a) == n for a in (answered, wrong, audited)), "arrays differ in length")
    fail_unless(not (audited & ~answered).any(), "every audited item must be answered")
    return confidence, answered, wrong & answered, audited


# Two fixed sequences, each at level δ/2: one starts at the first threshold where an audit
# with no error could bound A(τ)'s rate by α, the other where it could bound it by α/2. A
# single error early in the first stops it at once; the second starts lower and can absorb a
# few. Chosen on the demo model trained with seed 1 (BENCHMARKS.md reports seed 0).
STARTS = (1.0, 0.5)


def certify(confidence, answered, wrong, audited, *, alpha: float, delta: float) -> Certificate:
    """Choose the lowest threshold whose bound on the auto-accepted items' error rate is at
    most ``alpha``, by fixed-sequence testing from the most confident down (module docstring).

    confidence [N]: each pool item's confidence score; answered [N]: it has a human answer;
    wrong [N]: that answer differs from the model's prediction (unsure and none_of_these count
    as wrong; False where unanswered); audited [N]: it is in the audit set (answered too).
    """
    confidence, answered, wrong, audited = _arrays(confidence, answered, wrong, audited)
    thresholds = _thinned(candidates(confidence[audited]))
    return certify_tally(
        tally(confidence, answered, wrong, audited, thresholds), alpha=alpha, delta=delta
    )


def certify_tally(counts: Tally, *, alpha: float, delta: float) -> Certificate:
    """`certify` on a pool's tally (it needs counts at the thinned candidates)."""
    fail_unless(0 < alpha < 1 and 0 < delta < 1, "alpha and delta must be in (0, 1)")
    level = delta / len(STARTS)
    runs = [_sequence(counts, _thinned(counts.candidates), alpha, level, s) for s in STARTS]
    certified = [cert for cert, _ in runs if cert is not None]
    if certified:
        return min(certified, key=lambda cert: cert.threshold)
    m, k = counts.audit, counts.audit_errors_total
    reason = NO_THRESHOLD if any(tested for _, tested in runs) else _too_few(counts, alpha, level)
    return Certificate(None, None, 0, 0, m, k, 0, reason)


MAX_CANDIDATES = 2000  # thresholds a sequence may test: evenly by rank beyond this many
CURVE_POINTS = 50  # thresholds on the dashboard's risk-coverage curve


def _thinned(candidates: np.ndarray) -> np.ndarray:
    """At most MAX_CANDIDATES of the candidates, evenly by rank (by count, not by answer)."""
    if len(candidates) <= MAX_CANDIDATES:
        return candidates
    return candidates[_picks(candidates, MAX_CANDIDATES, positions=True)]


def _picks(candidates: np.ndarray, points: int, *, positions: bool = False) -> np.ndarray:
    """Up to ``points`` of the candidates, evenly by rank (their positions, if asked)."""
    if not len(candidates):
        return np.array([], dtype=np.int64 if positions else np.float64)
    picks = np.unique(np.linspace(0, len(candidates) - 1, points).round().astype(int))
    return picks if positions else candidates[picks]


def _sequence(counts: Tally, thresholds, alpha: float, level: float, share: float):
    """One fixed sequence at ``level``, starting at the first threshold where an audit with no
    error could bound A(τ)'s rate by ``share`` × α: (its lowest certificate or None, whether
    it tested anything)."""
    best, started = None, False
    for tau in thresholds:
        if not started and not counts.testable(float(tau), alpha=share * alpha, delta=level):
            continue
        started = True
        bound, unanswered, n_above, m, k, known = counts.at(float(tau), delta=level)
        if bound is None:
            continue  # nothing left to accept at τ: no claim to test
        if bound > alpha:
            break
        best = Certificate(float(tau), bound, unanswered, n_above, m, k, known, "certified")
    return best, started


def risk_curve(confidence, answered, wrong, audited, *, delta: float, points: int = CURVE_POINTS):
    """The audit's view of every threshold, for a chart: at up to ``points`` thresholds (the
    audit items' confidences, most confident first) a dict of ``threshold``, ``coverage`` (the
    share of the unanswered items accepted), ``estimate`` (the audit's point estimate of their
    error rate), ``bound`` (its upper bound at the level each of `certify`'s tests uses, so a
    certificate's bound lies on the curve) and ``audit`` (m)."""
    confidence, answered, wrong, audited = _arrays(confidence, answered, wrong, audited)
    thresholds = _picks(candidates(confidence[audited]), points)
    counts = tally(confidence, answered, wrong, audited, thresholds)
    return curve_from_tally(counts, delta=delta, points=points)


def curve_from_tally(counts: Tally, *, delta: float, points: int = CURVE_POINTS) -> list[dict]:
    """`risk_curve` on a pool's tally (it needs counts at the curve's thresholds)."""
    delta = delta / len(STARTS)
    curve = []
    for tau in _picks(counts.candidates, points):
        bound, unanswered, n_above, m, k, known = counts.at(float(tau), delta=delta)
        if bound is None:
            continue
        estimate = max(0.0, k / m * n_above - known) / unanswered
        coverage = unanswered / counts.unanswered_total
        curve.append(dict(threshold=float(tau), coverage=coverage, audit=m))
        curve[-1].update(estimate=min(1.0, estimate), bound=bound)
    return curve


NO_THRESHOLD = (
    "no threshold passes: at every threshold with enough audit items the audit's errors bound "
    "the error rate above the target; more audit labels narrow the bound"
)


def _too_few(counts: Tally, alpha: float, delta: float) -> str:
    """Why no threshold was tested, with roughly how many more audit labels it takes before
    the whole pool could be (each one audits an unanswered item)."""
    n, m, unanswered = counts.pool, counts.audit, counts.unanswered_total

    def enough(more: int) -> bool:
        left = unanswered - more
        return left > 0 and errors_upper_bound(0, m + more, n, delta=delta) <= alpha * left

    low, high = 1, unanswered - 1  # the fewest more that pass (the test is monotone here)
    if high < low or not enough(high):
        return TOO_FEW_ITEMS
    while low < high:
        middle = (low + high) // 2
        low, high = (low, middle) if enough(middle) else (middle + 1, high)
    return f"too few audit labels: about {low} more are needed before any threshold can pass"


TOO_FEW_ITEMS = (
    "no threshold can pass: too few items are left without an answer for an audit to bound "
    "their error rate"
)


def audit_labels_needed(error_rate: float, alpha: float, delta: float) -> int | None:
    """Roughly how many audit labels certify α when the model's error rate at the threshold is
    ``error_rate`` (binomial: the smallest n whose Clopper-Pearson bound at the expected errors
    is at most α); None when the rate is at or above α."""
    if error_rate >= alpha:
        return None
    n = zero_error_sample(alpha, delta)
    while n < 1_000_000:
        if clopper_pearson_upper(round(error_rate * n), n, delta=delta) <= alpha:
            return n
        n = math.ceil(n * 1.25)
    return None
