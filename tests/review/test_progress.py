"""The progress counts of the queue page and /api/progress.
On SQLite and PostgreSQL."""

from __future__ import annotations

import re

from sqlalchemy import select

from reviewer import create_app
from reviewer.core import db, users
from reviewer.core.schema import Image, ModelVersion, Score
from reviewer.dashboard.figures import dashboard_figures
from reviewer.review import answers, progress
from tests.support.pool import add_scored_images, add_version
from tests.support.web import login


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


def test_models_api_and_dashboard_agree_on_scoring_progress(sessions, config, run_cli):
    """The one rule (reviewer.core.versions): scored = ok images with a scores row, out of the
    ok images. A failed image with old scores counts nowhere, so a pending version's progress
    reads the same in `reviewer models`, /api/progress, the queue page and the dashboard, all
    spelling the version digits:2."""
    with sessions() as s, s.begin():
        active = add_version(s, version=1)
        images = add_scored_images(s, active, 6)
        pending = add_version(s, version=2, active=False)
        add_scored_images(s, pending, 0)
        s.get(ModelVersion, pending.id).activate_when_scored = True
        for image in images[:3]:  # the pending version scored three images ...
            s.add(Score(**_score_copy(s, image.id, active.id, pending.id)))
        s.get(Image, images[0].id).status = "failed"  # ... one of which failed since
        users.create_user(s, "ada", "ada-password", role="admin")
    with sessions() as s:
        assert progress.progress(s)["pending_version"] == {
            "name": "digits",
            "version": 2,
            "model_version": "digits:2",
            "scored": 2,
            "total": 5,
        }
        figures = dashboard_figures(s)
    assert figures["counts"]["pending_version"]["scored"] == 2
    assert figures["counts"]["pending_version"]["total"] == 5
    assert figures["counts"]["scored"] == 5 and figures["counts"]["ok"] == 5
    listed = run_cli("models").output
    assert "digits:2" in listed and "scored 2/5" in listed and "scored 5/5" in listed
    client = create_app(config).test_client()
    login(client, "ada", "ada-password")
    body = client.get("/api/progress").get_json()
    assert body["pending_version"]["scored"] == 2 and body["scored"] == 5
    page = client.get("/queue").get_data(as_text=True)
    text = " ".join(re.sub(r"<[^>]+>", "", page).split())  # the words a reader sees
    assert "Scoring digits:2: 2 / 5" in text and " v2" not in page


def _score_copy(session, image_id: int, from_version: int, to_version: int) -> dict:
    row = session.scalar(
        select(Score).where(Score.image_id == image_id, Score.model_version_id == from_version)
    )
    columns = [c.key for c in Score.__table__.columns if c.key not in ("id", "model_version_id")]
    return {**{c: getattr(row, c) for c in columns}, "model_version_id": to_version}
