"""The lease upsert: a review lease taken only when the item is free, expired or already the
caller's, in one statement, so racing transactions never hand one item to two people.
The caller owns the (write) transaction.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import DateTime, Integer, String, bindparam, text
from sqlalchemy.orm import Session

from reviewer.core.schema import utcnow

_TIMESTAMP = DateTime(timezone=True)
_NOW = bindparam("now", type_=_TIMESTAMP)

# The lease upsert as text: SQLAlchemy cannot cache an ON CONFLICT construct (it would be
# compiled on every call). It writes only when the item is free, expired or already the
# caller's; RETURNING says whether it did (rowcount is not reliable across drivers) and how
# the lease was handed out: renewing one's own live lease keeps its strategy, so an audit
# item offered again stays blind. The same SQL runs on SQLite and PostgreSQL.
TAKE_LEASE = (
    text(
        "INSERT INTO review_leases (image_id, user_id, expires_at, strategy) "
        "VALUES (:image_id, :user_id, :expires_at, :strategy) "
        "ON CONFLICT (image_id) DO UPDATE SET strategy = CASE WHEN "
        "review_leases.user_id = excluded.user_id AND review_leases.expires_at > :now "
        "THEN review_leases.strategy ELSE excluded.strategy END, "
        "taken_from_user_id = CASE WHEN review_leases.user_id = excluded.user_id "
        "THEN review_leases.taken_from_user_id ELSE review_leases.user_id END, "
        "user_id = excluded.user_id, expires_at = excluded.expires_at "
        "WHERE review_leases.expires_at <= :now OR review_leases.user_id = excluded.user_id "
        "RETURNING image_id, strategy"
    )
    .bindparams(
        bindparam("expires_at", type_=_TIMESTAMP), _NOW, bindparam("strategy", type_=String(32))
    )
    .columns(image_id=Integer, strategy=String)
)


def take_lease(
    session: Session, image_id: int, user_id: int, *, lease_seconds: int, strategy=None
) -> tuple[str, str | None] | None:
    """Lease the item to the user if it is free, expired, or already theirs; the lease records
    how the item was handed out (``strategy``: a strategy's key, "audit", None by hand; a
    live lease of the user's keeps the strategy it has).

    Returns (the lease's expiry, ISO UTC; the lease's strategy) when taken, else None.
    """
    now = utcnow()
    expires = now + timedelta(seconds=lease_seconds)
    params = {"image_id": image_id, "user_id": user_id, "expires_at": expires, "now": now}
    params["strategy"] = strategy
    taken = session.execute(TAKE_LEASE, params).first()
    return None if taken is None else (expires.isoformat(), taken.strategy)
