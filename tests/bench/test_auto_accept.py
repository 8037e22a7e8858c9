"""The auto-accept benchmark's simulation on a synthetic pool (the TensorFlow part, training and
scoring the demo model, is the benchmark's own run)."""

from __future__ import annotations

import numpy as np

from reviewer.bench.auto_accept import ScoredPool, audit_walk, naive_rule, row_line, run_setting


def _pool(n=3000, seed=0) -> ScoredPool:
    rng = np.random.default_rng(seed)
    confidence = rng.uniform(0.4, 1.0, n)
    wrong = rng.random(n) < 0.4 * (1 - confidence) ** 2 / 0.36
    entropy = 2.3 * (1 - confidence)
    return ScoredPool(confidence, wrong, entropy, {"entropy": np.argsort(-entropy)[:200]})


def test_the_walk_counts_queue_labels_it_passes_and_hands_out_the_rest():
    order = np.array([4, 0, 3, 1, 2, 5])
    queued = np.array([True, False, False, False, True, False])  # items 0 and 4
    audited = audit_walk(order, queued, handed=2)
    # 4 (queued), 0 (queued), 3 (handed), 1 (handed): the walk stops after its second handout.
    assert np.flatnonzero(audited).tolist() == [0, 1, 3, 4]


def test_a_setting_reports_coverage_violations_and_the_naive_rule():
    pool = _pool()
    row = run_setting(pool, queue="entropy", handed=400, alpha=0.05, orders=30, seed=1)
    assert row["orders"] == 30 and row["pool"] == 3000
    assert 0.1 < row["coverage"] < 1.0 and row["certified_share"] > 0.5
    assert row["violation_rate"] <= 0.2  # 30 orders: a loose check; the benchmark runs 200+
    assert 400 < row["labels_given"] <= 600  # the audit's 400 and the queue's 200, some shared
    unanswered = 3000 - row["labels_given"]
    assert abs(row["labels_saved"] - row["coverage"] * unanswered) < 0.01 * unanswered
    assert "entropy" in row_line(row)
    queued = np.isin(np.arange(3000), pool.queues["entropy"])
    assert row["naive"] == naive_rule(pool, queued, alpha=0.05)


def test_the_naive_rule_trusts_whatever_the_queue_saw():
    # 200 queue items the model happened to get right: the point estimate says 0% error at any
    # entropy, so the naive rule accepts the whole pool, whose error rate is far above alpha.
    pool = _pool()
    queued = np.zeros(3000, dtype=bool)
    queued[np.flatnonzero(~pool.wrong)[::10][:200]] = True
    naive = naive_rule(pool, queued, alpha=0.05)
    assert naive["coverage"] > 0.9 and naive["error"] > 0.1


def test_without_audit_labels_nothing_is_certified():
    row = run_setting(_pool(), queue="none", handed=20, alpha=0.05, orders=5, seed=0)
    assert row["coverage"] == 0.0 and row["certified_share"] == 0.0
    assert row["naive"] == {"coverage": None, "error": None}
