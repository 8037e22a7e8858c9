"""The label history: several labels per item, label quality following the human label.
On SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from reviewer.core import db, settings
from reviewer.core.schema import Image, Score
from reviewer.review import answers, leasing, ranking
from tests.support.pool import LEASE


def test_several_labels_per_item(sessions, pool):
    u1, u2, u3 = pool["users"]
    with db.write_transaction(sessions) as s:
        settings.set_labels_per_item(s, 2)
    with db.write_transaction(sessions) as s:
        item = leasing.next_item(s, u1, "entropy", lease_seconds=LEASE)
        answers.submit_label(s, item["id"], u1, "1")
    with db.write_transaction(sessions) as s:
        assert leasing.next_item(s, u1, "entropy", lease_seconds=LEASE)["id"] != item["id"]
        answers.release(s, item["id"], u1)
    with db.write_transaction(sessions) as s:
        other = leasing.next_item(s, u2, "entropy", lease_seconds=LEASE)
        assert other["id"] == item["id"]
        answers.submit_label(s, item["id"], u2, "2")
    with sessions() as s:
        assert s.get(Image, item["id"]).label_count == 2
        assert item["id"] not in [i["id"] for i in ranking.ranked(s, "entropy", limit=100)[0]]


def test_self_confidence_follows_the_human_label(sessions, pool):
    image_id = pool["image_ids"][1]  # has a given label
    with sessions() as s:
        score = s.scalar(select(Score).where(Score.image_id == image_id))
        given = s.get(Image, image_id).given_label
        mean = list(score.mean)
    human = "0" if given != "0" else "1"
    with db.write_transaction(sessions) as s:
        answers.submit_label(s, image_id, pool["users"][0], human)
    with sessions() as s:
        score = s.scalar(select(Score).where(Score.image_id == image_id))
        assert score.self_confidence == pytest.approx(mean[int(human)])
        others = [p for k, p in enumerate(mean) if k != int(human)]
        assert score.normalized_margin == pytest.approx(mean[int(human)] - max(others))
    with db.write_transaction(sessions) as s:
        answers.undo_label(s, image_id, pool["users"][0])
    with sessions() as s:
        score = s.scalar(select(Score).where(Score.image_id == image_id))
        assert score.self_confidence == pytest.approx(mean[int(given)])  # back to the given label
