"""Queue orderings, leases, skips and the label history, on SQLite and PostgreSQL."""

from __future__ import annotations

import multiprocessing
import time

import pytest
from scored import add_scored_images, add_user, add_version
from sqlalchemy import func, select

from reviewer.core import db, settings
from reviewer.core.schema import Image, Label, Score
from reviewer.review import answers, errors, leasing, progress, ranking

LEASE = 300


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


def all_scores(sessions):
    with sessions() as s:
        return {sc.image_id: sc for sc in s.scalars(select(Score))}


EXPECTED = {
    "entropy": (lambda sc: sc.entropy, True),
    "bald": (lambda sc: sc.mutual_info, True),
    "variance": (lambda sc: sc.variance, True),
    "margin": (lambda sc: sc.margin, False),
    "mislabeled": (lambda sc: sc.self_confidence, False),
    "ood": (lambda sc: sc.ood, True),
}


@pytest.mark.parametrize("strategy", list(EXPECTED))
def test_ranking_follows_the_strategy_table(sessions, pool, strategy):
    key, descending = EXPECTED[strategy]
    scores = [sc for sc in all_scores(sessions).values() if key(sc) is not None]
    expected = sorted(scores, key=lambda sc: (key(sc), sc.image_id), reverse=descending)
    with sessions() as s:
        items, _ = ranking.ranked(s, strategy, limit=100)
    assert [i["id"] for i in items] == [sc.image_id for sc in expected]
    assert items[0]["rank_value"] == pytest.approx(key(expected[0]))
    assert items[0]["strategy"] == strategy and items[0]["reason"]
    if strategy == "mislabeled":
        assert len(items) == 20  # only items with a given label


def test_variation_ratio_breaks_ties_by_entropy(sessions, pool):
    scores = list(all_scores(sessions).values())
    expected = sorted(
        scores, key=lambda sc: (sc.variation_ratio, sc.entropy, sc.image_id), reverse=True
    )
    with sessions() as s:
        items, _ = ranking.ranked(s, "variation_ratio", limit=100)
    assert [i["id"] for i in items] == [sc.image_id for sc in expected]


def test_random_is_a_stable_shuffle(sessions, pool):
    with sessions() as s:
        first = [i["id"] for i in ranking.ranked(s, "random", limit=100)[0]]
        again = [i["id"] for i in ranking.ranked(s, "random", limit=100)[0]]
    assert first == again and sorted(first) == sorted(pool["image_ids"])
    assert first != sorted(first)


def test_cursor_pages_through_everything_once(sessions, pool):
    with sessions() as s:
        whole = [i["id"] for i in ranking.ranked(s, "entropy", limit=100)[0]]
        seen, cursor = [], None
        while True:
            page, cursor = ranking.ranked(s, "entropy", limit=7, after=cursor)
            seen += [i["id"] for i in page]
            if cursor is None:
                break
    assert seen == whole


def test_item_has_the_shared_keys(sessions, pool):
    with sessions() as s:
        item = ranking.ranked(s, "bald", limit=1)[0][0]
    for key in (
        "id",
        "sha256",
        "path",
        "original_filename",
        "given_label",
        "predicted_label",
        "strategy",
        "rank_value",
        "mean",
        "std",
        "entropy",
        "expected_entropy",
        "mutual_info",
        "variance",
        "variation_ratio",
        "margin",
        "self_confidence",
        "normalized_margin",
        "ood",
    ):
        assert key in item


def test_unknown_strategy_is_a_bad_request(sessions, pool):
    with sessions() as s, pytest.raises(errors.BadRequest, match="unknown strategy"):
        ranking.ranked(s, "loudest")


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


def test_progress_counts(sessions, pool):
    with db.write_transaction(sessions) as s:
        answers.submit_label(s, pool["image_ids"][0], pool["users"][0], "4")
    with sessions() as s:
        assert progress.progress(s) == {
            "total": 30,
            "scored": 30,
            "reviewed": 1,
            "pending_version": None,
        }


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
