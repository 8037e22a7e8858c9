"""Training data: a folder per class (``DIR/<class>/*.png``), its seeded stratified held-out
split, and loading it as arrays the way the worker loads images (same resizing and scale)."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from reviewer.core import images, settings
from reviewer.training.errors import TrainingError

logger = logging.getLogger(__name__)


def list_images(folder: Path) -> list[Path]:
    """Every image file under ``folder`` (any depth), sorted."""
    return sorted(
        p for p in Path(folder).rglob("*") if p.is_file() and images.has_image_extension(p)
    )


def list_dataset(data_dir: Path, classes: list[str]) -> list[tuple[Path, str, str]]:
    """Images of ``DIR/<class>/`` as (path, class, relative POSIX path), sorted."""
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        raise TrainingError(f"{data_dir}: not a directory")
    folders = sorted(p.name for p in data_dir.iterdir() if p.is_dir())
    unknown = [name for name in folders if name not in classes]
    if unknown:
        guesses = {name: settings.did_you_mean(name, classes) for name in unknown}
        hints = [f"{name!r}: did you mean {g!r}?" for name, g in guesses.items() if g]
        raise TrainingError(
            f"{data_dir}: folders {', '.join(unknown)} are not in the class list "
            f"({', '.join(classes)})" + (f"; {' '.join(hints)}" if hints else "")
        )
    entries = []
    for name in folders:
        for path in list_images(data_dir / name):
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


def load_entries(entries, classes: list[str], spec: dict):
    """(x [M, H, W, C], y [M] class indices, indices into ``entries`` of the M that loaded);
    a file that does not load is logged and left out."""
    x, good = load_paths([e[0] for e in entries], spec)
    index = {name: k for k, name in enumerate(classes)}
    return x, np.array([index[entries[i][1]] for i in good], dtype=np.int64), good


def load_paths(paths, spec: dict, *, what: str = "") -> tuple[np.ndarray, list[int]]:
    """(x [M, H, W, C] loaded as the worker loads images for ``spec``, indices into ``paths``
    of the M that loaded); a file that does not load is logged (after ``what``) and left out."""
    options = dict(size=(spec["height"], spec["width"]), channels=spec["channels"])
    x, good, failed = images.load_batch_tolerant(paths, **options, scale=spec["scale"])
    for index, reason in failed.items():
        logger.warning("%sskipping %s: %s", what, paths[index], reason)
    return x, good
