"""reviewer: an uncertainty-based human review queue for image classifiers.

This package's ``create_app`` is the Flask application factory; nothing runs
at import time, and importing the package never loads TensorFlow.
"""

from __future__ import annotations


def create_app(config=None):
    """Build the web application (see :mod:`reviewer.web`)."""
    from reviewer.web import build_app

    return build_app(config)
