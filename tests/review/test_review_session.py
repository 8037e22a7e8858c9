"""A labeler's review session: switching strategy or filters, why an item is shown, what the
labeler already answered, and the recent labels a reload keeps. On SQLite and PostgreSQL."""

from __future__ import annotations

from sqlalchemy import select

from reviewer.core import db, strategies
from reviewer.core.schema import ReviewLease
from reviewer.review import answers, labels, leasing, ranking
from tests.support.pool import LEASE


def _next(sessions, user, strategy, **filters):
    with db.write_transaction(sessions) as s:
        return leasing.next_item(s, user, strategy, lease_seconds=LEASE, **filters)


def _top(sessions, strategy, **filters):
    with sessions() as s:
        items, _ = ranking.ranked(s, strategy, limit=1, **filters)
    return items[0]


def _leases(sessions, user):
    with sessions() as s:
        rows = s.execute(select(ReviewLease.image_id).where(ReviewLease.user_id == user))
        return sorted(r.image_id for r in rows)


def test_switching_strategy_releases_the_held_item_and_hands_out_the_new_top(sessions, pool):
    user = pool["users"][0]
    held = _next(sessions, user, "mislabeled")
    assert held["id"] == _top(sessions, "mislabeled")["id"]
    ood_top = _top(sessions, "ood")
    assert ood_top["id"] != held["id"]  # the pool's two tops differ: the test can fail

    switched = _next(sessions, user, "ood")

    assert switched["id"] == ood_top["id"]
    assert switched["strategy"] == "ood"
    assert switched["rank_value"] == ood_top["rank_value"]
    assert switched["reason"] == strategies.reason("ood", ood_top["ood"], switched["given_label"])
    assert _leases(sessions, user) == [ood_top["id"]]  # the mislabeled item is free again


def test_the_same_strategy_hands_the_held_item_back(sessions, pool):
    user = pool["users"][0]
    first = _next(sessions, user, "entropy")
    again = _next(sessions, user, "entropy")
    assert again["id"] == first["id"]
    assert again["reason"] == first["reason"]


def test_filters_hand_out_exactly_the_queue_pages_list_in_order(sessions, pool):
    user = pool["users"][0]
    predicted = _top(sessions, "entropy")["predicted_label"]
    listed = [i["id"] for i in _all(sessions, "entropy", predicted=predicted)]
    assert 0 < len(listed) < len(_all(sessions, "entropy"))  # the filter leaves items out
    seen = []
    while (item := _next(sessions, user, "entropy", predicted=predicted)) is not None:
        seen.append(item["id"])
        with db.write_transaction(sessions) as s:
            answers.submit_label(s, item["id"], user, item["predicted_label"])
    assert seen == listed


def test_a_given_label_filter_and_a_changed_filter_release_the_held_item(sessions, pool):
    user = pool["users"][0]
    held = _next(sessions, user, "entropy")
    given = next(
        i["given_label"]
        for i in _all(sessions, "entropy")
        if i["given_label"] and i["given_label"] != held["given_label"]
    )
    item = _next(sessions, user, "entropy", given=given)
    assert item["given_label"] == given
    assert item["id"] == _top(sessions, "entropy", given=given)["id"]
    assert _leases(sessions, user) == [item["id"]]


def test_an_item_opened_by_hand_says_so_with_its_queues_reason(sessions, pool):
    user = pool["users"][0]
    chosen = _all(sessions, "margin")[3]
    with db.write_transaction(sessions) as s:
        item = answers.open_item(s, chosen["id"], user, lease_seconds=LEASE, by_hand="margin")
    shown = strategies.rank_text("margin", chosen["margin"])
    assert item["reason"] == f"You opened this item from the margin queue (margin {shown})."
    assert item["strategy"] is None  # no strategy handed it out


def test_an_undone_item_comes_back_with_the_reason_it_was_handed_out_by(sessions, pool):
    user = pool["users"][0]
    item = _next(sessions, user, "bald")
    with db.write_transaction(sessions) as s:
        answers.submit_label(s, item["id"], user, "3")
    with db.write_transaction(sessions) as s:
        answers.undo_label(s, item["id"], user, lease_seconds=LEASE)
        back = answers.get_item(s, item["id"], user_id=user)
    assert back["strategy"] == "bald"
    assert back["reason"] == item["reason"]


def test_an_item_says_what_the_labeler_answered(sessions, pool):
    user, other, _ = pool["users"]
    item = _next(sessions, user, "entropy")
    with db.write_transaction(sessions) as s:
        answers.submit_label(s, item["id"], user, "none_of_these")
    with sessions() as s:
        mine = answers.get_item(s, item["id"], user_id=user)
        theirs = answers.get_item(s, item["id"], user_id=other)
    assert mine["your_label"] == "none_of_these"
    assert theirs["your_label"] is None


def test_recent_labels_are_the_labelers_current_ones_newest_first(sessions, pool):
    user, other, _ = pool["users"]
    given = []
    for label in ("1", "2", "3"):
        item = _next(sessions, user, "entropy")
        with db.write_transaction(sessions) as s:
            answers.submit_label(s, item["id"], user, label)
        given.append((item["id"], label))
    with db.write_transaction(sessions) as s:
        answers.undo_label(s, given[-1][0], user, lease_seconds=LEASE)
        answers.release(s, given[-1][0], user)
    with sessions() as s:
        recent = labels.recent_labels(s, user)
        assert labels.recent_labels(s, other) == []
    assert [(r["image_id"], r["label"]) for r in recent] == given[:2][::-1]


def _all(sessions, strategy, limit=100, **filters):
    with sessions() as s:
        items, _ = ranking.ranked(s, strategy, limit=limit, **filters)
    return items
