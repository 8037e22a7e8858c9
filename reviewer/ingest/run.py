"""An ingest run: resolve the inputs, then validate, store and commit them one batch at a time.

Files are fsynced before their rows are committed, so a row never points at a missing file; a
crash leaves at most the files of the batch in flight, which the next run adopts. Bad input is
reported per file and never stops the batch.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

from sqlalchemy.orm import Session, sessionmaker

from reviewer.core import db, settings
from reviewer.core.config import DEFAULT_MAX_DECODED_BYTES, DEFAULT_MAX_UPLOAD_BYTES
from reviewer.core.files import FileStore, is_no_space
from reviewer.ingest.report import IngestReport, NoSpaceLeft
from reviewer.ingest.rows import add_batch
from reviewer.ingest.sources import plan

DEFAULT_BATCH_SIZE = 500


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
    follow_symlinks: bool = False,
    max_file_bytes: int = DEFAULT_MAX_UPLOAD_BYTES,
    max_decoded_bytes: int = DEFAULT_MAX_DECODED_BYTES,
) -> IngestReport:
    """Ingest ``paths``: one transaction per batch. Raises IngestError before any change."""
    report = IngestReport()
    with factory() as session:
        classes = settings.get_classes(session)
    files = plan(
        paths,
        classes=classes,
        labels_csv=labels_csv,
        labels_from_folders=labels_from_folders,
        report=report,
        follow_symlinks=follow_symlinks,
    )
    store.clean_temporary()
    options = dict(max_pixels=max_pixels, update_labels=update_labels, source=source)
    options.update(max_file_bytes=max_file_bytes, max_decoded_bytes=max_decoded_bytes)
    for batch in batched(files, batch_size):
        _add_or_roll_back(factory, store, batch, report, options)
        if progress is not None:
            progress(len(batch))
    return report


def _add_or_roll_back(factory, store: FileStore, batch, report: IngestReport, options) -> None:
    """One batch in one transaction; if it fails, its files go too and the report is as
    before it. A full disk (the store's or the database's) stops the run with NoSpaceLeft."""
    before = replace(report, rejected=list(report.rejected), warnings=list(report.warnings))
    try:
        with factory() as session, session.begin():
            add_batch(session, store, batch, report=report, **options)
    except BaseException as exc:
        store.roll_back()
        vars(report).update(vars(before))
        if is_no_space(exc) or db.is_disk_full(exc):
            where = "the image store" if is_no_space(exc) else "the database"
            added = f"{report.added} images added before it"
            raise NoSpaceLeft(f"no space left on {where} ({added})") from exc
        raise
    store.settle()
