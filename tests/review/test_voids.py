"""Voided labels and their restore: append-only, at most once, never over a newer answer or an
item that others have labeled enough since. On SQLite and PostgreSQL."""

from __future__ import annotations

import pytest

from reviewer.core import db
from reviewer.review import answers, labels, voids
from reviewer.review.errors import Conflict, NotFound


def _label(sessions, image_id, user, label):
    with db.write_transaction(sessions) as s:
        answers.submit_label(s, image_id, user, label)


def test_a_restore_is_a_new_row_and_happens_once(sessions, pool):
    lee, admin, _ = pool["users"]
    image = pool["image_ids"][0]
    _label(sessions, image, lee, "4")
    with db.write_transaction(sessions) as s:
        assert voids.current_label_count(s, lee) == 1
        answers.void_labels(s, lee, admin_id=admin)
    with sessions() as s:
        (voided,) = voids.voided_labels(s)
        assert labels.recent_labels(s, lee) == []
    assert (voided["voided_by_user_id"], voided["restored_label_id"]) == (admin, None)
    with db.write_transaction(sessions) as s:
        row = voids.restore_label(s, voided["id"], admin_id=admin)
    assert row.id != voided["id"] and row.label == "4" and row.user_id == lee
    with sessions() as s:
        (current,) = labels.recent_labels(s, lee)
        assert voids.voided_labels(s)[0]["restored_label_id"] == row.id
    assert current["restores_label_id"] == voided["id"]
    assert current["restored_by_user_id"] == admin
    with db.write_transaction(sessions) as s, pytest.raises(Conflict, match="restored already"):
        voids.restore_label(s, voided["id"], admin_id=admin)
    with db.write_transaction(sessions) as s, pytest.raises(Conflict, match="was not voided"):
        voids.restore_label(s, row.id, admin_id=admin)
    with db.write_transaction(sessions) as s, pytest.raises(NotFound):
        voids.restore_label(s, 10**9, admin_id=admin)


def test_no_restore_onto_an_item_others_have_labeled_enough_since(sessions, pool):
    lee, admin, other = pool["users"]
    image = pool["image_ids"][1]
    _label(sessions, image, lee, "4")
    with db.write_transaction(sessions) as s:
        answers.void_labels(s, lee, admin_id=admin)
    _label(sessions, image, other, "5")  # labels_per_item is 1: the item is done again
    with sessions() as s:
        (voided,) = voids.voided_labels(s)
    with db.write_transaction(sessions) as s, pytest.raises(Conflict, match="enough labels"):
        voids.restore_label(s, voided["id"], admin_id=admin)
    with db.write_transaction(sessions) as s:
        restored, refused = voids.restore_user_labels(s, lee, admin_id=admin)
    assert restored == 0 and len(refused) == 1
