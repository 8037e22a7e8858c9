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

REVIEWED = (
    select(func.count()).select_from(Image).where(Image.status == "ok", Image.label_count > 0)
)


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
        "reviewed": int(session.scalar(REVIEWED) or 0),
        "pending_version": pending_info,
    }
