"""The review queue's errors, each with the HTTP status the API answers it with.

Raised by ranking, leasing and answers; the web blueprints turn them into ``{"error": …}``
answers and the CLI into one-line messages.
"""

from __future__ import annotations


class QueueError(Exception):
    status = 400


class BadRequest(QueueError):
    status = 400


class NotFound(QueueError):
    status = 404


class Conflict(QueueError):
    status = 409
