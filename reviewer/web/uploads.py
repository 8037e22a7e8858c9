"""One uploaded image into the store and the ``images`` table.

This module owns ``POST /api/images``'s work: the same gate as ``reviewer
ingest`` (``inspect_image`` fully decodes and checks the pixel limit, the
file goes to the content-addressed ``FileStore`` and is fsynced before its row
is committed), a given label checked against the class list, and a file name
reduced to its last component. The byte limit is Flask's MAX_CONTENT_LENGTH.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from reviewer.core import settings
from reviewer.core.files import FileStore
from reviewer.core.images import ImageRejected, inspect_image
from reviewer.core.schema import Image

MAX_FILENAME_LENGTH = 255


class UploadRejected(ValueError):
    """An upload that cannot be accepted; ``status`` is the HTTP status to answer."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


def clean_filename(name: str | None) -> str:
    """The last path component of a client-supplied name (shown as text, never a path)."""
    base = (name or "").replace("\\", "/").rsplit("/", 1)[-1].strip()
    base = "".join(ch for ch in base if ch.isprintable())
    return base[:MAX_FILENAME_LENGTH] or "upload"


def image_dict(image: Image) -> dict:
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
    """Validate and store one image; returns (row, created). The caller commits."""
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
    relative = store.put(data, info)
    store.sync()
    image = Image(
        sha256=info.sha256,
        path=relative,
        original_filename=clean_filename(filename),
        width=info.width,
        height=info.height,
        mode=info.mode,
        source=source,
        given_label=given_label or None,
        status="ok",
    )
    session.add(image)
    session.flush()
    return image, True
