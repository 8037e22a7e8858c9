"""Commands about scoring: ``worker`` (score the pool), ``workers`` (heartbeats, backlog) and
``retry-failed``. TensorFlow loads only inside ``worker``, through reviewer.scoring.worker.
"""

from __future__ import annotations

import click
from sqlalchemy import func, select, update

from reviewer.cli.context import log_to_stderr, pass_context
from reviewer.core import versions, workers
from reviewer.core.schema import Image, ModelVersion, WorkerHeartbeat, as_utc, utcnow
from reviewer.scoring import batchbald_batch


@click.command("worker")
@click.option("--once", is_flag=True, help="Score until nothing is left, then exit.")
@click.option(
    "--batch-size",
    default=256,
    show_default=True,
    type=click.IntRange(min=1),
    help="Images per claim and transaction (the sampler's masks are drawn once per batch,"
    " so larger batches score faster).",
)
@click.option(
    "--samples",
    "T",
    type=click.IntRange(min=1),
    help="T (default: REVIEWER_MC_SAMPLES, else the model card).",
)
@click.option(
    "--batchbald-size",
    default=batchbald_batch.BATCH_SIZE,
    show_default=True,
    type=click.IntRange(min=0),
    help="Items in the BatchBALD batch the `batchbald` strategy shows first; a new batch "
    "is picked once all of them are reviewed. 0: never pick one.",
)
@click.option(
    "--batchbald-candidates",
    default=batchbald_batch.CANDIDATES,
    show_default=True,
    type=click.IntRange(min=1),
    help="The batch is picked among this many items of highest BALD (each is sampled "
    "again: more is slower).",
)
@pass_context
def worker_cmd(ctx, once, batch_size, T, batchbald_size, batchbald_candidates):
    """Score images with MC dropout (the pending version first, else the active one).

    Without a model version it says so (and, waiting, every 5 minutes); --once then exits 1.
    With nothing left to score, it picks the active version's BatchBALD batch when one is
    due (see --batchbald-size). Without --once it keeps polling for new images. SIGTERM or
    Ctrl-C stops it after the current batch's transaction (exit 0). Run several on
    PostgreSQL to scale out.
    """
    from reviewer.scoring.process import run_worker
    from reviewer.scoring.worker import NoModelVersion

    ctx.require_database()
    log_to_stderr()
    try:
        run_worker(
            ctx.config,
            once=once,
            batch_size=batch_size,
            T=T,
            batchbald_size=batchbald_size,
            batchbald_candidates=batchbald_candidates,
        )
    except NoModelVersion as exc:
        raise click.ClickException(str(exc)) from None


@click.command("workers")
@click.option("--all", "show_all", is_flag=True, help="Also list workers that have stopped.")
@pass_context
def workers_cmd(ctx, show_all):
    """Show live and stale workers, the scoring backlog and the failed image count.

    A worker is stale when its heartbeat is older than three heartbeat intervals (killed, hung
    or cut off from the database); stopped workers are listed only with --all.
    """
    ctx.require_database()
    now = utcnow()
    with ctx.sessions() as session:
        beats = session.scalars(select(WorkerHeartbeat).order_by(WorkerHeartbeat.last_seen))
        names = {v.id: versions.version_name(v) for v in session.scalars(select(ModelVersion))}
        shown = [(b, workers.liveness(b, now)) for b in beats]
        hidden = sum(1 for _, state in shown if state == workers.STOPPED and not show_all)
        for b, state in shown:
            if state == workers.STOPPED and not show_all:
                continue
            age = (now - as_utc(b.last_seen)).total_seconds()
            click.echo(
                f"{b.worker_id}  host {b.host}  {state:<7} {b.state:<20} "
                f"model {names.get(b.model_version_id, '-')}  last seen {age:.0f} s ago  "
                f"scored {b.images_scored}  failures {b.failures}"
            )
        if not shown or hidden == len(shown):
            click.echo("no workers running: start one with `reviewer worker`")
        if hidden:
            click.echo(f"({hidden} stopped worker(s) not shown; --all lists them)")
        version = versions.version_to_score(session)
        failed = session.scalar(
            select(func.count()).select_from(Image).where(Image.status == "failed")
        )
        if version is None:
            click.echo("backlog: no active or pending model version")
        else:
            scored, total = versions.scoring_progress(session, version)
            click.echo(f"backlog: {total - scored} images for {versions.version_name(version)}")
    click.echo(f"failed images: {failed} (`reviewer retry-failed` puts them back)")


@click.command("retry-failed")
@pass_context
def retry_failed_cmd(ctx):
    """Put images that failed to load back in the pool (status ok) to be scored again."""
    ctx.require_database()
    with ctx.sessions() as session, session.begin():
        result = session.execute(
            update(Image).where(Image.status == "failed").values(status="ok", failure_reason=None)
        )
    click.echo(f"{result.rowcount} failed images back in the pool")
