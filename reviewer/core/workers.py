"""Whether a scoring worker is alive, from its heartbeat row.

A worker writes its heartbeat at least every `HEARTBEAT_SECONDS` while it runs (every few
seconds while it scores, at each idle poll, while it waits for the database). One whose last
beat is older than `STALE_AFTER_SECONDS` (three intervals) is stale: killed, hung or cut off.
One that stopped cleanly says so. ``reviewer workers`` and the dashboard use this one definition.
"""

from __future__ import annotations

from datetime import datetime

from reviewer.core.schema import WorkerHeartbeat, as_utc

HEARTBEAT_SECONDS = 20
STALE_AFTER_SECONDS = 3 * HEARTBEAT_SECONDS
LIVE, STALE, STOPPED = "live", "stale", "stopped"


def liveness(beat: WorkerHeartbeat, now: datetime) -> str:
    """``live``, ``stale`` or ``stopped``."""
    if beat.state == STOPPED:
        return STOPPED
    age = (as_utc(now) - as_utc(beat.last_seen)).total_seconds()
    return STALE if age > STALE_AFTER_SECONDS else LIVE
