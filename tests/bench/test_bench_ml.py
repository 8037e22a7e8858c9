"""`reviewer bench scoring / quality / loop`: the pure report math on hand-made inputs, and tiny
smoke runs (marked slow) that check the reports' structure, never their timings or values."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from reviewer.bench import children, quality_report
from reviewer.bench import curves as bench_loop_curves
from reviewer.bench import loop as bench_loop
from reviewer.bench import quality as bench_quality
from reviewer.bench import scoring as bench_scoring
from reviewer.cli import cli
from reviewer.demo import strangers
from tests.support.models import same_weights


def test_rss_summary_flags_growth_after_the_first_pass():
    flat = bench_scoring.rss_summary([(1, 1000), (2, 2000), (3, 2010), (4, 2020)], 2)
    assert flat["first_mib"] == round(1000 / 1024, 1) and flat["max_mib"] == round(2020 / 1024, 1)
    assert flat["growth_after_first_pass"] == pytest.approx(0.01) and flat["flat"]
    assert not bench_scoring.rss_summary([(1, 1000), (2, 1000), (3, 1200)], 2)["flat"]


def test_labels_needed_summary_and_mean_curve():
    fast, slow = [(20, 0.5), (30, 0.91), (40, 0.96)], [(20, 0.5), (30, 0.6), (40, 0.92)]
    assert (
        bench_loop_curves.labels_needed(fast, 0.9) == 30
        and bench_loop_curves.labels_needed(slow, 0.95) is None
    )
    table = bench_loop_curves.summary({"bald": [fast], "random": [slow]}, max_labels=40)
    assert table["bald"][0.9]["mean"] == 30 and table["random"][0.9]["mean"] == 40
    assert table["bald"][0.9]["vs_random"] == pytest.approx(0.75)
    assert table["random"][0.95] == {
        "mean": None, "reached": 0, "runs": 1, "bounded_mean": 40.0, "vs_random": 1.0
    }  # fmt: skip
    grid, means = bench_loop_curves.mean_curve([[(20, 0.4), (30, 0.8)], [(20, 0.6)]])
    assert grid == [20, 30] and means == pytest.approx([0.5, 0.7])  # a stopped run keeps 0.6
    lines = bench_loop_curves.report_lines({"bald": [fast], "random": [slow]}, 40)
    assert lines[2] == "| bald | 1 | 30 | 0.75 | 40 | 1.00 |"


def test_quality_metrics_on_hand_made_scores():
    truth = {
        "a": {"true_label": "1", "given_label": "1", "kind": "digit"},
        "b": {"true_label": "2", "given_label": "7", "kind": "digit"},  # flipped
        "c": {"true_label": "3", "given_label": "3", "kind": "digit"},
        "n": {"true_label": None, "given_label": None, "kind": "noise"},
    }
    scores = {
        "a": {"entropy": 0.1, "ood": 0.0, "predicted": "1"},
        "b": {"entropy": 0.2, "ood": 1.0, "predicted": "2"},
        "c": {"entropy": 0.9, "ood": 0.5, "predicted": "5"},  # the one mistake
        "n": {"entropy": 0.5, "ood": 9.0, "predicted": "0"},
    }
    truth["dup"] = {"true_label": None, "given_label": None, "kind": "noise"}  # never scored
    report = bench_quality.quality_metrics(scores, truth, ["b"], rounds=20)
    assert report["unscored"] == 1
    assert report["k"] == 1 and report["mislabeled_precision"] == 1.0
    assert report["accuracy"] == pytest.approx(2 / 3) and report["mistakes"] == 1
    assert report["mistake_auroc_entropy"] == 1.0
    noise = report["ood"]["noise"]
    assert noise["count"] == 1
    # entropy: the noise (0.5) is above a and b, below c; flagging it flags c too (1 of 3)
    assert noise["methods"]["entropy"] == {"auroc": pytest.approx(2 / 3), "fpr95": 1 / 3}
    assert noise["methods"]["ood"] == {"auroc": 1.0, "fpr95": 0.0}
    assert noise["ood_auroc_interval"] == (1.0, 1.0)
    lines = quality_report.run_lines(report)
    assert (
        "| noise | 1 | 0.667 (0.333) | **1.000** [1.000, 1.000] (0.000 [0.000, 0.000]) |" in lines
    )


def _run(seed, ood_auroc, ood_fpr, knn_auroc, interval=(0.9, 0.99), precision=0.91):
    row = {
        "count": 300,
        "methods": {
            "entropy": {"auroc": 0.9, "fpr95": 0.5},
            "knn_prefix": {"auroc": knn_auroc, "fpr95": 0.2},
            "ood": {"auroc": ood_auroc, "fpr95": ood_fpr},
        },
        "ood_auroc_interval": interval,
    }
    easy = {**row, "methods": {m: {"auroc": 1.0, "fpr95": 0.0} for m in row["methods"]}}
    return {
        "seed": seed,
        "epochs": 5,
        "mislabeled_precision": precision,
        "ood": {"a": row, "b": easy},
    }


def test_quality_summary_names_each_miss_and_the_worst_kind_per_run():
    runs = [
        _run(0, 0.99, 0.05, 0.98),
        _run(1, 0.96, 0.20, 0.975, interval=(0.95, 0.975)),
        _run(2, 0.99, 0.05, 0.98, precision=0.893),
    ]
    lines = quality_report.summary_lines(runs, bench_quality.COMPONENTS)
    assert "| **ood** | 0.990 (0.050) | 0.960 (0.200) | 0.990 (0.050) |" in lines
    assert "| knn_prefix | 0.980 (0.200) | 0.975 (0.200) | 0.980 (0.200) |" in lines
    assert "s0/5e: every goal met" in lines
    assert (
        "s1/5e: a: AUROC 0.960 < 0.97 (the interval contains the goal); a: FPR@95 0.200 > 0.15; "
        "a: AUROC 0.960 below its component's 0.975" in lines
    )
    assert "s2/5e: mislabeled precision 0.893 < 0.9" in lines


@pytest.fixture
def tiny_demo(tmp_path):
    """A demo-shaped folder: 8 train digits per class, 30 pool digits (4 flipped), 3 outliers."""
    from reviewer.demo.data import _mnist

    pixels, labels = _mnist()
    out = tmp_path / "demo"
    rows, label_rows = [], []
    for digit in range(10):
        (out / "train" / str(digit)).mkdir(parents=True)
        for k, i in enumerate(np.flatnonzero(labels == digit)[:8]):
            Image.fromarray(pixels[i]).save(out / "train" / str(digit) / f"t_{k}.png")
    (out / "pool").mkdir()
    picks = [i for digit in range(10) for i in np.flatnonzero(labels == digit)[8:11]]
    for k, i in enumerate(picks):
        name, true = f"img_{k:05d}.png", int(labels[i])
        given = (true + 1) % 10 if k < 4 else true
        Image.fromarray(pixels[i]).save(out / "pool" / name)
        rows.append([name, true, given, "digit"])
        label_rows.append([name, given])
    rng = np.random.default_rng(0)
    for k, kind in enumerate(("noise", "blank", "strokes")):
        image = rng.integers(0, 256, (28, 28), dtype=np.uint8) if kind == "noise" else None
        image = np.full((28, 28), 40 * k, np.uint8) if image is None else image
        Image.fromarray(image).save(out / "pool" / f"img_{100 + k:05d}.png")
        rows.append([f"img_{100 + k:05d}.png", "", "", kind])
    for path, header, body in (
        (out / "truth.csv", ["filename", "true_label", "given_label", "kind"], rows),
        (out / "pool" / "labels.csv", ["filename", "label"], label_rows),
    ):
        with open(path, "w", newline="") as handle:
            csv.writer(handle).writerows([header, *body])
    return out


@pytest.mark.slow
def test_bench_scoring_smoke(tmp_path):
    data = bench_scoring.demo_digits()
    model = bench_scoring.quick_model(data[0][:64], data[1][:64])
    result = bench_scoring.throughput(model, data[2][:16], T=2, runs=1, echo=lambda _: None)
    assert set(result["rates"]) == {"classic", "default", "prefix"}
    assert result["matmul_shape"] == (16, 9216, 256) and result["ratio"] > 0
    assert result["threads"] == tuple(result["threads"]) and len(result["threads"]) == 2
    assert result["cpu_allocator"] == "BFC"  # reviewer.ml.mc turns it on unless told otherwise
    assert any(line.startswith("ratio: ") for line in bench_scoring.throughput_lines(result))
    assert result["sampler_core_ms"] > 0 and result["sampler_cpu"].process > 0
    assert bench_scoring.throughput_lines(result)[-1].startswith("default path: CPU: ")
    memory = bench_scoring.worker_memory(
        model, data, T=2, images=70, passes=2, every=1, work=tmp_path, batch_size=64
    )
    # 2 batches of 64 per pass: 2 passes overlapped, 1 in turn (RSS read at every step)
    assert memory["batches"] == 6 and len(memory["points"]) >= 6
    assert {"first_mib", "last_mib", "max_mib", "flat"} <= set(memory)
    assert len(memory["rates"]) == 2 and memory["images_per_s"] == memory["rates"][1] > 0
    assert memory["in_turn_images_per_s"] > 0 and memory["database"] == "sqlite"
    lines = bench_scoring.memory_lines(
        2, memory, sampler_rate=memory["images_per_s"] * 2, sampler_core_ms=0.5
    )
    assert "images/s after the first pass, 50% of the sampler's" in lines[0]
    assert "on sqlite" in lines[0] and "x overlapped" in lines[0]
    # the CPU of the timed pass (the second): the I/O thread's share of this process's
    assert memory["cpu_images"] == 70 and 0 < memory["io_seconds"] < memory["cpu"].process
    assert "of it the I/O thread" in lines[2] and "the sampler alone needs 0.50" in lines[2]
    waiting = bench_scoring.WaitingSampler(0.002, model)  # 2 ms per image: 0.13 s per batch of 64
    memory = bench_scoring.worker_memory(
        model, data, T=2, images=70, passes=2, every=1, work=tmp_path / "w", batch_size=64,
        sampler=waiting,
    )  # fmt: skip
    assert memory["batches"] == 6 and memory["in_turn_images_per_s"] < 70 / 0.14


@pytest.mark.slow
def test_bench_quality_smoke(tiny_demo, monkeypatch, tmp_path):
    monkeypatch.setattr(bench_quality, "STRANGER_COUNT", 3)
    monkeypatch.setattr(bench_quality, "BOOTSTRAP_ROUNDS", 5)
    out = tmp_path / "quality.json"
    arguments = ["--data", str(tiny_demo), "--epochs", "1", "--samples", "2", "--json", out]
    result = CliRunner().invoke(cli, ["bench", "quality", *map(str, arguments)])
    assert result.exit_code == 0, result.output
    assert "mislabeled precision@4:" in result.output
    assert "pool digits with ood >= 3: " in result.output
    for kind in strangers.KINDS:
        assert f"| {kind} | " in result.output
    for method in ("entropy", "energy", "mahalanobis", "knn_prefix", "**ood**"):
        assert f"| {method} | " in result.output  # the summary's rows
    (run,) = json.loads(out.read_text())
    assert run["seed"] == 0 and run["epochs"] == 1 and set(run["ood"]) == set(strangers.KINDS)
    assert run["cost"]["index_shape"][1] == 1024 and run["cost"]["ood_ms"] > 0


def test_bench_loop_base_project_is_closed_before_the_runs_copy_it(tiny_demo, tmp_path):
    """An open base database keeps a -wal file that SQLite deletes when the last connection
    closes; left to the garbage collector, that happened in the middle of a run's copy."""
    pool, _ = bench_loop._setup(tiny_demo, tmp_path / "base")
    assert len(pool) == 30 and (tmp_path / "base" / "reviewer.db").exists()
    assert not (tmp_path / "base" / "reviewer.db-wal").exists()


@pytest.mark.slow
@pytest.mark.parametrize("jobs", [1, 2])
def test_bench_loop_smoke(tiny_demo, tmp_path, jobs):
    """The real loop, tiny: in this process, and with each run in its own child process."""
    opts = dict(max_labels=25, step=5, subset=8, samples=2, initial_per_class=1, train_steps=3)
    path = tmp_path / "curves.json"
    curves = bench_loop.run(
        data_dir=tiny_demo, work=tmp_path / "work", strategies=["bald", "batchbald", "random"],
        seeds=1, opts=opts, echo=lambda _: None, curves_path=path, jobs=jobs,
    )  # fmt: skip
    for strategy in ("bald", "batchbald", "random"):
        (curve,) = curves[strategy]
        assert [n for n, _ in curve] == [10, 15, 20, 25]  # 1 per class, then 5 a round
        assert all(0.0 <= accuracy <= 1.0 for _, accuracy in curve)
        assert bench_loop.load_finished(path, opts)[strategy][0] == curve
    assert [p.name for p in (tmp_path / "work").iterdir()] == ["base"]  # run copies removed
    from reviewer.cli import bench_ml as cli_bench_ml  # after reviewer.cli, which registers it

    assert cli_bench_ml._plot(curves, tmp_path / "loop.png").stat().st_size > 0


@pytest.mark.slow
def test_bench_loop_keeps_the_running_runs_and_starts_no_more_when_a_child_run_fails(
    tiny_demo, tmp_path
):
    opts = dict(max_labels=15, step=5, subset=8, samples=2, initial_per_class=1, train_steps=2)
    path = tmp_path / "curves.json"
    said = []
    with pytest.raises(Exception, match="no-such-strategy"):
        bench_loop.run(
            data_dir=tiny_demo, work=tmp_path / "work", strategies=["no-such-strategy", "random"],
            seeds=2, opts=opts, echo=said.append, curves_path=path, jobs=2,
        )  # fmt: skip
    # Seed 0 of both ran at once: random's finished run is kept; seed 1 never started.
    finished = bench_loop.load_finished(path, opts)
    assert list(finished) == ["random"] and list(finished["random"]) == [0]
    assert [n for n, _ in finished["random"][0]] == [10, 15]
    assert any(line.startswith("no-such-strategy seed 0: failed:") for line in said)


ORPHAN_SCRIPT = """
import os, threading, time
from pathlib import Path
from reviewer.bench import children
from reviewer.bench import loop as bench_loop

def sleeping_run(base, folder, strategy, seed, pool, test, opts, echo):
    Path(os.environ["CHILD_PID_FILE"]).write_text(str(os.getpid()))
    time.sleep(120)  # a long run under way
    return []

bench_loop.run_one = sleeping_run  # module level: the spawned child re-imports this script

if __name__ == "__main__":
    shared = (Path(os.environ["WORK"]), {}, None, {})
    args = (1, [("random", 0)], lambda *run: None, bench_loop._run_in_folder, shared, print)
    threading.Thread(target=children.run_in_children, args=args, daemon=True).start()
    deadline = time.monotonic() + 60
    while not Path(os.environ["CHILD_PID_FILE"]).exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    os._exit(0)  # the benchmark process dies without shutting its pool down (as on SIGKILL)
"""


def _running(pid: int) -> bool:
    """Alive and not a zombie (Linux /proc)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, ProcessLookupError):
        return False


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc (Linux)")
def test_bench_loop_children_exit_when_the_benchmark_process_dies(tmp_path):
    script, pid_file = tmp_path / "orphan.py", tmp_path / "child.pid"
    script.write_text(ORPHAN_SCRIPT)
    env = {**os.environ, "WORK": str(tmp_path), "CHILD_PID_FILE": str(pid_file)}
    subprocess.run([sys.executable, str(script)], env=env, timeout=90, check=True)
    child = int(pid_file.read_text())
    deadline = time.monotonic() + 10 * children.PARENT_CHECK_SECONDS
    while _running(child) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not _running(child), f"child {child} went on running after its parent died"


@pytest.mark.slow
def test_bench_loop_training_depends_on_its_seed_alone():
    """The same seed gives the same model whatever ran before it in the process (the round
    models choose the labels, so a run is only reproducible when they are)."""
    rng = np.random.default_rng(0)
    x, y = rng.random((12, 28, 28, 1), dtype=np.float32), rng.integers(0, 10, 12)
    first = bench_loop.train_round(x, y, seed=5, steps=1).get_weights()
    bench_loop.train_round(x, y, seed=6, steps=1)
    again = bench_loop.train_round(x, y, seed=5, steps=1).get_weights()
    assert same_weights(first, again)
    other = bench_loop.train_round(x, y, seed=6, steps=1).get_weights()
    assert not same_weights(first, other)


def test_bench_loop_saves_each_run_and_resumes_with_the_same_settings(tmp_path, monkeypatch):
    calls = []

    def fake_run_one(base, folder, strategy, seed, pool, test, opts, echo):
        calls.append((strategy, seed))
        return [(20, 0.5 + seed / 10), (30, 0.9)]

    monkeypatch.setattr(bench_loop, "run_one", fake_run_one)
    monkeypatch.setattr(bench_loop.scratch, "ensure_demo_data", lambda d, w, echo: d)
    monkeypatch.setattr(bench_loop, "_setup", lambda data_dir, base: ({}, (None, [])))
    path = tmp_path / "curves.json"
    opts = dict(max_labels=30, step=10, subset=5, samples=2, initial_per_class=1, train_steps=2)
    run = dict(data_dir=tmp_path, work=tmp_path, strategies=["bald", "random"], opts=opts)
    first = bench_loop.run(**run, seeds=1, echo=lambda _: None, curves_path=path)
    assert calls == [("bald", 0), ("random", 0)]
    calls.clear()
    said = []
    again = bench_loop.run(**run, seeds=2, echo=said.append, curves_path=path)
    assert calls == [("bald", 1), ("random", 1)]  # seed 0 was read back, not run again
    assert f"bald seed 0: taken from {path}" in said
    assert again["bald"] == [first["bald"][0], [(20, 0.6), (30, 0.9)]]
    assert bench_loop.load_finished(path, opts)["random"][1] == [(20, 0.6), (30, 0.9)]
    with pytest.raises(ValueError, match="other settings"):
        bench_loop.load_finished(path, {**opts, "step": 5})


def test_bench_loop_refuses_a_curves_file_of_other_settings(tmp_path):
    path = tmp_path / "curves.json"
    path.write_text('{"settings": {"step": 99}, "runs": {}}')
    result = CliRunner().invoke(cli, ["bench", "loop", "--curves", str(path), "--seeds", "1"])
    assert result.exit_code == 2
    assert "other settings" in result.output and "--curves" in result.output


@pytest.mark.parametrize(
    "option, value", [("--memory-passes", "0"), ("--memory-every", "0"), ("--memory-images", "-1")]
)
def test_bench_scoring_refuses_a_worker_run_it_cannot_time(option, value):
    result = CliRunner().invoke(cli, ["bench", "scoring", option, value])
    assert result.exit_code == 2  # refused before anything is trained or timed
    assert f"Invalid value for '{option}': {value} is not in the range" in result.output
