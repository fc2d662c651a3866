"""Benchmark the monitor step on a large window: run_monitor against Evidently's uncapped preset.

    OMP_NUM_THREADS=1 .venv/bin/python experiments/bench_monitor_large.py [--rows 1000000] [--arms kaizen evidently]
        [--drift-method ks --drift-threshold 0.05]

A seeded reference and window of ``--rows`` rows each × 20 feature columns (14 numerical, 6
categorical; 7 of them drifted, two of those only in the window's newest rows, several
moved a little but below the threshold, one numerical column with missing and infinite
values), a 30 % labelled target and the champion's scores on both sides. The policy is the
default one (``wasserstein`` 0.1 for numerical columns, its fallback ``jensenshannon`` 0.1 for
categorical ones, prediction drift ``wasserstein`` 0.15, ``[monitor] max_rows = 50000``);
``--drift-method``/``--drift-threshold`` set ``[trigger] drift_method``/``drift_threshold`` instead
(a p-value method's verdict depends on the row count, so it agrees less with the uncapped preset).

Each arm runs in its own fresh subprocess, which builds the frames itself, imports its
libraries (timed apart: a daemon pays that once), then runs the step:

- ``kaizen``: :func:`kaizen.monitor.run_monitor` with the champion's predictions (feature drift,
  prediction drift, the champion's roc_auc on the labelled rows), the reference side not cached
  (``cold``: what a cycle after a promotion or a restart pays), then once more with the profile
  cached (``warm``: every later quiet cycle of the service);
- ``evidently``: Evidently's ``DataDriftPreset`` on every row of both frames (no sampling), with
  Kaizen's per-column methods and thresholds (``per_column_method``/``per_column_threshold``) and
  the scores as one more column for prediction drift; ``Dataset.from_pandas`` for both frames,
  ``Report.run`` and reading the JSON are the step.

Figures: CPU seconds of the process (``time.process_time``) and wall seconds of the step, the
process's peak RSS (``ru_maxrss``: frames included) and its RSS before the step, and the share of
the 20 feature columns whose drift verdict agrees between the arms (the prediction-drift verdict
apart). Prints a table and one JSON object; ``target_met``: Kaizen's cold step at most 2 CPU
seconds and 2 wall seconds, peak RSS at most 1 GiB, agreement at least 95 %.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

TARGET_SECONDS = 2.0
TARGET_RSS_MB = 1024.0
TARGET_AGREEMENT = 0.95
POLICY = """[model]
name = "bench"
task = "binary_classification"
target = "y"
metric = "roc_auc"
[data]
reference = "reference.parquet"
production = "production"
"""
#: numerical columns: (name, how the window differs from the reference)
NUMERICAL = [("n00", "same"), ("n01", "same"), ("n02", "same"), ("n03", "same"), ("n04", "same"),
             ("n05", "same"), ("n06", "shift 0.03"), ("n07", "shift 0.06"), ("n08", "shift 0.15"),
             ("n09", "shift 0.5"), ("n10", "scale 1.4"), ("n11", "newest 10 % shifted by 1.5"),
             ("n12", "same, 5 % missing and 1 % inf"), ("n13", "poisson mean 3 -> 3.1")]
CATEGORICAL = [("c0", "same, 5 levels"), ("c1", "same, 3 levels"), ("c2", "same, 50 levels"),
               ("c3", "3 levels moved by 0.2"), ("c4", "5 levels moved a little"),
               ("c5", "binary, newest 30 %: 30 -> 90 % yes")]


def make_frames(rows: int, seed: int) -> tuple[Any, Any, Any, Any]:
    """(reference, window, reference predictions, window predictions), seeded, rows in time order."""
    import pandas as pd

    from kaizen.data.predictions import Predictions

    def side(rng: np.random.Generator, drift: bool) -> tuple[pd.DataFrame, Predictions]:
        k = 1.0 if drift else 0.0
        n = rows
        cols: dict[str, Any] = {}
        for i in range(6):
            cols[f"n0{i}"] = (rng.normal(size=n), rng.lognormal(size=n), rng.uniform(size=n))[i % 3]
        for name, shift in (("n06", 0.03), ("n07", 0.06), ("n08", 0.15), ("n09", 0.5)):
            cols[name] = rng.normal(loc=k * shift, size=n)
        cols["n10"] = rng.normal(scale=1 + 0.4 * k, size=n)
        late = rng.normal(size=n)
        late[int(n * 0.9):] += 1.5 * k
        cols["n11"] = late
        dirty = rng.exponential(size=n)
        dirty[rng.random(n) < 0.05] = np.nan
        dirty[rng.random(n) < 0.01] = np.inf
        cols["n12"] = dirty
        cols["n13"] = rng.poisson(3 + 0.1 * k, size=n).astype(float)

        def cat(levels: list[str], p: list[float]) -> np.ndarray:
            return np.array(levels, dtype=object)[rng.choice(len(levels), size=n, p=p)]

        cols["c0"] = cat(list("abcde"), [0.4, 0.3, 0.15, 0.1, 0.05])
        cols["c1"] = cat(["basic", "plus", "pro"], [0.5, 0.3, 0.2])
        zipf = 1 / np.arange(1, 51)
        cols["c2"] = cat([f"city{i:02d}" for i in range(50)], list(zipf / zipf.sum()))
        cols["c3"] = cat(["web", "app", "store"], [0.5 - 0.2 * k, 0.3, 0.2 + 0.2 * k])
        cols["c4"] = cat(list("vwxyz"), [0.3 - 0.03 * k, 0.25, 0.2, 0.15, 0.1 + 0.03 * k])
        binary = cat(["no", "yes"], [0.7, 0.3])
        tail = int(n * 0.7)
        binary[tail:] = np.array(["no", "yes"], dtype=object)[(rng.random(n - tail) < 0.3 + 0.6 * k).astype(int)]
        cols["c5"] = binary
        frame = pd.DataFrame(cols)
        logit = cols["n00"] + cols["n09"] - 0.5 * (cols["c3"] == "store")
        truth = rng.random(n) < 1 / (1 + np.exp(-logit))
        frame["y"] = np.where(rng.random(n) < 0.3, truth.astype(float), np.nan)
        scores = 1 / (1 + np.exp(-(logit + rng.normal(scale=0.5, size=n))))
        return frame, Predictions((scores > 0.5).astype(int), scores)

    rng = np.random.default_rng(seed)
    ref, ref_p = side(rng, drift=False)
    cur, cur_p = side(rng, drift=True)
    return ref, cur, ref_p, cur_p


def _rss_now_mb() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kB on Linux


def _timed(fn: Any) -> tuple[float, float, Any]:
    cpu, wall = time.process_time(), time.perf_counter()
    out = fn()
    return time.process_time() - cpu, time.perf_counter() - wall, out


def child(arm: str, rows: int, seed: int, trigger: str = "") -> dict[str, Any]:
    """One arm in this (fresh) process: build the data, import, run the step, measure."""
    from kaizen._env import prepare

    prepare()
    warnings.simplefilter("ignore", RuntimeWarning)  # Evidently's pandas on the infinite values of n12
    from kaizen.data.schema import infer_schema
    from kaizen.monitor.methods import plan_columns
    from kaizen.policy import load_policy

    ref, cur, ref_p, cur_p = make_frames(rows, seed)
    schema = infer_schema(ref, target="y")
    folder = Path(tempfile.mkdtemp(prefix="kaizen-bench-monitor-"))
    (folder / "policy.toml").write_text(POLICY + (f"[trigger]\n{trigger}\n" if trigger else ""))
    policy = load_policy(folder / "policy.toml")
    out: dict[str, Any] = {"arm": arm, "rows": rows, "peak_rss_after_data_mb": _peak_rss_mb()}
    if arm == "kaizen":
        def imports() -> None:
            import evidently.legacy.calculations.stattests  # noqa: F401
            import sklearn.metrics  # noqa: F401

            import kaizen.monitor.drift  # noqa: F401
    else:
        def imports() -> None:
            import evidently.presets  # noqa: F401
    out["import_cpu_s"], out["import_wall_s"], _ = _timed(imports)
    out["rss_before_step_mb"] = _rss_now_mb()
    if arm == "kaizen":
        from kaizen.monitor import ReferenceCache, run_monitor

        cache = ReferenceCache()

        def step() -> Any:
            return run_monitor(ref, cur, schema=schema, policy=policy, reference_predictions=ref_p,
                               current_predictions=cur_p, reference_key="bench", cache=cache, seed=seed)

        out["cpu_s"], out["wall_s"], res = _timed(step)
        out["peak_rss_mb"] = _peak_rss_mb()
        out["warm_cpu_s"], out["warm_wall_s"], again = _timed(step)
        assert again.reference_cached and again.to_dict() == res.to_dict()
        record = res.to_dict()
        out["verdicts"] = {c["column"]: [c["method"], c["threshold"], c["score"], c["drifted"]]
                           for c in record["columns"]}
        pred = record["prediction_drift"]
        out["prediction"] = [pred["method"], pred["threshold"], pred["score"], pred["drifted"]]
        out["champion_metric"] = record["champion_metric"]
        out["sample"] = record.get("sample")
    else:
        from evidently import DataDefinition, Dataset, Report
        from evidently.presets import DataDriftPreset

        plan = plan_columns(schema, policy)
        method = {p.name: p.evidently_method for p in plan} | {"prediction": "wasserstein"}
        threshold = {p.name: float(p.drift.threshold) for p in plan} | {
            "prediction": float(policy.trigger.prediction_drift_threshold)}
        numerical = [*schema.numerical, "prediction"]
        columns = [*schema.features, "prediction"]
        ref_frame = ref[list(schema.features)].assign(prediction=ref_p.scores)
        cur_frame = cur[list(schema.features)].assign(prediction=cur_p.scores)
        del ref, cur  # the preset gets the feature frames, as a caller would hand them over

        def step() -> dict[str, Any]:
            dd = DataDefinition(numerical_columns=numerical, categorical_columns=list(schema.categorical))
            snap = Report([DataDriftPreset(columns=columns, per_column_method=method,
                                           per_column_threshold=threshold)], include_tests=True).run(
                Dataset.from_pandas(cur_frame, data_definition=dd), Dataset.from_pandas(ref_frame, data_definition=dd))
            return json.loads(snap.json())

        out["cpu_s"], out["wall_s"], parsed = _timed(step)
        out["peak_rss_mb"] = _peak_rss_mb()
        scores = {m["config"]["column"]: (m["config"].get("method"), m["config"].get("threshold"), m["value"])
                  for m in parsed["metrics"] if m["config"]["type"].endswith(":ValueDrift")}
        failed = {t["metric_config"]["params"]["column"]: t["status"] == "FAIL" for t in parsed["tests"]
                  if t["metric_config"]["params"]["type"].endswith(":ValueDrift")}
        verdicts = {c: [*scores[c], failed[c]] for c in columns}
        out["prediction"] = verdicts.pop("prediction")
        out["verdicts"] = verdicts
    return out


def run_arm(arm: str, rows: int, seed: int, trigger: str) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "out.json"
        subprocess.run([sys.executable, __file__, "--child", arm, "--rows", str(rows), "--seed", str(seed),
                        "--trigger", trigger, "--out", str(path)], check=True)
        return json.loads(path.read_text())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--arms", nargs="+", default=["kaizen", "evidently"], choices=["kaizen", "evidently"])
    parser.add_argument("--drift-method", help="[trigger] drift_method (default: the policy default, wasserstein)")
    parser.add_argument("--drift-threshold", type=float, help="[trigger] drift_threshold")
    parser.add_argument("--child", choices=["kaizen", "evidently"], help=argparse.SUPPRESS)
    parser.add_argument("--trigger", default="", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        Path(args.out).write_text(json.dumps(child(args.child, args.rows, args.seed, args.trigger)))
        return

    trigger = "\n".join(([f'drift_method = "{args.drift_method}"'] if args.drift_method else [])
                        + ([f"drift_threshold = {args.drift_threshold}"] if args.drift_threshold is not None else []))
    results = {arm: run_arm(arm, args.rows, args.seed, trigger) for arm in args.arms}
    print(f"{args.rows:,} rows a side x {len(NUMERICAL) + len(CATEGORICAL)} columns, seed {args.seed}"
          + (f"; [trigger] {trigger.replace(chr(10), ', ')}" if trigger else ""))
    print(f"{'arm':<10} {'import cpu s':>12} {'step cpu s':>10} {'step wall s':>11} {'warm cpu s':>10} "
          f"{'rss before MB':>13} {'peak rss MB':>11}")
    for arm, r in results.items():
        warm = f"{r['warm_cpu_s']:.2f}" if "warm_cpu_s" in r else "-"
        print(f"{arm:<10} {r['import_cpu_s']:>12.2f} {r['cpu_s']:>10.2f} {r['wall_s']:>11.2f} {warm:>10} "
              f"{r['rss_before_step_mb']:>13.0f} {r['peak_rss_mb']:>11.0f}")
    summary: dict[str, Any] = {"rows": args.rows, "seed": args.seed, "trigger": trigger,
                               "arms": {a: {k: v for k, v in r.items() if k not in ("verdicts", "prediction")}
                                        for a, r in results.items()}}
    if {"kaizen", "evidently"} <= set(results):
        kz, ev = results["kaizen"]["verdicts"], results["evidently"]["verdicts"]
        agree = [c for c in kz if kz[c][3] == ev[c][3]]
        print(f"{'column':<7} {'change':<32} {'method':<14} {'kaizen score':>12} {'evidently':>10} verdicts")
        for name, change in NUMERICAL + CATEGORICAL:
            k, e = kz[name], ev[name]
            mark = ("drift" if k[3] else "-") + (" = " if k[3] == e[3] else " != ") + ("drift" if e[3] else "-")
            print(f"{name:<7} {change:<32} {k[0]:<14} {k[2] if k[2] is not None else float('nan'):>12.4f} "
                  f"{e[2]:>10.4f} {mark}")
        kp, ep = results["kaizen"]["prediction"], results["evidently"]["prediction"]
        share = len(agree) / len(kz)
        print(f"verdicts agree on {len(agree)}/{len(kz)} columns ({share:.0%}); prediction drift "
              f"{kp[2]:.4f} vs {ep[2]:.4f}, {'agrees' if kp[3] == ep[3] else 'DISAGREES'}")
        k = results["kaizen"]
        summary |= {"agreement": share, "disagreeing": sorted(set(kz) - set(agree)),
                    "methods_equal": all(kz[c][0] == ev[c][0] or (kz[c][0], ev[c][0]) == ("energy", "ed")
                                         for c in kz),
                    "prediction_agrees": kp[3] == ep[3],
                    "target_met": bool(k["cpu_s"] <= TARGET_SECONDS and k["wall_s"] <= TARGET_SECONDS
                                       and k["peak_rss_mb"] <= TARGET_RSS_MB and share >= TARGET_AGREEMENT)}
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
