"""The export tests' pool: nine scored items with real files, labeled by a, b, c and d."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from reviewer.core import db, settings
from reviewer.core.files import FileStore
from reviewer.core.images import inspect_image
from reviewer.core.schema import Image, Score
from reviewer.review import answers
from tests.support.exports import JPEG, N_IMAGES, give, jpeg_bytes
from tests.support.images import png_bytes
from tests.support.pool import add_scored_images, add_user, add_version


@pytest.fixture
def pool(sessions, config):
    """Nine scored items with real files in the store, labeled by a, b, c, d; c is voided.

    Expected: 0 -> class 3 (a, b), 1 tie, 2 unsure, 3 none_of_these, 4 voided only,
    5 -> class 2 (c's "1" voided), 6 -> class 8 (a's "7" undone), 7 -> class 7 (JPEG),
    8 unlabeled (not in scope).
    """
    store = FileStore(config.data_dir)
    with db.write_transaction(sessions) as s:
        # Up to three labelers answer one item below: each may, while it still needs labels.
        settings.set_labels_per_item(s, 3)
        version = add_version(s)
        images = add_scored_images(s, version, N_IMAGES, given_labels=["3"] * N_IMAGES)
        for i, image in enumerate(images):
            data = jpeg_bytes(i) if i == JPEG else png_bytes(i)
            info = inspect_image(data, max_pixels=10_000)
            image.sha256, image.path = info.sha256, store.put(data, info)
        users = {name: add_user(s, name).id for name in ("a", "b", "c", "d", "admin")}
        ids = [image.id for image in images]
    store.sync()
    a, b, c = users["a"], users["b"], users["c"]
    for index, user, label in [
        (0, a, "3"),
        (0, b, "3"),
        (1, a, "3"),
        (1, b, "5"),
        (2, a, "unsure"),
        (3, a, "none_of_these"),
        (4, c, "7"),
        (5, c, "1"),
        (5, a, "2"),
        (5, b, "2"),
        (6, a, "7"),
        (7, a, "7"),
    ]:
        give(sessions, ids[index], user, label)
    with db.write_transaction(sessions) as s:
        answers.undo_label(s, ids[6], a)
        answers.submit_label(s, ids[6], a, "8")
        assert answers.void_labels(s, c, admin_id=users["admin"]) == 2
    with sessions() as s:
        shas = {i: s.get(Image, image_id).sha256 for i, image_id in enumerate(ids)}
        scores = {
            i: s.scalar(select(Score).where(Score.image_id == image_id))
            for i, image_id in enumerate(ids)
        }
    return {"ids": ids, "sha": shas, "users": users, "store": store, "scores": scores}
