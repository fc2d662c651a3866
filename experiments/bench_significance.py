"""Benchmark: the fixed promotion margin vs the significance gate, on a backtest stream.

The same stream (experiments/streams.py), seed and policy (experiments/bench_backtest.py's) are
replayed with :func:`kaizen.backtest.run_backtest` once per arm (``--arms``), each a ``gates.promotion_test``:

* ``margin``: the ``improvement`` gate, promote when the holdout gain reaches ``min_improvement``;
* ``significance``: the ``significance`` gate, promote when the lower bound of the 95 % paired
  bootstrap interval of the gain is above ``min_effect`` (0); ``significance@0.8``: the same at
  ``gates.confidence = 0.8``.

For each arm it reports the promotions, the building cycles and their gate verdicts, the mean
prequential metric over the stream and the CPU spent. For every cycle that judged a challenger
it keeps the holdout gain (and, for the significance arm, its interval): a promotion whose gain
is within the noise is what the significance gate is meant to reject, a gain far outside it what
it must still pass. The figure ``bench_significance-STREAM.png`` shows both arms' metric per batch
with their promotions (top) and each judged challenger's gain with its interval (bottom).

Usage::

    python experiments/bench_significance.py [--stream churn-recurring] [--seed 0] [--trials 6] [--batches N]
        [--eager] [--strategy refit]

``--eager`` replaces the trigger with one that fires whenever the window's metric is at or below
the baseline, so most builds happen where nothing changed and every gain is noise; ``--strategy``
pins the build rung (``refit``: both arms judge the same kind of candidate, one per build).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import shutil
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from kaizen._env import prepare  # noqa: E402

prepare()  # before numpy/scikit-learn load

from experiments.bench_backtest import policy_toml  # noqa: E402
from experiments.streams import STREAMS, make_stream  # noqa: E402

RESULTS = ROOT / "experiments" / "results"
#: arms: a promotion test, optionally "@" a confidence level ("significance@0.8")
ARMS = ("margin", "significance")
COLORS = ("tab:orange", "tab:blue", "tab:green", "tab:purple")
GAIN_GATES = ("improvement", "significance")


def with_test(toml: str, arm: str) -> str:
    """``toml`` (a policy) with ``gates.promotion_test`` (and ``gates.confidence``) of ``arm``."""
    assert "\n[gates]\n" in toml
    test, _, level = arm.partition("@")
    extra = f'promotion_test = "{test}"\n' + (f"confidence = {float(level)}\n" if level else "")
    return toml.replace("\n[gates]\n", f"\n[gates]\n{extra}", 1)


def eager(toml: str, strategy: str | None) -> str:
    """``toml`` with a trigger that fires whenever the window's metric is at or below the baseline (no
    margin, no hysteresis, no cooldown, no re-baselining), and ``build.strategy`` pinned when given.

    Most of its builds then happen on windows where nothing changed: every gain the gate sees there
    is noise, which is what a promotion test must tell apart from the real gains after a drift.
    """
    lines = []
    for line in toml.splitlines():
        if line.startswith("performance_drop = "):
            line = ("performance_drop = 0.0\nperformance_drop_se = false\nconsecutive = 1\ncooldown_batches = 0\n"
                    "rebaseline_after = false")
        lines.append(line)
        if line == "[build]" and strategy:
            lines.append(f'strategy = "{strategy}"')
    return "\n".join(lines)


def judged(records: list[Any]) -> list[dict[str, Any]]:
    """One row per cycle that judged a challenger: its batch, decision and holdout gain (with interval)."""
    out = []
    for i, r in enumerate(records):
        gate = next((g for g in r.gates or () if g["name"] in GAIN_GATES), None)
        if gate is None:
            continue
        n = gate["numbers"]
        out.append({"batch": i, "decision": r.decision, "gate": gate["name"], "passed": gate["passed"],
                    "failed": [g["name"] for g in r.gates if not g["passed"]],
                    "gain": n.get("improvement"), "ci_low": n.get("ci_low"), "ci_high": n.get("ci_high"),
                    "champion": n.get("champion"), "challenger": n.get("challenger"), "rows": n.get("rows"),
                    "rung": (r.challenger or {}).get("rung")})
    return out


def run_arm(name: str, test: str, data: Path, toml: str, seed: int) -> dict[str, Any]:
    from kaizen.backtest import run_backtest
    from kaizen.ledger import Ledger
    from kaizen.policy import load_policy

    pol_path = data / f"policy-{test.replace('@', '-')}.toml"
    pol_path.write_text(with_test(toml, test))
    state = data / f"state-{test.replace('@', '-')}"
    shutil.rmtree(state, ignore_errors=True)
    t0 = time.perf_counter()
    try:
        result = run_backtest(load_policy(pol_path), data / "incoming", seed=seed, progress=True, state_dir=state)
        records = [r for r in Ledger(state / "state" / "promotion-log.jsonl").records()
                   if r.policy == name and r.kind == "cycle"]
    finally:
        shutil.rmtree(state, ignore_errors=True)
    k = result["summary"]["kaizen"]
    return {"arm": test, "mean_metric": k["mean_metric"], "promotions": k["promotions"],
            "builds": k["retrains"], "decisions": k.get("decisions"), "cpu_seconds": k["total_cpu_seconds"],
            "build_cpu_seconds": k["build_cpu_seconds"], "wall_seconds": round(time.perf_counter() - t0, 1),
            "static_mean_metric": result["summary"]["static"]["mean_metric"],
            "metric_per_batch": [b["metric"] for b in result["batches"]],
            "static_per_batch": [b["baselines"]["static"]["metric"] for b in result["batches"]],
            "promoted_after": [b["index"] for b in result["batches"] if b["decision"] == "promoted"],
            "judged": judged(records)}


def plot(name: str, metric: str, drift: dict[int, str], arms: dict[str, dict[str, Any]], path: Path,
         margin: float) -> None:
    import matplotlib
    import numpy as np

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (top, bottom) = plt.subplots(2, 1, figsize=(10, 7.5), dpi=110, sharex=True,
                                      gridspec_kw={"height_ratios": [3, 2]})
    colors = dict(zip(arms, COLORS, strict=False))
    offsets = dict(zip(arms, np.linspace(-0.15, 0.15, len(arms)), strict=True))
    any_arm = next(iter(arms.values()))
    x = list(range(len(any_arm["metric_per_batch"])))
    top.plot(x, any_arm["static_per_batch"], color="tab:gray", ls="--", lw=1.2,
             label=f"static champion: mean {any_arm['static_mean_metric']:.4f}")
    for test, a in arms.items():
        ys = [float("nan") if v is None else v for v in a["metric_per_batch"]]
        top.plot(x, ys, color=colors[test], marker="o", ms=3.5, lw=1.8,
                 label=f"{test}: mean {a['mean_metric']:.4f}, {a['promotions']} promotions, "
                       f"{a['builds']} builds, {a['cpu_seconds']:.0f} CPU s")
        for i in a["promoted_after"]:
            top.axvline(i + 0.5 + offsets[test] / 3, color=colors[test], alpha=0.4, lw=1.5)
    for p, kind in drift.items():
        top.axvline(p - 0.5, color="tab:red", alpha=0.5, lw=1)
        top.text(p - 0.45, top.get_ylim()[0], kind, color="tab:red", fontsize=8, va="bottom")
    top.set_ylabel(f"prequential {metric}")
    top.set_title(f"{name}: fixed margin vs significance gate (vertical lines: promotions after a batch)")
    top.legend(fontsize=8, loc="lower left")
    bottom.axhline(0, color="black", lw=0.8)
    bottom.axhline(margin, color="tab:orange", ls=":", lw=1, label=f"min_improvement = {margin:g}")
    for test, a in arms.items():
        off = offsets[test]
        for j in a["judged"]:
            if j["gain"] is None:
                continue
            xx = j["batch"] + off
            face = colors[test] if j["decision"] == "promoted" else "white"
            if j["ci_low"] is not None:
                bottom.errorbar([xx], [j["gain"]], yerr=[[j["gain"] - j["ci_low"]], [j["ci_high"] - j["gain"]]],
                                color=colors[test], lw=1, capsize=2)
            bottom.plot([xx], [j["gain"]], marker="o", ms=6, mec=colors[test], mfc=face, ls="none")
    bottom.plot([], [], marker="o", mec="black", mfc="black", ls="none", label="promoted")
    bottom.plot([], [], marker="o", mec="black", mfc="white", ls="none", label="rejected")
    bottom.set_ylabel("holdout gain of the judged challenger")
    bottom.set_xlabel("batch")
    bottom.legend(fontsize=8, loc="upper right")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--stream", default="churn-recurring", choices=sorted(STREAMS))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--trials", type=int, default=6)
    ap.add_argument("--batches", type=int, default=None, help="replay only the first N batches (a quick check)")
    ap.add_argument("--arms", nargs="+", default=list(ARMS),
                    help='promotion tests to compare, e.g. margin significance significance@0.8')
    ap.add_argument("--eager", action="store_true",
                    help="a trigger that fires whenever the metric is at or below the baseline (many noisy builds)")
    ap.add_argument("--strategy", choices=("ladder", "refit", "small", "full"), default=None,
                    help="pin build.strategy (default: the policy's ladder)")
    args = ap.parse_args(argv)

    from kaizen.logs import configure

    configure(30)
    spec = STREAMS[args.stream]
    if args.batches is not None:
        spec = dataclasses.replace(spec, n_batches=args.batches)
    sc = make_stream(spec, seed=args.seed)
    data = RESULTS / "streams" / f"significance-{args.stream}{'-eager' if args.eager else ''}"
    shutil.rmtree(data / "incoming", ignore_errors=True)
    sc.write(data)
    toml = policy_toml(args.stream, sc.task, data, args.trials, args.seed, golden=spec.world == "churn")
    if args.eager or args.strategy:
        toml = eager(toml, args.strategy) if args.eager else toml.replace(
            "[build]", f'[build]\nstrategy = "{args.strategy}"', 1)
    label = args.stream + ("-eager" if args.eager else "") + (f"-{args.strategy}" if args.strategy else "") + (
        f"-{args.batches}b" if args.batches is not None else "")
    margin = 0.005 if sc.task == "binary_classification" else 0.01
    arms = {arm: run_arm(args.stream, arm, data, toml, args.seed) for arm in args.arms}
    metric = "roc_auc" if sc.task == "binary_classification" else "rmse"
    out = {"stream": args.stream, "eager_trigger": args.eager, "strategy": args.strategy or "ladder",
           "seed": args.seed, "trials": args.trials, "batches": len(sc.batches),
           "drift_points": sc.drift_points, "metric": metric, "min_improvement": margin, "arms": arms}
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"bench_significance-{label}.json").write_text(json.dumps(out, indent=2, default=str) + "\n")
    plot(label, metric, sc.drift_points, arms, RESULTS / f"bench_significance-{label}.png", margin)
    print(f"\n== {label}: {len(sc.batches)} batches, drift at {sc.drift_points}, seed {args.seed} ==")
    for test, a in arms.items():
        print(f"{test:>16}: mean {metric} {a['mean_metric']:.4f} (static {a['static_mean_metric']:.4f}), "
              f"{a['promotions']} promotions after batches {a['promoted_after']}, {a['builds']} builds, "
              f"{a['cpu_seconds']:.1f} CPU s, decisions {a['decisions']}")
        for j in a["judged"]:
            ci = "" if j["ci_low"] is None else f" CI [{j['ci_low']:+.4f}, {j['ci_high']:+.4f}]"
            print(f"    batch {j['batch']:>2}: {j['decision']:<9} {j['gate']} gain {j['gain']:+.4f}{ci} on "
                  f"{j['rows']} rows (rung {j['rung']}; failed {j['failed'] or '-'})")
    print(f"\nresults: {RESULTS / f'bench_significance-{label}.json'} and .png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
