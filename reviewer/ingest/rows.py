"""Images into the store and the ``images`` table: a batch from ingest, or one upload.

Both paths pass the same gate (``inspect_image`` fully decodes the bytes and checks the pixel
limit), write the file to the content-addressed store and make it durable before the row that
names it is committed, and build the row with one function, `image_row`. The caller commits.
"""

from __future__ import annotations

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from reviewer.core import settings
from reviewer.core.files import FileStore
from reviewer.core.images import ImageInfo, ImageRejected, inspect_image
from reviewer.core.schema import Image, utcnow
from reviewer.ingest.report import IngestReport
from reviewer.ingest.sources import SourceFile

MAX_FILENAME_LENGTH = 255


class UploadRejected(ValueError):
    """An upload that cannot be accepted; ``status`` is the HTTP status to answer."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


def image_row(
    info: ImageInfo, path: str, *, original_filename: str, source: str | None, given_label
) -> dict:
    """The ``images`` row of a validated image stored at ``path`` (store-relative)."""
    return {
        "sha256": info.sha256,
        "path": path,
        "original_filename": original_filename,
        "width": info.width,
        "height": info.height,
        "mode": info.mode,
        "source": source,
        "given_label": given_label,
        "status": "ok",
        "label_count": 0,
        "created_at": utcnow(),
    }


def _validated(batch: list[SourceFile], max_pixels: int, report: IngestReport) -> dict:
    """{sha256: (source file, info, bytes)} of the batch's files that pass the gate; the others
    are reported as rejected, a second copy of the same bytes as already present."""
    accepted: dict[str, tuple[SourceFile, ImageInfo, bytes]] = {}
    for source_file in batch:
        try:
            data = source_file.path.read_bytes()
            info = inspect_image(data, max_pixels=max_pixels)
        except OSError as exc:
            reason = f"cannot read file: {exc.strerror or exc}"
            report.rejected.append((source_file.display_name, reason))
            continue
        except ImageRejected as exc:
            report.rejected.append((source_file.display_name, str(exc)))
            continue
        if info.sha256 in accepted:
            report.already_present += 1
            continue
        accepted[info.sha256] = (source_file, info, data)
    return accepted


def add_batch(
    session: Session,
    store: FileStore,
    batch: list[SourceFile],
    *,
    max_pixels: int,
    update_labels: bool,
    source: str | None,
    report: IngestReport,
) -> None:
    """Validate and store one batch, then stage its rows in ``session``.

    The caller commits; files are written and fsynced before this returns.
    """
    accepted = _validated(batch, max_pixels, report)
    existing = {
        img.sha256: img
        for img in session.scalars(select(Image).where(Image.sha256.in_(list(accepted))))
    }
    new_rows = []
    for sha, (source_file, info, data) in accepted.items():
        image = existing.get(sha)
        label = source_file.label
        if image is None:
            row = image_row(
                info,
                store.put(data, info),
                original_filename=source_file.display_name,
                source=source,
                given_label=label,
            )
            new_rows.append(row)
            continue
        report.already_present += 1
        if update_labels and label is not None and image.given_label != label:
            image.given_label = label
            report.labels_updated += 1
    store.sync()  # files are durable before the rows that name them are committed
    if new_rows:
        # One executemany instead of an ORM object per image: ingest is bulk work.
        session.execute(insert(Image), new_rows)
    report.added += len(new_rows)


def clean_filename(name: str | None) -> str:
    """The last path component of a client-supplied name (shown as text, never a path)."""
    base = (name or "").replace("\\", "/").rsplit("/", 1)[-1].strip()
    base = "".join(ch for ch in base if ch.isprintable())
    return base[:MAX_FILENAME_LENGTH] or "upload"


def image_dict(image: Image) -> dict:
    """An image row as the upload API answers it."""
    return {
        "id": image.id,
        "sha256": image.sha256,
        "path": image.path,
        "original_filename": image.original_filename,
        "width": image.width,
        "height": image.height,
        "mode": image.mode,
        "given_label": image.given_label,
        "status": image.status,
    }


def add_upload(
    session: Session,
    store: FileStore,
    data: bytes,
    filename: str | None,
    *,
    max_pixels: int,
    given_label: str | None = None,
    source: str = "upload",
) -> tuple[Image, bool]:
    """Validate and store one uploaded image; returns (row, created). The caller commits."""
    if given_label:
        try:
            settings.check_label(given_label, settings.get_classes(session))
        except ValueError as exc:
            raise UploadRejected(str(exc)) from None
    try:
        info = inspect_image(data, max_pixels=max_pixels)
    except ImageRejected as exc:
        # Over the pixel limit is "too large" like over the byte limit: 413.
        status = 413 if str(exc).startswith("image too large") else 400
        raise UploadRejected(str(exc), status) from None
    existing = session.scalar(select(Image).where(Image.sha256 == info.sha256))
    if existing is not None:
        return existing, False
    path = store.put(data, info)
    store.sync()
    row = image_row(
        info,
        path,
        original_filename=clean_filename(filename),
        source=source,
        given_label=given_label or None,
    )
    image = Image(**row)
    session.add(image)
    session.flush()
    return image, True
