"""Benchmark: simulated active learning through the real queue. Labelers are simulated with the
demo pool's true labels (truth.csv, digits only): from 2 seeded labeled digits per class, each
round trains the default model from scratch with a fixed budget of gradient steps on the
current labels (read back from the label history), registers and activates it, writes scores
rows for a random subset of the unlabeled pool with the worker's own compute/write code (and,
for `batchbald`, the worker's batch step), then takes the strategy's top items through
`queue.next_item` + `queue.submit_label`. Test accuracy is
measured on the demo's training digits, never acquired. Each strategy x seed runs on its own
copy of the project, in this process or (``jobs`` > 1) in a fresh child process per run, which
also returns the memory Keras keeps per trained model. The curves' summary and table are pure
functions in :mod:`reviewer.bench.curves`.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import numpy as np
from sqlalchemy import select, update

from reviewer.bench import project as scratch
from reviewer.bench.children import run_in_children
from reviewer.bench.curves import TARGETS, report_lines
from reviewer.core import db
from reviewer.core.schema import Image, Label, ModelVersion, ScoreLease, User, utcnow
from reviewer.demo.data import DIGITS, read_truth
from reviewer.review import answers, leasing
from reviewer.review import labels as label_history
from reviewer.scoring import batchbald_batch
from reviewer.training import registry

TRAIN_BATCH = 32
WORKER = "bench-loop"


def train_round(x, y, *, seed: int, steps: int):
    """The default model trained from scratch for ``steps`` batches drawn with replacement;
    the same seed gives the same model, whatever ran before in the process."""
    from reviewer.ml import mc

    idx = np.random.default_rng(seed).integers(0, len(x), steps * TRAIN_BATCH)
    model = mc.build_default_model(seed=seed)
    mc.train(model, x[idx], y[idx], epochs=1, batch_size=TRAIN_BATCH, seed=seed, verbose=0)
    return model


def held_out_accuracy(model, x, y) -> float:
    """Accuracy of the deterministic net (dropout off, weight-scaled): cheap and stable."""
    from reviewer.ml.mc.layers import dropout_disabled

    with dropout_disabled():  # read by MCDropout.call: every call below runs without dropout
        parts = [model(x[i : i + 1024], training=False).numpy() for i in range(0, len(x), 1024)]
    return float((np.concatenate(parts).argmax(axis=1) == y).mean())


@dataclass
class _Sampler:
    """The worker's sampler interface over an in-memory model (no file round trip)."""

    model: object
    seed: list

    def sample(self, version, images, T, *, shared_masks=False):
        from reviewer.ml import mc

        return mc.sample(self.model, images, T, seed=self.seed, shared_masks=shared_masks)


def score_subset(project, model, *, subset: int, T: int, seed: int, round_: int):
    """Register + activate this round's model; score ``subset`` random unlabeled images.
    Returns (the version, its sampler)."""
    from reviewer.scoring.claims import Claimed
    from reviewer.scoring.compute import compute
    from reviewer.scoring.writes import write_scores

    card = {"name": "loop", "version": round_, "classes": DIGITS, "mc_samples": T}
    card["input_spec"] = registry.input_spec(28, 28, 1)
    rng = np.random.default_rng([seed, round_])
    with db.write_transaction(project.sessions) as session:
        version = registry.record_version(session, card, project.config.model_dir)
        # Activated directly: the registry would keep it pending until the WHOLE pool is scored.
        session.execute(update(ModelVersion).values(is_active=ModelVersion.id == version.id))
        free = session.execute(select(Image.id, Image.path).where(Image.label_count == 0)).all()
        chosen = [free[i] for i in sorted(rng.choice(len(free), min(subset, len(free)), False))]
        expires = utcnow() + timedelta(hours=1)
        for image_id, _ in chosen:  # the leases write_scores checks it still holds
            session.add(
                ScoreLease(
                    image_id=image_id,
                    model_version_id=version.id,
                    worker_id=WORKER,
                    expires_at=expires,
                )
            )
        session.expunge(version)
    claimed = [Claimed(i, path, None, 0) for i, path in chosen]
    sampler = _Sampler(model, [seed, round_])
    rows, failures = compute(sampler, version, None, project.store, claimed, T)
    with project.sessions() as session, session.begin():  # write_scores begins as a writer
        write_scores(session, version, WORKER, claimed, rows, failures, utcnow())
    return version, sampler


def pick_batchbald(project, version, sampler, *, size: int, T: int, seed: int, round_: int):
    """The worker's BatchBALD step (among the scored subset's top items by BALD), seeded; the
    worker's is not."""
    with project.sessions() as session:
        candidates = batchbald_batch.candidates(session, version, batchbald_batch.CANDIDATES)
    chosen = batchbald_batch.pick(
        sampler, version, project.store, candidates, size=size, T=T, seed=[seed, round_]
    )
    with project.sessions() as session, session.begin():
        if not batchbald_batch.write_batchbald_batch(session, version, chosen):
            raise RuntimeError(f"round {round_}: a BatchBALD batch was already there")


def _label(project, user_id: int, image_id: int, label: str) -> None:
    with db.write_transaction(project.sessions) as session:
        answers.submit_label(session, image_id, user_id, label)


def _current_labels(project) -> list[tuple[int, str]]:
    with project.sessions() as session:
        rows = session.scalars(label_history.current_labels_query().order_by(Label.id))
        return [(row.image_id, row.label) for row in rows]


def run_one(base: Path, work: Path, strategy: str, seed: int, pool: dict, test, opts, echo):
    """One strategy and seed on a copy of the base project; returns [(labels, accuracy)]."""
    shutil.copytree(base, work)
    project = scratch.open_project(work)
    with db.write_transaction(project.sessions) as session:
        user_id = session.scalar(select(User.id).where(User.username == WORKER))
    rng = np.random.default_rng(seed)
    for digit in DIGITS:
        members = sorted(i for i, (_, true) in pool.items() if true == digit)
        for image_id in rng.choice(members, opts["initial_per_class"], replace=False):
            _label(project, user_id, int(image_id), digit)
    curve, round_ = [], 0
    while True:
        labeled = _current_labels(project)
        x = np.stack([pool[i][0] for i, _ in labeled])
        y = np.array([int(label) for _, label in labeled])
        model = train_round(x, y, seed=seed * 10_000 + round_, steps=opts["train_steps"])
        curve.append((len(labeled), held_out_accuracy(model, *test)))
        echo(f"{strategy} seed {seed}: {len(labeled)} labels -> accuracy {curve[-1][1]:.3f}")
        if len(labeled) >= opts["max_labels"] or curve[-1][1] >= TARGETS[-1]:
            return curve
        round_ += 1
        version, sampler = score_subset(
            project, model, subset=opts["subset"], T=opts["samples"], seed=seed, round_=round_
        )
        size = min(opts["step"], opts["max_labels"] - len(labeled))
        if strategy == "batchbald":
            pick_batchbald(
                project, version, sampler, size=size, T=opts["samples"], seed=seed, round_=round_
            )
        for _ in range(size):
            with db.write_transaction(project.sessions) as session:
                item = leasing.next_item(session, user_id, strategy, lease_seconds=300)
            if item is None:
                break
            _label(project, user_id, item["id"], pool[item["id"]][1])


def _load_all(paths, **options):
    """Every image of ``paths`` as one array; the benchmark's own data must all load."""
    from reviewer.core import images

    array, _, failed = images.load_batch_tolerant(paths, **options)
    if failed:
        index, reason = next(iter(failed.items()))
        raise RuntimeError(f"benchmark image {paths[index]} does not load: {reason}")
    return array


def _setup(data_dir: Path, base: Path):
    """The base project (pool digits ingested, a labeler user) + pool and test arrays."""
    from reviewer.training import datasets

    truth = read_truth(data_dir)
    digits = {n: t["true_label"] for n, t in truth.items() if t["kind"] == "digit"}
    project = scratch.open_project(base)
    scratch.ingest(project, [Path(data_dir) / "pool" / n for n in sorted(digits)])
    options = dict(size=(28, 28), channels=1, scale=255.0)
    with db.write_transaction(project.sessions) as session:
        session.add(User(username=WORKER, password_hash="x", role="labeler"))
        rows = session.execute(select(Image.id, Image.path, Image.original_filename)).all()
    arrays = _load_all([project.store.absolute(r[1]) for r in rows], **options)
    pool = {r[0]: (arrays[k], digits[Path(r[2]).name]) for k, r in enumerate(rows)}
    entries = datasets.list_dataset(Path(data_dir) / "train", DIGITS)
    x_test = _load_all([e[0] for e in entries], **options)
    with project.sessions() as session:
        engine = session.get_bind()
    # Closed now, so SQLite folds the WAL into the file before the runs copy the folder: left
    # to the garbage collector, the -wal file could vanish in the middle of a run's copy.
    engine.dispose()
    return pool, (x_test, np.array([int(e[1]) for e in entries]))


def _settings(opts: dict) -> dict:
    """Everything a run's curve depends on besides its strategy and seed."""
    return {**opts, "train_batch": TRAIN_BATCH}


def load_finished(path: Path | None, opts: dict) -> dict[str, dict[int, list]]:
    """{strategy: {seed: curve}} saved by an earlier run with the same settings ({} when
    ``path`` is None or missing); ValueError when the file was made with other settings."""
    if path is None or not Path(path).exists():
        return {}
    saved = json.loads(Path(path).read_text())
    if saved.get("settings") != _settings(opts):
        raise ValueError(
            f"{path} holds runs made with other settings ({saved.get('settings')}); "
            "rerun with those settings, delete it, or name another curves file"
        )
    return {
        strategy: {int(seed): [tuple(point) for point in curve] for seed, curve in runs.items()}
        for strategy, runs in saved["runs"].items()
    }


def save_finished(path: Path, opts: dict, finished: dict[str, dict[int, list]]) -> None:
    """Write the finished runs atomically (an interrupted write leaves the previous file)."""
    body = {"settings": _settings(opts), "runs": finished}
    partial = Path(f"{path}.partial")
    partial.write_text(json.dumps(body, indent=1))
    os.replace(partial, path)


def _run_in_folder(work: Path, strategy: str, seed: int, pool, test, opts: dict, echo) -> list:
    folder = work / f"{strategy}-{seed}"
    try:
        return run_one(work / "base", folder, strategy, seed, pool, test, opts, echo)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def run(
    *, data_dir, work: Path, strategies, seeds: int, opts: dict, echo, curves_path=None, jobs=1
) -> dict:
    """Every strategy x seed; ``echo`` gets each round and the table at the end. ``jobs`` > 1
    runs that many at once, each in a fresh child process. With ``curves_path``, each finished
    run is saved there as it ends and runs already saved are not redone (an interrupted
    benchmark resumes)."""
    finished = load_finished(curves_path, opts)
    data_dir = scratch.ensure_demo_data(data_dir, work, echo=echo)
    pool, test = _setup(data_dir, work / "base")
    echo(f"pool digits: {len(pool)}; test digits: {len(test[1])}")
    todo = []
    for seed in range(seeds):
        for strategy in strategies:
            if finished.get(strategy, {}).get(seed) is not None:
                echo(f"{strategy} seed {seed}: taken from {curves_path}")
            else:
                todo.append((strategy, seed))

    def keep(strategy: str, seed: int, curve: list) -> None:
        finished.setdefault(strategy, {})[seed] = curve
        if curves_path is not None:
            save_finished(curves_path, opts, finished)

    if jobs <= 1:
        for strategy, seed in todo:
            keep(strategy, seed, _run_in_folder(work, strategy, seed, pool, test, opts, echo))
    else:
        run_in_children(jobs, todo, keep, _run_in_folder, (work, pool, test, opts), echo)
    curves = {s: [finished[s][seed] for seed in range(seeds)] for s in strategies}
    echo("\n".join(report_lines(curves, opts["max_labels"])))
    return curves
