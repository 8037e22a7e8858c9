"""Which model version the loop works with, and how far the pool is scored by it.

This module owns three rules every room shares: the one active version (and the pending
version that takes over once it has scored the pool), the spelling of a version as
``name:version`` (``digits:4``), and scoring progress, counted over images with status ``ok``
only: a failed image is never scored, so counting it would keep a version pending forever.
The queue page, the dashboard, ``reviewer models`` and the promotion of a pending version all
call `scoring_progress`. Functions take a session; the caller owns the transaction.
"""

from __future__ import annotations

from sqlalchemy import exists, func, or_, select
from sqlalchemy.orm import Session

from reviewer.core.schema import Image, ModelVersion, Score, utcnow

# Built once: a statement object memoizes its cache key, so the hot path skips rebuilding it.
ACTIVE_VERSION = select(ModelVersion).where(ModelVersion.is_active.is_(True))
PENDING_VERSION = select(ModelVersion).where(ModelVersion.activate_when_scored.is_(True))
OK_IMAGES = select(func.count()).select_from(Image).where(Image.status == "ok")
# status != "ok" in a form an index can range over (SQLite scans the pool for "!=").
NOT_OK = or_(Image.status < "ok", Image.status > "ok")


def version_name(version: ModelVersion) -> str:
    """``name:version``, the one spelling of a version in the CLI, the API, the UI and files."""
    return f"{version.name}:{version.version}"


def active_version(session: Session) -> ModelVersion | None:
    """The version the queue ranks by (at most one is active)."""
    return session.scalars(ACTIVE_VERSION.limit(1)).first()


def pending_version(session: Session) -> ModelVersion | None:
    """The version that becomes active once it has scored every ok image, if any."""
    return session.scalars(PENDING_VERSION.where(ModelVersion.is_active.is_(False))).first()


def version_to_score(session: Session) -> ModelVersion | None:
    """The version the worker scores: the pending one first, else the active one."""
    return pending_version(session) or active_version(session)


def state(version: ModelVersion) -> str:
    if version.is_active:
        return "active"
    return "pending" if version.activate_when_scored else "inactive"


def ok_images(session: Session) -> int:
    return int(session.scalar(OK_IMAGES) or 0)


def scored_images(session: Session, version: ModelVersion | None) -> int:
    """Ok images that have a scores row for ``version`` (0 without a version): the version's
    rows, counted on an index, less the few whose image is not ok (no join over the pool)."""
    if version is None:
        return 0
    rows = select(func.count()).select_from(Score).where(Score.model_version_id == version.id)
    # Driven from the few non-ok images (the status index), each probing its scores row: a
    # join SQLite's planner drives from the version's scores instead reads every row of them.
    has_row = exists().where(Score.image_id == Image.id, Score.model_version_id == version.id)
    not_ok = select(func.count()).select_from(Image).where(NOT_OK, has_row)
    return int(session.scalar(rows) or 0) - int(session.scalar(not_ok) or 0)


def scoring_progress(session: Session, version: ModelVersion) -> tuple[int, int]:
    """(ok images with a scores row for ``version``, ok images)."""
    return scored_images(session, version), ok_images(session)


def created_text(version: ModelVersion) -> str:
    created = version.created_at or utcnow()
    return created.strftime("%Y-%m-%d %H:%M")
