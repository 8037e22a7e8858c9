"""Answers: label, undo, skip, release and void, with their effect on leases.
On SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from reviewer.core import db
from reviewer.core.schema import Image, Label, Score
from reviewer.review import answers, errors, leasing, ranking
from tests.support.pool import LEASE


def test_label_undo_and_current_label(sessions, pool):
    u1, u2, _ = pool["users"]
    with db.write_transaction(sessions) as s:
        item = leasing.next_item(s, u1, "entropy", lease_seconds=LEASE)
        answers.submit_label(s, item["id"], u1, "7", seconds=2.5)
    with sessions() as s:
        assert s.get(Image, item["id"]).label_count == 1
        assert not s.scalar(select(Score.needs_review).where(Score.image_id == item["id"]))
        nxt = ranking.ranked(s, "entropy", limit=100)[0]
        assert item["id"] not in [i["id"] for i in nxt]
    with db.write_transaction(sessions) as s:
        answers.undo_label(s, item["id"], u1)
    with db.write_transaction(sessions) as s:
        assert s.get(Image, item["id"]).label_count == 0
        # Undo gives the item back to the same labeler, not to someone else.
        assert leasing.next_item(s, u2, "entropy", lease_seconds=LEASE)["id"] != item["id"]
        assert leasing.next_item(s, u1, "entropy", lease_seconds=LEASE)["id"] == item["id"]
    with sessions() as s:
        rows = s.scalars(select(Label).where(Label.image_id == item["id"]).order_by(Label.id)).all()
    assert [(r.label, r.undoes_label_id) for r in rows] == [("7", None), (None, rows[0].id)]
    with db.write_transaction(sessions) as s, pytest.raises(errors.NotFound):
        answers.undo_label(s, item["id"], u1)


def test_bad_labels_are_rejected(sessions, pool):
    u1 = pool["users"][0]
    with db.write_transaction(sessions) as s:
        item = leasing.next_item(s, u1, "entropy", lease_seconds=LEASE)
    for bad in ("cat", "", "<b>7</b>"):
        with db.write_transaction(sessions) as s, pytest.raises(errors.BadRequest):
            answers.submit_label(s, item["id"], u1, bad)
    with db.write_transaction(sessions) as s:
        answers.submit_label(s, item["id"], u1, "none_of_these")
        answers.submit_label(s, pool["image_ids"][0], u1, "unsure")
    with db.write_transaction(sessions) as s, pytest.raises(errors.NotFound):
        answers.submit_label(s, 999_999, u1, "1")


def test_skip_hides_the_item_from_that_labeler_only(sessions, pool):
    u1, u2, _ = pool["users"]
    with db.write_transaction(sessions) as s:
        first = leasing.next_item(s, u1, "entropy", lease_seconds=LEASE)
        answers.skip_item(s, first["id"], u1)
    with db.write_transaction(sessions) as s:
        assert leasing.next_item(s, u1, "entropy", lease_seconds=LEASE)["id"] != first["id"]
        assert leasing.next_item(s, u2, "entropy", lease_seconds=LEASE)["id"] == first["id"]


def test_void_cancels_a_labelers_labels(sessions, pool):
    u1, _, admin = pool["users"]
    with db.write_transaction(sessions) as s:
        for image_id in pool["image_ids"][:3]:
            answers.submit_label(s, image_id, u1, "4")
    with db.write_transaction(sessions) as s:
        assert answers.void_labels(s, u1, admin_id=admin) == 3
    with sessions() as s:
        assert s.scalar(select(func.sum(Image.label_count))) == 0
        assert s.scalar(select(func.count()).select_from(Label)) == 6  # nothing deleted


def test_release_leaves_someone_elses_lease_alone(sessions, pool):
    u1, u2, _ = pool["users"]
    with db.write_transaction(sessions) as s:
        item = leasing.next_item(s, u2, "entropy", lease_seconds=LEASE)
    with db.write_transaction(sessions) as s:
        answers.release(s, item["id"], u1)
    with db.write_transaction(sessions) as s, pytest.raises(errors.Conflict):
        answers.open_item(s, item["id"], u1, lease_seconds=LEASE)


def test_undo_reports_the_new_lease(sessions, pool):
    u1 = pool["users"][0]
    with db.write_transaction(sessions) as s:
        item = leasing.next_item(s, u1, "entropy", lease_seconds=5)
        answers.submit_label(s, item["id"], u1, "3")
    with db.write_transaction(sessions) as s:
        answers.undo_label(s, item["id"], u1, lease_seconds=LEASE)
        again = answers.get_item(s, item["id"], user_id=u1)
    assert again["lease_expires_at"] > item["lease_expires_at"]
