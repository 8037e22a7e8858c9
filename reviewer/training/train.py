"""Training the default architecture into a new version: from scratch on a folder-per-class
data set, or fine-tuning a base version with extra (path, label) pairs from an export.

This module owns the path from data to a registered version: the held-out split of
:mod:`reviewer.training.datasets`, `mc.train`, held-out accuracy and ECE of the MC-dropout mean,
the OOD fit (training images indexed, held-out ones the reference: reviewer.training.ood_fit),
and the card.
TensorFlow is reached only through `reviewer.ml.mc`, imported inside the functions.
"""

from __future__ import annotations

import logging
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from reviewer.core import settings, versions
from reviewer.core.schema import ModelVersion
from reviewer.ml import evaluation, ood, uncertainty
from reviewer.training import fingerprints, ood_fit, registry
from reviewer.training.datasets import list_dataset, load_entries, stratified_split
from reviewer.training.errors import TrainingError

logger = logging.getLogger(__name__)

DEFAULT_SPEC = {"height": 28, "width": 28, "channels": 1, "scale": 255.0}
HELD_OUT_FRACTION = 0.15
EVAL_SAMPLES = 20  # T for the held-out evaluation: enough for a stable mean, cheap to run


@dataclass
class TrainingSet:
    """The loaded images and which of them train, are held out, or came from an export."""

    x: np.ndarray
    y: np.ndarray
    entries: list  # (path, class, relative path) of every listed file
    good: list[int]  # indices into entries of the rows of x
    train_idx: np.ndarray  # rows of x to train on (extra items repeated)
    test_idx: np.ndarray  # held-out rows (from the base data only)
    extra_idx: np.ndarray  # rows that came from extra_data


def training_set(data_dir, classes, spec, *, extra_data, extra_repeat, seed) -> TrainingSet:
    """Load ``data_dir`` plus ``extra_data`` and split: the held-out set comes from
    ``data_dir`` alone (with the same seed, the base's held-out set)."""
    entries = list_dataset(Path(data_dir), classes)
    n_base = len(entries)
    for path, label in extra_data or ():
        settings.check_label(label, classes)
        entries.append((Path(path), label, f"extra/{label}/{fingerprints.file_sha256(path)}"))
    x, y, good = load_entries(entries, classes, spec)
    if len(y) < 2:
        raise TrainingError(f"{data_dir}: found {len(y)} usable images; need at least 2")
    extra_idx = np.flatnonzero(np.asarray(good) >= n_base)
    base_idx = np.flatnonzero(np.asarray(good) < n_base)
    base_train, base_test = stratified_split(y[base_idx], fraction=HELD_OUT_FRACTION, seed=seed)
    train_idx = np.concatenate([base_idx[base_train], np.repeat(extra_idx, extra_repeat)])
    return TrainingSet(x, y, entries, good, train_idx, base_idx[base_test], extra_idx)


def evaluate(model, x_test, y_test, *, T: int, seed: int) -> tuple[dict, np.ndarray]:
    """Held-out accuracy and ECE of the MC-dropout mean; also returns the mean's entropy."""
    from reviewer.ml import mc

    summary = uncertainty.summarize(mc.sample(model, x_test, T, seed=seed))
    accuracy = float((summary.predicted == y_test).mean())
    ece = evaluation.expected_calibration_error(summary.mean, y_test)
    return {"accuracy": accuracy, "ece": ece, "eval_samples": T}, summary.entropy


def _fit(model, data: TrainingSet, *, epochs, seed, verbose) -> dict:
    from reviewer.ml import mc

    if verbose is None:  # a progress bar on a terminal, one line per epoch in a log
        verbose = 1 if sys.stdout.isatty() else 2
    test = data.test_idx
    validation = (data.x[test], data.y[test]) if len(test) else None
    train = data.train_idx
    logger.info("training on %d images, %d held out", len(train), len(test))
    return mc.train(
        model,
        data.x[train],
        data.y[train],
        epochs=epochs,
        seed=seed,
        validation_data=validation,
        verbose=verbose,
    )


def _measure(model, data: TrainingSet, *, seed) -> tuple[dict, ood.Fit | None]:
    """(held-out metrics, the OOD fit: training images indexed, held-out ones the reference;
    None with fewer than two held out), plus how well the extra items were learnt."""
    metrics, fit, test = {"accuracy": None, "ece": None}, None, data.test_idx
    if len(test):
        scores, _ = evaluate(model, data.x[test], data.y[test], T=EVAL_SAMPLES, seed=seed)
        metrics.update(scores)
    if len(test) >= 2:
        indexed = np.unique(data.train_idx)  # each image once, however often it was repeated
        T = registry.CARD_SAMPLES  # the reference's entropy at the T the worker scores with
        fit = ood_fit.fit(model, data.x[indexed], data.x[test], T=T, seed=seed)
    extra = data.extra_idx
    if len(extra):  # in-sample: do the human labels win over what the model believed?
        learnt, _ = evaluate(model, data.x[extra], data.y[extra], T=EVAL_SAMPLES, seed=seed)
        metrics.update(n_extra=int(len(extra)), extra_fit_accuracy=learnt["accuracy"])
    return metrics, fit


def train_new_version(
    session_factory,
    config,
    *,
    data_dir,
    name,
    epochs,
    seed,
    activate,
    extra_data=None,
    extra_repeat=1,
    extra_source=None,
    initial_model=None,
    input_spec=None,
    trained_on=(),
    verbose=None,
) -> ModelVersion:
    """Train the default model on ``data_dir`` (+ ``extra_data`` [(path, label)]) and register
    it as the next version of ``name``; with ``activate``, request its activation.

    ``extra_data`` is training data only, each item ``extra_repeat`` times per epoch.
    ``initial_model`` (.keras) fine-tunes its weights; ``extra_source`` goes on the card.
    The card's ``trained_on`` lists the sha256 of the ``data_dir`` files trained on (an image
    of the pool with the same bytes is held out of the audit) plus ``trained_on`` (the pool
    images of ``extra_data`` and the base's list).
    """
    registry.check_name(name)
    spec = dict(input_spec or DEFAULT_SPEC)
    with session_factory() as session:
        classes = settings.get_classes(session)
    if not classes:
        raise TrainingError("no class list is set: run `reviewer classes set ...` first")
    data = training_set(
        data_dir, classes, spec, extra_data=extra_data, extra_repeat=extra_repeat, seed=seed
    )
    model = _start_model(spec, len(classes), seed=seed, initial_model=initial_model)
    history = _fit(model, data, epochs=epochs, seed=seed, verbose=verbose)
    metrics, fit = _measure(model, data, seed=seed)
    metrics.update(n_train=int(len(data.train_idx)), n_test=int(len(data.test_idx)))
    metrics.update(epochs=epochs, train_accuracy=float(history["accuracy"][-1]))
    if len(data.extra_idx):
        metrics["extra_repeat"] = int(extra_repeat)
    files = [(data.entries[i][2], fingerprints.file_sha256(data.entries[i][0])) for i in data.good]
    card = registry.new_card(
        name=name,
        classes=classes,
        input_spec=spec,
        metrics=metrics,
        training_data_path=str(Path(data_dir).absolute()),
        training_data_fingerprint=fingerprints.dataset_fingerprint(files),
        seed=seed,
        architecture="default",
        trained_on=sorted(set(trained_on) | _trained_files(data, files)),
        **({"extra_training_data": extra_source} if extra_source else {}),
    )
    card, path = registry.write_version(
        config.model_dir, card, lambda p: model.save(p), ood_fit=fit
    )
    return record(session_factory, card, path, activate=activate)


def _start_model(spec: dict, num_classes: int, *, seed: int, initial_model):
    """A fresh default network (seeded here: mc.train's seed comes after the initial
    weights), or the weights of ``initial_model`` to fine-tune."""
    from reviewer.ml import mc

    if initial_model is not None:
        return mc.load_model(initial_model)
    shape = (spec["height"], spec["width"], spec["channels"])
    return mc.build_default_model(shape, num_classes, seed=seed)


def _trained_files(data: TrainingSet, files: list[tuple[str, str]]) -> set[str]:
    """The sha256 of the base data files in the training rows (held-out ones are not trained
    on; export items are named by the pool's sha256 instead, see retrain)."""
    hashes = [sha256 for _, sha256 in files]  # one per row of x
    return {hashes[row] for row in set(data.train_idx.tolist()) - set(data.extra_idx.tolist())}


def record(session_factory, card, path, *, activate: bool) -> ModelVersion:
    """The version's row for a card written at ``path``; with ``activate``, its activation."""
    with session_factory() as session, session.begin():
        version = registry.record_version(session, card, path)
        if activate:
            registry.request_activation(session, version)
    logger.info("registered %s at %s", versions.version_name(version), path)
    return version
