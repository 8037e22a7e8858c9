"""`reviewer bench scoring --engine ray`: the Ray Data rescoring against the worker on the
same images and model, and the per-image costs the 10M / 100M estimate of BENCHMARKS.md is
built from.

One scratch project (the real ingest, a version registered with its OOD fit); each run deletes
the version's scores and scores the pool again: with the worker (`reviewer worker`'s
pipeline), with `score --engine local` (the Ray stages in this process, one batch at a time)
and with `score --engine ray` (Ray Data on the local cluster). Each is timed whole (claim,
start-up, the model loaded) and at the margin: the second half of the pool over the time a run
over all of it takes beyond a run over half (another lease holds the other half), the rate a
long run approaches with its start-up left out. Each stage is also timed alone.
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path

import numpy as np
from sqlalchemy import delete

from reviewer.bench import project as scratch
from reviewer.bench.scoring import register_version
from reviewer.core.schema import Score, ScoreLease, utcnow
from reviewer.core.versions import ok_images, version_to_score
from reviewer.review import tallies
from reviewer.scoring import ray_stages
from reviewer.scoring.claims import claim_batch

HOLDER = "bench-holder"  # leases half the pool for the half-size runs


def distinct_pngs(x_pool, images: int, folder: Path) -> list[Path]:
    """``images`` PNGs of pool digits, every file's bytes distinct (ingest keeps one image per
    content): the k-th repeat of a digit has its corner pixel set to k."""
    from PIL import Image as PILImage

    folder.mkdir(parents=True)
    paths = []
    for i in range(images):
        pixels = (x_pool[i % len(x_pool), ..., 0] * 255).astype(np.uint8)
        pixels[0, 0] = (i // len(x_pool)) % 256
        pixels[0, 1] = (i // len(x_pool)) // 256
        paths.append(folder / f"img_{i:06d}.png")
        PILImage.fromarray(pixels).save(paths[-1])
    return paths


def _fresh(project, version) -> None:
    with project.sessions() as session, session.begin():
        session.execute(delete(Score).where(Score.model_version_id == version.id))
        tallies.forget_version(session, version.id)


def _hold_half(project, version, images: int) -> None:
    """Lease half the pool to a holder that never scores it (the half-size run)."""
    with project.sessions() as session, session.begin():
        claim_batch(session, version, HOLDER, images // 2, 3600, utcnow(), suspects=False)


def _release_hold(project) -> None:
    with project.sessions() as session, session.begin():
        session.execute(delete(ScoreLease).where(ScoreLease.worker_id == HOLDER))


def _seconds(project, version, T: int, engine: str, options: dict) -> float:
    """Wall time of one run of ``engine`` over what is unscored and not held."""
    from reviewer.scoring import on_ray
    from reviewer.scoring.worker import Worker

    start = time.perf_counter()
    if engine == "worker":  # as `reviewer worker --once` scores, the BatchBALD pick left out
        Worker(project.sessions, project.store, lease_seconds=600, T=T, batchbald_size=0,
               batch_size=options["batch_size"]).run(once=True, progress=False)  # fmt: skip
    else:
        on_ray.score_pool(project.sessions, project.config, version, T=T,
                          options={**options, "engine": engine})  # fmt: skip
    return time.perf_counter() - start


def _rates(project, version, T: int, engine: str, options: dict, images: int) -> tuple:
    """(images/s of a whole run over the pool, images/s at the margin: the second half's
    images over the time a run over all takes beyond a run over half, start-up left out)."""
    _fresh(project, version)
    _hold_half(project, version, images)
    half = _seconds(project, version, T, engine, options)
    _release_hold(project)
    _fresh(project, version)
    whole = _seconds(project, version, T, engine, options)
    extra = whole - half  # start-up noise can exceed the second half's time on a small pool
    return images / whole, ((images - images // 2) / extra if extra > 0 else None)


def _stage_costs(project, version, T: int, batch_size: int) -> dict:
    """Seconds per image of each stage alone, as the driver runs them: fetch+decode, the
    scorer (sampling, summary, OOD) and the write of the scores rows."""
    from reviewer.scoring import on_ray

    _fresh(project, version)
    view = ray_stages.VersionView.of(version)
    with project.sessions() as session, session.begin():
        claimed = claim_batch(session, version, HOLDER, 10**9, 600, utcnow(), suspects=False)
    rows = {k: [getattr(c, k) or "" for c in claimed] for k in ("id", "path", "given_label")}
    scorer, spent = ray_stages.Scorer(view, T), {"decode_s": 0.0, "sample_s": 0.0, "write_s": 0.0}
    by_id, report = {c.id: c for c in claimed}, on_ray.RayReport()
    scorer(_slice(rows, 0, batch_size, project, view))  # loads and traces once
    for begin in range(0, len(claimed), batch_size):
        start = time.perf_counter()
        loaded = _slice(rows, begin, batch_size, project, view)
        middle = time.perf_counter()
        result = scorer(loaded)
        end = time.perf_counter()
        on_ray.write_batch(project.sessions, version, HOLDER, by_id, result, report)
        spent["decode_s"] += middle - start
        spent["sample_s"] += end - middle
        spent["write_s"] += time.perf_counter() - end
    return {name: seconds / len(claimed) for name, seconds in spent.items()}


def _slice(rows: dict, begin: int, size: int, project, view) -> dict:
    part = {k: v[begin : begin + size] for k, v in rows.items()}
    return ray_stages.fetch_and_decode(
        part, version=view, location=project.config.data_dir, max_decoded_bytes=2**28
    )


def compare(model, data, *, T: int, images: int, batch_size: int, runs: int, work: Path,
            database_url: str | None = None, actors: int = 1) -> dict:  # fmt: skip
    """The three paths on the same ``images`` pool digits, ``runs`` times each (medians)."""
    import ray

    project = scratch.open_project(work / "project", database_url)
    scratch.ingest(project, distinct_pngs(data[2], images, work / "images"))
    register_version(project, model, data[0], data[2][:300], T)
    with project.sessions() as session:
        version = version_to_score(session)
        if (found := ok_images(session)) != images:
            raise RuntimeError(f"the pool holds {found} images, not {images}")
    if not ray.is_initialized():
        ray.init(include_dashboard=False, log_to_driver=False)
    options = dict(batch_size=batch_size, num_gpus=0, actors=actors,
                   location=project.config.data_dir, max_decoded=2**28)  # fmt: skip
    engines = ("worker", "local", "ray")
    found: dict[str, list] = {f"{e}{kind}": [] for e in engines for kind in ("", "_margin")}
    for _ in range(runs):
        for engine in engines:
            whole, margin = _rates(project, version, T, engine, options, images)
            found[engine].append(whole)
            if margin is not None:
                found[f"{engine}_margin"].append(margin)
    costs = _stage_costs(project, version, T, batch_size)
    rates = {name: statistics.median(values or [0.0]) for name, values in found.items()}
    cpus = int(ray.cluster_resources().get("CPU", 0))
    return {"T": T, "images": images, "runs": found, "rates": rates, "costs": costs, "cpus": cpus}


def lines(result: dict) -> list[str]:
    """The comparison as BENCHMARKS.md quotes it."""
    rates, costs = result["rates"], result["costs"]
    spread = {k: f"{min(v):.0f}-{max(v):.0f}" if v else "-" for k, v in result["runs"].items()}
    ms = {k: 1000 * v for k, v in costs.items()}
    out = [
        f"T={result['T']}, {result['images']} images, {len(result['runs']['worker'])} runs, "
        f"a Ray cluster of {result['cpus']} CPUs; median images/s (range), whole run and at "
        "the margin (start-up left out):",
    ]
    for engine, name in (("worker", "reviewer worker"), ("local", "score --engine local"),
                         ("ray", "score --engine ray")):  # fmt: skip
        out.append(
            f"  {name:<22} {rates[engine]:8.1f} ({spread[engine]})   margin "
            f"{rates[engine + '_margin']:8.1f} ({spread[engine + '_margin']})"
        )
    out += [
        f"  ray / worker: {rates['ray'] / rates['worker']:.2f} whole, "
        f"{rates['ray_margin'] / rates['worker_margin']:.2f} at the margin",
        f"  per image, each stage alone: fetch+decode {ms['decode_s']:.3f} ms, scorer (sample, "
        f"summary, OOD) {ms['sample_s']:.3f} ms, write {ms['write_s']:.3f} ms",
    ]
    return out


def report(samples_list, images, runs, batch_size, echo, machine, databases, postgres_url):
    """The benchmark as the command runs it: the default model trained for one epoch, on each
    of ``databases`` (sqlite; postgresql: a throwaway database on ``postgres_url``'s server)."""
    import tempfile
    from contextlib import ExitStack

    from reviewer.bench import scoring as b

    echo("training the default model for 1 epoch on the demo's train digits ...")
    data = b.demo_digits()
    model = b.quick_model(data[0], data[1])
    echo(f"machine: {machine}")
    for T in samples_list:
        for database in databases:
            with ExitStack() as stack:
                work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="rbr-")))
                url = stack.enter_context(
                    scratch.scratch_database(
                        database, work, postgres_url=postgres_url, prefix="reviewer_br"
                    )
                )
                result = compare(model, data, T=T, images=images, batch_size=batch_size,
                                 runs=runs, work=work, database_url=url)  # fmt: skip
            echo(f"database: {database}")
            echo("\n".join(lines(result)) + "\n")
