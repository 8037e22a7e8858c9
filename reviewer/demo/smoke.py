"""`reviewer demo --smoke`: the demo's whole loop, small and brief, in a throwaway directory.

This module owns the smoke run CI uses so the demo cannot rot: the same setup steps as
`reviewer.demo.setup` on a small data set (300 training digits, 1 epoch, 200 pool images), the
worker in-process (``--once``, T=10), a few labels given through the JSON API with a Bearer
token (the Flask test client), an export, one ``train --from-export``
(reviewer.training.retrain) and a rescore that hands the queue to the new version. It writes
only under its work directory (a temporary one unless given), never to the user's instance/,
and returns the summary lines; any failed step raises.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from sqlalchemy import select

from reviewer.core import db, users, versions
from reviewer.core.config import Config
from reviewer.core.schema import Score
from reviewer.demo import setup as demo
from reviewer.demo.data import true_answers

N_TRAIN, N_OUTLIERS, N_POOL = 300, 10, 200
TRAIN_EPOCHS, SAMPLES, N_LABELS = 1, 10, 20


def smoke_config(root: Path) -> Config:
    """The environment's settings with every location moved under ``root``."""
    return Config.from_env().with_(
        database_url=f"sqlite:///{root / 'reviewer.db'}",
        data_dir=root / "images",
        model_dir=root / "models",
        secret_key="smoke-run",
        mc_samples=SAMPLES,
    )


def label_through_api(config: Config, sessions, truth: dict[str, str], n: int) -> dict[int, str]:
    """Label the first ``n`` items of the `mislabeled` queue with their truth, as `demo` with a
    Bearer token; returns {image id: label} for the items whose label differs from the given one."""
    from reviewer import create_app

    with db.write_transaction(sessions) as session:
        user = users.get_by_username(session, "demo")
        _, token = users.create_token(session, user)
    client = create_app(config).test_client()
    headers = {"Authorization": f"Bearer {token}"}
    corrected = {}
    for _ in range(n):
        reply = client.post("/api/queue/next", json={"strategy": "mislabeled"}, headers=headers)
        item = reply.get_json()["item"] if reply.status_code == 200 else None
        if item is None:
            raise RuntimeError(f"the queue gave no item: {reply.status_code} {reply.get_data()!r}")
        answer = truth[Path(item["original_filename"]).name]
        body = {"label": answer, "seconds": 1.0}
        reply = client.post(f"/api/items/{item['id']}/labels", json=body, headers=headers)
        if reply.status_code != 201:
            raise RuntimeError(f"labeling failed: {reply.status_code} {reply.get_data()!r}")
        if answer != item["given_label"] and answer != "none_of_these":
            corrected[item["id"]] = answer
    return corrected


def _hits(sessions, version_id: int, corrected: dict[int, str]) -> int:
    with sessions() as session:
        scores = session.scalars(
            select(Score).where(
                Score.model_version_id == version_id, Score.image_id.in_(list(corrected))
            )
        )
        return sum(s.predicted_label == corrected[s.image_id] for s in scores)


def _accuracy(version) -> str:
    return f"held-out accuracy {version.metrics['accuracy']:.3f}"


def run_smoke(workdir: Path | None, say) -> None:
    """Run the loop under ``workdir`` (a temporary directory if None), saying each step."""
    if workdir is None:
        with tempfile.TemporaryDirectory(prefix="reviewer-smoke-") as root:
            return run_smoke(Path(root), say)
    from reviewer.core.files import FileStore
    from reviewer.export import export_dataset
    from reviewer.scoring.process import run_worker
    from reviewer.training.retrain import retrain_from_export

    start, root = time.monotonic(), Path(workdir).absolute()
    config, data_dir = smoke_config(root), root / "demo-data"
    engine = db.make_engine(config.database_url)
    sessions, store = db.session_factory(engine), FileStore(config.data_dir)

    def step(name: str, detail: str) -> None:
        say(f"[{time.monotonic() - start:6.1f} s] {name}: {detail}")

    try:
        demo.ensure_database(config, sessions)
        step("init-db", f"{root / 'reviewer.db'} at the latest schema, classes 0-9")
        demo.ensure_demo_data(data_dir, n_train=N_TRAIN, n_outliers=N_OUTLIERS)
        step("demo data", f"{N_TRAIN} training digits and the pool written to {data_dir}")
        quiet = dict(say=lambda _: None, verbose=0)
        base, _ = demo.ensure_model(sessions, config, data_dir, epochs=TRAIN_EPOCHS, **quiet)
        old = versions.version_name(base)
        step("train", f"{old}, {TRAIN_EPOCHS} epoch, {_accuracy(base)}")
        report = demo.ensure_pool(sessions, store, config, data_dir, limit=N_POOL)
        step("ingest", f"{report.added} pool images with their (partly wrong) given labels")
        run_worker(config, once=True, T=SAMPLES, progress=False)
        with sessions() as session:
            done, total = versions.scoring_progress(session, base)
        step("score", f"{done}/{total} images scored by {old} with T={SAMPLES}")
        demo.ensure_accounts(sessions)
        corrected = label_through_api(config, sessions, true_answers(data_dir), N_LABELS)
        n = len(corrected)
        step("label", f"{N_LABELS} items labeled through the JSON API, {n} given labels corrected")
        with db.write_transaction(sessions) as session:
            result = export_dataset(session, store, root / "export")
        step("export", f"{result.item_count} items to {result.path}")
        new = retrain_from_export(
            sessions, config, export_dir=result.path, base=old, activate=True, verbose=0
        )
        step("retrain", f"{versions.version_name(new)} fine-tuned from {old}, {_accuracy(new)}")
        run_worker(config, once=True, T=SAMPLES, progress=False)
        with sessions() as session:
            active = versions.active_version(session)
        if active is None or active.id != new.id:
            raise RuntimeError(f"{versions.version_name(new)} did not take over after the rescore")
        before, after = _hits(sessions, base.id, corrected), _hits(sessions, new.id, corrected)
        step(
            "rescore",
            f"{versions.version_name(new)} is active; corrected items predicted as the human "
            f"label: {before}/{n} by {old}, {after}/{n} by {versions.version_name(new)}",
        )
    finally:
        engine.dispose()
    say(f"smoke run passed in {time.monotonic() - start:.0f} s")
