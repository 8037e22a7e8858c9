"""The ML benchmarks of `reviewer bench`: `scoring` (MC-dropout throughput against the classic
recipe, and the worker's memory over a long run) and `loop` (simulated active learning through
the real queue); `quality` is in reviewer.cli.bench_quality. Each command is thin: it calls
reviewer.bench.scoring or loop and prints their report lines. TensorFlow loads only inside the
commands.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import click

from reviewer.bench import POSTGRES_SERVER_URL
from reviewer.cli.context import Context, machine, pass_context

# Options several ML benchmarks share.
demo_data_option = click.option(
    "--data",
    "data_dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Demo data folder (written to a temp dir when missing).",
)


def plot_option(default: str):
    """``--plot FILE``: where the benchmark's figure goes."""
    return click.option(
        "--plot",
        "plot_path",
        default=default,
        show_default=True,
        type=click.Path(dir_okay=False, path_type=Path),
    )


@click.command("scoring")
@click.option(
    "--samples",
    "-T",
    "samples_list",
    multiple=True,
    type=int,
    help="T (repeatable); default 50, 100.",
)
@click.option(
    "--images",
    type=click.IntRange(min=1),
    help="Images sampled per run (default 1000; 128 with --model rgb).",
)
@click.option("--runs", default=3, show_default=True, help="Timed runs (median reported).")
@click.option("--batch-size", default=256, show_default=True, help="mc.sample batch size.")
@click.option(
    "--model",
    "model_path",
    help="A .keras file to time instead of the default digit model, or `rgb`: a MobileNetV2 "
    "classifier at 96x96x3 (random weights) with dropout before its head, registered through "
    "`reviewer register` in a scratch project as a user would.",
)
@click.option("--memory-images", default=3000, show_default=True, type=click.IntRange(min=0),
              help="Pool images the worker end to end rescores (0: skip it).")  # fmt: skip
@click.option("--memory-passes", default=3, show_default=True, type=click.IntRange(min=1),
              help="Overlapped rescoring passes (the rate is the median after the first), "
              "then one with the stages in turn.")  # fmt: skip
@click.option("--memory-every", default=5, show_default=True, type=click.IntRange(min=1),
              help="Read RSS every N batches.")  # fmt: skip
@click.option(
    "--worker-database",
    "worker_databases",
    multiple=True,
    type=click.Choice(["sqlite", "postgresql"]),
    help="Databases the worker end to end and --engine ray run on (repeatable; default "
    "sqlite); postgresql makes a throwaway database on --postgres-url's server.",
)
@click.option("--postgres-url", default=POSTGRES_SERVER_URL, show_default=True)
@click.option(
    "--engine",
    type=click.Choice(["sampler", "ray"]),
    default="sampler",
    show_default=True,
    help="sampler: the classic recipe against reviewer's sampler; ray: `score --engine ray` "
    "against the worker and `score --engine local` on the same images (needs reviewer[ray]).",
)
@pass_context
def scoring(
    ctx: Context,
    samples_list,
    images,
    runs,
    batch_size,
    model_path,
    memory_images,
    memory_passes,
    memory_every,
    worker_databases,
    postgres_url,
    engine,
) -> None:
    """Classic MC dropout (T x model.predict) vs. reviewer's sampler, and worker memory; or
    (--engine ray) the Ray Data rescoring against the worker."""
    from reviewer.bench import scoring as b

    if engine == "ray":
        from reviewer.bench import ray_scoring

        ray_scoring.report(
            samples_list or (50,), images or 8000, runs, batch_size, click.echo, machine(),
            worker_databases or ("sqlite",), postgres_url,
        )  # fmt: skip
        return

    if model_path == "rgb":
        _score_rgb(samples_list or (50,), images or 128, runs, batch_size)
        return
    if model_path and not Path(model_path).is_file():
        raise click.BadParameter(f"{model_path}: no such .keras file", param_hint="--model")
    images = images or 1000
    data = b.demo_digits()
    if model_path:
        from reviewer.ml import mc

        model = mc.load_model(model_path)
    else:
        click.echo("training the default model for 1 epoch on the demo's train digits ...")
        model = b.quick_model(data[0], data[1])
    click.echo(f"machine: {machine()}")
    for T in samples_list or (50, 100):
        result = b.throughput(
            model, data[2][:images], T=T, runs=runs, batch_size=batch_size, echo=click.echo
        )
        click.echo("\n".join(b.throughput_lines(result)))
        if memory_images:
            options = dict(images=memory_images, passes=memory_passes, every=memory_every)
            rate = result["rates"]["default"]
            for database in worker_databases or ("sqlite",):
                mem = _worker_run(b, model, data, T, database, postgres_url, batch_size, options)
                lines = b.memory_lines(T, mem, rate, sampler_core_ms=result["sampler_core_ms"])
                click.echo("\n".join(lines) + "\n")
                waiting = b.WaitingSampler(1 / rate, model)  # the sampler's time, on a device
                mem = _worker_run(
                    b, model, data, T, database, postgres_url, batch_size, options, waiting
                )
                click.echo(b.memory_lines(T, mem, rate, worker=WAITING)[0] + "\n")


WAITING = "worker with a sampler that waits the sampler's time without the CPU (a GPU's case)"


def _worker_run(b, model, data, T, database, postgres_url, batch_size, options, sampler=None):
    """The worker end to end on a scratch project: a SQLite file, or a throwaway database on
    the PostgreSQL server at ``postgres_url``."""
    from contextlib import ExitStack

    from reviewer.bench import project as scratch

    with ExitStack() as stack:
        work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="reviewer-bench-")))
        url = stack.enter_context(
            scratch.scratch_database(
                database, work, postgres_url=postgres_url, prefix="reviewer_bw"
            )
        )
        return b.worker_memory(
            model,
            data,
            T=T,
            work=work,
            batch_size=batch_size,
            database_url=url,
            **options,
            sampler=sampler,
        )


def _score_rgb(samples_list, images: int, runs: int, batch_size: int) -> None:
    from reviewer.bench import rgb
    from reviewer.bench import scoring as b

    with tempfile.TemporaryDirectory(prefix="reviewer-bench-rgb-") as work:
        click.echo("building MobileNetV2 96x96x3 and registering it with `reviewer register` ...")
        model, said = rgb.register_as_a_user(Path(work))
    click.echo(f"reviewer register: {said}")
    click.echo(f"machine: {machine()}")
    x = rgb.rgb_images(images)
    for T in samples_list:
        result = b.throughput(model, x, T=T, runs=runs, batch_size=batch_size, echo=click.echo)
        click.echo("\n".join(b.throughput_lines(result)) + "\n")


def _plot(curves: dict, path: Path) -> Path:
    """Mean test accuracy against labels."""
    from reviewer.bench.curves import TARGETS, mean_curve
    from reviewer.bench.plots import line_plot

    series = {s: mean_curve(runs) for s, runs in curves.items() if runs}
    return line_plot(
        series,
        path,
        title="Test accuracy against labels",
        x_label="labels",
        y_label="test accuracy (2,000 demo train digits)",
        hlines=TARGETS,
    )


def _loop_round_seconds(train_steps: int, jobs: int) -> float:
    """Machine time per round, estimated from 2 cores: 6.5 s at 300 steps with two runs at a
    time (training is the part that grows with the steps); one run at a time keeps the two
    cores less busy, about 1.5x per round."""
    return (1.5 + 5.0 * train_steps / 300) * (1.0 if jobs > 1 else 1.5)


@click.command("loop")
@demo_data_option
@click.option("--seeds", default=3, show_default=True)
@click.option("--max-labels", default=400, show_default=True)
@click.option("--step", default=10, show_default=True, help="Labels acquired per round.")
@click.option("--strategies", default="bald,entropy,variation_ratio,random", show_default=True)
@click.option("--subset", default=1500, show_default=True, help="Unlabeled images scored/round.")
@click.option("--samples", "T", default=20, show_default=True, help="T for the acquisition scores.")
@click.option(
    "--train-steps",
    default=300,
    show_default=True,
    type=click.IntRange(min=1),
    help="Gradient steps (batches of 32) per round's training, whatever the number of labels.",
)
@click.option(
    "--jobs",
    default=2,
    show_default=True,
    type=click.IntRange(min=1),
    help="Strategy x seed runs at once, each in its own process (one per core).",
)
@click.option("--quick", is_flag=True, help="1 seed, at most 200 labels.")
@plot_option("/tmp/bench-loop.png")
@click.option(
    "--curves",
    "curves_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="JSON file of finished runs: each run is saved as it ends, and a rerun with the same "
    "settings skips the runs already there (resumes an interrupted benchmark).",
)
@pass_context
def loop(
    ctx: Context,
    data_dir,
    seeds,
    max_labels,
    step,
    strategies,
    subset,
    T,
    train_steps,
    jobs,
    quick,
    plot_path,
    curves_path,
) -> None:
    """Simulated active learning through the real queue: labels needed to reach 90% / 95%."""
    from reviewer.bench import loop as b

    if quick:
        seeds, max_labels = 1, min(max_labels, 200)
    names = [s.strip() for s in strategies.split(",") if s.strip()]
    opts = dict(
        max_labels=max_labels,
        step=step,
        subset=subset,
        samples=T,  # the key of the saved curves' settings
        initial_per_class=2,
        train_steps=train_steps,
    )
    rounds = seeds * len(names) * (max_labels - 20) // step
    click.echo(f"machine: {machine()}")
    click.echo(
        f"at most {rounds} rounds of {train_steps} steps x {b.TRAIN_BATCH} + scoring "
        f"{subset} images at T={T}, {jobs} runs at a time; up to about "
        f"{rounds * _loop_round_seconds(train_steps, jobs) / 60:.0f} min on 2 cores"
    )
    try:
        b.load_finished(curves_path, opts)  # a mismatched file fails before hours of work
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--curves") from None
    with tempfile.TemporaryDirectory(prefix="reviewer-bench-") as work:
        curves = b.run(
            data_dir=data_dir,
            work=Path(work),
            strategies=names,
            seeds=seeds,
            opts=opts,
            echo=click.echo,
            curves_path=curves_path,
            jobs=jobs,
        )
    click.echo(f"plot: {_plot(curves, plot_path)}")
