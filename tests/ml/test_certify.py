"""The certificate's math: the finite-population bound, the binomial one, and the threshold
chosen by fixed-sequence testing, against hand-computed values and against simulation."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest

from reviewer.ml.certify import (
    NO_THRESHOLD,
    STARTS,
    audit_labels_needed,
    certify,
    clopper_pearson_upper,
    errors_upper_bound,
    hypergeometric_cdf,
    zero_error_sample,
)


def test_hypergeometric_cdf_by_hand():
    # 10 items, 2 wrong, 3 drawn: P(no wrong drawn) = C(8,3) / C(10,3) = 56 / 120.
    assert hypergeometric_cdf(0, 10, 2, 3) == pytest.approx(56 / 120)
    # P(X <= 1) = (56 + 2 * C(8,2)) / 120 = (56 + 56) / 120.
    assert hypergeometric_cdf(1, 10, 2, 3) == pytest.approx(112 / 120)
    assert hypergeometric_cdf(2, 10, 2, 3) == pytest.approx(1.0)
    assert hypergeometric_cdf(0, 10, 9, 3) == 0.0  # 3 draws from 1 right item cannot all be right


@pytest.mark.parametrize(
    "k, population, successes, draws",
    [(3, 100, 20, 30), (10, 500, 60, 120), (100, 3000, 300, 1000)],
)
def test_hypergeometric_cdf_against_exact_fractions(k, population, successes, draws):
    exact = sum(
        Fraction(math.comb(successes, x) * math.comb(population - successes, draws - x))
        for x in range(k + 1)
    ) / math.comb(population, draws)
    assert hypergeometric_cdf(k, population, successes, draws) == pytest.approx(float(exact))


@pytest.mark.parametrize(
    "k, draws, population, expected",
    [
        # P(X = 0 | E) = C(10 - E, 3) / 120: 10/120 > 0.05 at E = 5, 4/120 < 0.05 at E = 6.
        (0, 3, 10, 5),
        # 7 items, 5 drawn with 1 wrong: E = 3 still gives P(X <= 1) = 3/21 > 0.05; E = 4 forces
        # at least 2 wrong among the 5 drawn.
        (1, 5, 7, 3),
        (4, 10, 10, 4),  # a census: the errors are known
        (0, 0, 25, 25),  # nothing drawn: every item may be wrong
    ],
)
def test_errors_upper_bound_by_hand(k, draws, population, expected):
    assert errors_upper_bound(k, draws, population, delta=0.05) == expected


def test_clopper_pearson_by_hand():
    # Zero errors in n: the bound is 1 - delta ** (1 / n).
    assert clopper_pearson_upper(0, 59, delta=0.05) == pytest.approx(1 - 0.05 ** (1 / 59))
    # 1 error in 10 at 95%: the tabulated one-sided upper limit 0.3942.
    assert clopper_pearson_upper(1, 10, delta=0.05) == pytest.approx(0.3942, abs=1e-4)
    assert clopper_pearson_upper(10, 10, delta=0.05) == 1.0


@pytest.mark.parametrize("k, draws, population", [(0, 50, 200), (3, 100, 400), (10, 300, 5000)])
def test_the_finite_population_bound_is_tighter_than_the_binomial(k, draws, population):
    errors = errors_upper_bound(k, draws, population, delta=0.05)
    binomial = clopper_pearson_upper(k, draws, delta=0.05)
    assert k <= errors and errors / population <= binomial + 1 / population


def test_the_bound_holds_at_its_level_over_random_samples():
    # 2,000 items, 60 wrong; 2,000 samples of 150: the bound may fall below 60 in at most 5%.
    rng = np.random.default_rng(7)
    wrong = np.zeros(2000, dtype=bool)
    wrong[:60] = True
    misses = 0
    for _ in range(2000):
        k = int(wrong[rng.choice(2000, 150, replace=False)].sum())
        misses += errors_upper_bound(k, 150, 2000, delta=0.05) < 60
    assert misses / 2000 <= 0.05 + 3 * math.sqrt(0.05 * 0.95 / 2000)
    assert misses > 0  # and it is not vacuous: at this level it does miss now and then


def test_zero_error_sample_and_labels_needed():
    assert zero_error_sample(0.05, 0.05) == 59  # 0.95 ** 59 = 0.0485 <= 0.05 < 0.95 ** 58
    assert zero_error_sample(0.02, 0.05) == 149
    assert audit_labels_needed(0.0, 0.05, 0.05) == 59
    needed = audit_labels_needed(0.02, 0.05, 0.05)
    assert 150 < needed < 600
    assert clopper_pearson_upper(round(0.02 * needed), needed, delta=0.05) <= 0.05
    assert audit_labels_needed(0.06, 0.05, 0.05) is None  # the model errs more than the target


def _pool(n, audited_share, rng, wrong_below=0.0):
    """A pool with confidence uniform in [0.5, 1), wrong where confidence < ``wrong_below``,
    and a random audited share of it (answered, with their errors seen)."""
    confidence = rng.uniform(0.5, 1.0, n)
    wrong = confidence < wrong_below
    audited = rng.random(n) < audited_share
    return confidence, audited.copy(), wrong & audited, audited


def test_certify_accepts_down_to_the_lowest_audit_item_when_the_audit_finds_no_error():
    rng = np.random.default_rng(1)
    confidence, answered, wrong, audited = _pool(2000, 0.1, rng)
    cert = certify(confidence, answered, wrong, audited, alpha=0.05, delta=0.05)
    assert cert.threshold == confidence[audited].min() and cert.reason == "certified"
    assert cert.accepted == int((~answered & (confidence >= cert.threshold)).sum())
    assert cert.audit == int(audited.sum()) and cert.audit_errors == 0
    assert 0 < cert.bound <= 0.05


def test_certify_stops_at_the_first_threshold_that_fails():
    rng = np.random.default_rng(2)
    confidence, answered, wrong, audited = _pool(4000, 0.1, rng, wrong_below=0.7)
    cert = certify(confidence, answered, wrong, audited, alpha=0.05, delta=0.05)
    above = confidence >= cert.threshold
    assert cert.accepted == int((above & ~answered).sum()) and cert.above == int(above.sum())
    assert cert.audit == int((audited & above).sum()) and cert.bound <= 0.05
    assert (confidence[above & ~answered] < 0.7).mean() <= cert.bound  # the truth is within it
    # At the next audit item down, the bound (errors among the items above it, less the known
    # ones, over the unanswered) at each sequence's level, delta / 2, exceeds alpha: the
    # sequence that certified stopped there.
    lower = np.sort(confidence[audited & ~above])[::-1][0]
    at = confidence >= lower
    m, k = int((audited & at).sum()), int((wrong & at).sum())
    errors = errors_upper_bound(k, m, int(at.sum()), delta=0.05 / len(STARTS))
    assert (errors - k) / int((at & ~answered).sum()) > 0.05


def test_one_early_error_does_not_stop_the_certificate():
    rng = np.random.default_rng(8)
    confidence, answered, wrong, audited = _pool(4000, 0.1, rng)
    top = np.flatnonzero(audited)[np.argsort(-confidence[audited])][:3]
    wrong[top[2]] = True  # the third most confident audit item is wrong
    cert = certify(confidence, answered, wrong, audited, alpha=0.05, delta=0.05)
    # The sequence that starts where zero errors just pass fails on it at once; the one that
    # starts lower absorbs it and certifies most of the pool.
    assert cert.audit_errors == 1 and cert.accepted > 0.8 * (~answered).sum()


def test_errors_people_found_lower_the_bound():
    rng = np.random.default_rng(3)
    confidence, answered, wrong, audited = _pool(3000, 0.05, rng)
    # A few high-confidence items the queue labeled and found wrong: known errors of P≥τ.
    found = np.flatnonzero(~audited)[:10]
    answered[found], wrong[found] = True, True
    with_found = certify(confidence, answered, wrong, audited, alpha=0.05, delta=0.05)
    unlabeled = certify(confidence, audited.copy(), wrong & audited, audited, alpha=0.05,
                        delta=0.05)  # fmt: skip
    assert with_found.known_errors == 10 and with_found.accepted == unlabeled.accepted - 10
    assert with_found.bound < unlabeled.bound


def test_no_certificate_with_too_few_audit_labels():
    rng = np.random.default_rng(4)
    confidence, answered, wrong, audited = _pool(1000, 0.0, rng)
    audited[:40] = answered[:40] = True
    cert = certify(confidence, answered, wrong, audited, alpha=0.05, delta=0.05)
    assert cert.threshold is None and cert.accepted == 0 and cert.audit == 40
    assert cert.reason == (
        "too few audit labels: about 34 more are needed before any threshold can pass"
    )


def test_no_certificate_when_the_model_errs_too_often():
    rng = np.random.default_rng(5)
    confidence, answered, wrong, audited = _pool(2000, 0.2, rng, wrong_below=1.0)  # all wrong
    cert = certify(confidence, answered, wrong, audited, alpha=0.05, delta=0.05)
    assert cert.threshold is None and cert.reason == NO_THRESHOLD
    assert cert.audit_errors == cert.audit == int(audited.sum())


def test_certify_checks_its_arrays():
    with pytest.raises(ValueError, match="differ in length"):
        certify([0.9, 0.8], [True], [False], [True], alpha=0.05, delta=0.05)
    with pytest.raises(ValueError, match="must be answered"):
        certify([0.9], [False], [False], [True], alpha=0.05, delta=0.05)


def test_the_certificate_holds_over_random_audits():
    # 3,000 items whose error rate falls with confidence (about 9% overall); 200 random audits
    # of 400: the realized error rate of the accepted items exceeds alpha at most delta of the
    # time, within binomial noise.
    rng = np.random.default_rng(6)
    n, alpha, delta, draws = 3000, 0.05, 0.05, 200
    confidence = rng.uniform(0.3, 1.0, n)
    truly_wrong = rng.random(n) < 0.25 * (1 - confidence) ** 1.5 / 0.7**1.5
    violations, accepted = 0, []
    for _ in range(draws):
        audited = np.zeros(n, dtype=bool)
        audited[rng.choice(n, 400, replace=False)] = True
        cert = certify(confidence, audited, truly_wrong & audited, audited, alpha=alpha,
                       delta=delta)  # fmt: skip
        if cert.threshold is None:
            continue
        chosen = (confidence >= cert.threshold) & ~audited
        violations += truly_wrong[chosen].mean() > alpha
        accepted.append(chosen.sum() / (n - 400))
    assert violations / draws <= delta + 3 * math.sqrt(delta * (1 - delta) / draws)
    assert np.mean(accepted) > 0.2  # and it accepts a real share of the pool
