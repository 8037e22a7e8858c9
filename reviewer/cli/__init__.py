"""The ``reviewer`` command line: a click group of thin commands, one module per noun.

Each command reads the configuration from ``REVIEWER_*`` variables (reviewer.core.config),
opens what it needs through :class:`reviewer.cli.context.Context` and calls one function of
the rooms that do the work. Nothing heavy is imported at start-up: TensorFlow loads only
inside the commands that score or train.
"""

from __future__ import annotations

import os

import click
from sqlalchemy.exc import ArgumentError, DBAPIError

from reviewer.cli import (
    audit,
    bench,
    demo,
    export,
    ingest,
    models,
    project,
    queue,
    score,
    users,
    web,
    worker,
)
from reviewer.cli.context import Context
from reviewer.core.config import Config


class Group(click.Group):
    """The ``reviewer`` group: a user's error ends in one line naming the input and the
    problem (exit status 1; click's own usage errors exit 2), never in a traceback."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except (DBAPIError, ArgumentError) as exc:
            where = ctx.obj.safe_url if isinstance(ctx.obj, Context) else "the database"
            reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
            raise click.ClickException(f"cannot use the database {where}: {reason}") from exc
        except OSError as exc:
            if exc.filename is None:
                raise
            raise click.ClickException(f"{exc.filename}: {exc.strerror or exc}") from exc


@click.group(cls=Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--tf-logs",
    is_flag=True,
    help="Show TensorFlow's own start-up and device messages (hidden by default so that "
    "training and scoring progress stay readable).",
)
@click.pass_context
def cli(ctx: click.Context, tf_logs: bool) -> None:
    """reviewer: an uncertainty-based human review queue for image classifiers.

    A worker scores images with Monte-Carlo dropout; labelers review the most
    uncertain or possibly mislabeled ones first in the web UI; their labels are
    exported to retrain the model. Settings come from REVIEWER_* environment
    variables (REVIEWER_DATABASE_URL, REVIEWER_DATA_DIR, REVIEWER_MODEL_DIR, ...).
    """
    if tf_logs:  # read by reviewer.ml.mc before TensorFlow loads
        os.environ["TF_CPP_MIN_LOG_LEVEL"] = "0"
    try:
        ctx.obj = Context(Config.from_env())
    except ValueError as exc:
        raise click.ClickException(str(exc)) from exc


COMMANDS = (
    project.init_db,
    project.classes_group,
    project.settings_group,
    ingest.ingest,
    queue.stats,
    queue.queue_command,
    models.register_cmd,
    models.train_cmd,
    models.models_cmd,
    models.activate_cmd,
    worker.worker_cmd,
    score.score,
    worker.workers_cmd,
    worker.retry_failed_cmd,
    web.serve,
    users.create_user,
    users.token,
    export.export,
    audit.auto_accept,
    demo.demo,
    demo.demo_data,
    bench.bench,
)
for command in COMMANDS:
    cli.add_command(command)


def main() -> None:
    cli(prog_name="reviewer")
