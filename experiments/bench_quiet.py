"""Benchmark a quiet cycle's monitoring: Evidently's Report (the old path) against run_monitor.

    OMP_NUM_THREADS=1 .venv/bin/python experiments/bench_quiet.py [--rows 1000 10000] [--repeats 5]

A seeded 5,000-row reference and a batch of N rows × 20 numerical columns (3 of them shifted),
the policy's default method (wasserstein 0.1), the champion's scores for prediction drift and
labels for roc_auc. Each figure is CPU seconds of the calling thread (``time.thread_time()``),
the median of ``--repeats`` runs after one warm-up run:

- ``old_report``: what run_monitor did before, one Evidently ``Report`` with a ``ValueDrift`` per
  column and for the predictions (with tests) plus ``RocAuc`` (no HTML);
- ``new_warm``: ``run_monitor`` with the reference profile cached (the service's quiet cycle);
- ``new_cold``: ``run_monitor`` preparing the reference side (no cache);
- ``score``: the champion (``HistGradientBoostingClassifier``) ``predict_proba`` on the batch;
- ``write_report``: the Evidently HTML report, written only for triggering cycles.

Prints a table and one JSON object; ``target_met`` is ``new_warm + score <= 0.3`` at each size.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from kaizen._env import prepare

prepare()

from kaizen.data.predictions import Predictions  # noqa: E402
from kaizen.data.schema import Schema, infer_schema  # noqa: E402
from kaizen.policy import Policy, load_policy  # noqa: E402

COLUMNS = 20
REFERENCE_ROWS = 5_000
TARGET_CPU_SECONDS = 0.3
POLICY = """[model]
name = "bench"
task = "binary_classification"
target = "y"
metric = "roc_auc"
[data]
reference = "reference.parquet"
production = "production"
[trigger]
drift_method = "wasserstein"
drift_threshold = 0.1
"""


def make_frame(n: int, seed: int, shift: float = 0.0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, COLUMNS))
    x[:, :3] += shift  # three drifted columns in the batch
    df = pd.DataFrame(x, columns=[f"x{i:02d}" for i in range(COLUMNS)])
    df["y"] = (x[:, 0] + 0.5 * x[:, 1] - x[:, 4] + rng.normal(size=n) > 0).astype(int)
    return df


def old_report(reference: pd.DataFrame, current: pd.DataFrame, schema: Schema, policy: Policy,
               ref_pred: Predictions, cur_pred: Predictions) -> dict[str, Any]:
    """The monitoring pass as it was: everything through one Evidently Report (drift) and one (metric)."""
    from evidently import BinaryClassification, DataDefinition, Dataset, Report
    from evidently.metrics import RocAuc, ValueDrift

    cols = list(schema.features)
    ref, cur = reference[cols].reset_index(drop=True), current[cols].reset_index(drop=True)
    ref["prediction"], cur["prediction"] = ref_pred.scores, cur_pred.scores
    dd = DataDefinition(numerical_columns=[*cols, "prediction"])
    trig = policy.trigger
    metrics = [ValueDrift(column=c, method=trig.drift_method, threshold=trig.drift_threshold) for c in cols]
    metrics.append(ValueDrift(column="prediction", method=trig.prediction_drift_method,
                              threshold=trig.prediction_drift_threshold))
    out = json.loads(Report(metrics, include_tests=True).run(
        Dataset.from_pandas(cur, data_definition=dd), Dataset.from_pandas(ref, data_definition=dd)).json())
    failed = [t["metric_config"]["params"]["column"] for t in out["tests"] if t["status"] == "FAIL"]
    perf = pd.DataFrame({"target": current["y"].to_numpy(), "proba": cur_pred.scores})
    pdd = DataDefinition(classification=[BinaryClassification(target="target", prediction_probas="proba",
                                                              pos_label=1)])
    auc = json.loads(Report([RocAuc()]).run(Dataset.from_pandas(perf, data_definition=pdd), None).json())
    return {"drifted": [c for c in failed if c != "prediction"], "prediction_drift": "prediction" in failed,
            "roc_auc": auc["metrics"][0]["value"]}


def cpu(fn: Callable[[], Any], repeats: int) -> tuple[float, Any]:
    """Median thread CPU seconds of ``repeats`` calls after one warm-up call, and the last result."""
    out = fn()
    times = []
    for _ in range(repeats):
        t = time.thread_time()
        out = fn()
        times.append(time.thread_time() - t)
    return statistics.median(times), out


def bench(rows: int, repeats: int, workdir: Path) -> dict[str, Any]:
    from sklearn.ensemble import HistGradientBoostingClassifier

    from kaizen.monitor import ReferenceCache, run_monitor, write_report

    (workdir / "policy.toml").write_text(POLICY)
    policy = load_policy(workdir / "policy.toml")
    reference, batch = make_frame(REFERENCE_ROWS, 1), make_frame(rows, 2, shift=0.5)
    schema = infer_schema(reference, target="y")
    features = list(schema.features)
    champion = HistGradientBoostingClassifier(random_state=0).fit(reference[features], reference["y"])
    ref_scores = champion.predict_proba(reference[features])[:, 1]
    ref_pred = Predictions((ref_scores > 0.5).astype(int), ref_scores)

    def score() -> Predictions:
        s = champion.predict_proba(batch[features])[:, 1]
        return Predictions((s > 0.5).astype(int), s)

    cur_pred = score()
    cache = ReferenceCache()
    kwargs = dict(schema=schema, policy=policy, reference_predictions=ref_pred, current_predictions=cur_pred)
    t_score, _ = cpu(score, repeats)
    t_old, old = cpu(lambda: old_report(reference, batch, schema, policy, ref_pred, cur_pred), repeats)
    t_warm, new = cpu(lambda: run_monitor(reference, batch, reference_key="bench-reference", cache=cache,
                                          **kwargs), repeats)
    t_cold, _ = cpu(lambda: run_monitor(reference, batch, **kwargs), repeats)
    t_html, _ = cpu(lambda: write_report(reference, batch, path=workdir / "report.html", **kwargs), 1)
    same = (list(new.drifted_columns) == old["drifted"]
            and (new.prediction_drift is not None and new.prediction_drift.drifted) == old["prediction_drift"]
            and abs(new.champion_metric - old["roc_auc"]) < 1e-9)
    return {"rows": rows, "reference_rows": REFERENCE_ROWS, "columns": COLUMNS,
            "old_report": round(t_old, 4), "new_warm": round(t_warm, 4), "new_cold": round(t_cold, 4),
            "score": round(t_score, 4), "write_report": round(t_html, 4),
            "quiet_cycle_new": round(t_warm + t_score, 4), "quiet_cycle_old": round(t_old + t_score, 4),
            "speedup": round(t_old / t_warm, 1), "same_verdicts": same,
            "drifted": list(new.drifted_columns),
            "target_met": t_warm + t_score <= TARGET_CPU_SECONDS}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, nargs="+", default=[1_000, 10_000])
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        results = [bench(n, args.repeats, Path(tmp)) for n in args.rows]
    print(f"{'rows':>7} {'old Report':>10} {'new warm':>9} {'new cold':>9} {'score':>7} {'quiet new':>9} "
          f"{'HTML':>6}  same  target<={TARGET_CPU_SECONDS}")
    for r in results:
        print(f"{r['rows']:>7} {r['old_report']:>10.3f} {r['new_warm']:>9.3f} {r['new_cold']:>9.3f} "
              f"{r['score']:>7.3f} {r['quiet_cycle_new']:>9.3f} {r['write_report']:>6.2f}  {r['same_verdicts']!s:5} "
              f"{r['target_met']}")
    print(json.dumps({"cpu_seconds": f"thread_time, median of {args.repeats} after 1 warm-up",
                      "results": results}))


if __name__ == "__main__":
    main()
