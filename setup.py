"""Build hook: the wheel carries the checkout's top-level ``migrations/`` as reviewer/migrations.

The project card keeps ``migrations/`` at the repository's top level; an installed ``reviewer``
still needs it (``reviewer init-db`` runs them), so ``build_py`` copies it into the package.
Everything else about the build is in pyproject.toml.
"""

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


class BuildWithMigrations(build_py):
    def run(self):
        super().run()
        target = Path(self.build_lib) / "reviewer" / "migrations"
        shutil.rmtree(target, ignore_errors=True)
        shutil.copytree(MIGRATIONS, target, ignore=shutil.ignore_patterns("__pycache__"))


setup(cmdclass={"build_py": BuildWithMigrations})
