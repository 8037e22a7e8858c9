"""Ingest: files and folders of images into the store and the ``images`` table.

This module owns turning paths (plus optional labels from a CSV or from folder
names) into stored images: it finds candidate files, reads the labels,
validates every image through :mod:`reviewer.images`, writes new files to the
content-addressed store and commits their rows one batch at a time. Files are
fsynced before their rows are committed, so a row never points at a missing
file; a crash leaves at most the files of the batch in flight, which the next
run adopts. Bad input is reported per file and never stops the batch.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import insert, select
from sqlalchemy.orm import Session, sessionmaker

from reviewer.core import settings
from reviewer.core.files import FileStore
from reviewer.core.images import ImageRejected, has_image_extension, inspect_image
from reviewer.core.schema import Image, utcnow

DEFAULT_BATCH_SIZE = 500
LABELS_COLUMNS = ["filename", "label"]


class IngestError(ValueError):
    """Input that stops the whole ingest before anything is changed."""


@dataclass
class Candidate:
    path: Path
    display_name: str  # the file name as text (non-UTF-8 bytes escaped)
    label: str | None


@dataclass
class IngestReport:
    added: int = 0
    already_present: int = 0
    labels_updated: int = 0
    skipped: int = 0
    rejected: list[tuple[str, str]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        out = [
            f"added: {self.added}",
            f"already present: {self.already_present}",
            f"labels updated: {self.labels_updated}",
            f"skipped (no image extension): {self.skipped}",
            f"rejected: {len(self.rejected)}",
        ]
        out += [f"  {name}: {reason}" for name, reason in self.rejected]
        out += [f"warning: {w}" for w in self.warnings]
        return out


def display_name(path: Path) -> str:
    """The path as printable text; bytes that are not UTF-8 become ``\\xNN`` escapes."""
    return os.fsencode(path).decode("utf-8", "backslashreplace")


class BadLabel(str):
    """A CSV label that is not in the class list: its file is rejected with this reason."""


def read_labels_csv(csv_path: Path, classes: list[str]) -> tuple[dict[Path, str], list[tuple]]:
    """Read ``filename,label`` rows; file names are relative to the CSV's folder.

    Returns (labels by resolved path, rejected rows as (name, reason)); a label
    outside the class list maps its path to a :class:`BadLabel`. A CSV
    whose header is not exactly ``filename,label`` raises :class:`IngestError`.
    """
    if not csv_path.is_file():
        raise IngestError(f"{csv_path}: labels file does not exist")
    base = csv_path.parent.resolve()
    labels: dict[Path, str] = {}
    rejected: list[tuple[str, str]] = []
    with csv_path.open(newline="", encoding="utf-8") as handle:
        reader = csv.reader(handle)
        header = next(reader, None)
        if header is None or [h.strip() for h in header] != LABELS_COLUMNS:
            raise IngestError(
                f"{csv_path}: the header must be exactly 'filename,label', got "
                f"{','.join(header) if header else 'an empty file'!r}"
            )
        for line_no, row in enumerate(reader, start=2):
            if not row:
                continue
            where = f"{csv_path.name} line {line_no}"
            if len(row) != 2:
                rejected.append((where, f"expected 2 columns (filename,label), got {len(row)}"))
                continue
            name, label = row[0].strip(), row[1].strip()
            target = (base / name).resolve()
            if Path(name).is_absolute() or ".." in Path(name).parts or base not in target.parents:
                rejected.append(
                    (f"{where} ({name})", "file name must stay inside the CSV's folder")
                )
            elif not target.is_file():
                rejected.append((f"{where} ({name})", "no such file"))
            elif label:
                try:
                    labels[target] = settings.check_label(label, classes)
                except ValueError as exc:
                    # The file is rejected too (see plan), so a corrected CSV ingests it later.
                    labels[target] = BadLabel(f"{where}: {exc}")
    return labels, rejected


def find_candidates(paths: Iterable[Path], report: IngestReport) -> Iterator[Path]:
    """Yield image files under ``paths`` (recursively, sorted); count the others as skipped."""
    for root in paths:
        files = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())
        for path in files:
            if has_image_extension(path) and not path.name.startswith("."):
                yield path
            else:
                report.skipped += 1


def plan(
    paths: list[Path],
    *,
    classes: list[str],
    labels_csv: Path | None,
    labels_from_folders: bool,
    report: IngestReport,
) -> list[Candidate]:
    """Resolve the inputs into candidates with their labels; nothing is written yet."""
    missing = [str(p) for p in paths if not p.exists()]
    if missing:
        raise IngestError(f"path does not exist: {', '.join(missing)}")
    if (labels_csv is not None or labels_from_folders) and not classes:
        raise IngestError("labels need a class list: run `reviewer classes set ...` first")
    csv_labels: dict[Path, str] = {}
    if labels_csv is not None:
        csv_labels, bad_rows = read_labels_csv(labels_csv, classes)
        report.rejected += bad_rows
    candidates = []
    for path in find_candidates(paths, report):
        resolved = path.resolve()
        label = csv_labels.pop(resolved, None)
        if isinstance(label, BadLabel):
            report.rejected.append((display_name(path), str(label)))
            continue
        if label is None and labels_from_folders:
            folder = path.parent.name
            try:
                label = settings.check_label(folder, classes)
            except ValueError as exc:
                report.rejected.append((display_name(path), f"folder label: {exc}"))
                continue
        candidates.append(Candidate(path, display_name(path), label))
    if csv_labels:
        report.warnings.append(
            f"{len(csv_labels)} labeled file(s) in {labels_csv} are not among the ingested paths"
        )
    return candidates


def ingest_batch(
    session: Session,
    store: FileStore,
    batch: list[Candidate],
    *,
    max_pixels: int,
    update_labels: bool,
    source: str | None,
    report: IngestReport,
) -> None:
    """Validate and store one batch, then stage its rows in ``session``.

    The caller commits; files are written and fsynced before this returns.
    """
    accepted: dict[str, tuple[Candidate, object]] = {}
    for cand in batch:
        try:
            data = cand.path.read_bytes()
            info = inspect_image(data, max_pixels=max_pixels)
        except OSError as exc:
            report.rejected.append((cand.display_name, f"cannot read file: {exc.strerror or exc}"))
            continue
        except ImageRejected as exc:
            report.rejected.append((cand.display_name, str(exc)))
            continue
        if info.sha256 in accepted:
            report.already_present += 1
            continue
        accepted[info.sha256] = (cand, info, data)
    existing = {
        img.sha256: img
        for img in session.scalars(select(Image).where(Image.sha256.in_(list(accepted))))
    }
    new_rows = []
    for sha, (cand, info, data) in accepted.items():
        image = existing.get(sha)
        if image is not None:
            report.already_present += 1
            if update_labels and cand.label is not None and image.given_label != cand.label:
                image.given_label = cand.label
                report.labels_updated += 1
            continue
        new_rows.append(
            {
                "sha256": sha,
                "path": store.put(data, info),
                "original_filename": cand.display_name,
                "width": info.width,
                "height": info.height,
                "mode": info.mode,
                "source": source,
                "given_label": cand.label,
                "status": "ok",
                "label_count": 0,
                "created_at": utcnow(),
            }
        )
    store.sync()  # files are durable before the rows that name them are committed
    if new_rows:
        # One executemany instead of an ORM object per image: ingest is bulk work.
        session.execute(insert(Image), new_rows)
    report.added += len(new_rows)


def batched(items: list, size: int) -> Iterator[list]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def run_ingest(
    factory: sessionmaker[Session],
    store: FileStore,
    paths: list[Path],
    *,
    max_pixels: int,
    labels_csv: Path | None = None,
    labels_from_folders: bool = False,
    update_labels: bool = False,
    source: str | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    progress: Callable[[int], None] | None = None,
) -> IngestReport:
    """Ingest ``paths``: one transaction per batch. Raises IngestError before any change."""
    report = IngestReport()
    with factory() as session:
        classes = settings.get_classes(session)
    candidates = plan(
        paths,
        classes=classes,
        labels_csv=labels_csv,
        labels_from_folders=labels_from_folders,
        report=report,
    )
    store.clean_temporary()
    for batch in batched(candidates, batch_size):
        with factory() as session, session.begin():
            ingest_batch(
                session,
                store,
                batch,
                max_pixels=max_pixels,
                update_labels=update_labels,
                source=source,
                report=report,
            )
        if progress is not None:
            progress(len(batch))
    return report
