"""The worker's overlapped stages (reviewer.scoring.pipeline), on SQLite and PostgreSQL: the next
batch is claimed and decoded while the sampler works, every image is scored once, and a stop
writes the batch in hand and hands back the one claimed ahead."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from reviewer.core.schema import Score, ScoreLease, utcnow
from reviewer.scoring.claims import release_leases
from reviewer.scoring.pipeline import Pipeline
from tests.support.scoring import claim, count, ingest_pngs, make_version, make_worker

WAIT = 30.0  # seconds a stage waits for the other before the test says they did not overlap


class OverlapWitness:
    """A worker whose second claim must run while the first batch is being sampled: a
    pipeline that took the stages in turn would time out here instead."""

    def __init__(self, worker):
        self.worker, self.claims = worker, 0
        self.sampling, self.claimed_ahead = threading.Event(), threading.Event()

    def __getattr__(self, name):
        return getattr(self.worker, name)

    def claim_and_load(self, **options):
        self.claims += 1
        if self.claims == 2:
            assert self.sampling.wait(WAIT), "the next claim waited for the sampler"
            self.claimed_ahead.set()
        return self.worker.claim_and_load(**options)

    def sample_batch(self, loaded):
        self.sampling.set()
        assert self.claimed_ahead.wait(WAIT), "the sampler waited for the next claim"
        return self.worker.sample_batch(loaded)


def test_the_next_batch_is_claimed_while_the_sampler_works(sessions, config, tmp_path):
    ingest_pngs(sessions, config, tmp_path, 10)
    make_version(sessions, config)
    witness = OverlapWitness(make_worker(sessions, config, batch_size=4))
    pipeline = Pipeline(witness)
    settled = [pipeline.step()]
    witness.sampling, witness.claimed_ahead = _set(), _set()  # later batches need no witness
    while (done := pipeline.step()) is not None:
        settled.append(done)
    settled.append(pipeline.close())
    assert settled[0] == 0 and sum(settled) == 10  # the count lags a batch, none is lost
    with sessions() as session:
        per_image = session.execute(select(Score.image_id, func.count()).group_by(Score.image_id))
        assert sorted(n for _, n in per_image) == [1] * 10
    assert count(sessions, ScoreLease) == 0


def _set() -> threading.Event:
    event = threading.Event()
    event.set()
    return event


class Recorder:
    """A worker that records, at each sampling, its batch and the leases its worker holds."""

    def __init__(self, sessions, worker, fail_at: int | None = None):
        self.sessions, self.worker, self.fail_at = sessions, worker, fail_at
        self.claims, self.sampled, self.written = 0, [], []

    def __getattr__(self, name):
        return getattr(self.worker, name)

    def claim_and_load(self, **options):
        loaded = self.worker.claim_and_load(**options)
        self.claims += loaded is not None
        return loaded

    def sample_batch(self, loaded):
        held = count(self.sessions, ScoreLease, ScoreLease.worker_id == self.worker.worker_id)
        self.sampled.append((loaded.claimed, held))
        if len(self.sampled) == self.fail_at:
            raise RuntimeError("the sampler failed")
        return self.worker.sample_batch(loaded)

    def write_batch(self, loaded, rows):
        held = count(self.sessions, ScoreLease, ScoreLease.worker_id == self.worker.worker_id)
        self.written.append((loaded.claimed, held))  # on the I/O thread, after any claim ahead
        return self.worker.write_batch(loaded, rows)


def test_a_stop_writes_the_batch_in_hand_and_hands_back_the_next(sessions, config, tmp_path):
    ingest_pngs(sessions, config, tmp_path, 12)
    make_version(sessions, config)
    worker = make_worker(sessions, config, batch_size=4)
    recorder = Recorder(sessions, worker)
    pipeline = Pipeline(recorder)
    assert pipeline.step() == 0  # batch 1 sampled, its write and batch 2's claim under way
    worker.stop()
    assert pipeline.close() == 4
    assert recorder.claims == 2  # batch 2 was claimed ahead, then handed back
    assert count(sessions, Score) == 4
    assert count(sessions, ScoreLease) == 0  # batch 2's leases were handed back, not left
    restarted = make_worker(sessions, config, batch_size=4)
    while restarted.step() is not None:
        pass
    assert count(sessions, Score) == 12


def test_handing_back_a_suspect_keeps_its_attempts(sessions, config, tmp_path):
    ingest_pngs(sessions, config, tmp_path, 2)
    version = make_version(sessions, config)
    t0 = utcnow()
    first = claim(sessions, version, "w1", 10, now=t0, lease=1)
    later = t0 + timedelta(seconds=2)  # w1 died: one image comes back alone, attempt 2
    suspect = claim(sessions, version, "w2", 10, now=later)
    assert len(first) == 2 and len(suspect) == 1
    with sessions() as session, session.begin():
        release_leases(session, version, "w2", [suspect[0].id], later)
    with sessions() as session:
        lease = session.scalar(select(ScoreLease).where(ScoreLease.image_id == suspect[0].id))
    assert lease.attempts == 1  # the handed-back claim is not counted against the image
    again = claim(sessions, version, "w3", 10, now=later)
    assert [c.id for c in again] == [suspect[0].id]
    with sessions() as session:
        lease = session.scalar(select(ScoreLease).where(ScoreLease.image_id == suspect[0].id))
    assert lease.attempts == 2 and lease.worker_id == "w3"


def test_a_suspect_is_sampled_with_no_other_lease_held(sessions, config, tmp_path):
    ingest_pngs(sessions, config, tmp_path, 14)
    version = make_version(sessions, config)
    dead = claim(sessions, version, "dead", 3, now=utcnow() - timedelta(seconds=120), lease=1)
    recorder = Recorder(sessions, make_worker(sessions, config, batch_size=4))
    pipeline = Pipeline(recorder)
    while pipeline.step() is not None:
        pass
    pipeline.close()
    suspects = [(batch, held) for batch, held in recorder.sampled if batch[0].suspect]
    assert sorted(batch[0].id for batch, _ in suspects) == sorted(c.id for c in dead)
    assert all(len(batch) == 1 and held == 1 for batch, held in suspects)  # alone, each
    at_write = [held for batch, held in recorder.written if batch[0].suspect]
    assert at_write == [1, 1, 1]  # nothing was claimed ahead of a suspect either
    ordinary = [(batch, held) for batch, held in recorder.sampled if not batch[0].suspect]
    assert [len(batch) for batch, _ in ordinary] == [4, 4, 3]
    # Beside an ordinary batch: the last one's write and the next one's claim, perhaps.
    assert all(len(batch) <= held <= 12 for batch, held in ordinary)
    assert count(sessions, Score) == 14 and count(sessions, ScoreLease) == 0


def test_a_failing_sampler_hands_back_what_it_held(sessions, config, tmp_path):
    ingest_pngs(sessions, config, tmp_path, 16)
    make_version(sessions, config)
    recorder = Recorder(sessions, make_worker(sessions, config, batch_size=4), fail_at=2)
    pipeline = Pipeline(recorder)
    assert pipeline.step() == 0
    with pytest.raises(RuntimeError, match="the sampler failed"):
        pipeline.step()
    assert pipeline.close() == 4  # batch 1 was written
    assert count(sessions, Score) == 4
    assert count(sessions, ScoreLease) == 0  # batch 2 (in hand) and 3 (ahead) handed back
