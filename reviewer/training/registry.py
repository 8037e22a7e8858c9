"""The model store: versions on disk (or on object storage) and in the ``model_versions`` table.

This module owns the TF-Serving style layout ``<model_dir>/<name>/<version>/{model.keras,
card.json, ood_index.npy}`` (on object storage, reviewer.training.object_versions writes it
and caches it locally: `version_folder`), the card (classes, input spec, T, metrics, OOD
parameters, training data and its fingerprint, reviewer.training.fingerprints), the OOD fit
(the card's parameters and the neighbour index beside the model, reviewer.ml.ood), the rows
that mirror the cards, resolving ``name[:version]``, and activation: a version becomes active
only once every ok image has its scores, so the queue never ranks a half-scored pool.
Functions take a session; the caller owns the transaction. No TensorFlow.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import uuid
from collections.abc import Callable
from pathlib import Path

import numpy as np
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from reviewer.core import db, locations, settings
from reviewer.core.files import TEMP_PREFIX
from reviewer.core.schema import ModelVersion, utcnow
from reviewer.core.versions import active_version, pending_version, scoring_progress, version_name
from reviewer.ml import ood
from reviewer.training import object_versions

logger = logging.getLogger(__name__)

CARD_FILE = "card.json"
MODEL_FILE = "model.keras"
OOD_INDEX_FILE = "ood_index.npy"
CARD_SAMPLES = 50  # T written on a card unless told otherwise: what the worker uses
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


class RegistryError(ValueError):
    """A request the registry refuses; ``str(exc)`` is the message shown to people."""


def check_name(name: str) -> str:
    """A model name is a folder name: letters, digits, '.', '_' and '-' only."""
    if not _NAME.fullmatch(name or ""):
        raise RegistryError(
            f"invalid model name {name!r}: use letters, digits, '.', '_' and '-' (max 128)"
        )
    return name


def input_spec(height: int, width: int, channels: int, scale: float = 255.0) -> dict:
    """The card's input spec: images are resized to height x width, channels 1 or 3, / scale."""
    if height < 1 or width < 1 or channels not in (1, 3) or not scale > 0:
        raise RegistryError(f"invalid input spec {height}x{width}x{channels} / {scale}")
    return {
        "height": int(height),
        "width": int(width),
        "channels": int(channels),
        "scale": float(scale),
    }


def _versions_on_disk(model_dir, name: str) -> list[int]:
    if locations.is_remote(model_dir):
        return object_versions.version_numbers(model_dir, name)
    folder = Path(model_dir) / name
    if not folder.is_dir():
        return []
    return sorted(int(p.name) for p in folder.iterdir() if p.name.isdigit() and p.is_dir())


def next_version(model_dir: locations.Location, name: str) -> int:
    """One more than the highest version folder of ``name`` (1 for a new name)."""
    return max(_versions_on_disk(model_dir, check_name(name)), default=0) + 1


def write_version(
    model_dir: locations.Location,
    card: dict,
    save_model: Callable[[Path], None],
    *,
    ood_fit: ood.Fit | None = None,
) -> tuple[dict, Path | str]:
    """Write a new version of ``card["name"]``; returns (the card with its version, the folder
    or, on object storage, its URL: reviewer.training.object_versions).

    ``save_model(path)`` writes the model file; ``ood_fit`` goes on the card and beside it.
    Everything goes into a temporary folder that is renamed into place, so a crash never leaves
    a half-written version; if another process took the version number meanwhile, the next free
    number is used.
    """
    name = check_name(card["name"])
    if ood_fit is not None:
        card = {**card, "ood": ood_fit.params}

    def prepare(folder: Path) -> None:
        save_model(folder / MODEL_FILE)
        if ood_fit is not None:
            np.save(folder / OOD_INDEX_FILE, ood_fit.index, allow_pickle=False)

    if locations.is_remote(model_dir):
        return object_versions.write_version(model_dir, name, card, prepare)
    parent = Path(model_dir) / name
    parent.mkdir(parents=True, exist_ok=True)
    temporary = parent / f"{TEMP_PREFIX}{uuid.uuid4().hex}"
    temporary.mkdir()
    try:
        prepare(temporary)
        for _ in range(100):
            card = {**card, "version": next_version(model_dir, name)}
            (temporary / CARD_FILE).write_text(json.dumps(card, indent=2) + "\n")
            final = parent / str(card["version"])
            try:
                os.rename(temporary, final)  # atomic; fails if the folder exists
                return card, final
            except OSError:
                if not final.exists():
                    raise
        raise RegistryError(f"could not find a free version number for {name!r}")
    except BaseException:
        shutil.rmtree(temporary, ignore_errors=True)
        raise


def new_card(
    *,
    name: str,
    classes: list[str],
    input_spec: dict,
    mc_samples: int = CARD_SAMPLES,
    metrics: dict | None = None,
    training_data_path: str | None = None,
    training_data_fingerprint: str | None = None,
    **extra,
) -> dict:
    """The card of a new version (`write_version` gives it its number and its OOD fit):
    classes, input spec, T, metrics, training data and its fingerprint, plus ``extra`` keys."""
    return {
        "name": name,
        "classes": list(classes),
        "input_spec": dict(input_spec),
        "mc_samples": int(mc_samples),
        "training_data_path": training_data_path,
        "training_data_fingerprint": training_data_fingerprint,
        "metrics": dict(metrics or {}),
        "ood": None,
        "created_at": utcnow().isoformat(),
        **extra,
    }


def version_folder(path: str | os.PathLike) -> Path:
    """The local folder of the version at ``path`` (a version on object storage: its cached
    copy, fetched on first use); RegistryError when it cannot be had."""
    try:
        return object_versions.local_copy(path)
    except OSError as exc:
        raise RegistryError(f"cannot fetch the model version {path}: {exc}") from exc


def read_card(path: str | os.PathLike) -> dict:
    card_path = version_folder(path) / CARD_FILE
    try:
        return json.loads(card_path.read_text())
    except (OSError, ValueError) as exc:
        raise RegistryError(f"cannot read the model card {card_path}: {exc}") from exc


def read_ood_fit(path: str | os.PathLike, card: dict) -> ood.Fit | None:
    """The version's OOD fit (``card`` is its card), or None: no fit (the worker then scores
    `ood` with reviewer.ml.ood.fallback_score), or one of an older kind, said in the log."""
    params = card.get("ood")
    if not params:
        return None
    if not ood.is_fitted(params):
        logger.warning(
            "%s has an OOD fit of an older kind; its `ood` is the fallback score until a new "
            "version is trained or registered with --fit-data",
            path,
        )
        return None
    index_path = version_folder(path) / OOD_INDEX_FILE
    remedy = "restore the version's folder, or register or train it again"
    try:
        index = np.load(index_path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise RegistryError(f"cannot read the OOD index {index_path}: {exc}; {remedy}") from exc
    expected = (params.get("index_rows"), params.get("dim"))
    if index.shape != expected:
        raise RegistryError(
            f"the OOD index {index_path} has shape {index.shape}, its card says {expected}; "
            + remedy
        )
    return ood.Fit(params, index)


def record_version(session: Session, card: dict, path: str | os.PathLike) -> ModelVersion:
    """Insert the ``model_versions`` row mirroring ``card`` (inactive)."""
    version = ModelVersion(
        name=card["name"],
        version=int(card["version"]),
        path=path if locations.is_remote(path) else str(Path(path).absolute()),
        classes=list(card["classes"]),
        input_spec=dict(card["input_spec"]),
        mc_samples=int(card["mc_samples"]),
        metrics=dict(card.get("metrics") or {}),
        training_data_path=card.get("training_data_path"),
        training_data_fingerprint=card.get("training_data_fingerprint"),
        trained_on=card.get("trained_on"),
        is_active=False,
        activate_when_scored=False,
    )
    session.add(version)
    session.flush()
    return version


def resolve(session: Session, ref: str) -> ModelVersion:
    """The version named ``"name:version"``, or the latest of ``"name"``; RegistryError if none."""
    name, _, number = ref.partition(":")
    if number and not number.isdigit():
        raise RegistryError(f"invalid version {number!r} in {ref!r}: expected NAME[:VERSION]")
    stmt = select(ModelVersion).where(ModelVersion.name == name)
    if number:
        stmt = stmt.where(ModelVersion.version == int(number))
    found = session.scalars(stmt.order_by(ModelVersion.version.desc()).limit(1)).first()
    if found is not None:
        return found
    known = session.scalars(select(ModelVersion).order_by(ModelVersion.name, ModelVersion.version))
    listing = (
        ", ".join(version_name(v) for v in known) or "none (run `reviewer train` or `register`)"
    )
    raise RegistryError(f"no model version {ref!r}; registered versions: {listing}")


def _make_active(session: Session, version: ModelVersion) -> None:
    # Lock every version row first (PostgreSQL) so two activations cannot interleave and leave
    # two versions active; SQLite writers are already serialised.
    if not db.is_sqlite(session):
        session.execute(select(ModelVersion.id).with_for_update(key_share=True))
    session.execute(
        update(ModelVersion)
        .where(ModelVersion.id != version.id)
        .values(is_active=False, activate_when_scored=False)
    )
    version.is_active, version.activate_when_scored = True, False
    session.flush()


def request_activation(session: Session, version: ModelVersion) -> str:
    """Activate ``version`` now if the pool is fully scored by it (or no version is
    active yet), else mark it pending.

    Returns "active" or "pending". RegistryError if its classes differ from the project's.
    A pending version replaces any other pending one; the current active version stays active
    until the pending one is promoted by `promote_if_scored`.
    """
    classes = settings.get_classes(session)
    if list(version.classes) != classes:
        raise RegistryError(
            f"{version_name(version)} cannot be activated: its classes "
            f"({', '.join(version.classes)}) differ from the project's class list "
            f"({', '.join(classes) or 'not set'})"
        )
    scored, total = scoring_progress(session, version)
    # With no version active there is no ranking to keep serving: the first version
    # takes over at once and its queue fills as the worker scores.
    if version.is_active or scored >= total or active_version(session) is None:
        _make_active(session, version)
        return "active"
    session.execute(
        update(ModelVersion).where(ModelVersion.id != version.id).values(activate_when_scored=False)
    )
    version.activate_when_scored = True
    session.flush()
    return "pending"


def promote_if_scored(session: Session) -> ModelVersion | None:
    """Activate the pending version once every ok image has its scores; returns it if so."""
    pending = pending_version(session)
    if pending is None:
        return None
    scored, total = scoring_progress(session, pending)
    if scored < total:
        return None
    _make_active(session, pending)
    return pending
