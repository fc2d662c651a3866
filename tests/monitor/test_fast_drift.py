"""The fast verdicts of run_monitor equal Evidently's Report, for every drift method a policy may name.

run_monitor calls Evidently's stattest objects directly; the reference here is what the monitor
did before: one ``ValueDrift(column=c, method=m, threshold=t)`` per column in a ``Report`` with
``include_tests=True``, read as libraries.md §1 shows. Scores must be equal (not close), and so
must every pass/fail and the drift share.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from kaizen.data.predictions import Predictions
from kaizen.data.schema import infer_schema
from kaizen.monitor import ColumnDriftResult, MonitorResult, run_monitor
from kaizen.policy import DRIFT_METHODS, Policy, load_policy

#: threshold per method: p-value tests flag p below it, distances a score at or above it
PVALUE = {"ks", "chisquare", "z", "anderson", "cramer_von_mises", "mannw", "TVD"}
EVIDENTLY_NAME = {"energy": "ed"}


def make_policy(tmp_path: Path, trigger: str) -> Policy:
    path = tmp_path / "policy.toml"
    path.write_text(f"""
[model]
name = "churn"
task = "binary_classification"
target = "y"
metric = "roc_auc"

[data]
reference = "reference.parquet"
production = "batches"

[trigger]
{trigger}
""")
    return load_policy(path)


def frame(n: int, seed: int, *, drift: bool) -> pd.DataFrame:
    """Numerical and categorical columns; with ``drift``, the ``*_moved`` ones change."""
    rng = np.random.default_rng(seed)
    k = 1.0 if drift else 0.0
    df = pd.DataFrame({
        "n_same": rng.normal(size=n),
        "n_moved": rng.normal(loc=0.6 * k, size=n),
        "n_spread": rng.normal(scale=1 + 0.8 * k, size=n),
        "n_counts": rng.poisson(3 + 2 * k, size=n).astype(float),  # few distinct values: binned by value
        "n_dirty": rng.exponential(size=n),
    })
    df.loc[rng.random(n) < 0.05, "n_dirty"] = np.nan
    df.loc[rng.random(n) < 0.01, "n_dirty"] = np.inf
    p_moved = [0.2, 0.3, 0.5] if drift else [0.5, 0.3, 0.2]
    df["c_same"] = rng.choice(["a", "b", "c", "d"], size=n, p=[0.4, 0.3, 0.2, 0.1])
    df["c_moved"] = rng.choice(["basic", "plus", "pro"], size=n, p=p_moved)
    df["c_binary"] = rng.choice(["no", "yes"], size=n, p=[0.45, 0.55] if drift else [0.7, 0.3])
    df["y"] = (df["n_moved"] + rng.normal(size=n) > 0).astype(int)
    df.loc[rng.random(n) < 0.05, "c_same"] = None  # missing strings: dropped as Evidently drops them
    return df


REF, CUR = frame(700, 1, drift=False), frame(500, 2, drift=True)
SCHEMA = infer_schema(REF, target="y")


def report_verdicts(ref: pd.DataFrame, cur: pd.DataFrame, cols: list[ColumnDriftResult],
                    kinds: dict[str, str]) -> dict[str, tuple[float, bool]]:
    """Evidently's Report: column -> (score, drifted), under each column's recorded method and threshold."""
    from evidently import DataDefinition, Dataset, Report
    from evidently.metrics import ValueDrift

    names = [c.column for c in cols]
    dd = DataDefinition(numerical_columns=[c for c in names if kinds[c] == "numerical"],
                        categorical_columns=[c for c in names if kinds[c] == "categorical"])
    metrics = [ValueDrift(column=c.column, method=EVIDENTLY_NAME.get(c.method, c.method), threshold=c.threshold)
               for c in cols]
    snap = Report(metrics, include_tests=True).run(Dataset.from_pandas(cur[names], data_definition=dd),
                                                   Dataset.from_pandas(ref[names], data_definition=dd))
    out = json.loads(snap.json())
    scores = {m["config"]["column"]: m["value"] for m in out["metrics"] if m["config"]["type"].endswith(":ValueDrift")}
    failed = {t["metric_config"]["params"]["column"]: t["status"] == "FAIL" for t in out["tests"]
              if t["metric_config"]["params"]["type"].endswith(":ValueDrift")}
    assert set(scores) == set(failed) == set(names)
    return {c: (float(scores[c]), failed[c]) for c in names}


@pytest.mark.parametrize("method", DRIFT_METHODS)
def test_fast_verdicts_equal_the_report_for_every_method(tmp_path: Path, method: str) -> None:
    threshold = 0.05 if method in PVALUE else 0.1
    policy = make_policy(tmp_path, f'drift_method = "{method}"\ndrift_threshold = {threshold}')
    res = run_monitor(REF, CUR, schema=SCHEMA, policy=policy)
    kinds = {c: "numerical" for c in SCHEMA.numerical} | {c: "categorical" for c in SCHEMA.categorical}
    assert set(SCHEMA.numerical) and set(SCHEMA.categorical)
    # the policy's method where it fits the column's kind, the documented fallback elsewhere
    used = {c.column: c.method for c in res.columns}
    assert method in used.values()

    expected = report_verdicts(REF, CUR, list(res.columns), kinds)
    for c in res.columns:
        assert (c.score, c.drifted) == expected[c.column], c.column
        assert c.threshold == threshold and not math.isnan(c.score)
    drifted = [c for c, (_s, d) in expected.items() if d]
    assert 0 < len(drifted) < len(expected), f"{method}: a case needs drifted and undrifted columns"
    assert res.drifted_columns == tuple(c for c in SCHEMA.features if c in drifted)
    assert res.drift_share == len(drifted) / len(expected)


def test_every_column_kind_meets_every_method_that_applies_to_it(tmp_path: Path) -> None:
    """The parametrised test above must not pass by falling back everywhere: tally what ran."""
    ran: dict[str, set[str]] = {"numerical": set(), "categorical": set()}
    for method in DRIFT_METHODS:
        res = run_monitor(REF.iloc[:200], CUR.iloc[:200], schema=SCHEMA,
                          policy=make_policy(tmp_path, f'drift_method = "{method}"'))
        for c in res.columns:
            ran["numerical" if c.column in SCHEMA.numerical else "categorical"].add(c.method)
    assert ran["numerical"] == set(DRIFT_METHODS) - {"chisquare", "z", "TVD"}
    assert ran["categorical"] == set(DRIFT_METHODS) - {"wasserstein", "ks", "anderson", "cramer_von_mises",
                                                       "mannw", "energy"}


def _prediction_report(ref_values: np.ndarray, cur_values: np.ndarray, res: MonitorResult) -> tuple[float, bool]:
    pred = res.prediction_drift
    assert pred is not None
    kind = "numerical" if pd.api.types.is_float_dtype(ref_values) or pd.api.types.is_integer_dtype(ref_values) \
        else "categorical"
    got = report_verdicts(pd.DataFrame({"prediction": ref_values}), pd.DataFrame({"prediction": cur_values}),
                          [pred], {"prediction": kind})
    return got["prediction"]


@pytest.mark.parametrize("method", ["wasserstein", "psi", "jensenshannon", "ks", "kl_div", "anderson"])
def test_prediction_drift_on_probabilities_equals_the_report(tmp_path: Path, method: str) -> None:
    rng = np.random.default_rng(11)
    ref_s, cur_s = rng.beta(2, 5, len(REF)), rng.beta(2.6, 5, len(CUR))
    threshold = 0.05 if method in PVALUE else 0.1
    policy = make_policy(tmp_path, f'prediction_drift_method = "{method}"\nprediction_drift_threshold = {threshold}')
    res = run_monitor(REF, CUR, schema=SCHEMA, policy=policy,
                      reference_predictions=Predictions((ref_s > 0.5).astype(int), ref_s),
                      current_predictions=Predictions((cur_s > 0.5).astype(int), cur_s))
    assert res.prediction_drift is not None and res.prediction_drift.method == method
    assert (res.prediction_drift.score, res.prediction_drift.drifted) == _prediction_report(ref_s, cur_s, res)


@pytest.mark.parametrize(("method", "used"), [("chisquare", "chisquare"), ("jensenshannon", "jensenshannon"),
                                              ("wasserstein", "jensenshannon"), ("ks", "chisquare"),
                                              ("TVD", "TVD"), ("z", "z")])
def test_prediction_drift_on_labels_equals_the_report(tmp_path: Path, method: str, used: str) -> None:
    rng = np.random.default_rng(12)
    ref_l = rng.choice(["stay", "churn"], len(REF), p=[0.8, 0.2])
    cur_l = rng.choice(["stay", "churn"], len(CUR), p=[0.7, 0.3])
    threshold = 0.05 if method in PVALUE else 0.1
    policy = make_policy(tmp_path, f'prediction_drift_method = "{method}"\nprediction_drift_threshold = {threshold}')
    res = run_monitor(REF, CUR, schema=SCHEMA, policy=policy,
                      reference_predictions=Predictions(ref_l), current_predictions=Predictions(cur_l))
    assert res.prediction_drift is not None and res.prediction_drift.method == used
    assert (res.prediction_drift.score, res.prediction_drift.drifted) == _prediction_report(ref_l, cur_l, res)


def test_prediction_drift_on_integer_labels_equals_the_report(tmp_path: Path) -> None:
    rng = np.random.default_rng(13)
    ref_l, cur_l = rng.binomial(1, 0.2, len(REF)), rng.binomial(1, 0.35, len(CUR))
    res = run_monitor(REF, CUR, schema=SCHEMA, policy=make_policy(tmp_path, ""),
                      reference_predictions=Predictions(ref_l), current_predictions=Predictions(cur_l))
    assert res.prediction_drift is not None and res.prediction_drift.method == "wasserstein"
    assert res.prediction_drift.drifted
    assert (res.prediction_drift.score, res.prediction_drift.drifted) == _prediction_report(ref_l, cur_l, res)
