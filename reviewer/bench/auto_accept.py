"""Benchmark: certified auto-accept on the demo pool scored by the demo model.

`scored_pool` trains the demo model in a scratch project (:mod:`reviewer.bench.project`),
scores the demo pool with the real worker and reads what the certificate reads: each item's
confidence score and whether the model's prediction is wrong (a non-digit is always wrong:
its answer is none_of_these). The rest is pure simulation: labelers who answer with the
truth give 200 queue labels by one strategy, then the random audit walks a random order
until it has handed out n items; `reviewer.ml.certify.certify` picks the threshold. Over
many random orders it counts how often the realized error rate of the auto-accepted items
exceeds α (the certificate promises at most δ of the time), the mean coverage of the
unanswered pool, and the human labels saved against reviewing everything. Beside it, the
naive rule today's dashboard drew: the entropy threshold whose point estimate on the
queue-reviewed labels is within α.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from sqlalchemy import select

from reviewer.bench.project import demo_project, ensure_demo_data, score_pool
from reviewer.core import versions
from reviewer.core.schema import Image, Score
from reviewer.demo.data import read_truth
from reviewer.ml import certify, evaluation
from reviewer.review import ranking

SIZES = (200, 400, 800)  # audit labels handed out
QUEUES = ("none", "entropy", "mislabeled", "ood")  # the strategy of the 200 queue labels
RISKS = (0.05, 0.02)
QUEUE_LABELS = 200
DELTA = 0.05


@dataclass
class ScoredPool:
    """The demo pool as the certificate sees it, one entry per scored image."""

    confidence: np.ndarray
    wrong: np.ndarray  # the prediction is not the truth
    entropy: np.ndarray
    queues: dict[str, np.ndarray]  # strategy -> indices of its first QUEUE_LABELS items


def scored_pool(*, data_dir, epochs: int, T: int, seed: int, work: Path, echo) -> ScoredPool:
    """Train the demo model with ``seed``, score the demo pool, read it back (TensorFlow)."""
    data_dir = ensure_demo_data(data_dir, work, echo=echo)
    project = demo_project(data_dir, work, epochs=epochs, seed=seed, echo=echo)
    echo(f"scoring the demo pool at T={T} ...")
    score_pool(project, T=T)
    truth = {
        name: row["true_label"] or "none_of_these" for name, row in read_truth(data_dir).items()
    }
    with project.sessions() as session:
        version = versions.active_version(session)
        columns = (Image.id, Image.original_filename, Score.confidence, Score.predicted_label)
        rows = session.execute(
            select(*columns, Score.entropy)
            .join(Score, Score.image_id == Image.id)
            .where(Score.model_version_id == version.id)
            .order_by(Image.id)
        ).all()
        index = {row[0]: i for i, row in enumerate(rows)}
        queues = {
            name: np.array(
                [index[item["id"]] for item in ranking.ranked(session, name, limit=QUEUE_LABELS)[0]]
            )  # fmt: skip
            for name in QUEUES[1:]
        }
    return ScoredPool(
        confidence=np.array([row[2] for row in rows], dtype=np.float64),
        wrong=np.array([truth[Path(row[1]).name] != row[3] for row in rows], dtype=bool),
        entropy=np.array([row[4] for row in rows], dtype=np.float64),
        queues=queues,
    )


def audit_walk(order: np.ndarray, queued: np.ndarray, handed: int) -> np.ndarray:
    """The audit set after the walk handed out ``handed`` items in ``order``: every item up to
    the last one handed out, counting the queue's answered items it passes on the way."""
    fresh = np.cumsum(~queued[order])
    stop = int(np.searchsorted(fresh, handed))  # the position of the last item handed out
    audited = np.zeros(len(order), dtype=bool)
    audited[order[: stop + 1]] = True
    return audited


def one_order(pool: ScoredPool, queued, order, *, handed: int, alpha: float) -> dict:
    """One random order: the certificate, its coverage and its realized error."""
    audited = audit_walk(order, queued, handed)
    answered = audited | queued
    cert = certify.certify(
        pool.confidence, answered, pool.wrong & answered, audited, alpha=alpha, delta=DELTA
    )
    unanswered = int((~answered).sum())
    if cert.threshold is None:
        return {"coverage": 0.0, "error": 0.0, "accepted": 0, "labels": int(answered.sum())}
    accepted = (pool.confidence >= cert.threshold) & ~answered
    error = float(pool.wrong[accepted].mean()) if accepted.any() else 0.0
    return {
        "coverage": int(accepted.sum()) / unanswered,
        "error": error,
        "accepted": int(accepted.sum()),
        "labels": int(answered.sum()),
    }


def naive_rule(pool: ScoredPool, queued: np.ndarray, *, alpha: float) -> dict:
    """Today's dashboard: the largest entropy threshold whose error rate on the queue-reviewed
    items is within α, applied to every unanswered item."""
    if not queued.any():
        return {"coverage": None, "error": None}
    threshold = evaluation.threshold_for_risk(
        pool.entropy[queued], ~pool.wrong[queued], target=alpha
    )
    if threshold is None:
        return {"coverage": 0.0, "error": 0.0}
    accepted = (pool.entropy <= threshold) & ~queued
    error = float(pool.wrong[accepted].mean()) if accepted.any() else 0.0
    return {"coverage": int(accepted.sum()) / int((~queued).sum()), "error": error}


def run_setting(pool: ScoredPool, *, queue: str, handed: int, alpha: float, orders: int, seed):
    """One row of the table: ``orders`` random orders of one setting."""
    queued = np.zeros(len(pool.confidence), dtype=bool)
    if queue != "none":
        queued[pool.queues[queue]] = True
    rng = np.random.default_rng(seed)  # the same orders for every setting
    runs = [
        one_order(pool, queued, rng.permutation(len(queued)), handed=handed, alpha=alpha)
        for _ in range(orders)
    ]
    violations = sum(run["error"] > alpha for run in runs)
    return {
        "queue": queue,
        "audit": handed,
        "alpha": alpha,
        "orders": orders,
        "violation_rate": violations / orders,
        "certified_share": float(np.mean([run["accepted"] > 0 for run in runs])),
        "coverage": float(np.mean([run["coverage"] for run in runs])),
        "labels_saved": float(np.mean([run["accepted"] for run in runs])),
        "labels_given": float(np.mean([run["labels"] for run in runs])),
        "pool": len(queued),
        "naive": naive_rule(pool, queued, alpha=alpha),
    }


def run(pool: ScoredPool, *, orders: int, seed: int, sizes=SIZES, queues=QUEUES, risks=RISKS,
        echo=print) -> list[dict]:  # fmt: skip
    """Every setting's row (sizes × queues × risks)."""
    rows = []
    for alpha in risks:
        for queue in queues:
            for handed in sizes:
                rows.append(run_setting(pool, queue=queue, handed=handed, alpha=alpha,
                                        orders=orders, seed=seed))  # fmt: skip
                echo(row_line(rows[-1]))
    return rows


HEADER = (
    "alpha  queue       audit  orders  P(error > alpha)  certified  coverage  labels saved"
    "   naive: coverage  error"
)


def _share(value) -> str:
    return "     -" if value is None else f"{value:6.3f}"


def row_line(row: dict) -> str:
    """One table line: the certificate's figures, then the naive rule's."""
    noise = 2 * (DELTA * (1 - DELTA) / row["orders"]) ** 0.5
    naive = row["naive"]
    return (
        f"{row['alpha']:<5}  {row['queue']:<10}  {row['audit']:>5}  {row['orders']:>6}  "
        f"{row['violation_rate']:>8.3f} (<{DELTA + noise:.3f})  {row['certified_share']:>9.2f}  "
        f"{row['coverage']:>8.3f}  {row['labels_saved']:>7.0f} / {row['pool']}"
        f"   {_share(naive['coverage'])}  {_share(naive['error'])}"
    )


def plot(rows: list[dict], path: Path) -> Path:
    """Mean coverage against audit labels, one line per α and queue strategy."""
    from reviewer.bench.plots import line_plot

    series = {}
    for row in rows:
        xs, ys = series.setdefault(f"α={row['alpha']}, queue {row['queue']}", ([], []))
        xs.append(row["audit"])
        ys.append(row["coverage"])
    return line_plot(
        series,
        path,
        title="Certified auto-accept on the demo pool (δ = 0.05)",
        x_label="audit labels",
        y_label="mean coverage of the unanswered pool",
    )
