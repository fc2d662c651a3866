"""Benchmark ``build.pruning``: the same trial budget with and without successive halving.

    OMP_NUM_THREADS=1 .venv/bin/python experiments/bench_pruning.py [--trials 20] [--seeds 0 1] [--rows 3000]
        [--equal-cpu] [--datasets churn classification friedman1] [--out experiments/results/bench_pruning.json]

Three datasets in time order: the churn scenario's reference rows (binary, roc_auc; DFS ratios help), scikit-learn's
``make_classification`` (binary, roc_auc, 20 columns) and ``make_friedman1`` (regression, rmse). The newest 20% of
each is a holdout the build never sees; the build (:func:`kaizen.challenger.search.build_challenger`: DFS, the
search, the refit) runs on the rest with the default families and window fractions, ``--trials`` trials, once per
seed with ``build.pruning = "none"`` and once with ``"successive_halving"``. Per run: CPU seconds of the build
(``BuildResult.cpu_seconds``: the thread's CPU, DFS and refit included), the trial counts, the best validation
metric and the chosen model's metric on the holdout. ``--equal-cpu`` adds a third arm: successive halving with no
trial cap and ``build.cpu_seconds`` set to the CPU the unpruned build of the same seed spent (what pruning buys for
the same CPU). Prints a table and writes the JSON.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from kaizen._env import prepare  # noqa: E402 - after the path

prepare()

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from kaizen.data.schema import infer_schema  # noqa: E402
from kaizen.policy import BuildSpec, DataSpec, GateSpec, ModelSpec, Policy, PromotionSpec, TriggerSpec  # noqa: E402


def datasets(rows: int) -> dict[str, tuple[pd.DataFrame, str, str, str]]:
    """name -> (rows in time order with ``ts``, target, task, metric)."""
    from sklearn.datasets import make_classification, make_friedman1

    from experiments.scenarios import churn

    out: dict[str, tuple[pd.DataFrame, str, str, str]] = {}
    ref = churn(seed=7, reference_rows=rows, golden_rows=200, batch_rows=200, n_batches=1).reference
    out["churn"] = (ref.reset_index(drop=True), "churned", "binary_classification", "roc_auc")
    x, y = make_classification(n_samples=rows, n_features=20, n_informative=8, n_redundant=4, flip_y=0.05,
                               class_sep=0.8, random_state=0)
    df = pd.DataFrame(x, columns=[f"x{i}" for i in range(x.shape[1])]).assign(target=y)
    out["classification"] = (df.assign(ts=pd.date_range("2024-01-01", periods=rows, freq="h")), "target",
                             "binary_classification", "roc_auc")
    x, y = make_friedman1(n_samples=rows, n_features=10, noise=1.0, random_state=0)
    df = pd.DataFrame(x, columns=[f"x{i}" for i in range(x.shape[1])]).assign(target=y)
    out["friedman1"] = (df.assign(ts=pd.date_range("2024-01-01", periods=rows, freq="h")), "target", "regression",
                        "rmse")
    return out


def policy(target: str, task: str, metric: str, **build: Any) -> Policy:
    return Policy(path=Path("/nonexistent/policy.toml"),
                  model=ModelSpec(name="bench", task=task, target=target, metric=metric, positive_label=1),
                  data=DataSpec(reference=Path("/nonexistent/ref.parquet"), production=Path("/nonexistent/prod"),
                                timestamp_column="ts"),
                  trigger=TriggerSpec(), build=BuildSpec(**build), gates=GateSpec(), promotion=PromotionSpec())


def run(frame: pd.DataFrame, target: str, task: str, metric: str, *, seed: int, work: Path,
        **build: Any) -> dict[str, Any]:
    from kaizen.challenger.model import predict_frame
    from kaizen.challenger.search import build_challenger
    from kaizen.metrics import score

    n_hold = len(frame) // 5
    train, hold = frame.iloc[:-n_hold], frame.iloc[-n_hold:]
    schema = infer_schema(train, target=target, timestamp="ts")
    pol = policy(target, task, metric, seed=seed, timeout_seconds=None, **build)
    r = build_challenger(train, schema=schema, policy=pol, workdir=work)
    pred = predict_frame(r.artifacts_dir, hold)
    y = hold[target].to_numpy()
    holdout = score(metric, y, pred["prediction"].to_numpy(), pred["proba"].to_numpy() if "proba" in pred else None)
    return {"cpu_seconds": round(r.cpu_seconds, 2), "trials": r.trials, "counts": r.trial_counts,
            "validation": round(r.validation_metric, 4), "holdout": round(float(holdout), 4), "family": r.family,
            "stopped_by": r.stopped_by}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=20)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    ap.add_argument("--rows", type=int, default=3000)
    ap.add_argument("--equal-cpu", action="store_true")
    ap.add_argument("--datasets", nargs="+", default=["churn", "classification", "friedman1"])
    ap.add_argument("--out", type=Path, default=ROOT / "experiments" / "results" / "bench_pruning.json")
    a = ap.parse_args()
    results: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="kaizen-bench-pruning-") as tmp:
        for name, (frame, target, task, metric) in datasets(a.rows).items():
            if name not in a.datasets:
                continue
            for seed in a.seeds:
                base = run(frame, target, task, metric, seed=seed, work=Path(tmp) / f"{name}-{seed}-none",
                           trials=a.trials, pruning="none")
                arms = {"none": base,
                        "successive_halving": run(frame, target, task, metric, seed=seed,
                                                  work=Path(tmp) / f"{name}-{seed}-sh", trials=a.trials,
                                                  pruning="successive_halving")}
                if a.equal_cpu:
                    arms["successive_halving_equal_cpu"] = run(
                        frame, target, task, metric, seed=seed, work=Path(tmp) / f"{name}-{seed}-shcpu",
                        trials=None, cpu_seconds=base["cpu_seconds"], pruning="successive_halving")
                for arm, res in arms.items():
                    results.append({"dataset": name, "metric": metric, "seed": seed, "arm": arm, **res})
                    print(f"{name:15s} seed {seed} {arm:30s} cpu {res['cpu_seconds']:7.2f} s  trials "
                          f"{res['trials']:3d} {res['counts']}  validation {res['validation']:.4f}  holdout "
                          f"{res['holdout']:.4f}  ({res['family']})", flush=True)
    summary: dict[str, Any] = {}
    for name in dict.fromkeys(r["dataset"] for r in results):
        for arm in dict.fromkeys(r["arm"] for r in results):
            rs = [r for r in results if r["dataset"] == name and r["arm"] == arm]
            summary[f"{name}/{arm}"] = {k: round(statistics.mean(r[k] for r in rs), 4)
                                        for k in ("cpu_seconds", "trials", "validation", "holdout")}
    print(json.dumps(summary, indent=1))
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps({"args": {k: str(v) for k, v in vars(a).items()}, "machine": platform.platform(),
                                 "numpy": np.__version__, "results": results, "summary": summary}, indent=1) + "\n")


if __name__ == "__main__":
    main()
