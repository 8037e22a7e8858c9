"""An ingest run: resolve the inputs, then validate, store and commit them one batch at a time.

Files are fsynced before their rows are committed, so a row never points at a missing file; a
crash leaves at most the files of the batch in flight, which the next run adopts. Bad input is
reported per file and never stops the batch.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

from sqlalchemy.orm import Session, sessionmaker

from reviewer.core import settings
from reviewer.core.files import FileStore
from reviewer.ingest.report import IngestReport
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
    )
    store.clean_temporary()
    for batch in batched(files, batch_size):
        with factory() as session, session.begin():
            add_batch(
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
