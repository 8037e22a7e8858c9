"""The running tallies (and the score bins) kept row by row by the label history and the score
writes are the counts a recount from the history gives: after labels, relabels, undos, a void,
a restore, and a new version scoring items that already have labels."""

from __future__ import annotations

import threading

from sqlalchemy import select

from reviewer.core import db, settings
from reviewer.core.schema import (
    Image,
    LabelerAgreement,
    LabelerAnswers,
    LabelerSeconds,
    ScoreBins,
    User,
)
from reviewer.dashboard.labelers import median_of_counts
from reviewer.review import labels as label_history
from reviewer.review import tallies, voids
from tests.support.scoring import ingest_pngs, make_version, make_worker

TABLES = (LabelerAnswers, LabelerSeconds, LabelerAgreement, ScoreBins)
KEYS = {table.__tablename__: len(table.__table__.primary_key.columns) for table in TABLES}


def _tallies(session) -> dict:
    return {
        table.__tablename__: sorted(session.execute(select(*table.__table__.columns)).tuples())
        for table in TABLES
    }


def _without_zeros(found: dict) -> dict:  # a count that went back to zero keeps its row
    return {name: [row for row in rows if any(row[KEYS[name] :])] for name, rows in found.items()}


def _score_everything(sessions, config) -> None:
    worker = make_worker(sessions, config, batch_size=4)
    while worker.step() is not None:
        pass


def _label_history(sessions) -> None:
    with sessions() as s, s.begin():
        settings.set_labels_per_item(s, 3)  # room for the restore
        people = [User(username=f"u{i}", password_hash="x") for i in range(3)]
        s.add_all(people)
        s.flush()
        admin, (a, b, c) = people[0].id, (p.id for p in people)
        images = list(s.scalars(select(Image).order_by(Image.id)))
        answers = ["0", "1", "unsure", "none_of_these", "3"]
        for i, image in enumerate(images):
            for user in (a, b) if i % 2 else (a, b, c):
                seconds = None if (i + user) % 5 == 0 else 0.35 + 1.37 * i + user  # not tenths
                label = answers[(i + user) % len(answers)]
                label_history.give(s, image, user, label, model_version_id=None, seconds=seconds)
        label_history.give(s, images[0], a, "2", model_version_id=None, seconds=4.05)  # relabel
        label_history.undo_last(s, images[1], b)
        voided = label_history.void_user_labels(s, c, admin_id=admin)
        assert voided > 0
    with sessions() as s, s.begin():
        restorable = voids.voided_labels(s, user_id=c, limit=10)[0]["id"]
        voids.restore_label(s, restorable, admin_id=admin)


def test_the_running_tallies_are_the_recount(sessions, config, tmp_path):
    ingest_pngs(sessions, config, tmp_path, 9)
    make_version(sessions, config, name="first")
    _score_everything(sessions, config)
    _label_history(sessions)
    make_version(sessions, config, name="second")  # scores items that have labels already
    _score_everything(sessions, config)
    with sessions() as s:
        kept = _tallies(s)
    with sessions() as s, s.begin():
        tallies.rebuild(s)
    with sessions() as s:
        recounted = _tallies(s)
    assert len(recounted["labeler_agreement"]) == 2 * 3  # two versions, three labelers
    assert {row[:2] for row in recounted["score_bins"]} == {
        (v, f) for v in (1, 2) for f in ("confidence", "entropy", "mutual_info")
    }
    assert recounted["labeler_seconds"] and recounted["labeler_answers"]
    assert _without_zeros(kept) == recounted


def test_a_time_is_counted_in_tenths_rounded_half_up():
    assert [tallies.tenths(s) for s in (0.0, 0.04, 0.05, 1.25, 86_399.99)] == [0, 0, 1, 13, 864000]


def test_the_median_of_counted_values():
    assert median_of_counts([(3, 1)]) == 3
    assert median_of_counts([(1, 1), (5, 1)]) == 3
    assert median_of_counts([(1, 2), (4, 1), (9, 5)]) == 9
    assert median_of_counts([(1, 2), (4, 2)]) == 2.5


def test_the_migration_counts_an_existing_history(sessions, config, tmp_path):
    ingest_pngs(sessions, config, tmp_path, 6)
    make_version(sessions, config, name="first")
    _score_everything(sessions, config)
    _label_history(sessions)
    with sessions() as s:
        kept = _without_zeros(_tallies(s))
    db.downgrade(config.database_url, "0009")
    db.upgrade(config.database_url)
    with sessions() as s:
        assert _tallies(s) == kept and kept["labeler_seconds"]


def test_labelers_a_void_and_a_worker_at_once_keep_the_tallies(sessions, config, tmp_path):
    ingest_pngs(sessions, config, tmp_path, 12)
    make_version(sessions, config, name="first")
    _score_everything(sessions, config)
    with sessions() as s, s.begin():
        settings.set_labels_per_item(s, 3)
        people = [User(username=f"u{i}", password_hash="x") for i in range(4)]
        s.add_all(people)
        s.flush()
        user_ids, image_ids = [p.id for p in people], list(s.scalars(select(Image.id)))
    make_version(sessions, config, name="second")  # scored below, while people label
    failures = []

    def labeler(user_id: int) -> None:
        for k in range(30):  # around the pool more than once: relabels supersede
            image_id = image_ids[(k * 5 + user_id) % len(image_ids)]
            with db.write_transaction(sessions) as s:
                image = label_history.lock_image(s, image_id)
                answer = ["0", "1", "unsure", "2"][(k + user_id) % 4]
                label_history.give(s, image, user_id, answer, model_version_id=None, seconds=k)

    def admin() -> None:
        for _ in range(3):
            with db.write_transaction(sessions) as s:
                label_history.void_user_labels(s, user_ids[0], admin_id=user_ids[1])

    def guarded(job, *args):
        try:
            job(*args)
        except Exception as exc:  # a deadlock or a lost update: reported, then failed below
            failures.append(repr(exc))

    jobs = [(labeler, u) for u in user_ids] + [(admin,), (_score_everything, sessions, config)]
    threads = [threading.Thread(target=guarded, args=job) for job in jobs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not failures and not any(t.is_alive() for t in threads)
    with sessions() as s:
        kept = _without_zeros(_tallies(s))
    with sessions() as s, s.begin():
        tallies.rebuild(s)
    with sessions() as s:
        assert kept == _tallies(s)
