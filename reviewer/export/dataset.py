"""Reviewed labels -> a data set directory for retraining, with manifests and a report.

This module owns `export_dataset`: it takes each labeled item's current labels (undone and
voided rows never count), settles several labelers by majority (`labels.consensus`; ties and
"unsure" are left out by default) and writes ``images/<class>/<sha256>.png`` (the layout
``keras.utils.image_dataset_from_directory`` reads, one folder per project class even when
empty), ``none_of_these/``, optionally ``unsure/``, ``manifest.csv``, ``manifest.jsonl`` and
``report.txt``. Everything is written and fsynced in a temporary sibling directory that is then
renamed to OUT, so a crash never leaves a half export under OUT's name. The caller owns the
session: the `Export` row (with the label watermark ``--since last`` starts after) is added to
it and the caller commits.
"""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import tempfile
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from PIL import Image as PILImage
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from reviewer.core import settings
from reviewer.core.files import FileStore
from reviewer.core.images import normalise
from reviewer.core.schema import Export, Image, Label, ModelVersion, Score, User, as_utc, utcnow
from reviewer.core.versions import version_name
from reviewer.ml.uncertainty import METRICS
from reviewer.review import labels

SINCE_CHOICES = ("all", "last")
FIELDS = (
    "file",
    "image_id",
    "sha256",
    "label",
    "labelers",
    "n_labels",
    "agreement",
    "given_label",
    "model_version",
    "predicted_label",
    *METRICS,
    "labeled_at",
)
# A file that proves a directory is one of ours, so --force never deletes anything else.
MARKER = "manifest.jsonl"
EXIF_ORIENTATION = 0x0112


class ExportError(Exception):
    """The export cannot run; ``str(exc)`` says why, for people."""


@dataclass
class ExportResult:
    path: Path
    watermark: int
    counts: dict[str, int] = field(default_factory=dict)  # class / none_of_these / unsure -> n
    left_out: list[tuple[int, str, str]] = field(default_factory=list)  # (id, sha256, reason)
    export_id: int | None = None

    @property
    def item_count(self) -> int:
        return sum(self.counts.values())


def _iso(moment: datetime) -> str:
    return as_utc(moment).isoformat()


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_file(path: Path, data: bytes) -> None:
    with open(path, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())


def _png_bytes(source: Path) -> bytes:
    """The image as PNG: a plain 8-bit upright PNG is copied byte for byte, anything else
    goes through `normalise` so Keras decodes every file the same way the model does."""
    data = source.read_bytes()
    with PILImage.open(io.BytesIO(data)) as image:
        upright = image.getexif().get(EXIF_ORIENTATION, 1) == 1
        if image.format == "PNG" and image.mode in ("L", "RGB") and upright:
            return data
        buffer = io.BytesIO()
        normalise(image).save(buffer, format="PNG")
        return buffer.getvalue()


def _check_out(out: Path, force: bool) -> bool:
    """Return whether OUT holds an earlier export to replace; refuse anything unsafe."""
    if not out.exists():
        return False
    if not out.is_dir():
        raise ExportError(f"{out} exists and is not a directory")
    if not any(out.iterdir()):
        return False
    if not force:
        raise ExportError(f"{out} is not empty: choose another folder or pass --force")
    if not (out / MARKER).is_file():
        raise ExportError(f"{out} does not look like an export (no {MARKER}); not replacing it")
    return True


def _items(session: Session, after: int, watermark: int):
    """Yield (image, current label rows with usernames, cancel reasons, versions, scores)
    per item with a label row in (after, watermark]."""
    scope = select(Label.image_id).where(Label.id > after, Label.id <= watermark)
    versions = {v.id: v for v in session.scalars(select(ModelVersion))}
    scores = {
        (s.image_id, s.model_version_id): s
        for s in session.scalars(select(Score).where(Score.image_id.in_(scope)))
    }
    in_scope = (Label.image_id.in_(scope), Label.id <= watermark)
    current = labels.current_labels_query().add_columns(User.username)
    current = current.join(User, User.id == Label.user_id).where(*in_scope).order_by(Label.id)
    rows: dict[int, list] = defaultdict(list)
    for label, username in session.execute(current):
        rows[label.image_id].append((label, username))
    cancels: dict[int, set] = defaultdict(set)
    cancel_rows = select(Label.image_id, Label.reason).where(Label.label.is_(None), *in_scope)
    for image_id, reason in session.execute(cancel_rows):
        cancels[image_id].add(reason)
    for image in session.scalars(select(Image).where(Image.id.in_(scope)).order_by(Image.id)):
        yield image, rows.get(image.id, []), cancels.get(image.id, set()), versions, scores


def _decide(given: list, cancels: set, classes: list[str], include_unsure: bool):
    """Return (folder relative to OUT, winner) or (None, reason it is left out)."""
    if not given:
        return None, "voided by an admin" if labels.VOID in cancels else "undone by the labeler"
    winner = labels.consensus([label.label for label, _ in given])
    if winner is None:
        votes = ", ".join(f"{name}: {label.label}" for label, name in given)
        return None, f"tie ({votes})"
    if winner == settings.UNSURE and not include_unsure:
        return None, "unsure (pass --include-unsure to export it)"
    if winner in settings.SPECIAL_LABELS:
        return winner, winner
    if winner not in classes:
        return None, f"label {winner!r} is no longer in the class list"
    return f"images/{winner}", winner


def _record(image, given, winner, folder, versions, scores) -> dict:
    winning = [label for label, _ in given if label.label == winner]
    version = versions.get(winning[-1].model_version_id)
    score = scores.get((image.id, version.id)) if version else None
    return {
        "file": f"{folder}/{image.sha256}.png",
        "image_id": image.id,
        "sha256": image.sha256,
        "label": winner,
        "labelers": [name for _, name in given],
        "n_labels": len(given),
        "agreement": round(len(winning) / len(given), 6),
        "given_label": image.given_label,
        "model_version": version_name(version) if version else None,
        "predicted_label": score.predicted_label if score else None,
        **{metric: getattr(score, metric) if score else None for metric in METRICS},
        "labeled_at": _iso(max(label.labeled_at for label, _ in given)),
    }


def _manifests(work: Path, records: list[dict]) -> None:
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=FIELDS, lineterminator="\n")
    writer.writeheader()
    for record in records:
        cells = {k: "" if v is None else v for k, v in record.items()}
        writer.writerow({**cells, "labelers": ";".join(record["labelers"])})
    _write_file(work / "manifest.csv", text.getvalue().encode())
    lines = "".join(json.dumps(record, sort_keys=False) + "\n" for record in records)
    _write_file(work / MARKER, lines.encode())


def _report(result: ExportResult, classes: list[str], since: str, after: int) -> str:
    lines = [
        f"reviewer export, {_iso(utcnow())}",
        f"since: {since} (label rows with {after} < id <= {result.watermark})",
        f"items: {result.item_count}",
        "# class order of the project (pass it as class_names= to Keras, "
        "which otherwise sorts folder names):",
        ",".join(classes),
        "per class:",
    ]
    lines += [f"  {name}: {result.counts.get(name, 0)}" for name in classes]
    lines += [
        f"{name}: {result.counts[name]}"
        for name in settings.SPECIAL_LABELS
        if name in result.counts
    ]
    lines.append(f"left out: {len(result.left_out)}")
    lines += [f"  image {i} {sha}: {reason}" for i, sha, reason in result.left_out]
    return "\n".join(lines) + "\n"


def _swap_in(work: Path, out: Path, replace: bool) -> None:
    old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=out.parent)) if replace else None
    if old:
        os.replace(out, old / out.name)  # aside first: a crash now leaves the old export there
    os.replace(work, out)
    _fsync(out.parent)
    if old:
        shutil.rmtree(old, ignore_errors=True)


def export_dataset(
    session: Session,
    store: FileStore,
    out: Path,
    *,
    since: str = "all",
    include_unsure: bool = False,
    force: bool = False,
) -> ExportResult:
    """Write the human-reviewed items to `out` and add an `Export` row to `session`.

    `since` is "all" or "last" (only items with label rows after the previous export's
    watermark). Raises `ExportError` when `out` is in the way (non-empty without `force`).
    """
    if since not in SINCE_CHOICES:
        raise ValueError(f"since must be one of {SINCE_CHOICES}, got {since!r}")
    out = Path(out).absolute()
    replace = _check_out(out, force)
    classes = settings.get_classes(session)
    if any(name in (".", "..") for name in classes):
        raise ExportError("class names '.' and '..' cannot be folder names")
    previous = session.scalar(select(Export).order_by(Export.id.desc()).limit(1))
    after = previous.label_watermark if since == "last" and previous else 0
    # Read the watermark first and bound every query by it: on READ COMMITTED each
    # statement sees new commits, and a label that arrives meanwhile belongs to the next export.
    watermark = session.scalar(select(func.max(Label.id))) or after
    result, records = ExportResult(path=out, watermark=watermark), []
    folders = ["images", *(f"images/{name}" for name in classes), settings.NONE_OF_THESE]
    folders += [settings.UNSURE] if include_unsure else []
    out.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    try:
        for folder in folders:
            (work / folder).mkdir()
        for image, given, cancels, versions, scores in _items(session, after, watermark):
            folder, winner = _decide(given, cancels, classes, include_unsure)
            source = store.absolute(image.path) if folder else None
            if folder and not source.is_file():
                folder, winner = None, f"image file missing from the store ({image.path})"
            if folder is None:
                result.left_out.append((image.id, image.sha256, winner))
                continue
            _write_file(work / folder / f"{image.sha256}.png", _png_bytes(source))
            records.append(_record(image, given, winner, folder, versions, scores))
            result.counts[winner] = result.counts.get(winner, 0) + 1
        _manifests(work, records)
        _write_file(work / "report.txt", _report(result, classes, since, after).encode())
        for folder in [*reversed(folders), "."]:  # entries before the folders holding them
            _fsync(work / folder)
        os.chmod(work, 0o755)  # mkdtemp's 0700 would hide the data set from other users
        # The row first: a database error then leaves no OUT behind (the caller rolls back).
        row = Export(path=str(out), item_count=result.item_count, label_watermark=watermark)
        session.add(row)
        session.flush()
        _swap_in(work, out, replace)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    result.export_id = row.id
    return result
