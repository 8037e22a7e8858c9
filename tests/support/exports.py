"""Helpers of the export tests: the pool's shape and giving a label as a labeler does."""

from __future__ import annotations

import io

from PIL import Image as PILImage

from reviewer.core import db
from reviewer.review import answers
from tests.support.images import png_bytes

CLASSES = [str(d) for d in range(10)]
N_IMAGES = 9
JPEG = 7  # this item's stored file is a JPEG: the export must convert it to PNG


def jpeg_bytes(seed: int) -> bytes:
    buffer = io.BytesIO()
    PILImage.open(io.BytesIO(png_bytes(seed))).save(buffer, format="JPEG")
    return buffer.getvalue()


def give(sessions, image_id, user_id, label):
    with db.write_transaction(sessions) as s:
        answers.submit_label(s, image_id, user_id, label)
