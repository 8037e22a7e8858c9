"""The right to label: the stale tab, the direct double post, looking at a reviewed item, the
same label twice, and concurrent answers on one item (the image row lock). SQLite and
PostgreSQL."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from sqlalchemy import func, select, update

from reviewer.core import db, settings
from reviewer.core.schema import Image, Label, ReviewLease, utcnow
from reviewer.review import answers, errors, leasing
from reviewer.review.labels import current_labels
from tests.support.pool import LEASE


def _expire_leases(sessions) -> None:
    with sessions() as s, s.begin():
        s.execute(update(ReviewLease).values(expires_at=utcnow() - timedelta(seconds=1)))


def _label(sessions, image_id, user_id, label):
    with db.write_transaction(sessions) as s:
        return answers.submit_label(s, image_id, user_id, label)


def _next(sessions, user_id, lease=LEASE):
    with db.write_transaction(sessions) as s:
        return leasing.next_item(s, user_id, "entropy", lease_seconds=lease)


def test_a_stale_tab_cannot_label_an_item_that_was_taken(sessions, pool):
    alice, bob, _ = pool["users"]
    item = _next(sessions, alice)
    _expire_leases(sessions)  # alice walked away; her hold ran out
    assert _next(sessions, bob)["id"] == item["id"]  # bob takes the item over
    with pytest.raises(
        errors.Conflict, match="your lease on item .* expired and the item was taken"
    ):
        _label(sessions, item["id"], alice, "3")
    _label(sessions, item["id"], bob, "4")
    with pytest.raises(errors.Conflict, match="already has enough labels"):
        _label(sessions, item["id"], alice, "3")  # and after bob labeled it
    with sessions() as s:
        assert [r.label for r in current_labels(s, item["id"])] == ["4"]


def test_two_users_posting_directly_to_one_item(sessions, pool):
    alice, bob, _ = pool["users"]
    image_id = pool["image_ids"][0]  # nobody holds it
    row, created = _label(sessions, image_id, alice, "3")
    assert created and row["label"] == "3"
    with pytest.raises(errors.Conflict, match="already has enough labels"):
        _label(sessions, image_id, bob, "5")
    with db.write_transaction(sessions) as s:
        settings.set_labels_per_item(s, 2)
    _, created = _label(sessions, image_id, bob, "5")  # now it needs a second label
    assert created


def test_someone_elses_live_lease_wins(sessions, pool):
    alice, bob, _ = pool["users"]
    item = _next(sessions, alice)
    with pytest.raises(errors.Conflict, match="leased by someone else"):
        _label(sessions, item["id"], bob, "3")


def test_the_same_label_twice_is_one_row(sessions, pool):
    alice = pool["users"][0]
    item = _next(sessions, alice)
    first, created = _label(sessions, item["id"], alice, "3")
    again, created_again = _label(sessions, item["id"], alice, "3")
    assert created and not created_again and again == first
    relabel, created = _label(sessions, item["id"], alice, "7")  # one's own label: changed
    assert created and relabel["label"] == "7"
    with sessions() as s:
        rows = s.scalar(select(func.count()).select_from(Label).where(Label.image_id == item["id"]))
        assert rows == 3  # "3", its undo, "7"


def test_opening_a_reviewed_item_does_not_lease_it(sessions, pool):
    alice, bob, _ = pool["users"]
    image_id = pool["image_ids"][0]
    _label(sessions, image_id, alice, "3")
    with db.write_transaction(sessions) as s:
        seen = answers.open_item(s, image_id, bob, lease_seconds=LEASE)
    assert seen["can_label"] is False and "already has enough labels" in seen["why_not"]
    assert seen["lease_expires_at"] is None
    with sessions() as s:
        assert s.get(ReviewLease, image_id) is None
    with db.write_transaction(sessions) as s:  # its own labeler may open it to relabel
        own = answers.open_item(s, image_id, alice, lease_seconds=LEASE)
    assert own["can_label"] is True and own["lease_expires_at"]


def _at_once(*calls) -> list:
    """Run the calls in threads released together; their results (or exceptions)."""
    barrier, results = threading.Barrier(len(calls)), [None] * len(calls)

    def run(k, call):
        barrier.wait()
        try:
            results[k] = call()
        except Exception as exc:  # noqa: BLE001 - returned for the test to inspect
            results[k] = exc

    threads = [threading.Thread(target=run, args=(k, c)) for k, c in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return results


@pytest.mark.parametrize("attempt", range(10))
def test_concurrent_labels_on_one_item_are_both_counted(sessions, pool, attempt):
    alice, bob, _ = pool["users"]
    image_id = pool["image_ids"][attempt]
    with db.write_transaction(sessions) as s:
        settings.set_labels_per_item(s, 2)
    results = _at_once(
        lambda: _label(sessions, image_id, alice, "3"), lambda: _label(sessions, image_id, bob, "4")
    )
    assert all(isinstance(r, tuple) and r[1] for r in results), results
    with sessions() as s:
        image = s.get(Image, image_id)
        assert image.label_count == len(current_labels(s, image_id)) == 2


@pytest.mark.parametrize("attempt", range(10))
def test_a_double_submitted_relabel_is_one_label(sessions, pool, attempt):
    alice = pool["users"][0]
    image_id = pool["image_ids"][attempt]
    _label(sessions, image_id, alice, "3")
    results = _at_once(
        lambda: _label(sessions, image_id, alice, "5"),
        lambda: _label(sessions, image_id, alice, "5"),
    )
    assert all(isinstance(r, tuple) for r in results), results  # no UniqueViolation, no 500
    assert sorted(created for _, created in results) == [False, True]
    with sessions() as s:
        assert [r.label for r in current_labels(s, image_id)] == ["5"]
        assert s.get(Image, image_id).label_count == 1
