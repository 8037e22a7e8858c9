"""The BatchBALD batch in the database and the `batchbald` strategy's order (SQLite, PostgreSQL)."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import select

from reviewer.core import strategies
from reviewer.core.schema import Image, ModelVersion, Score
from reviewer.core.strategies import BATCH_KEY_BASE
from reviewer.review import answers, ranking
from reviewer.scoring import batchbald_batch as acquisition
from tests.support.pool import add_scored_images, add_user, add_version


@pytest.fixture
def pool(sessions):
    with sessions() as s, s.begin():
        version = add_version(s)
        images = add_scored_images(s, version, 12)
        user = add_user(s, "ann")
        return {"version_id": version.id, "ids": [i.id for i in images], "user": user.id}


def _version(session, pool):
    return session.get(ModelVersion, pool["version_id"])


def _by_bald(sessions, exclude=()):
    with sessions() as s:
        rows = s.execute(select(Score.image_id, Score.mutual_info)).all()
    rows = sorted((r for r in rows if r[0] not in exclude), key=lambda r: (r[1], r[0]))
    return [image_id for image_id, _ in reversed(rows)]


def _write(sessions, pool, ids) -> bool:
    with sessions() as s:
        version = _version(s, pool)
    with sessions() as s, s.begin():  # write_batchbald_batch begins the write transaction itself
        return acquisition.write_batchbald_batch(s, version, ids)


def _label(sessions, pool, image_ids):
    for image_id in image_ids:
        with sessions() as s, s.begin():
            answers.submit_label(s, image_id, pool["user"], "3")


def _ranked(sessions):
    with sessions() as s:
        return ranking.ranked(s, "batchbald", limit=100)[0]


def test_without_a_batch_the_strategy_is_balds_order(sessions, pool):
    assert [item["id"] for item in _ranked(sessions)] == _by_bald(sessions)
    assert _ranked(sessions)[0]["reason"].startswith("BALD 0.")


def test_the_batch_comes_first_in_its_order_then_balds(sessions, pool):
    batch = [pool["ids"][5], pool["ids"][2], pool["ids"][9]]
    _write(sessions, pool, batch)
    items = _ranked(sessions)
    assert [item["id"] for item in items] == batch + _by_bald(sessions, exclude=batch)
    assert [item["rank_value"] for item in items[:3]] == [BATCH_KEY_BASE - p for p in range(3)]
    assert items[0]["reason"].startswith("place 1 of the BatchBALD batch")
    assert items[2]["reason"].startswith("place 3 of the BatchBALD batch")
    assert (
        items[3]["reason"].startswith("BALD ")
        and "not in the BatchBALD batch" in items[3]["reason"]
    )


def test_no_second_batch_while_the_first_waits_for_review(sessions, pool):
    assert _write(sessions, pool, pool["ids"][:2])
    assert not _write(sessions, pool, [pool["ids"][7]])  # another worker was first
    assert [item["id"] for item in _ranked(sessions)[:3]] == [
        *pool["ids"][:2],
        _by_bald(sessions, exclude=pool["ids"][:2])[0],
    ]


def test_a_new_batch_returns_the_old_one_to_its_mutual_info(sessions, pool):
    assert _write(sessions, pool, pool["ids"][:4])
    _label(sessions, pool, pool["ids"][:4])
    assert _write(sessions, pool, [pool["ids"][7]])
    with sessions() as s:
        rows = s.execute(select(Score.image_id, Score.batchbald_key, Score.mutual_info)).all()
    keys = {image_id: (key, bald) for image_id, key, bald in rows}
    assert keys[pool["ids"][7]][0] == BATCH_KEY_BASE
    assert all(key == bald for i, (key, bald) in keys.items() if i != pool["ids"][7])


def test_a_batch_is_due_until_one_exists_and_again_once_it_is_reviewed(sessions, pool):
    with sessions() as s:
        assert acquisition.batch_is_due(s, _version(s, pool))
    batch = pool["ids"][:2]
    _write(sessions, pool, batch)
    for image_id in batch:
        with sessions() as s:
            assert not acquisition.batch_is_due(s, _version(s, pool))
        _label(sessions, pool, [image_id])
    with sessions() as s:
        assert acquisition.batch_is_due(s, _version(s, pool))


def test_a_batch_item_whose_image_failed_does_not_hold_the_batch(sessions, pool):
    _write(sessions, pool, pool["ids"][:1])
    with sessions() as s, s.begin():
        s.get(Image, pool["ids"][0]).status = "failed"  # the queue no longer shows it
    with sessions() as s:
        assert acquisition.batch_is_due(s, _version(s, pool))


def test_candidates_are_the_top_by_bald_that_still_need_review(sessions, pool):
    with sessions() as s, s.begin():
        top = _by_bald(sessions)[0]
        answers.submit_label(s, top, pool["user"], "3")
    with sessions() as s:
        got = acquisition.candidates(s, _version(s, pool), 4)
    assert [c.id for c in got] == _by_bald(sessions, exclude=[top])[:4]


def test_nothing_is_due_when_every_item_is_reviewed(sessions, pool):
    _label(sessions, pool, pool["ids"])
    with sessions() as s:
        assert not acquisition.batch_is_due(s, _version(s, pool))


def test_batch_places_and_how_the_queue_page_shows_them():
    assert [strategies.batch_place(BATCH_KEY_BASE - p) for p in range(3)] == [1, 2, 3]
    assert strategies.batch_place(0.7) is None
    assert strategies.rank_text("batchbald", BATCH_KEY_BASE - 4) == "batch #5"
    assert strategies.rank_text("batchbald", 0.4123) == "0.412"
    assert (
        strategies.rank_text("entropy", 1.5) == "1.500" and strategies.rank_text("bald", None) == ""
    )


def test_two_writers_at_once_leave_one_batch(sessions, pool):
    """Two idle workers that both found a batch due: the second waits, then writes nothing."""
    with sessions() as s:
        version = _version(s, pool)
    first = sessions()
    first.begin()
    assert acquisition.write_batchbald_batch(first, version, pool["ids"][:2])
    second: dict = {}

    def late_writer():
        with sessions() as s, s.begin():
            second["written"] = acquisition.write_batchbald_batch(s, version, pool["ids"][5:7])

    thread = threading.Thread(target=late_writer)
    thread.start()
    thread.join(timeout=0.5)
    assert thread.is_alive()  # queued behind the first writer's transaction
    first.commit()
    first.close()
    thread.join(timeout=30)
    assert second == {"written": False}
    assert [item["id"] for item in _ranked(sessions)[:2]] == pool["ids"][:2]
    with sessions() as s:
        in_batch = s.scalars(select(Score.image_id).where(Score.batchbald_key > 1000)).all()
    assert sorted(in_batch) == sorted(pool["ids"][:2])
