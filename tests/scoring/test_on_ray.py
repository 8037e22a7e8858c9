"""`reviewer score --engine ray` on a local Ray cluster (2 CPUs, one per test session), on
SQLite and PostgreSQL: the pool scored once with leases like a worker's, a pending version
promoted, workers' leases respected, a run killed midway and resumed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
from sqlalchemy import func, select

from reviewer.core.objects import image_store
from reviewer.core.schema import Image, ModelVersion, Score, ScoreLease
from reviewer.scoring import on_ray, rescoring
from tests.support.env import config_env
from tests.support.scoring import REPO_ROOT, FakeSampler, claim, count, ingest_pngs, make_version


@pytest.fixture(scope="module")
def keras_model(tmp_path_factory):
    """A small dropout classifier of 28x28 digits saved as .keras (registered by the tests)."""
    import keras

    inputs = keras.Input((28, 28, 1))
    x = keras.layers.Flatten()(inputs)
    x = keras.layers.Dense(32, activation="relu")(x)
    x = keras.layers.Dropout(0.5)(x)
    path = tmp_path_factory.mktemp("model") / "k.keras"
    keras.Model(inputs, keras.layers.Dense(10, activation="softmax")(x)).save(path)
    return path


def ray_options(config, **changes) -> dict:
    chosen = dict(
        engine="ray", batch_size=4, num_gpus=0, actors=1, location=config.data_dir,
        max_decoded=config.max_decoded_bytes, sampler=FakeSampler,
    )  # fmt: skip
    return {**chosen, **changes}


def test_a_ray_run_scores_the_pool_once_and_promotes_the_pending_version(
    ray_cluster, sessions, config, tmp_path
):
    ingest_pngs(sessions, config, tmp_path, 14)
    version = make_version(sessions, config, samples=5)  # pending until every image is scored
    with sessions() as session:
        gone = session.scalars(select(Image).order_by(Image.id)).first()
    image_store(config.data_dir).remove(gone.path)

    report = on_ray.score_pool(sessions, config, version, T=5, options=ray_options(config))

    assert (report.claimed, report.scored, report.failed, report.lost) == (14, 13, 1, 0)
    with sessions() as session:
        scores = session.scalars(select(Score)).all()
        assert session.get(Image, gone.id).failure_reason == "file not found"
        assert session.get(ModelVersion, version.id).is_active
    assert len({s.image_id for s in scores}) == len(scores) == 13
    assert {s.samples for s in scores} == {5} and all(len(s.mean) == 10 for s in scores)
    assert count(sessions, ScoreLease) == 0
    again = on_ray.score_pool(sessions, config, version, T=5, options=ray_options(config))
    assert (again.claimed, again.scored) == (0, 0)


def test_images_a_worker_holds_are_left_to_it(ray_cluster, sessions, config, tmp_path):
    ingest_pngs(sessions, config, tmp_path, 10)
    version = make_version(sessions, config, samples=3)
    held = claim(sessions, version, "a-worker", 3)
    report = on_ray.score_pool(sessions, config, version, T=3, options=ray_options(config))
    assert report.scored == 7
    with sessions() as session:
        scored = set(session.scalars(select(Score.image_id)))
        leases = session.scalars(select(ScoreLease)).all()
    assert scored.isdisjoint({c.id for c in held})
    assert {(lease.image_id, lease.worker_id) for lease in leases} == {
        (c.id, "a-worker") for c in held
    }
    lines = rescoring.summary(sessions, version, report)
    assert "3 images still without scores (leased by running workers, or new)" in lines


def test_the_local_engine_runs_the_same_stages(sessions, config, tmp_path):
    ingest_pngs(sessions, config, tmp_path, 9)
    version = make_version(sessions, config, samples=4)
    options = ray_options(config, engine="local")
    report = on_ray.score_pool(sessions, config, version, T=4, options=options)
    assert (report.scored, report.failed) == (9, 0) and count(sessions, Score) == 9


def test_all_refuses_the_active_version_and_rescoring_needs_a_version(sessions, config):
    with pytest.raises(rescoring.RescoringError, match="no model version to score"):
        rescoring.target_version(sessions, None)
    version = make_version(sessions, config, samples=3)
    with sessions() as session, session.begin():
        session.get(ModelVersion, version.id).is_active = True
    with pytest.raises(rescoring.RescoringError, match="is active: its scores feed the queue"):
        rescoring.target_version(sessions, "m:1", rescore_all=True)
    with pytest.raises(rescoring.RescoringError, match="no model version 'nothing:4'"):
        rescoring.target_version(sessions, "nothing:4")


@pytest.mark.slow
def test_a_run_killed_midway_resumes_with_what_is_missing(
    ray_cluster, sessions, config, tmp_path, keras_model
):
    ingest_pngs(sessions, config, tmp_path, 160)
    register = ["register", keras_model, "--name", "k", "--samples", "8", "--activate"]
    result = subprocess.run(
        [sys.executable, "-m", "reviewer", *register],
        env={**os.environ, **config_env(config)}, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    command = [sys.executable, "-m", "reviewer", "score", "--address", "auto", "--batch-size", "2"]
    run = subprocess.Popen(
        command, env={**os.environ, **config_env(config)}, cwd=REPO_ROOT,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )  # fmt: skip
    deadline = time.monotonic() + 240
    while count(sessions, Score) < 4 and run.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
    assert run.poll() is None, run.stdout.read().decode()[-3000:]
    run.send_signal(signal.SIGKILL)
    run.wait()
    first = count(sessions, Score)
    assert 4 <= first < 160 and count(sessions, ScoreLease) > 0  # the dead run's leases

    with sessions() as session:
        version = session.scalars(select(ModelVersion)).one()
    report = on_ray.score_pool(sessions, config, version, T=8, options=ray_options(config))
    assert report.released > 0 and report.scored == 160 - first
    with sessions() as session:
        per_image = session.execute(
            select(Score.image_id, func.count()).group_by(Score.image_id)
        ).all()
        assert session.get(ModelVersion, version.id).is_active
    assert len(per_image) == 160 and {n for _, n in per_image} == {1}
    assert count(sessions, ScoreLease) == 0


@pytest.mark.slow
def test_the_ray_path_agrees_with_the_worker_within_the_sampling_error(
    ray_cluster, sessions, config, tmp_path, keras_model, run_cli
):
    """Both paths share masks within a batch, so their samples differ with the batching; the
    means must agree within the MC error of T samples: |m1 - m2| <= 5 sqrt((s1^2 + s2^2) / T)
    per image and class (5 sigma: a false alarm about once in three million comparisons)."""
    if not config.is_sqlite:
        pytest.skip("TensorFlow paths run once, on SQLite")
    from reviewer.scoring.worker import Worker

    ingest_pngs(sessions, config, tmp_path, 24)
    T = 50
    for extra in (["--activate"], []):  # k:1 for the worker, k:2 for the Ray run
        result = run_cli("register", keras_model, "--name", "k", "--samples", T, *extra)
        assert result.exit_code == 0, result.output
    with sessions() as session:
        versions = session.scalars(select(ModelVersion).order_by(ModelVersion.version)).all()
    worker = Worker(sessions, image_store(config.data_dir), lease_seconds=60, batch_size=16)
    assert worker.run(once=True, progress=False) == 24
    options = ray_options(config, sampler=None, batch_size=8)
    assert on_ray.score_pool(sessions, config, versions[1], T=T, options=options).scored == 24

    with sessions() as session:
        by_version = {
            v.id: {
                s.image_id: s
                for s in session.scalars(select(Score).filter_by(model_version_id=v.id))
            }
            for v in versions
        }
    first, second = (by_version[v.id] for v in versions)
    worst = 0.0
    for image_id, a in first.items():
        b = second[image_id]
        for ma, mb, sa, sb in zip(a.mean, b.mean, a.std, b.std, strict=True):
            bound = 5 * ((sa**2 + sb**2) / T) ** 0.5 + 1e-6
            worst = max(worst, abs(ma - mb) / bound)
    assert worst <= 1.0, worst
    assert any(a.mean != second[i].mean for i, a in first.items())  # really two samplings
