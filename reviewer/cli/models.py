"""Commands about model versions: ``register``, ``train``, ``models`` and ``activate``.

Thin wrappers over reviewer.training (the model store, training, registering a user's model,
retraining from an export). TensorFlow loads only inside ``register`` and ``train``.
"""

from __future__ import annotations

import re
from pathlib import Path

import click
from sqlalchemy import select

from reviewer.cli.context import LOCAL_FOLDER, Context, log_to_stderr, pass_context
from reviewer.core import settings, versions
from reviewer.core.schema import ModelVersion
from reviewer.training import registry

_SIZE = re.compile(r"(\d+)x(\d+)")


def _echo_version(version: ModelVersion) -> None:
    state = versions.state(version)
    click.echo(f"registered {versions.version_name(version)} ({state}) at {version.path}")
    metrics = version.metrics or {}
    if metrics.get("accuracy") is not None:
        click.echo(f"held-out accuracy {metrics['accuracy']:.4f}, ECE {metrics['ece']:.4f}")


def run_training(ctx: Context, *, activate: bool, from_export=None, **options) -> None:
    """Shared by ``train --data`` and ``train --from-export`` (reviewer.training.retrain)."""
    from reviewer.training.errors import TrainingError
    from reviewer.training.train import train_new_version

    ctx.require_database()
    log_to_stderr()
    try:
        if from_export is not None:
            from reviewer.training.retrain import retrain_from_export

            version = retrain_from_export(
                ctx.sessions, ctx.config, export_dir=from_export, activate=activate, **options
            )
        else:
            version = train_new_version(ctx.sessions, ctx.config, activate=activate, **options)
    except (TrainingError, registry.RegistryError) as exc:
        raise click.ClickException(str(exc)) from exc
    _echo_version(version)


@click.command("register")
@click.argument("path", type=click.Path(exists=True, path_type=Path))
@click.option("--name", required=True, help="Model name (folder under REVIEWER_MODEL_DIR).")
@click.option("--classes", help="Class names in output order (default: the project's).")
@click.option("--input-size", help="HEIGHTxWIDTH, e.g. 28x28 (default: the model's input).")
@click.option("--channels", type=click.Choice(["1", "3"]), help="1 (gray) or 3 (RGB).")
@click.option("--scale", default=255.0, show_default=True, help="Pixels are divided by it.")
@click.option(
    "--samples",
    "T",
    default=50,
    show_default=True,
    type=click.IntRange(min=1),
    help="T, the MC-dropout samples per image, written on the card.",
)
@click.option(
    "--trained-on",
    "statement",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="A file naming the images the model trained on by sha256 (one per line, or a CSV "
    "with a sha256 column such as an export's manifest.csv; empty: none of the pool). They "
    "are held out of its audit. Without it the certificate assumes none and says so.",
)
@click.option(
    "--fit-data",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="A folder of in-distribution images (any layout; at least 100, a few hundred or "
    "more is better) the `ood` score is fitted on: best a validation set the model did not "
    "train on (with its training set, in-distribution images look a little stranger than "
    "they are). Without it `ood` is the fallback score, the entropy as a share of log K, "
    "which only ranks by uncertainty.",
)
@click.option("--activate", is_flag=True, help="Activate once the pool is scored by it.")
@pass_context
def register_cmd(
    ctx, path, name, classes, input_size, channels, scale, T, statement, fit_data, activate
):
    """Register your own Keras model file PATH (.keras) as a new version of NAME.

    Sequential and functional models are converted to MC dropout (each Dropout samples at
    inference); subclassed models and models without dropout are refused with the reason.
    """
    from reviewer.training.errors import TrainingError
    from reviewer.training.register import register_keras_model
    from reviewer.training.trained_on import read_statement

    ctx.require_database()
    spec = None
    if input_size or channels:
        found = _SIZE.fullmatch(input_size or "28x28")
        if not found:
            raise click.BadParameter("expected HEIGHTxWIDTH", param_hint="--input-size")
        spec = registry.input_spec(int(found[1]), int(found[2]), int(channels or 1), scale)
    try:
        names = settings.parse_classes(classes) if classes else None
        trained_on = read_statement(statement) if statement is not None else None
        version = register_keras_model(
            ctx.sessions,
            ctx.config,
            model_path=path,
            name=name,
            classes=names,
            input_spec=spec,
            mc_samples=T,
            trained_on=trained_on,
            fit_data=fit_data,
            activate=activate,
        )
    except (TrainingError, registry.RegistryError, ValueError) as exc:
        raise click.ClickException(str(exc)) from exc
    _echo_version(version)
    if fit_data is not None:
        fitted = registry.read_card(version.path)["ood"]
        references = len(fitted["distance"]["sorted"])
        click.echo(
            f"ood fitted on {fit_data}: {fitted['index_rows']} images indexed, "
            f"{references} as the reference"
        )
    else:
        click.echo(
            "no --fit-data: `ood` is the fallback score (entropy / log K), which ranks by "
            "uncertainty only; register again with --fit-data DIR to find strangers"
        )


@click.command("train")
@click.option(
    "--data",
    "data_dir",
    type=LOCAL_FOLDER,
    help="Folder with one sub-folder of images per class (DIR/<class>/*.png).",
)
@click.option(
    "--from-export",
    type=LOCAL_FOLDER,
    help="A `reviewer export` folder: fine-tune --base on its data plus these human labels.",
)
@click.option("--base", metavar="NAME[:VERSION]", help="The version --from-export starts from.")
@click.option("--name", help="Model name; the next version is created (default: --base's).")
@click.option("--epochs", type=click.IntRange(min=1), help="Default 5; --from-export 2.")
@click.option("--seed", type=int, help="Seed of the split and training (default 0).")
@click.option(
    "--repeat",
    default=5,
    show_default=True,
    type=click.IntRange(min=1),
    help="With --from-export: copies of each human-labeled item per epoch (its weight).",
)
@click.option(
    "--train-on-audit",
    is_flag=True,
    help="With --from-export: also train on OUT/audit/ (the new version then cannot be "
    "certified on those items: the audit walk has to go on past them).",
)
@click.option(
    "--include-auto",
    is_flag=True,
    help="With --from-export: also train on OUT/auto/, the model's own certified labels.",
)
@click.option("--activate", is_flag=True, help="Activate once the pool is scored by it.")
@pass_context
def train_cmd(ctx, data_dir, from_export, base, name, epochs, seed, repeat, activate, **held_out):
    """Train the default MC-dropout CNN on a folder-per-class data set (--data DIR --name
    NAME), or fine-tune a version on its training data plus an export's human labels
    (--from-export OUT --base NAME[:VERSION]; only class labels are used).

    15% of each class of the training data is held out to measure accuracy and calibration
    (ECE) and to fit the OOD score; --from-export keeps the base's seed, hence its held-out
    set. Metrics, and the export's path and fingerprint, are written on the model card, with
    the sha256 of every image it and its ancestors trained on (held out of its audit). The
    export's audit items (OUT/audit/) and auto-accepted ones (OUT/auto/) are not trained on
    unless --train-on-audit / --include-auto.
    """
    if from_export is None and (base is not None or data_dir is None or name is None):
        raise click.UsageError("give --data DIR --name NAME, or --from-export OUT --base NAME")
    if from_export is not None and (base is None or data_dir is not None or seed is not None):
        raise click.UsageError("--from-export needs --base and takes neither --data nor --seed")
    if from_export is None and any(held_out.values()):
        raise click.UsageError("--train-on-audit and --include-auto go with --from-export")
    if from_export is not None:
        options = dict(from_export=from_export, base=base, epochs=epochs, repeat=repeat)
        options |= held_out
    else:
        options = dict(data_dir=data_dir, epochs=epochs or 5, seed=seed or 0)
    run_training(ctx, name=name, activate=activate, **options)


@click.command("models")
@pass_context
def models_cmd(ctx):
    """List model versions: state (active/pending/inactive), scoring progress, accuracy."""
    ctx.require_database()
    with ctx.sessions() as session:
        rows = session.scalars(
            select(ModelVersion).order_by(ModelVersion.name, ModelVersion.version)
        ).all()
        progress = {v.id: versions.scoring_progress(session, v) for v in rows}
    if not rows:
        click.echo("no model versions: run `reviewer train` or `reviewer register`")
    for v in rows:
        scored, total = progress[v.id]
        accuracy = (v.metrics or {}).get("accuracy")
        shown = "-" if accuracy is None else f"{accuracy:.4f}"
        click.echo(
            f"{versions.version_name(v):<24} {versions.state(v):<9} scored {scored}/{total}  "
            f"accuracy {shown}  created {versions.created_text(v)}"
        )


@click.command("activate")
@click.argument("ref", metavar="NAME[:VERSION]")
@pass_context
def activate_cmd(ctx, ref):
    """Make a version active (the latest of NAME when VERSION is omitted).

    If the pool is not yet fully scored by it, it becomes pending: the worker scores it
    and it takes over once every image has its scores.
    """
    ctx.require_database()
    try:
        with ctx.sessions() as session, session.begin():
            version = registry.resolve(session, ref)
            state = registry.request_activation(session, version)
            scored, total = versions.scoring_progress(session, version)
    except registry.RegistryError as exc:
        raise click.ClickException(str(exc)) from exc
    if state == "active":
        click.echo(f"{versions.version_name(version)} is active")
    else:
        click.echo(
            f"{versions.version_name(version)} is pending: scored {scored}/{total}; it "
            "becomes active when a worker has scored every image"
        )
