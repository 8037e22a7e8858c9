"""Benchmark: how well the queue's rankings find planted problems in the demo data, in a
scratch project (:mod:`reviewer.bench.project`). `quality_metrics` is pure: it turns scores
rows and truth.csv into precision at k of the `mislabeled` ranking, the entropy AUROC for the
model's own mistakes, and the AUROC of entropy and of `ood` for each out-of-distribution kind
against pool digits. TensorFlow loads lazily.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from reviewer.bench.project import active_scores, demo_project, ensure_demo_data, ingest, score_pool
from reviewer.demo.data import read_truth
from reviewer.ml import evaluation
from reviewer.review import ranking

INVERTED = "inverted"
INVERTED_COUNT = 300


def _auroc(scores: dict, names, positive) -> float | None:
    """None when the names are all positives or all negatives (no AUROC is defined)."""
    flags = [positive(n) for n in names]
    if all(flags) or not any(flags):
        return None
    return evaluation.auroc([scores[n] for n in names], flags)


def quality_metrics(scores: dict, truth: dict, mislabeled_top: list[str]) -> dict:
    """Pure: the report's numbers from scores {name: row}, truth {name: row} (inverted digits
    have kind ``inverted``) and the file names of the `mislabeled` ranking's top k."""
    # Identical bytes are ingested once (e.g. two blanks of one grey): judge the scored names.
    unscored = sorted(set(truth) - set(scores))
    truth = {n: t for n, t in truth.items() if n in scores}
    digits = [n for n, t in truth.items() if t["kind"] == "digit"]
    flipped = {n for n in digits if truth[n]["given_label"] != truth[n]["true_label"]}
    hits = len(flipped.intersection(mislabeled_top))
    report = {
        "k": len(flipped),
        "mislabeled_precision": hits / max(len(mislabeled_top), 1),
        "digits": len(digits),
        "unscored": len(unscored),
        "accuracy": float(
            np.mean([scores[n]["predicted"] == truth[n]["true_label"] for n in digits])
        ),
    }
    entropy = {n: s["entropy"] for n, s in scores.items()}
    report["mistakes"] = sum(scores[n]["predicted"] != truth[n]["true_label"] for n in digits)
    report["mistake_auroc_entropy"] = _auroc(
        entropy, digits, lambda n: scores[n]["predicted"] != truth[n]["true_label"]
    )
    ood = {n: s["ood"] for n, s in scores.items()}
    kinds = sorted({t["kind"] for t in truth.values()} - {"digit"})
    report["ood"] = {}
    for kind in kinds:
        names = digits + [n for n in truth if truth[n]["kind"] == kind]
        is_kind = lambda n, kind=kind: truth[n]["kind"] == kind  # noqa: E731
        report["ood"][kind] = {
            "count": len(names) - len(digits),
            "entropy": _auroc(entropy, names, is_kind),
            "ood": _auroc(ood, names, is_kind),
        }
    return report


def run(*, data_dir: Path | None, epochs: int, T: int, seed: int, work: Path, echo) -> dict:
    """Write demo data if needed, train, ingest + score pool and inverted digits, measure."""
    from reviewer.demo.data import write_inverted_digits

    data_dir = ensure_demo_data(data_dir, work, seed=seed, echo=echo)
    project = demo_project(data_dir, work, epochs=epochs, seed=seed, echo=echo)
    pool = Path(data_dir) / "pool"
    inverted = write_inverted_digits(work / "inverted", count=INVERTED_COUNT, seed=seed)
    ingest(project, inverted)
    echo(f"scoring {len(inverted) + len(list(pool.glob('*.png')))} images at T={T} ...")
    score_pool(project, T=T)
    truth = read_truth(data_dir)
    truth |= {p.name: {"true_label": None, "given_label": None, "kind": INVERTED} for p in inverted}
    k = sum(t["kind"] == "digit" and t["given_label"] != t["true_label"] for t in truth.values())
    with project.sessions() as session:
        top, _ = ranking.ranked(session, "mislabeled", limit=k)
    names = [Path(item["original_filename"]).name for item in top]
    return quality_metrics(active_scores(project), truth, names)


def _f(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def report_lines(r: dict) -> list[str]:
    """Pure: the quality report as text."""
    lines = [
        f"pool digits: {r['digits']}; model accuracy on them {r['accuracy']:.3f}; "
        f"{r['unscored']} duplicate images share another's row",
        f"mislabeled precision@{r['k']}: {r['mislabeled_precision']:.3f} (goal >= 0.90)",
        f"entropy AUROC for the model's {r['mistakes']} mistakes: {r['mistake_auroc_entropy']:.3f}",
        "| positives (vs pool digits) | n | AUROC entropy | AUROC ood |",
        "|---|---|---|---|",
    ]
    for kind, row in r["ood"].items():
        cells = [_f(row["entropy"]), _f(row["ood"])]
        lines.append(f"| {kind} | {row['count']} | " + " | ".join(cells) + " |")
    return lines + ["goal: OOD AUROC >= 0.97 on every kind"]
