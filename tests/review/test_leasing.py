"""Handing items out: never one item to two labelers, expired leases, failed images skipped,
the user's own leases first. On SQLite and PostgreSQL."""

from __future__ import annotations

import multiprocessing
import time

import pytest
from sqlalchemy import func, select

from reviewer.core import db
from reviewer.core.schema import Image, Label
from reviewer.review import answers, errors, leasing, ranking
from tests.support.pool import LEASE, add_scored_images, add_user, add_version


def test_two_labelers_never_get_the_same_item(sessions, pool):
    u1, u2, _ = pool["users"]
    with db.write_transaction(sessions) as s:
        a = leasing.next_item(s, u1, "entropy", lease_seconds=LEASE)
    with db.write_transaction(sessions) as s:
        b = leasing.next_item(s, u2, "entropy", lease_seconds=LEASE)
        again = leasing.next_item(s, u1, "entropy", lease_seconds=LEASE)
    assert a["id"] != b["id"]
    assert again["id"] == a["id"]  # a labeler's open item comes back to them
    assert a["lease_expires_at"]
    with db.write_transaction(sessions) as s, pytest.raises(errors.Conflict):
        answers.open_item(s, a["id"], u2, lease_seconds=LEASE)
    with db.write_transaction(sessions) as s, pytest.raises(errors.Conflict):
        answers.submit_label(s, a["id"], u2, "3")


def test_an_expired_lease_frees_the_item(sessions, pool):
    u1, u2, _ = pool["users"]
    with db.write_transaction(sessions) as s:
        a = leasing.next_item(s, u1, "entropy", lease_seconds=1)
    time.sleep(1.1)
    with db.write_transaction(sessions) as s:
        b = leasing.next_item(s, u2, "entropy", lease_seconds=LEASE)
    assert b["id"] == a["id"]


def labeler_process(url, user_id, results):
    engine = db.make_engine(url)
    factory = db.session_factory(engine)
    got = []
    while True:
        with db.write_transaction(factory) as s:
            item = leasing.next_item(s, user_id, "entropy", lease_seconds=LEASE)
        if item is None:
            break
        with db.write_transaction(factory) as s:
            answers.submit_label(s, item["id"], user_id, "1")
        got.append(item["id"])
    engine.dispose()
    results.put((user_id, got))


@pytest.mark.slow
def test_twenty_labelers_in_separate_processes(sessions, config):
    with sessions() as s, s.begin():
        version = add_version(s)
        images = add_scored_images(s, version, 120, seed=5)
        users = [add_user(s, f"p{i}").id for i in range(20)]
        image_ids = {i.id for i in images}
    ctx = multiprocessing.get_context("spawn")
    results = ctx.Queue()
    procs = [
        ctx.Process(target=labeler_process, args=(config.database_url, u, results)) for u in users
    ]
    for p in procs:
        p.start()
    handed = [results.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(timeout=30)
        assert p.exitcode == 0
    all_items = [i for _, got in handed for i in got]
    assert sorted(all_items) == sorted(image_ids)  # every item exactly once, none twice
    with sessions() as s:
        assert s.scalar(select(func.count()).select_from(Label)) == len(all_items)  # none lost
        assert s.scalar(select(func.min(Image.label_count))) == 1


def _entropy_order(sessions) -> list[int]:
    with sessions() as s:
        return [i["id"] for i in ranking.ranked(s, "entropy", limit=100)[0]]


def test_failed_images_at_the_head_do_not_hide_the_rest(sessions, pool):
    # A failed rescore marks an image failed while its older scores stay: such items are never
    # handed out, and more of them than one candidate batch must not empty the queue.
    order = _entropy_order(sessions)
    head = order[: leasing.ROWS_PER_TRY + 2]
    with sessions() as s, s.begin():
        for image_id in head:
            s.get(Image, image_id).status = "failed"
    with db.write_transaction(sessions) as s:
        item = leasing.next_item(s, pool["users"][0], "entropy", lease_seconds=LEASE)
    assert item is not None and item["id"] == order[len(head)]


def test_the_users_own_leases_come_first_even_when_one_is_no_candidate(sessions, pool):
    u1, u2, _ = pool["users"]
    order = _entropy_order(sessions)
    with db.write_transaction(sessions) as s:
        answers.submit_label(s, order[0], u2, "1")  # labeled: no longer a candidate
        answers.open_item(s, order[0], u1, lease_seconds=LEASE)  # opened anyway, to look at it
        answers.open_item(s, order[5], u1, lease_seconds=LEASE)
    with db.write_transaction(sessions) as s:
        item = leasing.next_item(s, u1, "entropy", lease_seconds=LEASE)
    assert item["id"] == order[5]  # not a third item while the user holds this one
