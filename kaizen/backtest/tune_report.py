"""Reading a ``kaizen policy tune`` result: the front as a table, and a PNG of every trial."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from kaizen.backtest.report import save_figure

__all__ = ["plot_trials", "tune_table"]


def _f(v: Any, spec: str = ".4f") -> str:
    return "-" if v is None else format(v, spec)


def _changes(values: Mapping[str, Any]) -> str:
    return ", ".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}" for k, v in values.items()) or "(as written)"


def tune_table(result: Mapping[str, Any]) -> str:
    """The Pareto front (one row per member), the held-out comparison and the decision, as plain text."""
    metric = result["metric"]
    trials = {t["number"]: t for t in result["trials"]}
    head = ("TRIAL", f"MEAN {metric.upper()}", "BUILD WORK", "BUILDS", "CPU s", "SETTINGS CHANGED")
    rows = [head]
    for n in result["front"]:
        t = trials[n]
        mark = "*" if n == result["chosen"]["trial"] else " "
        rows.append((f"{n}{mark}", _f(t["metric"]), str(t["build_work"]), str(t["builds"]),
                     _f(t["total_cpu_seconds"], ".1f"), _changes(t["changed"])))
    widths = [max(len(r[i]) for r in rows) for i in range(len(head) - 1)]
    lines = ["  ".join([c.ljust(w) if j == 0 else c.rjust(w) for j, (c, w) in enumerate(zip(r[:-1], widths,
                                                                                         strict=True))] + [r[-1]])
             for r in rows]
    base = trials[0]
    held = result["held_out"]
    failed = sum(t["state"] != "complete" for t in result["trials"])
    notes = [
        f"Pareto front of {len(result['trials'])} trials{f' ({failed} failed)' if failed else ''} on the first "
        f"{len(result['tuning_batches'])} batches of {result['policy']} ({metric}, "
        f"{'higher' if result['higher_is_better'] else 'lower'} is better; build work: rows x model fits), "
        f"seed {result['seed']}; * chosen",
        f"policy as written (trial 0): {metric} {_f(base.get('metric'))}, build work {base.get('build_work')}, "
        f"{_f(base.get('total_cpu_seconds'), '.1f')} CPU s",
        f"held out, the last {len(result['held_out_batches'])} batches, each policy from scratch: "
        f"as written {_f(held['default']['metric'])} ({_f(held['default']['total_cpu_seconds'], '.1f')} CPU s)"
        + (f", chosen {_f(held['chosen']['metric'])} ({_f(held['chosen']['total_cpu_seconds'], '.1f')} CPU s)"
           if "chosen" in held else "")
        + f", never retrained {_f(held['default']['static_metric'])}",
        f"{result['decision']}: {result['reason']}",
    ]
    return "\n".join(lines + [""] + notes)


def plot_trials(result: Mapping[str, Any], path: Path) -> Path:
    """Every trial's tuning metric against its build work (left) and its measured CPU seconds (right); the
    front joined, the policy as written and the chosen trial marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    metric = result["metric"]
    done = [t for t in result["trials"] if t["state"] == "complete"]
    front = [t for t in done if t["on_front"]]
    by_number = {t["number"]: t for t in done}
    fig, axes = plt.subplots(1, 2, figsize=(12, 5), dpi=110, sharey=True)
    for ax, key, label in ((axes[0], "build_work", "build work (rows x model fits; the study's objective)"),
                           (axes[1], "total_cpu_seconds", "Kaizen's CPU seconds on the tuning part (measured)")):
        ax.scatter([t[key] for t in done], [t["metric"] for t in done], s=28, color="tab:gray", alpha=0.6,
                   label="trial")
        pts = sorted((t[key], t["metric"]) for t in front)
        ax.plot([p[0] for p in pts], [p[1] for p in pts], color="tab:blue", lw=1.2, marker="o", ms=6,
                label="Pareto front (metric vs build work)")
        if 0 in by_number:
            t = by_number[0]
            ax.scatter([t[key]], [t["metric"]], marker="s", s=90, facecolors="none", edgecolors="black", lw=1.8,
                       label="policy as written", zorder=5)
        chosen = by_number.get(result["chosen"]["trial"])
        if chosen is not None:
            ax.scatter([chosen[key]], [chosen["metric"]], marker="*", s=220, color="tab:red", zorder=6,
                       label=f"chosen (trial {chosen['number']}; {result['decision']})")
        ax.set_xlabel(label)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel(f"mean prequential {metric} ({'higher' if result['higher_is_better'] else 'lower'} is "
                       "better)")
    axes[0].legend(loc="best", fontsize=8)
    held = result["held_out"]
    sub = f"held out: as written {_f(held['default']['metric'])}" + (
        f", chosen {_f(held['chosen']['metric'])}" if "chosen" in held else "")
    fig.suptitle(f"kaizen policy tune: {result['policy']}, {len(result['trials'])} trials on "
                 f"{len(result['tuning_batches'])} batches (seed {result['seed']}); {sub}", fontsize=10)
    return save_figure(fig, path)
