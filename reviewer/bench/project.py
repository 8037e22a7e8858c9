"""The scratch project the ML benchmarks run in: a temporary SQLite (or throwaway
PostgreSQL) database, file store and model store set up exactly as a deployment is (Alembic,
the digit classes). Images reach it through the real ingest and are scored by the real
worker; the demo data is written once. `scratch_database` gives a benchmark either kind."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select

from reviewer.core import db, settings, versions
from reviewer.core.config import Config
from reviewer.core.files import FileStore
from reviewer.core.schema import Image, Score
from reviewer.demo.data import DIGITS


@dataclass
class Project:
    config: Config
    sessions: object
    store: FileStore


@contextlib.contextmanager
def scratch_database(
    backend: str, folder: Path, *, postgres_url: str, prefix: str
) -> Iterator[str]:
    """The URL of an empty database for a benchmark: a SQLite file in ``folder``, or (backend
    ``postgresql``) a throwaway database on ``postgres_url``'s server, dropped afterwards."""
    if backend == "sqlite":
        yield f"sqlite:///{Path(folder) / 'reviewer.db'}"
        return
    with db.throwaway_postgres(postgres_url, prefix=prefix) as url:
        yield url


def open_project(root: Path, database_url: str | None = None) -> Project:
    """A migrated scratch project under ``root`` with the digit classes set, on a SQLite file
    there unless ``database_url`` names another (empty) database."""
    root = Path(root)
    url = database_url or f"sqlite:///{root / 'reviewer.db'}"
    config = Config(database_url=url, data_dir=root / "images", model_dir=root / "models")
    db.upgrade(config.database_url)
    sessions = db.session_factory(db.make_engine(config.database_url))
    with sessions() as session, session.begin():
        settings.set_classes(session, DIGITS)
    return Project(config, sessions, FileStore(config.data_dir))


def ingest(project: Project, paths, *, labels_csv=None, source="bench"):
    from reviewer.ingest import run_ingest

    report = run_ingest(
        project.sessions,
        project.store,
        list(paths),
        max_pixels=project.config.max_image_pixels,
        labels_csv=labels_csv,
        source=source,
    )
    if report.rejected:
        raise RuntimeError(f"benchmark images were rejected: {report.rejected[:3]}")
    return report


def score_pool(project: Project, *, T: int, batch_size: int = 64) -> int:
    """Score every unscored image with the real worker loop; returns the number scored."""
    from reviewer.scoring.worker import Worker

    worker = Worker(
        project.sessions,
        project.store,
        lease_seconds=project.config.score_lease_seconds,
        batch_size=batch_size,
        T=T,
    )
    return worker.run(once=True, progress=False)


def active_scores(project: Project) -> dict[str, dict]:
    """{file name: entropy, mutual_info, ood, predicted} of the active version's scores rows."""
    columns = (Score.entropy, Score.mutual_info, Score.ood, Score.predicted_label)
    with project.sessions() as session:
        version = versions.active_version(session)
        rows = session.execute(
            select(Image.original_filename, *columns)
            .join(Score, Score.image_id == Image.id)
            .where(Score.model_version_id == version.id)
        ).all()
    keys = ("entropy", "mutual_info", "ood", "predicted")
    return {Path(r[0]).name: dict(zip(keys, r[1:], strict=True)) for r in rows}


def ensure_demo_data(data_dir: Path | None, work: Path, *, seed: int = 0, echo) -> Path:
    """``data_dir`` if it holds the demo data, else the demo data written there (or in work)."""
    from reviewer.demo.data import write_demo_data

    if data_dir is None or not (Path(data_dir) / "truth.csv").is_file():
        data_dir = Path(data_dir or Path(work) / "demo-data")
        echo(f"writing the demo data to {data_dir} ...")
        write_demo_data(data_dir, seed=seed)
    return Path(data_dir)


def demo_project(data_dir: Path, work: Path, *, epochs: int, seed: int, echo) -> Project:
    """A scratch project under ``work`` with the demo model trained on ``data_dir/train``
    (``seed``; active) and the demo pool ingested with its given labels, not yet scored."""
    from reviewer.training.train import train_new_version

    project = open_project(Path(work) / "project")
    echo(f"training the demo model (seed {seed}, {epochs} epochs) ...")
    train_new_version(
        project.sessions,
        project.config,
        data_dir=Path(data_dir) / "train",
        name="bench",
        epochs=epochs,
        seed=seed,
        activate=True,
        verbose=0,
    )
    pool = Path(data_dir) / "pool"
    ingest(project, sorted(pool.glob("*.png")), labels_csv=pool / "labels.csv")
    return project
