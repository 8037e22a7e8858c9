"""The random audit: the walk in audit-key order, its audit set, blind display, the share of
handouts it takes, how a label records the way its item was handed out, and the images a
version trained on left out. On SQLite and PostgreSQL."""

from __future__ import annotations

import random

import pytest
from sqlalchemy import select

from reviewer.core import db, settings, strategies
from reviewer.core.schema import Image, Label, ModelVersion, Score
from reviewer.review import answers, audit, items, leasing
from tests.support.pool import LEASE, add_scored_images, add_user, add_version

N = 12


@pytest.fixture
def walk(sessions, monkeypatch):
    """N scored items the audit walks in reverse id order (keys N-1 .. 0), two labelers; the
    audit takes no share of other strategies' handouts unless a test sets audit_rate."""
    monkeypatch.setattr(leasing, "AUDIT_CHANCE", random.Random(0))
    with db.write_transaction(sessions) as s:
        settings.set_audit_rate(s, 0.0)
        version = add_version(s)
        images = add_scored_images(s, version, N, audit_keys=[N - 1 - i for i in range(N)])
        users = [add_user(s, name).id for name in ("ann", "bob")]
    order = [image.id for image in reversed(images)]  # walk order
    return {"order": order, "users": users, "version_id": version.id}


def _next(sessions, user, strategy="audit"):
    with db.write_transaction(sessions) as s:
        return leasing.next_item(s, user, strategy, lease_seconds=LEASE)


def _label(sessions, user, image_id, label="3"):
    with db.write_transaction(sessions) as s:
        return answers.submit_label(s, image_id, user, label)[0]


def _audit_set(sessions, version_id):
    with sessions() as s:
        return audit.audit_set(s, s.get(ModelVersion, version_id))


def test_the_audit_hands_out_the_walk_in_key_order_and_blind(sessions, walk):
    ann, _ = walk["users"]
    item = _next(sessions, ann)
    assert item["id"] == walk["order"][0] and item["strategy"] == "audit"
    assert item["blind"] is True
    assert item["reason"] == "random audit: measures the model's error rate"
    assert all(item[key] is None for key in items.BLIND_KEYS)  # no prediction, scores, given label
    assert item["classes"] and item["lease_expires_at"]  # what a labeler needs to answer
    with sessions() as s:  # the item as the page reloads it: still blind, by the lease
        again = answers.get_item(s, item["id"], user_id=ann)
    assert again["blind"] is True and again["predicted_label"] is None


def test_the_audit_set_is_the_prefix_the_walk_has_passed(sessions, walk):
    ann, bob = walk["users"]
    order, version = walk["order"], walk["version_id"]
    assert _audit_set(sessions, version) == []
    first = _next(sessions, ann)
    _label(sessions, ann, first["id"])
    assert _audit_set(sessions, version) == order[:1]
    # Bob skips the walk's next item: it holds the walk while Ann labels the one after it.
    second = _next(sessions, bob)
    assert second["id"] == order[1]
    with db.write_transaction(sessions) as s:
        answers.skip_item(s, second["id"], bob)
    third = _next(sessions, ann)
    assert third["id"] == order[1]  # Ann did not skip it: the walk offers it to her
    with db.write_transaction(sessions) as s:
        answers.release(s, third["id"], ann)
    assert _next(sessions, bob)["id"] == order[2]  # Bob gets the one after it
    _label(sessions, bob, order[2])
    assert _audit_set(sessions, version) == order[:1]  # order[1] still holds the walk
    _label(sessions, ann, order[1])
    assert _audit_set(sessions, version) == order[:3]


def test_queue_labels_count_once_the_walk_reaches_them(sessions, walk):
    ann, _ = walk["users"]
    order, version = walk["order"], walk["version_id"]
    _label(sessions, ann, order[3])  # labeled ahead of the walk (opened by hand)
    _label(sessions, ann, order[5])
    assert _audit_set(sessions, version) == []  # labels ahead do not move the walk
    for position in range(3):
        assert _next(sessions, ann)["id"] == order[position]  # the walk skips answered items
        _label(sessions, ann, order[position])
    assert _audit_set(sessions, version) == order[:4]  # reached order[3]: it counts
    assert _next(sessions, ann)["id"] == order[4]


def test_a_new_image_inside_the_passed_prefix_is_the_walks_next_item(sessions, walk):
    ann, _ = walk["users"]
    order, version = walk["order"], walk["version_id"]
    for _ in range(4):
        _label(sessions, ann, _next(sessions, ann)["id"])
    assert _audit_set(sessions, version) == order[:4]
    with db.write_transaction(sessions) as s:  # a new image whose key falls between 1 and 2
        new = add_scored_images(s, s.get(ModelVersion, version), 1, seed=9, audit_keys=[-1])[0]
        s.execute(Score.__table__.update().where(Score.image_id == new.id).values(audit_key=1))
        for image_id, key in zip(order, range(0, 2 * N, 2), strict=False):  # room for it
            s.execute(Score.__table__.update().where(Score.image_id == image_id).values(
                audit_key=key))  # fmt: skip
    assert _audit_set(sessions, version) == order[:1]  # the certificate waits for it
    assert _next(sessions, ann)["id"] == new.id
    _label(sessions, ann, new.id)
    assert _audit_set(sessions, version) == [order[0], new.id, *order[1:4]]


def test_audit_rate_sends_its_share_of_handouts_to_the_audit(sessions, walk):
    ann, _ = walk["users"]
    with db.write_transaction(sessions) as s:
        settings.set_audit_rate(s, 0.25)
    handed = []
    for _ in range(400):
        item = _next(sessions, ann, "entropy")
        handed.append(item["strategy"])
        with db.write_transaction(sessions) as s:
            answers.release(s, item["id"], ann)
    share = handed.count("audit") / len(handed)
    assert set(handed) == {"audit", "entropy"}
    assert abs(share - 0.25) < 3 * (0.25 * 0.75 / 400) ** 0.5
    with db.write_transaction(sessions) as s:
        settings.set_audit_rate(s, 0.0)
    assert {_next(sessions, ann, "entropy")["strategy"] for _ in range(20)} == {"entropy"}


def test_a_label_records_how_its_item_was_handed_out(sessions, walk):
    ann, bob = walk["users"]
    by_audit = _next(sessions, ann)
    assert _label(sessions, ann, by_audit["id"])["strategy"] == "audit"
    by_queue = _next(sessions, bob, "margin")
    assert _label(sessions, bob, by_queue["id"])["strategy"] == "margin"
    free = next(i for i in walk["order"] if i not in (by_audit["id"], by_queue["id"]))
    assert _label(sessions, bob, free)["strategy"] is None  # no lease: given by hand
    with sessions() as s:
        stored = dict(s.execute(select(Label.image_id, Label.strategy)).tuples().all())
    assert stored == {by_audit["id"]: "audit", by_queue["id"]: "margin", free: None}


def test_an_audit_item_stays_blind_when_offered_again_or_undone(sessions, walk):
    ann, _ = walk["users"]
    item = _next(sessions, ann)
    again = _next(sessions, ann, "entropy")  # her own live lease comes first, as the audit's
    assert again["id"] == item["id"] and again["blind"] is True
    _label(sessions, ann, item["id"])
    with db.write_transaction(sessions) as s:
        answers.undo_label(s, item["id"], ann)
        undone = answers.get_item(s, item["id"], user_id=ann)
    assert undone["blind"] is True and undone["predicted_label"] is None


def test_a_version_is_not_audited_on_what_it_trained_on(sessions, walk):
    ann, _ = walk["users"]
    order, version = walk["order"], walk["version_id"]
    for _ in range(4):
        _label(sessions, ann, _next(sessions, ann)["id"])
    with db.write_transaction(sessions) as s:
        trained = [s.get(Image, i).sha256 for i in order[1:3]]
        s.get(ModelVersion, version).trained_on = trained
    assert _audit_set(sessions, version) == [order[0], order[3]]
    with sessions() as s:
        result = audit.certificate(s)
        pool = audit.read_pool(s, s.get(ModelVersion, version))
    assert result.pool == N - 2 and result.audit == 2
    assert (pool.trained, pool.trained_audit) == (2, 2)
    assert any("trained on 2 images of the pool (2 of them passed by the audit" in note
               for note in result.notes)  # fmt: skip
    assert not any(note == audit.UNSTATED for note in result.notes)


def test_the_audit_strategy_is_in_the_table(walk):
    assert strategies.AUDIT in strategies.STRATEGIES
    assert strategies.BY_KEY[strategies.AUDIT].columns == ("audit_key",)
