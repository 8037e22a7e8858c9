"""How far the review loop is: images, scored by the active version, reviewed, and a pending
version's scoring, for the progress bar of the queue page, the dashboard and ``/api/progress``.

Scoring progress follows the one rule of :mod:`reviewer.core.versions` (ok images only), so
this answer, ``reviewer models`` and the dashboard agree. Read-only; the caller owns the session.
"""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from reviewer.core import versions
from reviewer.core.schema import Image

# Labeled images less the few labeled non-ok ones: two counts each on one index alone. With
# ``status = 'ok' AND label_count > 0`` in one query, SQLite's planner takes the status index
# and reads the table row by row (3 s at 1M images; BENCHMARKS.md, the dashboard).
LABELED = select(func.count()).select_from(Image).where(Image.label_count > 0)
LABELED_NOT_OK = LABELED.where(versions.NOT_OK)


def progress(session: Session) -> dict:
    """{total, scored, reviewed, pending_version}: ok images, those the active version scored,
    those with a current human label, and the pending version's progress (or None)."""
    total = versions.ok_images(session)
    pending = versions.pending_version(session)
    pending_info = None
    if pending is not None:
        pending_info = {
            "name": pending.name,
            "version": pending.version,
            "model_version": versions.version_name(pending),
            "scored": versions.scored_images(session, pending),
            "total": total,
        }
    return {
        "total": total,
        "scored": versions.scored_images(session, versions.active_version(session)),
        "reviewed": int(session.scalar(LABELED) or 0) - int(session.scalar(LABELED_NOT_OK) or 0),
        "pending_version": pending_info,
    }
