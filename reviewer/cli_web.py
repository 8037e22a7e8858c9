"""Commands of the web area, registered on the `reviewer` group by reviewer.cli."""

from __future__ import annotations

import click


def register(cli: click.Group) -> None:
    """Add this module's commands to `cli`."""
