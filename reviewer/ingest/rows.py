"""Images into the store and the ``images`` table: a batch from ingest, or one upload.

Both paths pass the same gate (``inspect_image`` fully decodes the bytes and checks the pixel
limit), write the file to the content-addressed store and make it durable before the row that
names it is committed, and build the row with one function, `image_row`. The caller commits.
"""

from __future__ import annotations

import os

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from reviewer.core import settings
from reviewer.core.config import DEFAULT_MAX_DECODED_BYTES, DEFAULT_MAX_UPLOAD_BYTES
from reviewer.core.files import FileStore
from reviewer.core.images import ImageInfo, ImageRejected, inspect_image
from reviewer.core.schema import Image, new_audit_key, utcnow
from reviewer.ingest.remote import fetch_batch
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
        "audit_key": new_audit_key(),
        "created_at": utcnow(),
    }


def read_bounded(path, max_file_bytes: int) -> bytes:
    """A file's bytes, refused before reading when it is over the limit (a huge or sparse
    file is never read whole), and read no further than the limit in any case."""
    size = os.stat(path).st_size
    if size > max_file_bytes:
        raise ImageRejected(
            f"file too large: {size} bytes, over the limit of {max_file_bytes} "
            "(REVIEWER_MAX_FILE_BYTES)"
        )
    with open(path, "rb") as handle:
        data = handle.read(max_file_bytes + 1)
    if len(data) > max_file_bytes:  # it grew while we looked
        raise ImageRejected(f"file too large: over the limit of {max_file_bytes} bytes")
    return data


def read_files(batch: list[SourceFile], max_file_bytes: int) -> list:
    """The bytes of each file of the batch (objects fetched concurrently), or the exception
    that says why it cannot be read."""
    remote = [k for k, f in enumerate(batch) if isinstance(f.path, str)]
    result: list = [None] * len(batch)
    if remote:
        fetched = fetch_batch(
            [batch[k].path for k in remote], [batch[k].size for k in remote], max_file_bytes
        )
        for k, data in zip(remote, fetched, strict=True):
            result[k] = data
    for k, source_file in enumerate(batch):
        if not isinstance(source_file.path, str):
            try:
                result[k] = read_bounded(source_file.path, max_file_bytes)
            except (OSError, ImageRejected) as exc:
                result[k] = exc
    return result


def _validated(batch: list[SourceFile], limits: dict, report: IngestReport) -> dict:
    """{sha256: (source file, info, bytes)} of the batch's files that pass the gate; the others
    are reported as rejected, a second copy of the same bytes as already present."""
    accepted: dict[str, tuple[SourceFile, ImageInfo, bytes]] = {}
    for source_file, data in zip(batch, read_files(batch, limits["max_file_bytes"]), strict=True):
        try:
            if isinstance(data, BaseException):
                raise data
            info = inspect_image(
                data,
                max_pixels=limits["max_pixels"],
                max_decoded_bytes=limits["max_decoded_bytes"],
            )
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
    max_file_bytes: int = DEFAULT_MAX_UPLOAD_BYTES,
    max_decoded_bytes: int = DEFAULT_MAX_DECODED_BYTES,
) -> None:
    """Validate and store one batch, then stage its rows in ``session``.

    The caller commits; files are written and fsynced before this returns.
    """
    limits = dict(
        max_pixels=max_pixels, max_file_bytes=max_file_bytes, max_decoded_bytes=max_decoded_bytes
    )
    accepted = _validated(batch, limits, report)
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
    base = "".join(ch for ch in base if ch.isprintable())  # drops controls and bidi overrides
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
    max_decoded_bytes: int = DEFAULT_MAX_DECODED_BYTES,
) -> tuple[Image, bool]:
    """Validate and store one uploaded image; returns (row, created). The caller commits."""
    if given_label:
        try:
            settings.check_label(given_label, settings.get_classes(session))
        except ValueError as exc:
            raise UploadRejected(str(exc)) from None
    try:
        info = inspect_image(data, max_pixels=max_pixels, max_decoded_bytes=max_decoded_bytes)
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
