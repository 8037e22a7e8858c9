"""Pure functions over ``reviewer bench loop``'s curves: a curve is one strategy x seed run's
[(labels, test accuracy)] records, one per round. Labels needed to reach a target, the mean curve
over seeds, and the table relative to random that the benchmark prints.
"""

from __future__ import annotations

import numpy as np

TARGETS = (0.90, 0.95)


def labels_needed(curve: list[tuple[int, float]], target: float) -> int | None:
    """Pure: the first label count whose accuracy reaches ``target``; None if never."""
    return next((n for n, accuracy in curve if accuracy >= target), None)


def summary(curves: dict[str, list[list[tuple[int, float]]]], max_labels: int) -> dict:
    """Pure: per strategy and target, mean labels-needed over the seeds that reached it, how
    many did, and the mean relative to random's (a seed that never reached counts as
    ``max_labels``, a lower bound)."""
    table = {}
    for strategy, runs in curves.items():
        row = {}
        for target in TARGETS:
            needed = [labels_needed(c, target) for c in runs]
            reached = [n for n in needed if n is not None]
            bounded = [max_labels if n is None else n for n in needed]
            row[target] = {
                "mean": float(np.mean(reached)) if reached else None,
                "reached": len(reached),
                "runs": len(runs),
                "bounded_mean": float(np.mean(bounded)),
            }
        table[strategy] = row
    base = table.get("random")
    for row in table.values():
        for target, cell in row.items():
            ref = base[target]["bounded_mean"] if base else None
            cell["vs_random"] = cell["bounded_mean"] / ref if ref else None
    return table


def mean_curve(runs: list[list[tuple[int, float]]]) -> tuple[list[int], list[float]]:
    """Pure: mean accuracy per label count; a run that stopped early keeps its last value."""
    grid = sorted({n for run in runs for n, _ in run})
    last = lambda run, n: next((a for m, a in reversed(run) if m <= n), run[0][1])  # noqa: E731
    return grid, [float(np.mean([last(run, n) for run in runs])) for n in grid]


def report_lines(curves: dict, max_labels: int) -> list[str]:
    """Pure: labels needed per strategy and target, relative to random."""
    table = summary(curves, max_labels)
    head = " | ".join(f"labels to {t:.0%} | vs random" for t in TARGETS)
    lines = [f"| strategy | seeds | {head} |", "|---|---|" + "---|---|" * len(TARGETS)]
    for strategy, row in table.items():
        cells = []
        for target in TARGETS:
            c = row[target]
            mean = f"{c['mean']:.0f}" if c["mean"] is not None else f">{max_labels}"
            if c["mean"] is not None and c["reached"] < c["runs"]:
                mean += f" ({c['reached']}/{c['runs']} reached)"
            cells += [mean, f"{c['vs_random']:.2f}" if c["vs_random"] else "-"]
        lines.append(f"| {strategy} | {len(curves[strategy])} | " + " | ".join(cells) + " |")
    return lines
