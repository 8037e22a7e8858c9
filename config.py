"""The deployment's settings, at the top of the repository where the project card puts them.

The settings class lives in the package (:mod:`reviewer.core.config`) so that an installed
``reviewer`` carries it; this file only makes ``from config import Config`` work in a checkout
(the Alembic command line, scripts). The installed distribution has no top-level ``config``.
"""

from reviewer.core.config import Config, TestConfig

__all__ = ["Config", "TestConfig"]
