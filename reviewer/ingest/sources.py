"""Where ingested images come from: files and folders (recursively), and their given labels
from a ``filename,label`` CSV or from folder names. Nothing is read but names and the CSV;
nothing is written."""

from __future__ import annotations

import csv
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from reviewer.core import locations, settings
from reviewer.core.images import has_image_extension
from reviewer.core.text import printable
from reviewer.ingest.report import IngestError, IngestReport

LABELS_COLUMNS = ["filename", "label"]


@dataclass
class SourceFile:
    """A file to ingest, with the given label it will get (None: none)."""

    path: Path | str  # a local file, or an object's URL (reviewer.ingest.remote)
    display_name: str  # the file name as text (non-UTF-8 bytes escaped)
    label: str | None
    size: int | None = None  # an object's listed size (a local file's is read when opened)


def display_name(path: Path) -> str:
    """The path as printable text: bytes that are not UTF-8 and control characters (escape
    sequences a terminal would obey) become ``\\xNN`` escapes."""
    return printable(os.fsencode(path).decode("utf-8", "backslashreplace"))


def outside_root(path: Path, root: Path, *, follow_symlinks: bool) -> str | None:
    """Why ``path`` may not be ingested from ``root`` (it leads outside it), or None. The one
    rule for folders and CSVs: a path must resolve inside its root unless --follow-symlinks."""
    if follow_symlinks:
        return None
    base = root.resolve()
    target = path.resolve()
    if target != base and base not in target.parents:
        return "leads outside the ingested folder (a symlink?): pass --follow-symlinks to allow it"
    return None


class BadLabel(str):
    """A CSV label that is not in the class list: its file is rejected with this reason."""


def read_labels_csv(
    csv_path: Path, classes: list[str], *, follow_symlinks: bool = False
) -> tuple[dict[Path, str], list[tuple]]:
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
        for where, name, label in label_rows(handle, csv_path, rejected):
            target = (base / name).resolve()
            escapes = outside_root(base / name, base, follow_symlinks=follow_symlinks)
            if Path(name).is_absolute() or ".." in Path(name).parts or escapes:
                shown = printable(name)
                rejected.append(
                    (f"{where} ({shown})", "file name must stay inside the CSV's folder")
                )
            elif not target.is_file():
                rejected.append((f"{where} ({name})", "no such file"))
            elif label:
                labels[target] = checked_label(label, classes, where)
    return labels, rejected


def label_rows(handle, csv_name, rejected: list) -> Iterator[tuple[str, str, str]]:
    """(where, file name, label) of each ``filename,label`` row of an open CSV; a row with
    another number of columns goes to ``rejected``, a wrong header raises IngestError."""
    reader = csv.reader(handle)
    header = next(reader, None)
    if header is None or [h.strip() for h in header] != LABELS_COLUMNS:
        raise IngestError(
            f"{csv_name}: the header must be exactly 'filename,label', got "
            f"{','.join(header) if header else 'an empty file'!r}"
        )
    short = str(csv_name).rstrip("/").rsplit("/", 1)[-1]
    for line_no, row in enumerate(reader, start=2):
        if not row:
            continue
        where = f"{short} line {line_no}"
        if len(row) != 2:
            rejected.append((where, f"expected 2 columns (filename,label), got {len(row)}"))
            continue
        yield where, row[0].strip(), row[1].strip()


def checked_label(label: str, classes: list[str], where: str) -> str:
    """The label if it is a class, else a BadLabel: its file is rejected too (see plan), so a
    corrected CSV ingests it later."""
    try:
        return settings.check_label(label, classes)
    except ValueError as exc:
        return BadLabel(f"{where}: {exc}")


def _walk(root: Path, follow_symlinks: bool) -> list[Path]:
    """Every entry under ``root`` that is not a folder, sorted (folder symlinks are followed
    only with ``follow_symlinks``)."""
    found = []
    for folder, _, names in os.walk(root, followlinks=follow_symlinks):
        found += [Path(folder) / name for name in names]
    return sorted(found)


def find_images(
    paths: Iterable[Path], report: IngestReport, *, follow_symlinks: bool = False
) -> Iterator[tuple[Path, Path]]:
    """Yield (image file, its root) under ``paths`` (recursively, sorted). Names without an
    image extension are counted as skipped; files that lead outside their root, or are not
    regular files (devices, pipes, sockets, broken links), are rejected with the reason."""
    for root in paths:
        entries = [root] if not root.is_dir() else _walk(root, follow_symlinks)
        base = root if root.is_dir() else root.parent
        for path in entries:
            if not has_image_extension(path) or path.name.startswith("."):
                report.skipped += 1
                continue
            named = path == root  # a file named on the command line is its own root
            reason = None if named else outside_root(path, base, follow_symlinks=follow_symlinks)
            if reason is None and not path.is_file():  # is_file follows the link: regular only
                reason = "not a regular file (a device, a pipe, a socket or a broken link)"
            if reason is not None:
                report.rejected.append((_relative_name(path, base), reason))
                continue
            yield path, base


def _folder_name(path: Path | str) -> str:
    """The name of the folder a file or object is in (its label with --labels-from-folders)."""
    return path.rsplit("/", 2)[-2] if isinstance(path, str) else path.parent.name


def _relative_name(path: Path, base: Path) -> str:
    """The name kept as ``original_filename``: relative to the ingested folder, never the
    absolute path that was typed."""
    try:
        return display_name(path.relative_to(base))
    except ValueError:
        return display_name(Path(path.name))


def plan(
    paths: list[Path],
    *,
    classes: list[str],
    labels_csv: Path | None,
    labels_from_folders: bool,
    report: IngestReport,
    follow_symlinks: bool = False,
) -> list[SourceFile]:
    """Resolve the inputs (folders, files, object-storage prefixes) into source files with
    their labels; nothing is written yet."""
    local = [p for p in paths if not locations.is_remote(p)]
    missing = [str(p) for p in local if not p.exists()]
    if missing:
        raise IngestError(f"path does not exist: {', '.join(missing)}")
    if (labels_csv is not None or labels_from_folders) and not classes:
        raise IngestError("labels need a class list: run `reviewer classes set ...` first")
    from reviewer.ingest.remote import find_objects, read_labels

    objects = [o for url in paths if locations.is_remote(url) for o in find_objects(url, report)]
    csv_labels: dict = {}
    if labels_csv is not None and locations.is_remote(labels_csv):
        csv_labels, bad_rows = read_labels(labels_csv, classes, {o[0] for o in objects})
        report.rejected += bad_rows
    elif labels_csv is not None:
        csv_labels, bad_rows = read_labels_csv(labels_csv, classes, follow_symlinks=follow_symlinks)
        report.rejected += bad_rows
    found = []
    found_local = find_images(local, report, follow_symlinks=follow_symlinks)
    listed = [
        (path, _relative_name(path, base), path.resolve(), None) for path, base in found_local
    ]
    for path, name, key, size in [*listed, *((o[0], o[1], o[0], o[2]) for o in objects)]:
        label = csv_labels.pop(key, None)
        if isinstance(label, BadLabel):
            report.rejected.append((name, str(label)))
            continue
        if label is None and labels_from_folders:
            try:
                label = settings.check_label(_folder_name(path), classes)
            except ValueError as exc:
                report.rejected.append((name, f"folder label: {exc}"))
                continue
        found.append(SourceFile(path, name, label, size))
    if csv_labels:
        report.warnings.append(
            f"{len(csv_labels)} labeled file(s) in {labels_csv} are not among the ingested paths"
        )
    return found
