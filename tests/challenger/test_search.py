from __future__ import annotations

import json
import math
import threading
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from kaizen.challenger import build_challenger, predict_frame
from kaizen.errors import BuildError


def test_classification_build(classifier_build, classification_rows, schema):
    r = classifier_build
    assert r.family in ("hist_gradient_boosting", "random_forest", "logistic_regression")
    assert {"window_fraction", "engineered"} <= set(r.params)
    assert r.trials == 5 and r.trial_counts["COMPLETE"] == 5
    assert 0.7 < r.validation_metric <= 1.0
    assert r.train_rows == math.ceil(len(classification_rows) * r.params["window_fraction"])
    assert set(schema.features) <= set(r.feature_names)
    assert not {"ts", "target", "prediction"} & set(r.feature_names)
    for f in ("features.json", "model.joblib", "build.json"):
        assert (r.artifacts_dir / f).is_file()
    meta = json.loads((r.artifacts_dir / "build.json").read_text())
    assert meta["classes"] == [0, 1] and meta["positive_label"] == 1
    assert meta["family"] == r.family and meta["params"] == r.params
    assert meta["feature_names"] == list(r.feature_names)
    d = r.to_dict()
    assert json.loads(json.dumps(d)) == d
    assert r.cpu_seconds > 0 and r.wall_seconds > 0
    assert d["stopped_by"] == "trials" and d["budget"] == {"trials": 5, "wall_seconds": None, "cpu_seconds": None}
    sel = json.loads((r.artifacts_dir / "selection.json").read_text())
    assert sel["summary"] == d["feature_selection"]
    rows = {e["name"]: e for e in sel["features"]}
    assert [n for n, e in rows.items() if e["used"]] == list(r.feature_names)  # what the model uses, in its order
    assert all(e["kept"] for e in rows.values() if e["used"]) and sel["summary"]["used"] == len(r.feature_names)
    assert sel["summary"]["proposed"] == len(rows) >= sel["summary"]["kept"] >= sel["summary"]["used"]
    assert sum(sel["summary"]["dropped"].values()) == sel["summary"]["proposed"] - sel["summary"]["kept"]
    assert sel["summary"]["engineered"] == r.params["engineered"]


def test_same_seed_same_model(classifier_build, classification_rows, schema, policy_factory, tmp_path):
    again = build_challenger(classification_rows, schema=schema, policy=policy_factory(), workdir=tmp_path)
    assert (again.family, again.params, again.feature_names) == (
        classifier_build.family, classifier_build.params, classifier_build.feature_names)
    assert again.validation_metric == classifier_build.validation_metric
    new = classification_rows.iloc[-200:]
    pd.testing.assert_frame_equal(predict_frame(again.artifacts_dir, new),
                                  predict_frame(classifier_build.artifacts_dir, new))


def test_regression_build(regression_rows, schema, policy_factory, tmp_path):
    r = build_challenger(regression_rows, schema=schema, policy=policy_factory("regression", trials=4),
                         workdir=tmp_path)
    assert r.family in ("hist_gradient_boosting", "random_forest", "ridge") and r.metric == "rmse"
    assert math.isfinite(r.validation_metric) and r.validation_metric < regression_rows["target"].std()
    out = predict_frame(r.artifacts_dir, regression_rows.iloc[-50:])
    assert list(out.columns) == ["prediction"] and out["prediction"].dtype == np.float64


def test_recent_window_wins_after_abrupt_drift(rows_factory, schema, policy_factory, tmp_path):
    rows = rows_factory(1200, seed=4, drift_at=0.6)
    scores = {}
    for frac in (1.0, 0.25):
        pol = policy_factory(trials=4, families=("logistic_regression",), window_fractions=(frac,))
        r = build_challenger(rows, schema=schema, policy=pol, workdir=tmp_path / str(frac))
        scores[frac] = r.validation_metric
        assert r.train_rows == math.ceil(1200 * frac)
    assert scores[0.25] > scores[1.0] + 0.1


def _quiet_recent_fit_rows(rows: pd.DataFrame) -> pd.DataFrame:
    """200 rows whose last 38 rows before the validation slice are all class 0."""
    rows = rows.copy()
    rows.loc[rows.index[112:150], "target"] = 0
    return rows


def test_failed_trials_do_not_stop_the_search(rows_factory, schema, policy_factory, tmp_path):
    rows = _quiet_recent_fit_rows(rows_factory(200, seed=5))
    pol = policy_factory(trials=6, window_fractions=(1.0, 0.25), families=("logistic_regression",))
    r = build_challenger(rows, schema=schema, policy=pol, workdir=tmp_path)
    assert r.trials == 6 and r.trial_counts["FAIL"] >= 1 and r.trial_counts["COMPLETE"] >= 1
    assert r.params["window_fraction"] == 1.0


def test_no_completed_trial_is_a_build_error(rows_factory, schema, policy_factory, tmp_path):
    rows = _quiet_recent_fit_rows(rows_factory(200, seed=5))
    pol = policy_factory(trials=3, window_fractions=(0.25,), families=("logistic_regression",))
    with pytest.raises(BuildError, match="no trial completed.*one class only"):
        build_challenger(rows, schema=schema, policy=pol, workdir=tmp_path)


def test_windows_too_small_to_fit_are_not_offered(rows_factory, schema, policy_factory, tmp_path):
    rows = rows_factory(200, seed=5)
    pol = policy_factory(trials=4, window_fractions=(1.0, 0.05), families=("logistic_regression",))
    r = build_challenger(rows, schema=schema, policy=pol, workdir=tmp_path)
    assert r.trial_counts["FAIL"] == 0 and r.params["window_fraction"] == 1.0
    with pytest.raises(BuildError, match="window_fractions"):
        build_challenger(rows, schema=schema, policy=policy_factory(trials=1, window_fractions=(0.05,)),
                         workdir=tmp_path)


@pytest.mark.parametrize("change, match", [
    (lambda df: df.iloc[:20], "too few labelled rows"),
    (lambda df: df.assign(target=1), "only one class"),
    (lambda df: df.assign(target=df["target"].where(df.index % 7 != 0)), "no 'target' label"),
    (lambda df: df.assign(target=df["target"].map({0: "no", 1: "yes"})), "positive_label 1"),
    (lambda df: df.drop(columns="plan"), "lack column"),
])
def test_unusable_rows(change, match, rows_factory, schema, policy_factory, tmp_path):
    with pytest.raises(BuildError, match=match):
        build_challenger(change(rows_factory(200, seed=6)), schema=schema, policy=policy_factory(trials=1),
                         workdir=tmp_path)


def test_regression_target_must_be_numeric(rows_factory, schema, policy_factory, tmp_path):
    rows = rows_factory(200, seed=6, task="regression").astype({"target": object})
    rows.loc[5, "target"] = "n/a"
    with pytest.raises(BuildError, match="non-numeric"):
        build_challenger(rows, schema=schema, policy=policy_factory("regression", trials=1), workdir=tmp_path)


def test_batch_dependent_primitive_is_a_build_error(rows_factory, schema, policy_factory, tmp_path):
    pol = policy_factory(trials=1, trans_primitives=("divide_numeric", "percentile"))
    with pytest.raises(BuildError, match="percentile"):
        build_challenger(rows_factory(200, seed=6), schema=schema, policy=pol, workdir=tmp_path)


class _StopAfter(threading.Event):
    """An Event that reads as set from its ``n``-th check on."""

    def __init__(self, n: int) -> None:
        super().__init__()
        self.checks, self.n = 0, n

    def is_set(self) -> bool:
        self.checks += 1
        return self.checks >= self.n


def test_stop_event_ends_search_after_current_trial(rows_factory, schema, policy_factory, tmp_path):
    rows = rows_factory(300, seed=8)
    pol = policy_factory(trials=20, families=("logistic_regression",))
    r = build_challenger(rows, schema=schema, policy=pol, workdir=tmp_path, stop=_StopAfter(3))
    assert r.trials == 2  # checked once before the search, then after each trial
    stopped = threading.Event()
    stopped.set()
    with pytest.raises(BuildError, match="stopped"):
        build_challenger(rows, schema=schema, policy=pol, workdir=tmp_path, stop=stopped)


def test_timeout_budget(rows_factory, schema, policy_factory, tmp_path):
    pol = policy_factory(trials=None, timeout_seconds=0.5, families=("logistic_regression",))
    r = build_challenger(rows_factory(300, seed=9), schema=schema, policy=pol, workdir=tmp_path)
    assert r.trials >= 1 and r.stopped_by == "wall_seconds" and r.budget["wall_seconds"] == 0.5


def test_cpu_budget_ends_the_search_after_the_trial_that_spent_it(rows_factory, schema, policy_factory, tmp_path):
    """The CPU cap counts the whole build (feature synthesis included) and is checked after each trial: a cap the
    synthesis alone spends lets exactly one trial run, whatever the trial and time budgets allow."""
    rows = rows_factory(300, seed=9)
    for trials, timeout in ((200, None), (None, 600.0)):
        pol = policy_factory(trials=trials, timeout_seconds=timeout, cpu_seconds=1e-6,
                             families=("logistic_regression",))
        r = build_challenger(rows, schema=schema, policy=pol, workdir=tmp_path / str(trials))
        assert (r.trials, r.stopped_by) == (1, "cpu_seconds") and r.cpu_seconds > 1e-6
        assert r.to_dict()["budget"] == {"trials": trials, "wall_seconds": timeout, "cpu_seconds": 1e-6}
    generous = build_challenger(rows, schema=schema, workdir=tmp_path / "generous",
                                policy=policy_factory(trials=3, cpu_seconds=1e6, families=("logistic_regression",)))
    assert (generous.trials, generous.stopped_by) == (3, "trials")


def test_the_record_says_when_preparing_the_search_spent_the_cpu_budget(rows_factory, schema, policy_factory,
                                                                        tmp_path, caplog):
    rows = rows_factory(300, seed=9)
    pol = policy_factory(trials=50, cpu_seconds=1e-6, families=("logistic_regression",))
    with caplog.at_level("WARNING", logger="kaizen.challenger.search"):
        r = build_challenger(rows, schema=schema, policy=pol, workdir=tmp_path / "capped")
    assert (r.trials, r.stopped_by) == (1, "cpu_seconds")
    assert 1e-6 <= r.preparation_cpu_seconds <= r.cpu_seconds
    assert r.to_dict()["preparation_cpu_seconds"] == r.preparation_cpu_seconds
    assert "one trial runs" in caplog.text
    generous = build_challenger(rows, schema=schema, workdir=tmp_path / "generous",
                                policy=policy_factory(trials=2, cpu_seconds=1e6, families=("logistic_regression",)))
    assert 0 < generous.preparation_cpu_seconds < generous.cpu_seconds


def test_explicit_seed_overrides_policy(rows_factory, schema, policy_factory, tmp_path):
    rows = rows_factory(300, seed=10)
    pol = policy_factory(trials=3)
    a = build_challenger(rows, schema=schema, policy=pol, workdir=tmp_path / "a", seed=123)
    b = build_challenger(rows, schema=schema, policy=pol, workdir=tmp_path / "b", seed=123)
    assert a.params == b.params and a.family == b.family
    meta = json.loads((a.artifacts_dir / "build.json").read_text())
    assert meta["seed"] == 123


def test_importing_the_package_is_cheap():
    import subprocess
    import sys

    code = ("import sys, kaizen.challenger; "
            "print(sorted(m for m in ('featuretools', 'woodwork', 'optuna', 'mlflow', 'sklearn') "
            "if m in sys.modules))")
    root = Path(__file__).resolve().parents[2]
    out = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
