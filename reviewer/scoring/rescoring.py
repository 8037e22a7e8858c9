"""What ``reviewer score`` does around the driver (reviewer.scoring.on_ray): pick the version,
settle the options (Ray connected, actors sized to the cluster), show progress, and say what
was done and what is left. Ray is imported only for ``--engine ray``.
"""

from __future__ import annotations

import logging

from sqlalchemy import delete, func, select

from reviewer.core import db
from reviewer.core.schema import Image, Score, ScoreLease
from reviewer.core.versions import version_name, version_to_score
from reviewer.review import tallies
from reviewer.scoring import on_ray
from reviewer.training import registry

CPUS_PER_ACTOR = 4  # the default actor count on CPUs: TensorFlow uses several threads each


class RescoringError(ValueError):
    """A run that cannot start; ``str(exc)`` says why and what to do."""


def target_version(sessions, ref: str | None, *, rescore_all: bool = False):
    """The version to score (``ref``, else the pending one, else the active one); with
    ``rescore_all`` its scores are deleted first (refused for the active version, whose scores
    the queue ranks by)."""
    with sessions() as session, session.begin():
        try:
            version = registry.resolve(session, ref) if ref else version_to_score(session)
        except registry.RegistryError as exc:
            raise RescoringError(str(exc)) from None
        if version is None:
            raise RescoringError(
                "no model version to score: train or register one (`reviewer train`, "
                "`reviewer register`)"
            )
        if rescore_all:
            if version.is_active:
                raise RescoringError(
                    f"{version_name(version)} is active: its scores feed the queue, so --all "
                    "would empty it; score a new or pending version instead"
                )
            db.begin_write(session)
            # The leases first: a worker still holding one then writes nothing of this version.
            session.execute(delete(ScoreLease).where(ScoreLease.model_version_id == version.id))
            session.execute(delete(Score).where(Score.model_version_id == version.id))
            tallies.forget_version(session, version.id)
        return version


def options(config, *, engine: str, address, batch_size: int, num_gpus: float, actors) -> dict:
    """The driver's options; for Ray, connects to the cluster (or starts a local one)."""
    chosen = dict(
        engine=engine, batch_size=batch_size, num_gpus=num_gpus, location=config.data_dir,
        max_decoded=config.max_decoded_bytes, actors=actors or 1,
    )  # fmt: skip
    if engine != "ray":
        return chosen
    try:
        import ray
    except ImportError:
        raise RescoringError("--engine ray needs Ray: pip install 'reviewer[ray]'") from None
    ray.data.DataContext.get_current().enable_progress_bars = False  # the command has its own
    logging.getLogger("ray.data").setLevel(logging.WARNING)
    if not ray.is_initialized():
        try:
            ray.init(address=address, include_dashboard=False, log_to_driver=False)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            raise RescoringError(f"cannot connect to the Ray cluster {address}: {exc}") from exc
    if actors is None:
        resources = ray.cluster_resources()
        if num_gpus:
            chosen["actors"] = max(1, int(resources.get("GPU", 0) / num_gpus))
        else:
            chosen["actors"] = max(1, int(resources.get("CPU", 1)) // CPUS_PER_ACTOR)
    return chosen


def run(sessions, config, version, *, T, options: dict, out=None) -> on_ray.RayReport:
    """Score ``version``'s unscored images with a progress bar on ``out``."""
    from tqdm import tqdm

    T = T or config.mc_samples or version.mc_samples
    with sessions() as session:
        scored = session.scalar(
            select(func.count()).select_from(Score).where(Score.model_version_id == version.id)
        )
        total = session.scalar(select(func.count()).select_from(Image).where(Image.status == "ok"))
    with tqdm(total=total - scored, desc=f"score {version_name(version)}", unit="img",
              file=out, disable=None) as bar:  # fmt: skip
        return on_ray.score_pool(
            sessions, config, version, T=T, options=options, progress=bar.update
        )


def summary(sessions, version, report: on_ray.RayReport) -> list[str]:
    """What the run did and what is left, for people."""
    lines = [
        f"scored {report.scored} images of {version_name(version)} in {report.seconds:.1f} s "
        f"({report.images_per_second:.1f} images/s); failed {report.failed}",
    ]
    if report.released:
        lines.append(f"released {report.released} leases of an earlier run that died")
    if report.lost:
        lines.append(f"{report.lost} leases expired meanwhile and went to workers")
    left = on_ray.left_to_score(sessions, version)
    if left:
        lines.append(f"{left} images still without scores (leased by running workers, or new)")
    with sessions() as session:
        now_active = session.get(type(version), version.id).is_active
    if now_active and not version.is_active:
        lines.append(f"{version_name(version)} is scored for every image and is now active")
    return lines
