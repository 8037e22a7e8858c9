"""`reviewer demo`'s setup steps: everything the demo needs, each step safe to run again.

This module owns what a first run makes and a later run reuses: the database through Alembic
with the digit classes (a different class list is refused), the demo data written once
(aside, then renamed, so an interrupted write is redone), the default model trained when no
version exists, the pool ingested (the same bytes add nothing), and the accounts `demo`
(labeler) and `admin` with a fresh password on every run. reviewer.demo.run runs the worker
and the web server on top; reviewer.demo.smoke runs the whole loop briefly. Every function
follows the configuration and session factory it is given.
"""

from __future__ import annotations

import os
import secrets
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import select

from reviewer.core import db, settings, users, versions
from reviewer.core.schema import ModelVersion
from reviewer.demo.data import DIGITS
from reviewer.training import registry

MODEL_NAME = "digits"
ACCOUNTS = (("demo", "labeler"), ("admin", "admin"))
Say = Callable[[str], None]


class DemoError(Exception):
    """A demo step that cannot go on; ``str(exc)`` says why and what to do."""


def ensure_database(config, sessions) -> list[str]:
    """Migrate to the latest schema and set the digit classes (refusing a different list)."""
    db.upgrade(config.database_url)
    with sessions() as session, session.begin():
        classes = settings.get_classes(session)
        if not classes:
            classes = settings.set_classes(session, DIGITS)
    if classes != DIGITS:
        raise DemoError(
            f"this database's classes are {', '.join(classes)}, not the digits 0-9: point "
            "REVIEWER_DATABASE_URL at another database for the demo"
        )
    return classes


def ensure_demo_data(data_dir: Path, *, n_train: int = 2000, n_outliers: int = 100) -> bool:
    """Write the demo data set to ``data_dir`` unless it is there; True if it was written."""
    from reviewer.demo.data import write_demo_data

    data_dir = Path(data_dir)
    if (data_dir / "pool" / "labels.csv").is_file() and (data_dir / "train").is_dir():
        return False
    if data_dir.exists() and any(data_dir.iterdir()):
        raise DemoError(f"{data_dir} exists but holds no demo data: remove it or pick --data-dir")
    data_dir.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{data_dir.name}.tmp-", dir=data_dir.parent))
    try:  # written aside and renamed, so an interrupted write never looks complete
        write_demo_data(work / "data", n_train=n_train, n_outliers=n_outliers)
        if data_dir.exists():
            data_dir.rmdir()
        os.replace(work / "data", data_dir)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return True


def ensure_model(sessions, config, data_dir: Path, *, epochs: int, say: Say, verbose=None):
    """The version the worker scores for, (version, trained): an existing one is reused (if
    none is active, the latest of MODEL_NAME is activated), else the default model is trained."""
    with sessions() as session, session.begin():
        version = versions.version_to_score(session)
        if version is None:
            latest = select(ModelVersion).where(ModelVersion.name == MODEL_NAME)
            version = session.scalars(latest.order_by(ModelVersion.version.desc())).first()
            if version is not None:
                registry.request_activation(session, version)
    if version is not None:
        return version, False
    from reviewer.training.train import train_new_version

    say(f"training the default model on {Path(data_dir) / 'train'}, {epochs} epochs (first run)")
    version = train_new_version(
        sessions,
        config,
        data_dir=Path(data_dir) / "train",
        name=MODEL_NAME,
        epochs=epochs,
        seed=0,
        activate=True,
        verbose=verbose,
    )
    return version, True


def ensure_pool(sessions, store, config, data_dir: Path, *, limit: int | None = None):
    """Ingest the demo pool (its first ``limit`` images) with the given labels; idempotent."""
    from reviewer.ingest import run_ingest

    pool = Path(data_dir) / "pool"
    files = sorted(pool.glob("*.png"))[:limit]
    return run_ingest(
        sessions,
        store,
        files,
        max_pixels=config.max_image_pixels,
        labels_csv=pool / "labels.csv",
        source="demo",
    )


def ensure_accounts(sessions) -> dict[str, str]:
    """Create (or re-enable) `demo` and `admin`, each with a new random password."""
    passwords = {}
    with db.write_transaction(sessions) as session:
        for name, role in ACCOUNTS:
            password = secrets.token_urlsafe(9)
            user = users.get_by_username(session, name)
            if user is None:
                users.create_user(session, name, password, role=role)
            else:
                users.set_password(session, user, password)
                users.set_active(session, user, True)
            passwords[name] = password
    return passwords
