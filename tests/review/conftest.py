"""The review tests' pool: 30 scored images (two of three with a given label) and 3 users."""

from __future__ import annotations

import pytest

from tests.support.pool import add_scored_images, add_user, add_version


@pytest.fixture
def pool(sessions):
    with sessions() as s, s.begin():
        version = add_version(s)
        given = [str(i % 10) if i % 3 else None for i in range(30)]
        images = add_scored_images(s, version, 30, given_labels=given)
        users = [add_user(s, f"u{i}") for i in range(3)]
        return {
            "version_id": version.id,
            "image_ids": [i.id for i in images],
            "users": [u.id for u in users],
        }
