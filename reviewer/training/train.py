"""New model versions: train the default architecture on a folder-per-class data set (from
scratch, or fine-tuning a base version with extra (path, label) pairs from an export), or import
a user's Keras model. This module owns the path from data to a registered version: a seeded
stratified held-out split, `mc.train`, held-out accuracy and ECE of the MC-dropout mean, OOD
parameters fitted on training features with the held-out set as reference, and the card.
TensorFlow is reached only through `reviewer.mc`, imported inside the functions.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import numpy as np

from reviewer.core import images, settings, versions
from reviewer.core.schema import ModelVersion, utcnow
from reviewer.ml import evaluation, ood, uncertainty
from reviewer.training import registry

logger = logging.getLogger(__name__)

DEFAULT_SPEC = {"height": 28, "width": 28, "channels": 1, "scale": 255.0}
HELD_OUT_FRACTION = 0.15
EVAL_SAMPLES = 20  # T for the held-out evaluation: enough for a stable mean, cheap to run
CARD_SAMPLES = 50  # T written on the card: what the worker uses unless told otherwise


class TrainingError(ValueError):
    """Input that cannot be trained on; ``str(exc)`` is the message shown to people."""


def list_dataset(data_dir: Path, classes: list[str]) -> list[tuple[Path, str, str]]:
    """Images of ``DIR/<class>/`` as (path, class, relative POSIX path), sorted."""
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        raise TrainingError(f"{data_dir}: not a directory")
    folders = sorted(p.name for p in data_dir.iterdir() if p.is_dir())
    unknown = [name for name in folders if name not in classes]
    if unknown:
        raise TrainingError(
            f"{data_dir}: folders {', '.join(unknown)} are not in the class list "
            f"({', '.join(classes)})"
        )
    entries = []
    for name in folders:
        for path in sorted((data_dir / name).rglob("*")):
            if path.is_file() and images.has_image_extension(path):
                entries.append((path, name, path.relative_to(data_dir).as_posix()))
    missing = [c for c in classes if c not in folders]
    if missing:
        logger.warning("no training images for classes %s", ", ".join(missing))
    return entries


def stratified_split(y: np.ndarray, *, fraction: float, seed: int):
    """(train indices, held-out indices): ``fraction`` of each class held out (one at least,
    for classes with two or more images), shuffled with ``seed``."""
    rng = np.random.default_rng(seed)
    train, test = [], []
    for label in np.unique(y):
        members = rng.permutation(np.flatnonzero(y == label))
        n_test = max(1, round(fraction * len(members))) if len(members) >= 2 else 0
        test.extend(members[:n_test])
        train.extend(members[n_test:])
    return np.sort(np.array(train, dtype=int)), np.sort(np.array(test, dtype=int))


def _load(entries, classes, spec):
    options = dict(size=(spec["height"], spec["width"]), channels=spec["channels"])
    x, good, failed = images.load_batch_tolerant(
        [e[0] for e in entries], **options, scale=spec["scale"]
    )
    for index, reason in failed.items():
        logger.warning("skipping %s: %s", entries[index][0], reason)
    index = {name: k for k, name in enumerate(classes)}
    return x, np.array([index[entries[i][1]] for i in good], dtype=np.int64), good


def evaluate(model, x_test, y_test, *, T: int, seed: int) -> tuple[dict, np.ndarray]:
    """Held-out accuracy and ECE of the MC-dropout mean; also returns the mean's entropy."""
    from reviewer.ml import mc

    summary = uncertainty.summarize(mc.sample(model, x_test, T, seed=seed))
    accuracy = float((summary.predicted == y_test).mean())
    ece = evaluation.expected_calibration_error(summary.mean, y_test)
    return {"accuracy": accuracy, "ece": ece, "eval_samples": T}, summary.entropy


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
    verbose=None,
) -> ModelVersion:
    """Train the default model on ``data_dir`` (+ ``extra_data`` [(path, label)]) and register
    it as the next version of ``name``; with ``activate``, request its activation.

    ``extra_data`` is training data only, each item ``extra_repeat`` times per epoch: the
    held-out split comes from ``data_dir`` alone (with the same seed, the base's held-out set).
    ``initial_model`` (.keras) fine-tunes its weights; ``extra_source`` goes on the card.
    """
    from reviewer.ml import mc

    registry.check_name(name)
    spec = dict(input_spec or DEFAULT_SPEC)
    with session_factory() as session:
        classes = settings.get_classes(session)
    if not classes:
        raise TrainingError("no class list is set: run `reviewer classes set ...` first")
    entries = list_dataset(Path(data_dir), classes)
    n_base = len(entries)
    for path, label in extra_data or ():
        settings.check_label(label, classes)
        entries.append((Path(path), label, f"extra/{label}/{registry.file_sha256(path)}"))
    x, y, good = _load(entries, classes, spec)
    if len(y) < 2:
        raise TrainingError(f"{data_dir}: found {len(y)} usable images; need at least 2")
    extra_idx = np.flatnonzero(np.asarray(good) >= n_base)
    base_idx = np.flatnonzero(np.asarray(good) < n_base)
    base_train, base_test = stratified_split(y[base_idx], fraction=HELD_OUT_FRACTION, seed=seed)
    train_idx = np.concatenate([base_idx[base_train], np.repeat(extra_idx, extra_repeat)])
    test_idx = base_idx[base_test]
    logger.info("training on %d images, %d held out", len(train_idx), len(test_idx))
    shape = (spec["height"], spec["width"], spec["channels"])
    new = initial_model is None  # else fine-tune the given weights
    if new:  # seeded here: mc.train's seed comes after the initial weights are drawn
        model = mc.build_default_model(shape, len(classes), seed=seed)
    else:
        model = mc.load_model(initial_model)
    if verbose is None:  # a progress bar on a terminal, one line per epoch in a log
        verbose = 1 if sys.stdout.isatty() else 2
    validation = (x[test_idx], y[test_idx]) if len(test_idx) else None
    history = mc.train(
        model,
        x[train_idx],
        y[train_idx],
        epochs=epochs,
        seed=seed,
        validation_data=validation,
        verbose=verbose,
    )
    metrics = {
        "n_train": int(len(train_idx)),
        "n_test": int(len(test_idx)),
        "epochs": epochs,
        "train_accuracy": float(history["accuracy"][-1]),
        "accuracy": None,
        "ece": None,
    }
    ood_params = None
    if len(test_idx):
        scores, entropy = evaluate(model, x[test_idx], y[test_idx], T=EVAL_SAMPLES, seed=seed)
        metrics.update(scores)
        fit_idx = np.unique(train_idx)  # each image once, however often it was repeated
        ood_params = ood.fit_ood(
            mc.features(model, x[fit_idx]),
            y[fit_idx],
            num_classes=len(classes),
            reference_features=mc.features(model, x[test_idx]),
            reference_entropy=entropy,
        )
    if len(extra_idx):  # in-sample: do the human labels win over what the model believed?
        fit, _ = evaluate(model, x[extra_idx], y[extra_idx], T=EVAL_SAMPLES, seed=seed)
        metrics.update(n_extra=int(len(extra_idx)), extra_repeat=int(extra_repeat))
        metrics["extra_fit_accuracy"] = fit["accuracy"]
    fingerprint = [(entries[i][2], registry.file_sha256(entries[i][0])) for i in good]
    card = {
        "name": name,
        "classes": classes,
        "input_spec": spec,
        "mc_samples": CARD_SAMPLES,
        "training_data_path": str(Path(data_dir).absolute()),
        "training_data_fingerprint": registry.dataset_fingerprint(fingerprint),
        "metrics": metrics,
        "ood": ood_params,
        "created_at": utcnow().isoformat(),
        "seed": seed,
        "architecture": "default",
        **({"extra_training_data": extra_source} if extra_source else {}),
    }
    card, path = registry.write_version(config.model_dir, card, lambda p: model.save(p))
    return _record(session_factory, card, path, activate=activate)


def _record(session_factory, card, path, *, activate: bool) -> ModelVersion:
    with session_factory() as session, session.begin():
        version = registry.record_version(session, card, path)
        if activate:
            registry.request_activation(session, version)
    logger.info("registered %s at %s", versions.version_name(version), path)
    return version


def register_keras_model(
    session_factory,
    config,
    *,
    model_path,
    name,
    classes=None,
    input_spec=None,
    mc_samples=CARD_SAMPLES,
    activate=False,
) -> ModelVersion:
    """Import a user's Sequential/functional Keras model (with dropout) as a new version.

    ``input_spec`` None takes height, width and channels from the model's input shape.
    Raises TrainingError with the reason when the model cannot be used.
    """
    from reviewer.ml import mc

    registry.check_name(name)
    with session_factory() as session:
        project = settings.get_classes(session)
    classes = list(classes or project)
    if not classes:
        raise TrainingError("no classes given and no project class list set")
    try:
        model = mc.to_mc_model(mc.load_model(model_path))
    except ValueError as exc:
        raise TrainingError(f"{model_path}: {exc}") from exc
    shape = tuple(model.inputs[0].shape[1:])
    if input_spec is None:
        if len(shape) != 3 or None in shape:
            raise TrainingError(f"the model's input shape {shape} is not fixed: give --input-size")
        input_spec = registry.input_spec(shape[0], shape[1], shape[2])
    wanted = (input_spec["height"], input_spec["width"], input_spec["channels"])
    if len(shape) != 3 or any(s not in (None, w) for s, w in zip(shape, wanted, strict=True)):
        raise TrainingError(f"the model expects inputs {shape}, the input spec gives {wanted}")
    outputs = model.outputs[0].shape[-1]
    if outputs != len(classes):
        raise TrainingError(f"the model has {outputs} outputs but there are {len(classes)} classes")
    card = {
        "name": name,
        "classes": classes,
        "input_spec": input_spec,
        "mc_samples": mc_samples,
        "training_data_path": None,
        "training_data_fingerprint": None,
        "metrics": {},
        "ood": None,
        "created_at": utcnow().isoformat(),
        "imported_from": str(model_path),
    }
    card, path = registry.write_version(config.model_dir, card, lambda p: model.save(p))
    return _record(session_factory, card, path, activate=activate)
