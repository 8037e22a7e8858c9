"""The progress counts of the queue page and /api/progress.
On SQLite and PostgreSQL."""

from __future__ import annotations

from reviewer.core import db
from reviewer.review import answers, progress


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
