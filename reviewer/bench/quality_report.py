"""The text of ``reviewer bench quality``: one run's figures and table (method x kind, AUROC and
FPR at 95% TPR, `ood` in bold with its bootstrap intervals), and the summary over several runs
(seeds x budgets) against the goals. Pure: report dicts in, lines out."""

from __future__ import annotations

GOAL_AUROC, GOAL_FPR, GOAL_PRECISION = 0.97, 0.15, 0.90
NOISE = 0.005  # "below its best component by more than noise": more than this AUROC


def _f(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def _interval(pair) -> str:
    return "" if pair is None else f" [{pair[0]:.3f}, {pair[1]:.3f}]"


def run_lines(r: dict) -> list[str]:
    """One run: its figures, then per kind every method's AUROC (FPR@95)."""
    head = f"seed {r.get('seed')}, {r.get('epochs')} epochs"
    lines = [
        f"{head}: pool digits {r['digits']}; model accuracy on them {r['accuracy']:.3f}; "
        f"{r['unscored']} duplicate images share another's row",
        f"mislabeled precision@{r['k']}: {r['mislabeled_precision']:.3f} (goal >= 0.90)",
        f"entropy AUROC for the model's {r['mistakes']} mistakes: {r['mistake_auroc_entropy']:.3f}",
    ]
    if not r["ood"]:
        return lines
    methods = list(next(iter(r["ood"].values()))["methods"])
    lines += [
        "AUROC (FPR at 95% TPR) with each kind as positives against the pool's digits; "
        "`ood` with its bootstrap 95% intervals:",
        "| kind | n | " + " | ".join(methods) + " |",
        "|---|---|" + "---|" * len(methods),
    ]
    for kind, row in r["ood"].items():
        cells = []
        for method in methods:
            m = row["methods"][method]
            cell = f"{_f(m['auroc'])} ({_f(m['fpr95'])})"
            if method == "ood":
                cell = (
                    f"**{_f(m['auroc'])}**{_interval(row.get('ood_auroc_interval'))} "
                    f"({_f(m['fpr95'])}{_interval(row.get('ood_fpr95_interval'))})"
                )
            cells.append(cell)
        lines.append(f"| {kind} | {row['count']} | " + " | ".join(cells) + " |")
    if "digits_ood_at_least_3" in r:
        lines.append(
            f"pool digits with ood >= 3: {r['digits_ood_at_least_3']:.2%} "
            "(0.1% if its two signals were independent)"
        )
    cost = r.get("cost")
    if cost:
        rows, dim = cost["index_shape"]
        lines.append(
            f"ood's cost: {cost['ood_ms']:.3f} ms per image beside the sampler's "
            f"{cost['sample_ms']:.3f} ms at T={r.get('T')}; neighbour index {rows} x {dim} "
            f"float32 = {cost['index_mib']:.1f} MiB"
        )
    return lines


def _misses(r: dict, components) -> list[str]:
    """What keeps one run from the goals (kinds where `ood` misses, or trails a component; the
    mislabel precision)."""
    out = []
    if r["mislabeled_precision"] < GOAL_PRECISION:
        out.append(f"mislabeled precision {r['mislabeled_precision']:.3f} < {GOAL_PRECISION}")
    for kind, row in r["ood"].items():
        ours = row["methods"]["ood"]
        high = (row.get("ood_auroc_interval") or (None, 1.0))[1]
        if ours["auroc"] < GOAL_AUROC:
            within = " (the interval contains the goal)" if high >= GOAL_AUROC else ""
            out.append(f"{kind}: AUROC {ours['auroc']:.3f} < {GOAL_AUROC}{within}")
        if ours["fpr95"] > GOAL_FPR:
            out.append(f"{kind}: FPR@95 {ours['fpr95']:.3f} > {GOAL_FPR}")
        best = max(row["methods"][c]["auroc"] for c in components if c in row["methods"])
        if ours["auroc"] < best - NOISE:
            out.append(f"{kind}: AUROC {ours['auroc']:.3f} below its component's {best:.3f}")
    return out


def summary_lines(runs: list[dict], components) -> list[str]:
    """Over the runs: per method its worst AUROC and FPR@95 over the kinds in each run, then
    the goals met or the misses, per run."""
    methods = list(next(iter(runs[0]["ood"].values()))["methods"])
    label = lambda r: f"s{r['seed']}/{r['epochs']}e"  # noqa: E731
    lines = [
        "worst kind per run, AUROC (FPR@95 of the worst kind by FPR): "
        + ", ".join(label(r) for r in runs),
        "| method | " + " | ".join(label(r) for r in runs) + " |",
        "|---|" + "---|" * len(runs),
    ]
    for method in methods:
        cells = []
        for r in runs:
            rows = [row["methods"][method] for row in r["ood"].values()]
            worst = min(m["auroc"] for m in rows)
            cells.append(f"{worst:.3f} ({max(m['fpr95'] for m in rows):.3f})")
        name = f"**{method}**" if method == "ood" else method
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    precision = ", ".join(f"{r['mislabeled_precision']:.3f}" for r in runs)
    lines.append(f"mislabeled precision@k per run: {precision} (goal >= {GOAL_PRECISION})")
    for r in runs:
        misses = _misses(r, components)
        lines.append(f"{label(r)}: " + ("; ".join(misses) if misses else "every goal met"))
    lines.append(
        f"goals: `ood` AUROC >= {GOAL_AUROC} and FPR@95 <= {GOAL_FPR} on every kind, on every "
        f"run, never more than {NOISE} below its best component ({', '.join(components)})"
    )
    return lines
