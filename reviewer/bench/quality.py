"""Benchmark: how well the queue's rankings find planted problems in the demo data, in a
scratch project (:mod:`reviewer.bench.project`): the demo model trained and fitted as `make
demo` does, the pool plus 300 strangers of each kind of reviewer.demo.strangers ingested and
scored by the real worker. `quality_metrics` is pure: precision at k of the `mislabeled`
ranking, the entropy AUROC for the model's own mistakes, and per stranger kind against the
pool's digits the AUROC and FPR at 95% TPR of `ood` (with bootstrap intervals) and of every
other method of reviewer.bench.ood_methods. TensorFlow loads lazily.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from reviewer.bench import ood_methods
from reviewer.bench.project import active_scores, demo_project, ensure_demo_data, ingest, score_pool
from reviewer.demo.data import DIGITS, read_truth
from reviewer.ml import evaluation
from reviewer.review import ranking

STRANGER_COUNT = 300  # of each kind: 30 would put a standard error of about 0.02 on 0.97
BOOTSTRAP_ROUNDS = 500
COMPONENTS = ("knn_prefix", "entropy")  # what `ood` combines (reviewer.ml.ood)


def _auroc(scores: dict, names, positive) -> float | None:
    """None when the names are all positives or all negatives (no AUROC is defined)."""
    flags = [positive(n) for n in names]
    if all(flags) or not any(flags):
        return None
    return evaluation.auroc([scores[n] for n in names], flags)


def ood_table(methods: dict, digits: list[str], kinds: dict[str, str], *, rounds: int) -> dict:
    """Per kind (``kinds``: name -> kind) against ``digits``: each method's AUROC and FPR at
    95% TPR, and `ood`'s bootstrap 95% intervals of both (``rounds`` resamplings)."""
    table = {}
    for kind in sorted(set(kinds.values())):
        names = digits + [n for n, k in kinds.items() if k == kind]
        flags = np.array([kinds.get(n) == kind for n in names])
        row = {"count": int(flags.sum()), "methods": {}}
        for method, scores in methods.items():
            values = np.array([scores[n] for n in names], dtype=float)
            row["methods"][method] = {
                "auroc": evaluation.auroc(values, flags),
                "fpr95": evaluation.fpr_at_tpr(values, flags),
            }
        if "ood" in methods and rounds:
            values = np.array([methods["ood"][n] for n in names], dtype=float)
            for key, metric in (("auroc", evaluation.auroc), ("fpr95", evaluation.fpr_at_tpr)):
                interval = evaluation.bootstrap_interval(metric, values, flags, rounds=rounds)
                row[f"ood_{key}_interval"] = interval
        table[kind] = row
    return table


def quality_metrics(
    scores: dict, truth: dict, mislabeled_top: list[str], methods=None, *, rounds=0
) -> dict:
    """Pure: the report's numbers from scores {name: row}, truth {name: row}, the file names of
    the `mislabeled` ranking's top k and the OOD methods {method: {name: score}} (default:
    `entropy` and `ood` of the rows). Every kind but ``digit`` is a stranger kind."""
    # Identical bytes are ingested once (e.g. two blanks of one grey): judge the scored names.
    unscored = sorted(set(truth) - set(scores))
    truth = {n: t for n, t in truth.items() if n in scores}
    digits = [n for n, t in truth.items() if t["kind"] == "digit"]
    flipped = {n for n in digits if truth[n]["given_label"] != truth[n]["true_label"]}
    hits = len(flipped.intersection(mislabeled_top))
    wrong = lambda n: scores[n]["predicted"] != truth[n]["true_label"]  # noqa: E731
    entropy = {n: s["entropy"] for n, s in scores.items()}
    report = {
        "k": len(flipped),
        "mislabeled_precision": hits / max(len(mislabeled_top), 1),
        "digits": len(digits),
        "unscored": len(unscored),
        "accuracy": float(np.mean([not wrong(n) for n in digits])),
        "mistakes": sum(wrong(n) for n in digits),
        "mistake_auroc_entropy": _auroc(entropy, digits, wrong),
    }
    if methods is None:
        methods = {"entropy": entropy, "ood": {n: s["ood"] for n, s in scores.items()}}
    kinds = {n: t["kind"] for n, t in truth.items() if t["kind"] != "digit"}
    report["ood"] = ood_table(methods, digits, kinds, rounds=rounds)
    if "ood" in methods:  # in-distribution false alarms at the documented "rare" level
        report["digits_ood_at_least_3"] = float(np.mean([methods["ood"][n] >= 3 for n in digits]))
    return report


def _features(model, x, prefix=None) -> dict:
    """The features the methods measure; ``prefix``: the OOD features, read already."""
    from reviewer.ml import mc

    penultimate, logits = mc.head_inputs(model, x)
    prefix = mc.features(model, x) if prefix is None else prefix
    return {"prefix": prefix, "penultimate": penultimate, "logits": logits}


def _other_methods(project, data_dir: Path, paths: dict[str, Path], scores, *, seed, T):
    """Every method of reviewer.bench.ood_methods on the scored images ``paths`` (name ->
    file), fitted on the version's training split, plus `ood`'s cost per image."""
    from reviewer.core import versions
    from reviewer.ml import mc, uncertainty
    from reviewer.training import registry
    from reviewer.training.datasets import load_paths
    from reviewer.training.train import DEFAULT_SPEC, training_set

    with project.sessions() as session:
        version = versions.active_version(session)
    model = mc.load_model(Path(version.path) / registry.MODEL_FILE)
    data = training_set(data_dir / "train", DIGITS, DEFAULT_SPEC, extra_data=None,
                        extra_repeat=1, seed=seed)  # fmt: skip
    train = _features(model, data.x[np.unique(data.train_idx)])
    train["y"] = data.y[np.unique(data.train_idx)]
    samples, prefix = mc.sample(model, data.x[data.test_idx], T, with_features=True)
    held = _features(model, data.x[data.test_idx], prefix)
    held["entropy"] = uncertainty.summarize(samples).entropy
    names = list(paths)
    x, good = load_paths([paths[n] for n in names], DEFAULT_SPEC)
    names = [names[i] for i in good]
    started = time.perf_counter()  # the sampler's time, as the worker samples (features too)
    _, prefix = mc.sample(model, x, T, with_features=True)
    sampled = time.perf_counter()
    evaluated = _features(model, x, prefix)
    for metric in ("entropy", "mutual_info"):
        evaluated[metric] = [scores[n][metric] for n in names]
    fit = registry.read_ood_fit(version.path, registry.read_card(version.path))
    scored = time.perf_counter()
    fit.score(evaluated["prefix"], np.asarray(evaluated["entropy"]))
    ood_seconds = time.perf_counter() - scored
    methods = ood_methods.all_methods(train, held, evaluated)
    cost = {
        "sample_ms": 1e3 * (sampled - started) / len(x),
        "ood_ms": 1e3 * ood_seconds / len(x),
        "index_mib": fit.index.nbytes / 2**20,
        "index_shape": list(fit.index.shape),
    }
    return {m: dict(zip(names, v.tolist(), strict=True)) for m, v in methods.items()}, cost


def run(*, data_dir: Path | None, epochs: int, T: int, seed: int, work: Path, echo) -> dict:
    """Write demo data if needed, train, ingest and score the pool and the strangers, measure."""
    from reviewer.demo.strangers import write_strangers

    data_dir = ensure_demo_data(data_dir, work, seed=seed, echo=echo)
    project = demo_project(data_dir, work, epochs=epochs, seed=seed, echo=echo)
    strangers = write_strangers(work / "strangers", count=STRANGER_COUNT, seed=seed)
    ingest(project, list(strangers))
    pool = Path(data_dir) / "pool"
    echo(f"scoring {len(strangers) + len(list(pool.glob('*.png')))} images at T={T} ...")
    score_pool(project, T=T)
    truth = read_truth(data_dir)
    k = sum(t["kind"] == "digit" and t["given_label"] != t["true_label"] for t in truth.values())
    # The pool's own few outliers are left out: the strangers are the kinds measured.
    truth = {n: t for n, t in truth.items() if t["kind"] == "digit"}
    truth |= {p.name: {"true_label": None, "given_label": None, "kind": kind}
              for p, kind in strangers.items()}  # fmt: skip
    with project.sessions() as session:
        top, _ = ranking.ranked(session, "mislabeled", limit=k)
    names = [Path(item["original_filename"]).name for item in top]
    scores = active_scores(project)
    paths = {n: pool / n for n in truth if truth[n]["kind"] == "digit" and n in scores}
    paths |= {p.name: p for p in strangers if p.name in scores}
    echo("fitting and scoring the other OOD methods ...")
    methods, cost = _other_methods(project, Path(data_dir), paths, scores, seed=seed, T=T)
    methods["ood"] = {n: scores[n]["ood"] for n in paths}
    report = quality_metrics(scores, truth, names, methods, rounds=BOOTSTRAP_ROUNDS)
    return report | {"seed": seed, "epochs": epochs, "T": T, "cost": cost}
