"""The ``score`` command: score a model version's whole pool at once, on a Ray cluster with Ray
Data (``--engine ray``) or in this process (``--engine local``), beside any running workers."""

from __future__ import annotations

import sys

import click

from reviewer.cli.context import Context, log_to_stderr, pass_context


@click.command("score")
@click.option(
    "--engine",
    type=click.Choice(["ray", "local"]),
    default="ray",
    show_default=True,
    help="ray: Ray Data on the cluster at --address; local: the same stages in this process.",
)
@click.option(
    "--address",
    help="The Ray cluster: auto (the one `ray start` runs on this machine), ray://HOST:10001; "
    "default: a new local cluster on this machine's CPUs and GPUs.",
)
@click.option(
    "--version", "ref", help="NAME[:VERSION] (default: the pending version, else the active)."
)
@click.option(
    "--all",
    "rescore_all",
    is_flag=True,
    help="Delete the version's scores first and score every image (not the active version).",
)
@click.option(
    "--unscored", is_flag=True, help="Score only the images without scores (the default)."
)
@click.option("--batch-size", default=256, show_default=True, type=click.IntRange(min=1))
@click.option(
    "--samples",
    "T",
    type=click.IntRange(min=2),
    help="T (default: REVIEWER_MC_SAMPLES, else the card).",
)
@click.option(
    "--num-gpus",
    default=0.0,
    show_default=True,
    type=click.FloatRange(min=0),
    help="GPUs per scoring actor (Ray places the actors on nodes that have them).",
)
@click.option(
    "--actors",
    type=click.IntRange(min=1),
    help="Scoring actors, each with the model loaded once (default: one per GPU when "
    "--num-gpus is given, else one per 4 CPUs of the cluster).",
)
@pass_context
def score(
    ctx: Context, engine, address, ref, rescore_all, unscored, batch_size, T, num_gpus, actors
):
    """Score a model version's pool at once: the rescoring after a new version, on a cluster.

    The run leases its images like a worker (workers may keep running: no image is scored
    twice), fetches and decodes them in parallel Ray tasks, samples them in actors that load
    the model once (GPUs when --num-gpus), and writes the scores back batch by batch. Killed
    or failed midway, run it again: it scores only what is missing. A pending version becomes
    active once every image has its scores, as with the worker.
    """
    from reviewer.scoring import rescoring

    if rescore_all and unscored:
        raise click.UsageError("--all and --unscored exclude each other")
    ctx.require_database()
    log_to_stderr()
    try:
        version = rescoring.target_version(ctx.sessions, ref, rescore_all=rescore_all)
        options = rescoring.options(
            ctx.config, engine=engine, address=address, batch_size=batch_size,
            num_gpus=num_gpus, actors=actors,
        )  # fmt: skip
        report = rescoring.run(
            ctx.sessions, ctx.config, version, T=T, options=options, out=sys.stderr
        )
    except rescoring.RescoringError as exc:
        raise click.ClickException(str(exc)) from None
    for line in rescoring.summary(ctx.sessions, version, report):
        click.echo(line)
