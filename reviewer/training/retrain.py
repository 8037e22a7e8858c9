"""Retraining from reviewed labels: a base model version plus an export -> a new version.

This module owns ``reviewer train --from-export OUT --base NAME[:VERSION]``: it resolves the
base version, checks that its training data (``training_data_path`` on its card) still exists,
reads the export's ``manifest.csv`` (only class labels are used: ``none_of_these`` and
``unsure`` are answers, not classes), fingerprints the exported files and hands both to
`training.train_new_version`. It fine-tunes the base's weights rather than training a fresh
network: the base already knows the training data, so a couple of epochs make the human labels
win, where a fresh network needs the base's full schedule to get back to where it was. The
human-labeled items are few among thousands and are exactly the ones the model got wrong or
doubted, so each is repeated `HUMAN_REPEAT` times per epoch (an example weight, written on the
card) to make the model learn them. The held-out split is the base's (same data, same seed),
so held-out accuracy compares with the base's and no image the base held out is trained on.
"""

from __future__ import annotations

import csv
from collections import Counter
from pathlib import Path

from reviewer.core import settings, versions
from reviewer.training import fingerprints, registry
from reviewer.training.errors import TrainingError
from reviewer.training.train import train_new_version

HUMAN_REPEAT = 5  # copies of each human-labeled item per epoch
FINE_TUNE_EPOCHS = 2
MANIFEST = "manifest.csv"


def read_export(
    out: Path, classes: list[str], *, train_on_audit: bool = False, include_auto: bool = False
) -> tuple[list[tuple[Path, str]], dict, list[str]]:
    """The class-labeled items of export ``out`` as [(png path, label)] plus a description
    (path, fingerprint, counts) for the card and the sha256 of the pool images they are (the
    manifest's ``sha256``: the export re-encodes some images, so not the files'). The audit
    set's items (source ``audit``) and the model's auto-accepted ones (``model``) are left out
    unless asked for: the audit certifies models that never trained on it. TrainingError when
    ``out`` is not usable."""
    out = Path(out).absolute()
    manifest = out / MANIFEST
    if not out.exists():
        raise TrainingError(f"{out} does not exist: give the folder `reviewer export` wrote")
    if not manifest.is_file():
        raise TrainingError(f"{out}: no {MANIFEST}; expected a folder written by `reviewer export`")
    wanted = {"human", ""} | ({"audit"} if train_on_audit else set())
    wanted |= {"model"} if include_auto else set()
    extra, hashed, left_out, pool_sha256 = [], [], Counter(), []
    with open(manifest, newline="") as handle:
        for row in csv.DictReader(handle):
            label, relative = row.get("label") or "", row.get("file") or ""
            source = row.get("source") or ""  # exports before the audit had no source: human
            if source not in wanted:
                left_out[f"{source} (held out)"] += 1
                continue
            if label in settings.SPECIAL_LABELS:
                left_out[label] += 1
                continue
            if label not in classes:
                raise TrainingError(
                    f"{manifest}: {relative} has label {label!r}, which is not in the class list"
                )
            path = (out / relative).resolve()
            if not path.is_relative_to(out.resolve()) or not path.is_file():
                raise TrainingError(f"{manifest}: {relative} is missing from the export")
            extra.append((path, label))
            hashed.append((relative, fingerprints.file_sha256(path)))
            if row.get("sha256"):
                pool_sha256.append(row["sha256"])
    if not extra:
        raise TrainingError(f"{out}: the export holds no class-labeled items to learn from")
    info = {
        "path": str(out),
        "fingerprint": fingerprints.dataset_fingerprint(hashed),
        "items": len(extra),
        "left_out": dict(left_out),
    }
    return extra, info, pool_sha256


def base_training_data(version, card: dict) -> Path:
    """The base version's training data folder; TrainingError if it is gone or never existed."""
    data = card.get("training_data_path")
    if not data:
        raise TrainingError(
            f"{versions.version_name(version)} has no training data on its card (it was "
            "registered, not trained): retrain from a version made by `reviewer train`"
        )
    if not Path(data).is_dir():
        raise TrainingError(
            f"the training data of {versions.version_name(version)} no longer exists at {data}: "
            "restore it there, or train a new model with `reviewer train --data DIR`"
        )
    return Path(data)


def retrain_from_export(
    session_factory,
    config,
    *,
    export_dir: Path,
    base: str,
    name: str | None = None,
    epochs: int | None = None,
    activate: bool = False,
    repeat: int = HUMAN_REPEAT,
    train_on_audit: bool = False,
    include_auto: bool = False,
    verbose=None,
):
    """Fine-tune ``base`` (NAME[:VERSION]) on its training data plus export ``export_dir``;
    returns the new ModelVersion (under the base's name unless ``name``). The audit's and the
    model's items are left out unless ``train_on_audit`` / ``include_auto``; the new card's
    ``trained_on`` adds the export's items to the base's."""
    with session_factory() as session:
        version = registry.resolve(session, base)
        classes = settings.get_classes(session)
    card = registry.read_card(version.path)
    if list(card["classes"]) != classes:
        raise TrainingError(
            f"{versions.version_name(version)} has classes {', '.join(card['classes'])}, the "
            f"project {', '.join(classes) or 'none'}: its export labels cannot retrain it"
        )
    data_dir = base_training_data(version, card)
    weights = registry.version_folder(version.path) / registry.MODEL_FILE
    if not weights.is_file():
        raise TrainingError(
            f"the model file of {versions.version_name(version)} is missing: {weights}"
        )
    extra, info, pool_sha256 = read_export(
        export_dir, classes, train_on_audit=train_on_audit, include_auto=include_auto
    )
    info |= {"base": versions.version_name(version), "repeat": repeat}
    info |= {"train_on_audit": train_on_audit, "include_auto": include_auto}
    return train_new_version(
        session_factory,
        config,
        data_dir=data_dir,
        name=name or version.name,
        epochs=epochs or FINE_TUNE_EPOCHS,
        seed=int(card.get("seed", 0)),
        activate=activate,
        extra_data=extra,
        extra_repeat=repeat,
        extra_source=info,
        initial_model=weights,
        input_spec=card["input_spec"],
        trained_on=[*(version.trained_on or ()), *pool_sha256],
        verbose=verbose,
    )
