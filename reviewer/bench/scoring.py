"""Benchmark: MC-dropout scoring throughput and the worker's memory over a long run. In one
process, on one trained default model and one set of images, after a warm-up and under the same
thread settings, it times the classic tutorial recipe (`mc.classic_sample`: T calls of
`model.predict`) against `mc.sample`'s default path and its prefix-cached path, and a bare
`tf.matmul` of the default path's main product [N, D] x [D, T·units] as the machine's reachable
FLOP/s. The memory run drives the real worker (`worker.Worker.step`) on a scratch SQLite project,
rescoring the same ingested images pass after pass, and reads VmRSS from /proc/self/status.
Both count the CPU time their timed work used (`reviewer.bench.cpu`): core-ms per image of the
sampler alone, and of the worker with the rest of the machine (a local database server).
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path

import numpy as np

from reviewer.bench import cpu
from reviewer.bench import project as scratch
from reviewer.core.schema import Score, ScoreBins
from reviewer.demo.data import DIGITS
from reviewer.training import registry

N_TRAIN = 2000
SEED = 0
MATMUL_REPEATS = 5
FLAT_TOLERANCE = 0.05  # growth after the first pass, as a share of the first pass's RSS


def demo_digits(*, seed: int = SEED):
    """(x_train, y_train, x_pool, y_pool): the demo's train/pool split, float32 [N, 28, 28, 1]."""
    from reviewer.demo.data import _mnist, _split

    pixels, labels = _mnist()
    train, pool = _split(labels, N_TRAIN, np.random.default_rng(seed))
    x = (pixels / 255.0).astype(np.float32)[..., None]
    return x[train], labels[train], x[pool], labels[pool]


def quick_model(x, y, *, epochs: int = 1, seed: int = SEED):
    from reviewer.ml import mc

    model = mc.build_default_model(seed=seed)
    mc.train(model, x, y, epochs=epochs, seed=seed, verbose=0)
    return model


def read_rss_kib() -> int:
    """This process's resident set size in KiB, from /proc/self/status (Linux)."""
    with open("/proc/self/status", encoding="ascii") as handle:
        for line in handle:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS line in /proc/self/status")


def rss_summary(points: list[tuple[int, int]], first_pass_batches: int) -> dict:
    """Pure: (batch, KiB) readings -> first/last/max MiB and whether RSS stays flat: after the
    first pass (allocator and graph caches warm) it grows by under FLAT_TOLERANCE."""
    kib = [k for _, k in points]
    settled = [k for b, k in points if b >= first_pass_batches] or kib[-1:]
    growth = (kib[-1] - settled[0]) / settled[0]
    mib = lambda k: round(k / 1024, 1)  # noqa: E731
    return {
        "first_mib": mib(kib[0]),
        "after_first_pass_mib": mib(settled[0]),
        "last_mib": mib(kib[-1]),
        "max_mib": mib(max(kib)),
        "growth_after_first_pass": growth,
        "flat": growth < FLAT_TOLERANCE,
    }


def _seconds(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def throughput(model, x, *, T: int, runs: int, batch_size: int = 256, echo=print) -> dict:
    """Median images/s of classic, default (auto) and prefix sampling, and the matmul FLOP/s."""
    from reviewer.ml import mc

    methods = {
        "classic": lambda: mc.classic_sample(model, x, T),
        "default": lambda: mc.sample(model, x, T, method="auto", batch_size=batch_size),
        "prefix": lambda: mc.sample(model, x, T, method="prefix", batch_size=batch_size),
    }
    n, d, width = mc.widest_dense_product(model, T, min(batch_size, len(x)))
    # Several products per timing, so a busy moment on a shared machine averages out.
    methods["matmul"] = mc.matmul_timer(n, d, width, repeats=MATMUL_REPEATS)
    for name, fn in methods.items():  # warm-up: tracing, graph optimisation, allocator
        (mc.classic_sample(model, x[:100], 2) if name == "classic" else fn())
    times, sampler_cpu = {name: [] for name in methods}, cpu.NO_USE
    order = ["classic", "prefix", "default", "matmul"]  # default and matmul back to back
    for run in range(runs):  # interleaved, so a busy moment hits every method alike
        for name, fn in ((k, methods[k]) for k in order):
            before = cpu.read_times()
            times[name].append(_seconds(fn))
            if name == "default":
                sampler_cpu += cpu.CpuUse.between(before, cpu.read_times())
        echo(f"run {run + 1}: " + ", ".join(f"{k} {v[-1]:.2f} s" for k, v in times.items()))
    median = {name: statistics.median(v) for name, v in times.items()}
    flops = {m: mc.count_flops_per_image(model, T, m) for m in ("auto", "prefix", "full")}
    matmul_flops = 2 * n * d * width * MATMUL_REPEATS / median["matmul"]
    default_rate = len(x) / median["default"]
    # The share is taken run by run (each pair timed back to back), then the median.
    shares = [
        flops["auto"] * len(x) / t_default * t_matmul / (2 * n * d * width * MATMUL_REPEATS)
        for t_default, t_matmul in zip(times["default"], times["matmul"], strict=True)
    ]
    return {
        "T": T,
        "images": len(x),
        "batch_size": batch_size,
        "threads": mc.thread_settings(),
        "cpu_allocator": mc.cpu_allocator(),
        "rates": {k: len(x) / median[k] for k in ("classic", "default", "prefix")},
        "ratio": median["classic"] / median["default"],
        "prefix_ratio": median["classic"] / median["prefix"],
        "flops_per_image": flops,
        "matmul_shape": (n, d, width),
        "matmul_flops": matmul_flops,
        "default_flops": flops["auto"] * default_rate,
        "share_of_matmul": statistics.median(shares),
        "runs": runs,
        "sampler_cpu": sampler_cpu,
        "sampler_core_ms": 1000 * sampler_cpu.process / (len(x) * runs),
    }


def register_version(project, model, x_fit, x_ref, T: int):
    from reviewer.training import ood_fit

    fit = ood_fit.fit(model, x_fit, x_ref, T=T, seed=SEED)
    card = {"name": "bench", "classes": DIGITS, "mc_samples": T}
    card["input_spec"] = registry.input_spec(28, 28, 1)
    card, path = registry.write_version(project.config.model_dir, card, model.save, ood_fit=fit)
    with project.sessions() as session, session.begin():
        registry.request_activation(session, registry.record_version(session, card, path))


def worker_memory(
    model,
    data,
    *,
    T: int,
    images: int,
    passes: int,
    every: int,
    work: Path,
    batch_size: int = 256,
    database_url: str | None = None,
    sampler=None,
):
    """Run the real worker over ``images`` pool digits ``passes`` times as `reviewer worker`
    does (its stages overlapped, reviewer.scoring.pipeline), then once more with the stages in
    turn (`Worker.step`): images/s per pass and RSS every N batches. ``sampler``: another
    than the model's (`WaitingSampler`)."""
    from sqlalchemy import delete, make_url

    from reviewer.scoring.worker import Worker

    project = scratch.open_project(work / "project", database_url)
    scratch.ingest(project, pool_pngs(data[2], images, work / "images"))
    register_version(project, model, data[0], data[2][:300], T)
    options = dict(lease_seconds=600, batch_size=batch_size, T=T, sampler=sampler)
    worker = Worker(project.sessions, project.store, **options)
    # RSS is read every N steps; the CPU (the I/O thread's of it) over the timed passes
    run = dict(batches=0, steps=0, points=[], cpu=cpu.NO_USE, io_seconds=0.0, cpu_images=0)
    rates, per_pass = [], None
    timed = set(range(1, passes)) or {0}  # the passes the rate is the median of
    for k in range(passes + 1):
        rates.append(_one_pass(worker, run, every, overlap=k < passes, timed=k in timed))
        per_pass = per_pass or run["steps"]
        with project.sessions() as session, session.begin():  # unscored again: a new pass
            session.execute(delete(Score))
            session.execute(delete(ScoreBins))
    # The first pass loads the model and traces the sampler: the later passes are the rate.
    overlapped, in_turn = rates[:passes], rates[passes]
    rate = statistics.median(overlapped[1:] or overlapped)
    summary = {"batches": run["batches"], "batch_size": batch_size, "points": run["points"]}
    summary["database"] = make_url(project.config.database_url).get_backend_name()
    summary.update(rates=overlapped, in_turn_images_per_s=in_turn, images_per_s=rate)
    summary.update(cpu=run["cpu"], cpu_images=run["cpu_images"], io_seconds=run["io_seconds"])
    return {**summary, **rss_summary(run["points"], per_pass)}


def _one_pass(worker, run: dict, every: int, *, overlap: bool, timed: bool) -> float:
    """images/s of one pass of ``worker`` over the pool (the overlapped pass ends with its last
    write); counts its batches, RSS every ``every`` steps and (``timed``) its CPU into ``run``."""
    from reviewer.scoring.pipeline import Pipeline

    pipeline = Pipeline(worker) if overlap else None
    scored, before = 0, cpu.read_times()  # its wall clock starts the pass's time
    while (settled := (pipeline or worker).step()) is not None:
        scored += settled
        if pipeline:
            worker.beat_while_scoring(pipeline)  # as `reviewer worker` does after a batch
        run["steps"] += 1
        if run["steps"] % every == 0:
            run["points"].append((run["steps"], read_rss_kib()))
    scored += pipeline.close() if pipeline else 0
    if timed:
        run["cpu"] += cpu.CpuUse.between(before, cpu.read_times())
        run["io_seconds"] += pipeline.io_seconds if pipeline else 0.0
        run["cpu_images"] += scored
    run["batches"] += -(-scored // worker.batch_size)
    return scored / (time.perf_counter() - before.wall)


class WaitingSampler:
    """A sampler as a GPU looks to the CPU: it waits ``seconds_per_image`` per image without
    using the CPU (the device computing) and returns uniform samples and zero features. With
    it the worker shows what the overlap gives where sampling does not compete with decoding
    and writing for the cores."""

    def __init__(self, seconds_per_image: float, model):
        from reviewer.ml import mc

        self.seconds_per_image, self.classes = seconds_per_image, model.outputs[0].shape[-1]
        self.width = mc.features(model, np.zeros((1, *model.inputs[0].shape[1:]))).shape[1]

    def sample(self, version, images, T, *, shared_masks=False):
        time.sleep(self.seconds_per_image * len(images))
        return np.full((T, len(images), self.classes), 1 / self.classes, np.float32)

    def features(self, version, images):
        return np.zeros((len(images), self.width), np.float32)

    def sample_with_features(self, version, images, T):
        return self.sample(version, images, T), self.features(version, images)


def pool_pngs(x_pool, images: int, folder: Path) -> list[Path]:
    from PIL import Image as PILImage

    folder.mkdir(parents=True)
    paths = [folder / f"img_{i:05d}.png" for i in range(images)]
    for i, path in enumerate(paths):
        PILImage.fromarray((x_pool[i % len(x_pool), ..., 0] * 255).astype(np.uint8)).save(path)
    return paths


def throughput_lines(r: dict) -> list[str]:
    """Pure: the throughput table of one T."""
    n, d, width = r["matmul_shape"]
    flops = r["flops_per_image"]
    lines = [
        f"T={r['T']}: {r['images']} images, batch {r['batch_size']}, TF threads "
        f"intra/inter {r['threads'][0]}/{r['threads'][1]} (0 = TF default, all cores), CPU "
        f"allocator {r['cpu_allocator']}",
        "| path | images/s | MFLOP/image |",
        "|---|---|---|",
        f"| classic (T x model.predict, batch 1000) | {r['rates']['classic']:,.1f} | "
        f"{flops['full'] / 1e6:,.0f} |",
        f"| default (method=auto -> fast) | {r['rates']['default']:,.1f} | "
        f"{flops['auto'] / 1e6:,.0f} |",
        f"| prefix-cached | {r['rates']['prefix']:,.1f} | {flops['prefix'] / 1e6:,.0f} |",
        f"ratio: {r['ratio']:.1f}x (classic time / default time; prefix: {r['prefix_ratio']:.1f}x)",
        f"matmul [{n}, {d}] x [{d}, {width}]: {r['matmul_flops'] / 1e9:.1f} GFLOP/s; default "
        f"path executes {r['default_flops'] / 1e9:.1f} GFLOP/s; share of the matmul's "
        f"FLOP/s (median of per-run shares): {100 * r['share_of_matmul']:.0f}%",
        "default path: " + cpu.per_image_line(r["sampler_cpu"], r["images"] * r["runs"]),
    ]
    return lines


def memory_lines(
    T: int,
    m: dict,
    sampler_rate: float | None = None,
    *,
    worker: str = "worker",
    sampler_core_ms: float | None = None,
) -> list[str]:
    """Pure: the worker's rate (against the sampler's default path in the same run), its
    memory line and its CPU line (against the sampler's own core-ms per image), of one T;
    ``worker`` names what ran."""
    share = (
        f", {100 * m['images_per_s'] / sampler_rate:.0f}% of the sampler's" if sampler_rate else ""
    )
    rates = ", ".join(f"{r:.1f}" for r in m["rates"])
    in_turn = m["in_turn_images_per_s"]
    return [
        f"{worker} end to end at T={T} on {m['database']} (claim, load, sample, "
        f"summarise, write overlapped; batches of {m['batch_size']}): {m['images_per_s']:.1f} "
        f"images/s after the first pass{share} (passes: {rates}); the stages in turn: "
        f"{in_turn:.1f} images/s ({m['images_per_s'] / in_turn:.2f}x overlapped)",
        f"worker RSS at T={T} over {m['batches']} batches of {m['batch_size']} "
        "(read every few batches): "
        f"first {m['first_mib']} MiB, after pass 1 {m['after_first_pass_mib']} MiB, "
        f"last {m['last_mib']} MiB, max {m['max_mib']} MiB, growth after pass 1 "
        f"{100 * m['growth_after_first_pass']:+.1f}% -> {'flat' if m['flat'] else 'GROWING'}",
        f"{worker} at T={T}, "
        + cpu.per_image_line(m["cpu"], m["cpu_images"], sampler_core_ms, m["io_seconds"]),
    ]
