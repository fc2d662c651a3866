"""Benchmark: performance before labels (kaizen.monitor.estimate) against the realised metric, per stream.

For every stream (experiments/scenarios.py's ``churn`` and ``demand``, experiments/streams.py's
``STREAMS``, and ``churn-boundary``, drawn here: see below) a fixed champion is trained on the
oldest 75 % of the reference (scikit-learn: ``logistic_regression`` and ``hist_gradient_boosting``,
Kaizen's two default families, as plain pipelines), its baseline is its metric on the newest 25 %
(the bootstrap's holdout) and its calibrator is fit there (:func:`kaizen.monitor.estimate.calibration_for`'s
rows). The champion is never replaced: the figures are detection delays of a model nobody retrains.

Per batch (one batch per window), it computes the label-free estimate on every row (CBPE's roc_auc
for the churn streams, DLE's rmse for the demand ones) and the realised metric on the same rows'
labels, and evaluates the trigger's rules as a cycle would
(raw verdicts, ``consecutive = 1``, no discounting): ``estimated_drop`` (label-free, threshold
``--threshold``), ``performance_drop`` (labelled: the shipped default, 0.02 floor, 2.5 × SE) and
``target_drift`` (jensenshannon 0.1 on the batch's labels against the reference's).

It reports, per stream and family: the estimate's mean absolute error against the realised metric
(all batches; before the first concept change, where the method's assumption holds; from it on), and
for each injected change the first batch at or after it that each signal flagged (and the false alarms
before the first change). rmse's drop is relative (``kaizen.metrics.drop``): its threshold
(``--threshold-regression``) is a relative rise of the error.

``churn-boundary`` is the churn world with a covariate shift that lowers performance, the case CBPE is
for: from batch 8 the rows are drawn from the reference world and kept with a probability that falls
with the distance of their true churn log-odds from 0 (``exp(-|logit| / 0.7)``): the same labelling rule,
more customers the champion cannot be sure about.

Usage::

    python experiments/bench_estimate.py [--seed 0] [--threshold 0.03] [--threshold-regression 0.2]
        [--out experiments/results]
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from kaizen._env import prepare  # noqa: E402

prepare()  # before numpy/scikit-learn load

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from experiments.scenarios import START, WEEK, Scenario, _churn_world, _timestamps, churn, churn_logit, demand  # noqa: E402
from experiments.streams import STREAMS, make_stream  # noqa: E402

RESULTS = ROOT / "experiments" / "results"
FAMILIES = ("logistic_regression", "hist_gradient_boosting")


def boundary_stream(seed: int = 0, *, n_batches: int = 16, at: int = 8, batch_rows: int = 500,
                    reference_rows: int = 2000) -> Scenario:
    """The churn world with a covariate shift towards the decision boundary from batch ``at`` (module doc)."""
    streams = np.random.default_rng([seed, 4242]).spawn(1 + n_batches)
    ref_end = START + WEEK * math.ceil(reference_rows / batch_rows)

    def frame(rng: np.random.Generator, n: int, start: pd.Timestamp, end: pd.Timestamp, near: bool) -> pd.DataFrame:
        draw = n * 6 if near else n
        ts = _timestamps(rng, draw, start, end)
        df = _churn_world(rng, ts, False, False)
        df.insert(0, "ts", ts)
        if near:
            keep_p = np.exp(-np.abs(churn_logit(df)) / 0.7)
            pick = rng.choice(draw, size=n, replace=False, p=keep_p / keep_p.sum())
            df = df.iloc[np.sort(pick)].reset_index(drop=True)
        return df

    reference = frame(streams[0], reference_rows, START, ref_end, False)
    batches = [frame(streams[1 + i], batch_rows, ref_end + WEEK * i, ref_end + WEEK * (i + 1), i >= at)
               for i in range(n_batches)]
    return Scenario(reference=reference, golden=reference.iloc[:0], batches=batches, drift_points={at: "covariate"},
                    target="churned", timestamp="ts", task="binary_classification", name="churn-boundary", seed=seed)


def scenarios(seed: int) -> list[Scenario]:
    out = [churn(seed=7 + seed), demand(seed=11 + seed)]
    out += [make_stream(spec, seed=seed) for spec in STREAMS.values()]
    out.append(boundary_stream(seed))
    return out


def champion(sc: Scenario, family: str, seed: int) -> Any:
    from sklearn.compose import make_column_transformer
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
    from sklearn.linear_model import LogisticRegression, Ridge
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    feats = sc.features
    cats = [c for c in feats if not pd.api.types.is_numeric_dtype(sc.reference[c])]
    nums = [c for c in feats if c not in cats]
    enc = make_column_transformer((OneHotEncoder(handle_unknown="ignore"), cats), (StandardScaler(), nums))
    regression = sc.task == "regression"
    if family == "logistic_regression":
        est = Ridge() if regression else LogisticRegression(max_iter=2000)
    else:
        est = (HistGradientBoostingRegressor if regression else HistGradientBoostingClassifier)(random_state=seed)
    n = len(sc.reference)
    k = n - max(1, round(n * 0.25))
    return make_pipeline(enc, est).fit(sc.reference[feats].iloc[:k], sc.reference[sc.target].iloc[:k])


def predictions(model: Any, frame: pd.DataFrame, feats: list[str], regression: bool) -> Any:
    from kaizen.data.predictions import Predictions

    if regression:
        return Predictions(model.predict(frame[feats]).astype(float), None)
    s = model.predict_proba(frame[feats])[:, 1]
    return Predictions((s >= 0.5).astype(int), s)


def policy_for(folder: Path, sc: Scenario, threshold: float) -> Any:
    from kaizen.policy import load_policy

    metric = "rmse" if sc.task == "regression" else "roc_auc"
    path = folder / f"{sc.name}.toml"
    path.write_text(f'[model]\nname = "bench"\ntask = "{sc.task}"\ntarget = "{sc.target}"\nmetric = "{metric}"\n\n'
                    '[data]\nreference = "reference.parquet"\nproduction = "batches"\n\n'
                    f"[trigger]\nmin_rows = 100\nmin_labelled_rows = 100\nestimated_drop = {threshold}\n"
                    'target_drift = "jensenshannon"\ntarget_drift_threshold = 0.1\n')
    return load_policy(path)


def run_stream(sc: Scenario, family: str, policy: Any, seed: int) -> dict[str, Any]:
    from kaizen.metrics import score
    from kaizen.monitor import ColumnDriftResult, MonitorResult
    from kaizen.monitor.estimate import estimate, estimate_loss, fit_calibration, fit_loss_model, target_drift
    from kaizen.monitor.rules import TriggerInputs
    from kaizen.monitor.rules.estimated_drop import EstimatedDropRule
    from kaizen.monitor.rules.performance_drop import PerformanceDropRule
    from kaizen.monitor.rules.target_drift import TargetDriftRule

    feats, regression, metric = sc.features, sc.task == "regression", policy.model.metric
    model = champion(sc, family, seed)
    n = len(sc.reference)
    cal_rows = sc.reference.iloc[n - max(1, round(n * 0.25)):]
    cp = predictions(model, cal_rows, feats, regression)
    y_cal = cal_rows[sc.target].to_numpy()
    baseline = score(metric, y_cal, cp.labels, cp.scores)
    cal = None if regression else fit_calibration(y_cal, cp.scores, cp.labels, metric=metric)
    cats = [c for c in feats if not pd.api.types.is_numeric_dtype(sc.reference[c])]
    loss = (fit_loss_model(cal_rows, feats, cats, cp.labels, y_cal, metric=metric, seed=seed) if regression
            else None)
    ref_y = sc.reference[sc.target].to_numpy()
    rows: list[dict[str, Any]] = []
    cpu = 0.0
    for i, b in enumerate(sc.batches):
        p = predictions(model, b, feats, regression)
        y = b[sc.target].to_numpy()
        realised = score(metric, y, p.labels, p.scores)
        t0 = time.process_time()
        est = (estimate(cal, p.labels, p.scores, metric=metric) if cal is not None
               else estimate_loss(loss, b, p.labels))
        cpu += time.process_time() - t0
        mon = MonitorResult(rows=len(b), labelled_rows=len(b), columns=(), drift_share=0.0,
                            prediction_drift=None, metric=metric, champion_metric=realised, report_path=None,
                            sampled=False, extras={"estimate": est, "target_drift": target_drift(ref_y, y, policy)})
        inputs = TriggerInputs(mon, baseline, labelled_y=y, labelled_pred=p, seed=seed)
        verdict = {r.name: r.evaluate(policy, inputs) for r in (EstimatedDropRule(), PerformanceDropRule(),
                                                                 TargetDriftRule())}
        td = mon.extras["target_drift"]
        assert isinstance(td, ColumnDriftResult)
        rows.append({"batch": i, "estimated": est.value, "realised": realised,
                     "fired": {k: bool(v.fired) for k, v in verdict.items()},
                     "target_drift_score": td.score})
    return {"baseline": baseline, "batches": rows, "estimate_cpu_seconds_per_batch": cpu / len(sc.batches)}


def summarise(sc: Scenario, res: dict[str, Any]) -> dict[str, Any]:
    rows = res["batches"]
    points = sorted(sc.drift_points)
    concept = [p for p, k in sorted(sc.drift_points.items()) if k != "covariate"]
    first_concept = concept[0] if concept else len(rows)

    def mae(sel: list[dict[str, Any]]) -> float | None:
        errs = [abs(r["estimated"] - r["realised"]) for r in sel if r["estimated"] is not None
                and r["realised"] is not None and math.isfinite(r["realised"])]
        return float(np.mean(errs)) if errs else None

    flagged: dict[str, dict[str, int | None]] = {}
    false_alarms: dict[str, int] = {}
    for sig in ("estimated_drop", "performance_drop", "target_drift"):
        fired = [r["batch"] for r in rows if r["fired"][sig]]
        false_alarms[sig] = sum(1 for b in fired if not points or b < points[0])
        flagged[sig] = {}
        for j, p in enumerate(points):
            end = points[j + 1] if j + 1 < len(points) else len(rows)
            flagged[sig][str(p)] = next((b for b in fired if p <= b < end), None)
    rel = [abs(r["estimated"] - r["realised"]) / abs(r["realised"]) for r in rows[:first_concept]
           if r["estimated"] is not None and r["realised"]]
    return {"mae": mae(rows), "mae_before_concept": mae(rows[:first_concept]),
            "relative_mae_before_concept": float(np.mean(rel)) if rel else None,
            "mae_from_concept": mae(rows[first_concept:]) if concept else None,
            "flagged": flagged, "false_alarms_before_first_change": false_alarms}


def cost(seed: int, repeats: int = 5) -> dict[str, float]:
    """CPU seconds (``time.thread_time``, median of ``repeats``) of the cycle's share of the estimate on the
    ``churn`` scenario's champion (hist_gradient_boosting): the calibrator's first computation for a champion
    (predict on the calibration rows, isotonic fit, written to the cache), a cycle's cache hit, and the estimate
    itself on 1,000 and 10,000 rows; the same for DLE on the ``demand`` scenario's regressor (``dle_*``)."""
    import statistics
    from types import SimpleNamespace

    from kaizen.data.schema import infer_schema
    from kaizen.monitor.estimate import calibration_for, estimate, estimate_loss, loss_model_for

    sc = churn(seed=7 + seed)
    model = champion(sc, "hist_gradient_boosting", seed)
    schema = infer_schema(sc.reference, target=sc.target, timestamp="ts")
    wrapped = SimpleNamespace(predict=lambda frame: predictions(model, frame, sc.features, False))
    champ = SimpleNamespace(version="1", run_id="bench")
    big = pd.concat(sc.batches, ignore_index=True)
    out: dict[str, list[float]] = {"calibrate_cold": [], "calibrate_cached": [], "estimate_1000": [],
                                   "estimate_10000": []}
    with tempfile.TemporaryDirectory() as tmp:
        policy = policy_for(Path(tmp), sc, 0.03)
        for r in range(repeats + 1):
            cache = Path(tmp) / f"cache{r}"
            for key in ("calibrate_cold", "calibrate_cached"):
                t0 = time.thread_time()
                cal, _ = calibration_for(champ, wrapped, sc.reference, schema, policy, registry_uri="bench",
                                         cache_dir=cache, ident="bench")
                if r:
                    out[key].append(time.thread_time() - t0)
            for n in (1000, 10000):
                p = predictions(model, big.iloc[:n], sc.features, False)
                t0 = time.thread_time()
                estimate(cal, p.labels, p.scores, metric="roc_auc")
                if r:
                    out[f"estimate_{n}"].append(time.thread_time() - t0)
    dm = demand(seed=11 + seed)
    reg = champion(dm, "hist_gradient_boosting", seed)
    dschema = infer_schema(dm.reference, target=dm.target, timestamp="ts")
    dwrapped = SimpleNamespace(predict=lambda frame: predictions(reg, frame, dm.features, True))
    dbig = pd.concat(dm.batches, ignore_index=True).iloc[:1000]
    out.update({"dle_cold": [], "dle_cached": [], "dle_estimate_1000": []})
    with tempfile.TemporaryDirectory() as tmp:
        policy = policy_for(Path(tmp), dm, 0.03)
        for r in range(repeats + 1):
            cache = Path(tmp) / f"cache{r}"
            for key in ("dle_cold", "dle_cached"):
                t0 = time.thread_time()
                loss, _ = loss_model_for(champ, dwrapped, dm.reference, dschema, policy, registry_uri="bench",
                                         cache_dir=cache, ident="bench", seed=seed)
                if r:
                    out[key].append(time.thread_time() - t0)
            p = predictions(reg, dbig, dm.features, True)
            t0 = time.thread_time()
            estimate_loss(loss, dbig, p.labels)
            if r:
                out["dle_estimate_1000"].append(time.thread_time() - t0)
    return {k: statistics.median(v) for k, v in out.items()}


def markdown(results: list[dict[str, Any]]) -> str:
    def f(v: Any) -> str:
        return "n/a" if v is None else f"{v:.3f}" if isinstance(v, float) else str(v)

    out = ["| stream | family | MAE (all) | MAE before concept | MAE from concept | change (batch: kind) | "
           "first flagged: estimated_drop / performance_drop / target_drift | false alarms before (est / perf / "
           "target) |", "|---|---|---|---|---|---|---|---|"]
    for r in results:
        s = r["summary"]
        fa = s["false_alarms_before_first_change"]
        for j, (p, kind) in enumerate(sorted(r["drift_points"].items(), key=lambda kv: int(kv[0]))):
            fl = s["flagged"]
            first = " / ".join(f(fl[k][str(p)]) for k in ("estimated_drop", "performance_drop", "target_drift"))
            before = (f"{f(s['mae_before_concept'])} ({100 * s['relative_mae_before_concept']:.1f} %)"
                      if r["task"] == "regression" and s.get("relative_mae_before_concept") is not None
                      else f(s["mae_before_concept"]))
            lead = (f"| {r['stream']} ({r['metric']}) | {r['family']} | {f(s['mae'])} | {before} | "
                    f"{f(s['mae_from_concept'])} |") if j == 0 else "| | | | | |"
            alarms = f"{fa['estimated_drop']} / {fa['performance_drop']} / {fa['target_drift']}" if j == 0 else ""
            out.append(f"{lead} {p}: {kind} | {first} | {alarms} |")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threshold", type=float, default=0.03, help="trigger.estimated_drop for roc_auc")
    ap.add_argument("--threshold-regression", type=float, default=0.2,
                    help="trigger.estimated_drop for rmse (a relative rise of the error)")
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args(argv)
    results = []
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        for sc in scenarios(args.seed):
            policy = policy_for(Path(tmp), sc, args.threshold_regression if sc.task == "regression"
                                else args.threshold)
            for family in FAMILIES:
                res = run_stream(sc, family, policy, args.seed)
                results.append({"stream": sc.name, "task": sc.task, "family": family, "metric": policy.model.metric,
                                "drift_points": {str(k): v for k, v in sc.drift_points.items()},
                                "summary": summarise(sc, res), **res})
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / "bench_estimate.json"
    path.write_text(json.dumps({"seed": args.seed, "threshold": args.threshold,
                                "threshold_regression": args.threshold_regression, "results": results}, indent=1,
                               default=float) + "\n")
    print(markdown(results))
    spent = cost(args.seed)
    data = json.loads(path.read_text())
    path.write_text(json.dumps({**data, "cpu_seconds": spent}, indent=1) + "\n")
    print("\nCPU per cycle (thread time, median of 5): " + ", ".join(f"{k} {1000 * v:.1f} ms" for k, v in spent.items())
          + f"; {time.perf_counter() - t0:.1f} s in all; written {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
