"""Pure math of the certificate's bounds: how many errors a finite pool can hold given the
errors of a simple random sample drawn from it (hypergeometric), the binomial
(Clopper-Pearson) bound on a rate, and the zero-error sample size. Numbers in, numbers out.
"""

from __future__ import annotations

import math

import numpy as np

from reviewer.ml.checks import fail_unless


def _log_choose(n: int, k: int) -> float:
    return math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1)


def hypergeometric_cdf(k: int, population: int, successes: int, draws: int) -> float:
    """P(X ≤ k) for X ~ Hypergeometric(population N, successes E, draws m): the first term in
    logs, the rest by the ratio of consecutive terms (one vectorized pass)."""
    low = max(0, draws - (population - successes))
    high = min(k, successes, draws)
    if high < low:
        return 0.0
    first = (
        _log_choose(successes, low)
        + _log_choose(population - successes, draws - low)
        - _log_choose(population, draws)
    )
    if high - low < 64:  # a few terms: plain floats beat numpy's overhead
        term = total = math.exp(first)
        for x in range(low, high):
            term *= (
                (successes - x) * (draws - x) / ((x + 1) * (population - successes - draws + x + 1))
            )
            total += term
        return min(1.0, total)
    x = np.arange(low, high, dtype=np.float64)  # term x+1 / term x, for x = low .. high-1
    ratios = (successes - x) * (draws - x) / ((x + 1) * (population - successes - draws + x + 1))
    terms = np.exp(first + np.concatenate([[0.0], np.cumsum(np.log(ratios))]))
    return float(min(1.0, terms.sum()))


def errors_upper_bound(k: int, draws: int, population: int, *, delta: float) -> int:
    """The largest number of errors E among ``population`` items that is still consistent, at
    level ``delta``, with ``k`` errors in ``draws`` of them drawn without replacement: the
    largest E with P(X ≤ k | E) > delta. With no draws, every item may be wrong."""
    fail_unless(0 < delta < 1, f"delta must be in (0, 1), got {delta}")
    fail_unless(
        0 <= k <= draws <= population, f"need 0 <= k <= m <= N, got {k}, {draws}, {population}"
    )
    if draws == 0:
        return population
    low, high = k, population - (draws - k)  # E lies between what was seen and what was not
    while low < high:  # P(X <= k | E) falls as E grows: find the last E above delta
        middle = (low + high + 1) // 2
        if hypergeometric_cdf(k, population, middle, draws) > delta:
            low = middle
        else:
            high = middle - 1
    return low


def clopper_pearson_upper(k: int, n: int, *, delta: float) -> float:
    """The one-sided Clopper-Pearson upper bound on a rate from k errors in n (binomial): the
    rate p with P(X ≤ k | n, p) = delta, found by bisection."""
    fail_unless(0 < delta < 1 and 0 <= k <= n, f"bad arguments k={k}, n={n}, delta={delta}")
    if k == n:
        return 1.0
    low, high = k / n if n else 0.0, 1.0
    for _ in range(100):
        p = (low + high) / 2
        cdf = sum(math.comb(n, x) * p**x * (1 - p) ** (n - x) for x in range(k + 1))
        low, high = (p, high) if cdf > delta else (low, p)
    return high


def zero_error_sample(alpha: float, delta: float) -> int:
    """The fewest audit items with no error that bound a rate by ``alpha`` at level ``delta``
    (binomially: (1 − α)^m ≤ δ). The fixed sequence starts where the audit has this many."""
    return math.ceil(math.log(delta) / math.log(1.0 - alpha))
