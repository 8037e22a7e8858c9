"""Where ingested images come from: files and folders (recursively), and their given labels
from a ``filename,label`` CSV or from folder names. Nothing is read but names and the CSV;
nothing is written."""

from __future__ import annotations

import csv
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from reviewer.core import settings
from reviewer.core.images import has_image_extension
from reviewer.ingest.report import IngestError, IngestReport

LABELS_COLUMNS = ["filename", "label"]


@dataclass
class SourceFile:
    """A file to ingest, with the given label it will get (None: none)."""

    path: Path
    display_name: str  # the file name as text (non-UTF-8 bytes escaped)
    label: str | None


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


def find_images(paths: Iterable[Path], report: IngestReport) -> Iterator[Path]:
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
) -> list[SourceFile]:
    """Resolve the inputs into source files with their labels; nothing is written yet."""
    missing = [str(p) for p in paths if not p.exists()]
    if missing:
        raise IngestError(f"path does not exist: {', '.join(missing)}")
    if (labels_csv is not None or labels_from_folders) and not classes:
        raise IngestError("labels need a class list: run `reviewer classes set ...` first")
    csv_labels: dict[Path, str] = {}
    if labels_csv is not None:
        csv_labels, bad_rows = read_labels_csv(labels_csv, classes)
        report.rejected += bad_rows
    found = []
    for path in find_images(paths, report):
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
        found.append(SourceFile(path, display_name(path), label))
    if csv_labels:
        report.warnings.append(
            f"{len(csv_labels)} labeled file(s) in {labels_csv} are not among the ingested paths"
        )
    return found
