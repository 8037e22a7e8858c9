"""The scoring worker with a fake sampler (no TensorFlow), on SQLite and PostgreSQL: claims,
leases, one scores row per image, failures, heartbeats, signals and crashed workers."""

from __future__ import annotations

import itertools
import logging
import os
import signal
import subprocess
import sys
import threading
import time
import types
from datetime import timedelta

import numpy as np
import pytest
from sqlalchemy import func, select

from reviewer.core.files import FileStore
from reviewer.core.schema import (
    Image,
    Score,
    ScoreLease,
    User,
    WorkerHeartbeat,
    utcnow,
)
from reviewer.core.strategies import BATCH_KEY_BASE
from reviewer.review import answers
from reviewer.scoring import batchbald_batch as acquisition
from reviewer.scoring import worker as scoring_worker
from reviewer.scoring.process import run_worker
from reviewer.scoring.worker import NoModelVersion
from reviewer.scoring.writes import write_scores
from tests.support.env import config_env
from tests.support.scoring import (
    DIGITS,
    REPO_ROOT,
    FakeSampler,
    claim,
    count,
    ingest_pngs,
    make_version,
    make_worker,
)


def test_claimers_in_threads_never_overlap(sessions, config, tmp_path):
    ingest_pngs(sessions, config, tmp_path, 30)
    version = make_version(sessions, config)
    got = {"a": [], "b": []}

    def claimer(worker_id):
        while batch := claim(sessions, version, worker_id, 3):
            got[worker_id] += [c.id for c in batch]

    threads = [threading.Thread(target=claimer, args=(w,)) for w in got]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not set(got["a"]) & set(got["b"])
    assert len(got["a"]) + len(got["b"]) == 30
    assert count(sessions, ScoreLease) == 30


def test_expired_lease_is_claimable_again_and_first_owner_loses_it(sessions, config, tmp_path):
    ingest_pngs(sessions, config, tmp_path, 3)
    version = make_version(sessions, config)
    t0 = utcnow()
    first = claim(sessions, version, "w1", 10, now=t0, lease=1)
    assert len(first) == 3
    assert claim(sessions, version, "w2", 10, now=t0 + timedelta(seconds=0.5)) == []
    # Expired without a result: each image is claimed again, alone (one may have killed w1).
    later = t0 + timedelta(seconds=2)
    second = [claim(sessions, version, "w2", 10, now=later) for _ in range(4)]
    assert [len(batch) for batch in second] == [1, 1, 1, 0]
    assert sorted(c.id for batch in second for c in batch) == sorted(c.id for c in first)
    rows = {c.id: {} for c in first}  # w1 comes back late: its leases belong to w2 now
    with sessions() as session, session.begin():
        result = write_scores(session, version, "w1", first, rows, {}, utcnow())
    assert (result.scored, result.lost) == (0, 3)
    assert count(sessions, Score) == 0


def test_worker_once_scores_each_image_once(sessions, config, tmp_path):
    ingest_pngs(sessions, config, tmp_path, 10)
    version = make_version(sessions, config, samples=7)
    assert make_worker(sessions, config).run(once=True, progress=False) == 10
    assert make_worker(sessions, config).run(once=True, progress=False) == 0
    with sessions() as session:
        scores = session.scalars(select(Score)).all()
    assert len({s.image_id for s in scores}) == len(scores) == 10
    assert {s.samples for s in scores} == {7}
    assert all(s.model_version_id == version.id and s.predicted_label in DIGITS for s in scores)
    assert all(np.isfinite(s.entropy) and len(s.mean) == 10 for s in scores)
    assert count(sessions, ScoreLease) == 0


def _batch(sessions) -> list[int]:
    """The stored BatchBALD batch, in its order."""
    with sessions() as session:
        rows = session.execute(
            select(Score.image_id)
            .where(Score.batchbald_key > BATCH_KEY_BASE / 2)
            .order_by(Score.batchbald_key.desc())
        )
        return list(rows.scalars())


def test_worker_picks_a_batchbald_batch_once_the_pool_is_scored(sessions, config, tmp_path):
    ingest_pngs(sessions, config, tmp_path, 12)
    version = make_version(sessions, config, samples=5)
    worker = make_worker(sessions, config, batchbald_size=3, batchbald_candidates=8)
    assert worker.run(once=True, progress=False) == 12
    with sessions() as session:
        top = acquisition.candidates(session, version, 8)
    sampler = FakeSampler()
    expected = acquisition.pick(sampler, version, FileStore(config.data_dir), top, size=3, T=5)
    assert sampler.shared_masks  # the joint over the batch needs one mask t for every item
    assert _batch(sessions) == expected and len(set(expected)) == 3
    assert set(expected) <= {c.id for c in top}
    # Not due again while its items wait for review; due once they are all labeled.
    make_worker(sessions, config, batchbald_size=3).run(once=True, progress=False)
    assert _batch(sessions) == expected
    with sessions() as session, session.begin():
        labeler = User(username="ann", password_hash="x")
        session.add(labeler)
        session.flush()
        for image_id in expected:
            answers.submit_label(session, image_id, labeler.id, "1")
    make_worker(sessions, config, batchbald_size=3).run(once=True, progress=False)
    again = _batch(sessions)
    assert len(again) == 3 and not set(again) & set(expected)


def test_batchbald_size_zero_never_picks_a_batch(sessions, config, tmp_path):
    ingest_pngs(sessions, config, tmp_path, 6)
    make_version(sessions, config)
    make_worker(sessions, config, batchbald_size=0).run(once=True, progress=False)
    assert _batch(sessions) == []


def test_worker_once_ends_when_no_candidate_image_loads(sessions, config, tmp_path, monkeypatch):
    ingest_pngs(sessions, config, tmp_path, 4)
    make_version(sessions, config)
    make_worker(sessions, config, batchbald_size=0).run(once=True, progress=False)
    with sessions() as session:
        paths = list(session.scalars(select(Image.path)))
    for path in paths:  # scored, then every file vanished
        FileStore(config.data_dir).absolute(path).unlink()
    worker = make_worker(sessions, config, batchbald_size=3)
    done = threading.Thread(target=worker.run, kwargs=dict(once=True, progress=False))
    done.start()
    done.join(timeout=20)
    assert not done.is_alive(), "the worker kept retrying the batch instead of ending"
    assert _batch(sessions) == []
    loads = []
    load = acquisition.load_images
    monkeypatch.setattr(acquisition, "load_images", lambda *a: loads.append(1) or load(*a))
    assert worker.refresh_batchbald() is False  # the same candidates: not loaded again
    assert loads == []


def test_samples_option_wins_over_the_card(sessions, config, tmp_path):
    ingest_pngs(sessions, config, tmp_path, 2)
    make_version(sessions, config, samples=7)
    make_worker(sessions, config, T=3).run(once=True, progress=False)
    with sessions() as session:
        assert set(session.scalars(select(Score.samples))) == {3}


def test_vanished_file_fails_and_the_batch_goes_on(sessions, config, tmp_path, run_cli):
    ingest_pngs(sessions, config, tmp_path, 5)
    make_version(sessions, config)
    with sessions() as session:
        victim = session.scalars(select(Image).order_by(Image.id)).first()
    FileStore(config.data_dir).absolute(victim.path).unlink()
    worker = make_worker(sessions, config, batch_size=5)
    assert worker.run(once=True, progress=False) == 4
    assert worker.failures == 1
    with sessions() as session:
        failed = session.get(Image, victim.id)
        assert (failed.status, failed.failure_reason) == ("failed", "file not found")
    result = run_cli("workers")
    assert "failed images: 1" in result.output and "backlog: 0 images" in result.output
    result = run_cli("retry-failed")
    assert result.exit_code == 0 and "1 failed images back in the pool" in result.output
    assert count(sessions, Image, Image.status == "ok") == 5
    assert "backlog: 1 images" in run_cli("workers").output


def test_heartbeat_is_written(sessions, config, tmp_path, run_cli):
    ingest_pngs(sessions, config, tmp_path, 3)
    version = make_version(sessions, config)
    worker = make_worker(sessions, config)
    worker.run(once=True, progress=False)
    with sessions() as session:
        beat = session.get(WorkerHeartbeat, worker.worker_id)
        assert (beat.state, beat.images_scored, beat.failures) == ("stopped", 3, 0)
        assert beat.model_version_id == version.id and beat.pid == os.getpid()
    listed = run_cli("workers").output  # a stopped worker is listed only with --all
    assert worker.worker_id not in listed and "1 stopped worker(s) not shown" in listed
    assert worker.worker_id in run_cli("workers", "--all").output


def test_scoring_beats_come_every_few_seconds_not_every_batch(
    sessions, config, tmp_path, monkeypatch
):
    ingest_pngs(sessions, config, tmp_path, 12)
    make_version(sessions, config)
    worker = make_worker(sessions, config, batch_size=2)  # six batches
    states = []
    beat = worker._beat
    monkeypatch.setattr(worker, "_beat", lambda state: (states.append(state), beat(state)))
    clock = itertools.count()  # the worker's clock: a second per reading, so 2-4 s a batch
    fake_time = types.SimpleNamespace(monotonic=lambda: float(next(clock)), sleep=time.sleep)
    monkeypatch.setattr(scoring_worker, "time", fake_time)
    monkeypatch.setattr(scoring_worker, "SCORING_BEAT_SECONDS", 5.0)
    assert worker.run(once=True, progress=False) == 12
    scoring = states.count("scoring")
    assert 1 <= scoring < 6, states  # the first batch's, then one per 5 s at most
    assert states[0] == "starting" and states[-1] == "stopped"


def test_a_scoring_beat_follows_any_other_state_at_once(sessions, config):
    worker = make_worker(sessions, config)
    beats = []
    pipeline = types.SimpleNamespace(heartbeat=beats.append)
    worker.beat_while_scoring(pipeline)
    worker.beat_while_scoring(pipeline)
    assert beats == ["scoring"]  # the second one came within SCORING_BEAT_SECONDS
    worker.heartbeat("waiting for database")
    worker.beat_while_scoring(pipeline)
    assert beats == ["scoring", "scoring"]  # the dashboard does not go on saying "waiting"


def test_run_worker_once_without_a_model_says_what_is_missing(config, run_cli, tmp_path):
    with pytest.raises(NoModelVersion, match="no model version to score"):
        run_worker(config, once=True, sampler=FakeSampler(), progress=False)
    result = run_cli("worker", "--once")
    assert result.exit_code == 1, result.output
    assert "reviewer train" in result.output and "reviewer register" in result.output


def test_worker_without_a_model_says_so_while_it_waits_and_stops_on_request(
    sessions, config, caplog, monkeypatch
):
    monkeypatch.setattr(scoring_worker, "REMIND", 0.25)
    worker = make_worker(sessions, config)
    threading.Timer(0.9, worker.stop).start()
    with caplog.at_level(logging.WARNING, logger=scoring_worker.logger.name):
        assert worker.run(once=False, poll_seconds=0.1, progress=False) == 0
    waits = [r.getMessage() for r in caplog.records if "no model version" in r.getMessage()]
    assert 2 <= len(waits) <= 5  # at start, then every REMIND seconds, not every poll
    assert "reviewer train" in waits[0]
    with sessions() as session:
        assert session.get(WorkerHeartbeat, worker.worker_id).state == "stopped"


# ---------------------------------------------------------------- worker processes

WORKER_SCRIPT = """
import sys
sys.path.insert(0, {root!r})
from reviewer.core.config import Config
from reviewer.scoring.process import run_worker
from tests.support.scoring import FakeSampler
sys.exit(run_worker(Config.from_env(), once={once}, batch_size=4, sampler=FakeSampler({delay}),
                    poll_seconds=0.1, progress=False))
"""


def spawn_worker(config, *, once=False, delay=0.0, env=None) -> subprocess.Popen:
    code = WORKER_SCRIPT.format(root=str(REPO_ROOT), once=once, delay=delay)
    return subprocess.Popen(
        [sys.executable, "-c", code],
        cwd=REPO_ROOT,
        env={**os.environ, **config_env(config), **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def wait_for(predicate, timeout=60.0):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


@pytest.mark.slow
def test_sigterm_stops_after_the_current_batch(sessions, config, tmp_path):
    ingest_pngs(sessions, config, tmp_path, 40)
    make_version(sessions, config)
    proc = spawn_worker(config, delay=0.5)
    wait_for(lambda: count(sessions, Score) >= 4)
    proc.send_signal(signal.SIGTERM)
    output, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0, output
    scored = count(sessions, Score)
    assert scored % 4 == 0 and scored < 40  # whole batches only, and it did stop early
    assert count(sessions, ScoreLease) == 0
    assert count(sessions, WorkerHeartbeat, WorkerHeartbeat.state == "stopped") == 1


@pytest.mark.slow
def test_killed_worker_leases_expire_and_another_finishes(sessions, config, tmp_path):
    ingest_pngs(sessions, config, tmp_path, 12)
    make_version(sessions, config)
    proc = spawn_worker(config, delay=30, env={"REVIEWER_SCORE_LEASE_SECONDS": "1"})
    wait_for(lambda: count(sessions, ScoreLease) > 0)
    proc.kill()
    proc.communicate(timeout=30)
    assert count(sessions, Score) == 0
    time.sleep(1.1)  # the dead worker's lease expires
    run_worker(
        config.with_(score_lease_seconds=1), once=True, sampler=FakeSampler(), progress=False
    )
    with sessions() as session:
        per_image = session.execute(select(Score.image_id, func.count()).group_by(Score.image_id))
        assert sorted(n for _, n in per_image) == [1] * 12


@pytest.mark.slow
def test_two_worker_processes_on_postgres_never_score_twice(sessions, config, tmp_path):
    if config.is_sqlite:
        pytest.skip("concurrent worker processes scale out on PostgreSQL")
    ingest_pngs(sessions, config, tmp_path, 60)
    make_version(sessions, config)
    procs = [spawn_worker(config, once=True, delay=0.05) for _ in range(2)]
    for proc in procs:
        output, _ = proc.communicate(timeout=120)
        assert proc.returncode == 0, output
    assert count(sessions, Score) == 60
    with sessions() as session:
        assert session.scalar(select(func.count(func.distinct(Score.image_id)))) == 60
        scored = session.scalars(select(WorkerHeartbeat.images_scored)).all()
    assert sum(scored) == 60 and len(scored) == 2
