"""Row keys and times: now in UTC, a stored time read back as UTC, the ``random`` strategy's
stored key and an image's audit key. Pure functions; the schema uses them as defaults.
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime

# Knuth's multiplicative hash of the image id: the `random` strategy's stored seeded shuffle.
RANDOM_MULTIPLIER = 2_654_435_761
RANDOM_MODULUS = 4_294_967_296


def utcnow() -> datetime:
    return datetime.now(UTC)


def as_utc(moment: datetime) -> datetime:
    """A stored time as an aware UTC datetime: SQLite hands times back without their zone
    (every stored time is UTC), PostgreSQL in the session's zone."""
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).astimezone(UTC)


def random_key(image_id: int) -> int:
    return image_id * RANDOM_MULTIPLIER % RANDOM_MODULUS


def new_audit_key() -> int:
    """An image's place in the audit walk: random, fixed once, the same for every version."""
    return secrets.randbits(62)
