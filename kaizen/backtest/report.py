"""Reading a backtest result: the summary table, the PNG plot, and the timing-free view."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from kaizen.backtest.peers import PEERS

__all__ = ["TIMING_KEYS", "plot", "summary_table", "without_timings"]

ARM_LABELS = {"kaizen": "kaizen (policy)", "static": "static", "retrain_every_batch": "retrain_every_batch",
              "refit_every_batch": "refit_every_batch", "river_arf": "river_arf (peer)",
              "river_logreg": "river_logreg (peer)"}
#: Keys whose values are measured times (or derived from them): they differ between identical runs.
TIMING_KEYS = ("cpu_seconds", "build_cpu_seconds", "total_cpu_seconds", "wall_seconds", "energy_kwh",
               "co2_grams")


def without_timings(doc: Any) -> Any:
    """``doc`` with every measured time (and the energy derived from it) removed: what a seed fixes."""
    if isinstance(doc, Mapping):
        return {k: without_timings(v) for k, v in doc.items() if k not in TIMING_KEYS}
    if isinstance(doc, list):
        return [without_timings(v) for v in doc]
    return doc


def _f(v: Any, spec: str = ".4f") -> str:
    return "-" if v is None else format(v, spec)


def summary_table(result: Mapping[str, Any]) -> str:
    """A plain-text table, one row per arm, plus kaizen's CPU seconds as a share of each every-batch arm's."""
    metric = result["metric"]
    head = ("ARM", f"MEAN {metric.upper()}", "RETRAINS", "PROMOTIONS", "BUILD CPU s", "TOTAL CPU s", "ENERGY Wh",
            "CO2 g")
    rows = [head]
    for arm, s in result["summary"].items():
        rows.append((ARM_LABELS.get(arm, arm), _f(s["mean_metric"]), str(s["retrains"]), str(s["promotions"]),
                     _f(s["build_cpu_seconds"], ".1f"), _f(s["total_cpu_seconds"], ".1f"),
                     _f(s["energy_kwh"] * 1000, ".3f"), _f(s["co2_grams"], ".2f")))
    widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
    lines = ["  ".join(c.ljust(w) if j == 0 else c.rjust(w) for j, (c, w) in enumerate(zip(r, widths, strict=True)))
             for r in rows]
    k = result["summary"]["kaizen"]
    n = len(result["batches"])
    notes = [f"{n} batches of {result['policy']} ({metric}, {'higher' if result['higher_is_better'] else 'lower'} "
             f"is better), seed {result['seed']}"]
    for arm in ("retrain_every_batch", "refit_every_batch"):
        e = result["summary"].get(arm)
        if e and e["total_cpu_seconds"]:
            notes.append(f"kaizen used {k['total_cpu_seconds'] / e['total_cpu_seconds']:.0%} of {arm}'s CPU seconds")
    if k.get("budget_skips"):
        notes.append(f"{k['budget_skips']} improvement(s) skipped by the daily compute budget")
    peers = [arm for arm in PEERS if arm in result["summary"]]
    if peers:
        notes.append(f"peers ({', '.join(peers)}): streaming learners that learn every label as it arrives; "
                     "their CPU seconds are that learning (docs/backtest.md, \"Peers\")")
    return "\n".join(lines + [""] + notes)


def plot(result: Mapping[str, Any], path: Path) -> Path:
    """Metric per batch for every arm, kaizen's promotions, drift share on a second axis."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    batches = result["batches"]
    x = list(range(len(batches)))
    series = {"kaizen": [b["metric"] for b in batches]}
    series.update({arm: [b["baselines"].get(arm, {}).get("metric") for b in batches]
                   for arm in ("static", "retrain_every_batch", "refit_every_batch", *PEERS)
                   if arm in result["summary"]})
    styles = {"kaizen": dict(color="tab:blue", lw=2.2, marker="o", ms=4),
              "static": dict(color="tab:gray", lw=1.5, ls="--"),
              "retrain_every_batch": dict(color="tab:orange", lw=1.5, ls="-."),
              "refit_every_batch": dict(color="tab:purple", lw=1.5, ls=":", marker=".", ms=4),
              "river_arf": dict(color="tab:olive", lw=1.2, ls="--", marker="x", ms=4),
              "river_logreg": dict(color="tab:cyan", lw=1.2, ls="--", marker="+", ms=5)}
    fig, ax = plt.subplots(figsize=(10, 5), dpi=110)
    ax2 = ax.twinx()
    drift = [b["drift_share"] if b["drift_share"] is not None else 0.0 for b in batches]
    ax2.bar(x, drift, color="tab:red", alpha=0.15, width=0.8, label="drift share (kaizen's monitor)")
    ax2.set_ylim(0, 1)
    ax2.set_ylabel("drift share of feature columns")
    for arm, ys in series.items():
        s = result["summary"][arm]
        ax.plot(x, [float("nan") if v is None else v for v in ys],
                label=f"{ARM_LABELS.get(arm, arm)}: mean {_f(s['mean_metric'])}, "
                      f"{_f(s['total_cpu_seconds'], '.1f')} CPU s",
                **styles[arm])
    promoted = [i for i, b in enumerate(batches) if b["decision"] == "promoted"]
    if promoted:
        # a promotion after batch i serves from batch i + 1: mark it between the two
        ys = [series["kaizen"][i] for i in promoted]
        ax.scatter([i + 0.5 for i in promoted], [float("nan") if v is None else v for v in ys], marker="^", s=90,
                   color="tab:green", zorder=5, label="kaizen promotion (serves from the next batch)")
    ax.set_xticks(x)
    ax.set_xticklabels([str(i) for i in x], fontsize=8)
    ax.set_xlabel("batch (scored before its labels are revealed)")
    ax.set_ylabel(f"{result['metric']} ({'higher' if result['higher_is_better'] else 'lower'} is better)")
    ax.set_zorder(ax2.get_zorder() + 1)
    ax.patch.set_visible(False)
    h1, l1 = ax.get_legend_handles_labels()
    h2, l2 = ax2.get_legend_handles_labels()
    ax.legend(h1 + h2, l1 + l2, loc="best", fontsize=8)
    ax.set_title(f"kaizen backtest: {result['policy']} over {len(batches)} batches (seed {result['seed']})")
    return save_figure(fig, path)


def save_figure(fig: Any, path: Path | str) -> Path:
    """Lay out ``fig``, write it to ``path`` (its folder made) and close it."""
    import matplotlib.pyplot as plt

    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path
