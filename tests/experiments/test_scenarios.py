"""Tests for the seeded synthetic scenarios (experiments/scenarios.py).

Assumes the repository root is importable (``pythonpath = ["."]`` / ``PYTHONPATH=.``).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pandas.testing as pdt
import pytest

from experiments import scenarios
from experiments.scenarios import Scenario, churn, demand, read_frame

ROOT = Path(__file__).resolve().parents[2]

CHURN_NUMERIC = ["tenure_months", "monthly_charges", "total_charges", "support_calls", "late_payments",
                 "usage_gb", "age"]
CHURN_CATEGORICAL = ["contract", "payment_method", "region"]
DEMAND_NUMERIC = ["price", "promo", "temperature", "day_of_week", "store_size"]


@pytest.fixture(scope="module")
def churn_default() -> Scenario:
    return churn()


@pytest.fixture(scope="module")
def demand_default() -> Scenario:
    return demand()


def _frames(sc: Scenario) -> list[pd.DataFrame]:
    return [sc.reference, sc.golden, *sc.batches]


# ---------------------------------------------------------------------------------------------
# determinism
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("builder", [churn, demand])
def test_same_seed_gives_identical_frames(builder) -> None:
    a, b = builder(seed=123, n_batches=4), builder(seed=123, n_batches=4)
    pdt.assert_frame_equal(a.reference, b.reference)
    pdt.assert_frame_equal(a.golden, b.golden)
    assert len(a.batches) == len(b.batches)
    for x, y in zip(a.batches, b.batches, strict=True):
        pdt.assert_frame_equal(x, y)
    assert a.drift_points == b.drift_points


@pytest.mark.parametrize("builder", [churn, demand])
def test_different_seed_gives_different_frames(builder) -> None:
    a, b = builder(seed=1, n_batches=4), builder(seed=2, n_batches=4)
    assert not a.reference.equals(b.reference)
    assert not a.golden.equals(b.golden)
    assert not a.batches[0].equals(b.batches[0])


def test_reference_and_golden_do_not_depend_on_batch_count() -> None:
    a, b = churn(seed=5, n_batches=4), churn(seed=5, n_batches=9)
    pdt.assert_frame_equal(a.reference, b.reference)
    pdt.assert_frame_equal(a.golden, b.golden)
    pdt.assert_frame_equal(a.batches[2], b.batches[2])


# ---------------------------------------------------------------------------------------------
# shapes, columns, dtypes, timestamps
# ---------------------------------------------------------------------------------------------


def test_churn_shapes_columns_and_dtypes(churn_default: Scenario) -> None:
    sc = churn_default
    assert (sc.target, sc.timestamp, sc.task) == ("churned", "ts", "binary_classification")
    assert len(sc.reference) == 5000 and len(sc.golden) == 1500
    assert len(sc.batches) == 12 and all(len(b) == 1000 for b in sc.batches)
    expected = ["ts", *CHURN_NUMERIC, *CHURN_CATEGORICAL, "churned"]
    assert set(sc.features) == set(CHURN_NUMERIC + CHURN_CATEGORICAL)
    for df in _frames(sc):
        assert sorted(df.columns) == sorted(expected)
        assert not df.isna().any().any()
        assert pd.api.types.is_datetime64_any_dtype(df["ts"])
        for c in CHURN_NUMERIC:
            assert pd.api.types.is_numeric_dtype(df[c]) and not pd.api.types.is_bool_dtype(df[c]), c
        for c in CHURN_CATEGORICAL:
            assert df[c].dtype == object or pd.api.types.is_string_dtype(df[c]), c
            assert all(isinstance(v, str) for v in df[c])
        assert pd.api.types.is_integer_dtype(df["churned"])
        assert set(df["churned"].unique()) <= {0, 1}
        assert df.index.equals(pd.RangeIndex(len(df)))
    ref = sc.reference
    assert set(ref["contract"]) == {"month-to-month", "one-year", "two-year"}
    assert ref["payment_method"].nunique() == 4 and ref["region"].nunique() == 4
    assert 0.25 <= ref["churned"].mean() <= 0.30
    assert (ref["tenure_months"] == ref["tenure_months"].round()).all()
    implied = ref["tenure_months"] * ref["monthly_charges"]
    assert np.corrcoef(implied, ref["total_charges"])[0, 1] > 0.98


def test_demand_shapes_columns_and_dtypes(demand_default: Scenario) -> None:
    sc = demand_default
    assert (sc.target, sc.timestamp, sc.task) == ("units", "ts", "regression")
    assert len(sc.reference) == 4000 and len(sc.golden) == 1000
    assert len(sc.batches) == 10 and all(len(b) == 800 for b in sc.batches)
    for df in _frames(sc):
        assert sorted(df.columns) == sorted(["ts", *DEMAND_NUMERIC, "store_type", "units"])
        assert not df.isna().any().any()
        for c in DEMAND_NUMERIC:
            assert pd.api.types.is_numeric_dtype(df[c]), c
        assert pd.api.types.is_integer_dtype(df["promo"]) and set(df["promo"]) <= {0, 1}
        assert pd.api.types.is_integer_dtype(df["day_of_week"])
        assert (df["day_of_week"] == df["ts"].dt.dayofweek).all()
        assert df["store_type"].dtype == object or pd.api.types.is_string_dtype(df["store_type"])
        assert pd.api.types.is_float_dtype(df["units"]) and (df["units"] >= 0).all()


@pytest.mark.parametrize("builder", [churn, demand])
def test_timestamps_are_ordered(builder) -> None:
    sc = builder()
    for df in _frames(sc):
        assert df["ts"].is_monotonic_increasing
    assert sc.reference["ts"].min() >= pd.Timestamp("2026-01-01")
    # The golden set is drawn over the reference period.
    assert sc.golden["ts"].min() >= sc.reference["ts"].min().floor("D")
    assert sc.golden["ts"].max() < sc.batches[0]["ts"].min()
    # Batches come strictly after the reference and after each other, a week each.
    assert sc.reference["ts"].max() < sc.batches[0]["ts"].min()
    for prev, nxt in zip(sc.batches, sc.batches[1:], strict=False):
        assert prev["ts"].max() < nxt["ts"].min()
    for b in sc.batches:
        assert b["ts"].max() - b["ts"].min() <= pd.Timedelta(days=7)
    whole = pd.concat([sc.reference["ts"], *(b["ts"] for b in sc.batches)], ignore_index=True)
    assert whole.is_monotonic_increasing


def test_golden_rows_are_independent_of_reference(churn_default: Scenario) -> None:
    cols = ["monthly_charges", "usage_gb", "total_charges"]
    assert churn_default.reference.merge(churn_default.golden, on=cols).empty


# ---------------------------------------------------------------------------------------------
# drift points
# ---------------------------------------------------------------------------------------------


def test_drift_points_as_requested(churn_default: Scenario, demand_default: Scenario) -> None:
    assert churn_default.drift_points == {3: "covariate", 7: "concept"}
    assert demand_default.drift_points == {5: "concept"}
    assert churn(n_batches=6, covariate_at=2, concept_at=4).drift_points == {2: "covariate", 4: "concept"}
    assert churn(n_batches=6, covariate_at=None, concept_at=4).drift_points == {4: "concept"}
    assert churn(n_batches=6, covariate_at=1, concept_at=None).drift_points == {1: "covariate"}
    assert churn(n_batches=6, covariate_at=None, concept_at=None).drift_points == {}
    assert churn(n_batches=6, covariate_at=3, concept_at=3).drift_points == {3: "covariate+concept"}
    assert demand(n_batches=4, concept_at=None).drift_points == {}


def test_drift_points_after_the_last_batch_do_not_happen() -> None:
    sc = churn(seed=3, n_batches=5)  # default concept_at=7 falls after the last batch
    assert sc.drift_points == {3: "covariate"}
    pdt.assert_frame_equal(sc.batches[4], churn(seed=3, n_batches=5, concept_at=None).batches[4])
    assert demand(n_batches=5).drift_points == {}


@pytest.mark.parametrize("kwargs", [{"n_batches": 5, "covariate_at": -1}, {"concept_at": -2},
                                    {"reference_rows": 0}, {"batch_rows": -3}, {"n_batches": -1}])
def test_bad_arguments_are_rejected(kwargs) -> None:
    with pytest.raises(ValueError):
        churn(**kwargs)


def test_non_integer_drift_point_is_rejected() -> None:
    with pytest.raises(TypeError):
        churn(concept_at=2.5)  # type: ignore[arg-type]


def test_covariate_shift_is_visible(churn_default: Scenario) -> None:
    sc = churn_default
    ref = sc.reference
    pre, shifted, late = sc.batches[0], sc.batches[3], sc.batches[10]
    assert abs(pre["monthly_charges"].mean() / ref["monthly_charges"].mean() - 1) < 0.05
    assert shifted["monthly_charges"].mean() > 1.15 * ref["monthly_charges"].mean()
    assert shifted["usage_gb"].mean() > 1.15 * ref["usage_gb"].mean()
    assert shifted["age"].mean() < ref["age"].mean() - 5
    mtm = (ref["contract"] == "month-to-month").mean()
    assert (shifted["contract"] == "month-to-month").mean() > mtm + 0.07
    # The shift persists after the concept change.
    assert late["monthly_charges"].mean() > 1.15 * ref["monthly_charges"].mean()


def test_demand_has_no_covariate_shift(demand_default: Scenario) -> None:
    ref, last = demand_default.reference, demand_default.batches[-1]
    for c in ["price", "temperature", "store_size"]:
        assert abs(last[c].mean() / ref[c].mean() - 1) < 0.1, c


# ---------------------------------------------------------------------------------------------
# the churn rule: covariate shift keeps it, concept drift breaks it
# ---------------------------------------------------------------------------------------------


def _encode(df: pd.DataFrame, sc: Scenario) -> pd.DataFrame:
    X = df[sc.features].copy()
    for c in X.columns:
        if X[c].dtype == object:
            X[c] = pd.Categorical(X[c], categories=sorted(sc.reference[c].unique()))
    return X


def _fit(frame: pd.DataFrame, sc: Scenario):
    from sklearn.ensemble import HistGradientBoostingClassifier

    return HistGradientBoostingClassifier(random_state=0).fit(_encode(frame, sc), frame[sc.target])


def _auc(model, frame: pd.DataFrame, sc: Scenario) -> float:
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(frame[sc.target], model.predict_proba(_encode(frame, sc))[:, 1]))


@pytest.fixture(scope="module")
def churn_aucs(churn_default: Scenario) -> dict[str, float]:
    pytest.importorskip("sklearn")
    from threadpoolctl import threadpool_limits

    sc = churn_default
    with threadpool_limits(1):
        champion = _fit(sc.reference, sc)
        retrained = _fit(pd.concat(sc.batches[7:10], ignore_index=True), sc)
        return {
            "golden": _auc(champion, sc.golden, sc),
            "pre_drift": _auc(champion, sc.batches[0], sc),
            "covariate": _auc(champion, sc.batches[3], sc),
            "post_concept": _auc(champion, sc.batches[11], sc),
            "retrained": _auc(retrained, sc.batches[11], sc),
            # pooled over every batch of each regime (less sampling noise)
            "pre_drift_pooled": _auc(champion, pd.concat(sc.batches[0:3]), sc),
            "covariate_pooled": _auc(champion, pd.concat(sc.batches[3:7]), sc),
            "post_concept_pooled": _auc(champion, pd.concat(sc.batches[7:12]), sc),
        }


def test_champion_is_good_before_drift(churn_aucs: dict[str, float]) -> None:
    assert churn_aucs["pre_drift"] >= 0.78
    assert churn_aucs["pre_drift_pooled"] >= 0.78
    assert churn_aucs["golden"] >= 0.78


def test_covariate_shift_alone_keeps_performance(churn_aucs: dict[str, float]) -> None:
    assert abs(churn_aucs["covariate"] - churn_aucs["pre_drift"]) <= 0.04
    assert abs(churn_aucs["covariate_pooled"] - churn_aucs["pre_drift_pooled"]) <= 0.04


def test_concept_drift_breaks_the_champion(churn_aucs: dict[str, float]) -> None:
    assert churn_aucs["post_concept"] <= churn_aucs["pre_drift"] - 0.08
    assert churn_aucs["post_concept_pooled"] <= churn_aucs["pre_drift_pooled"] - 0.08


def test_retraining_on_new_world_recovers(churn_aucs: dict[str, float]) -> None:
    assert churn_aucs["retrained"] >= churn_aucs["post_concept"] + 0.10
    assert churn_aucs["retrained"] >= 0.75


def test_demand_concept_drift_hurts_the_champion(demand_default: Scenario) -> None:
    pytest.importorskip("sklearn")
    from sklearn.ensemble import HistGradientBoostingRegressor
    from sklearn.metrics import mean_absolute_error
    from threadpoolctl import threadpool_limits

    sc = demand_default

    def fit(frame: pd.DataFrame):
        return HistGradientBoostingRegressor(random_state=0).fit(_encode(frame, sc), frame[sc.target])

    def mae(model, frame: pd.DataFrame) -> float:
        return float(mean_absolute_error(frame[sc.target], model.predict(_encode(frame, sc))))

    with threadpool_limits(1):
        champion = fit(sc.reference)
        retrained = fit(pd.concat(sc.batches[5:8], ignore_index=True))
        pre = mae(champion, pd.concat(sc.batches[:5]))
        post = mae(champion, pd.concat(sc.batches[8:]))
        recovered = mae(retrained, pd.concat(sc.batches[8:]))
    assert post >= 1.4 * pre
    assert recovered <= 0.8 * post


# ---------------------------------------------------------------------------------------------
# writing
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_write_round_trips(tmp_path: Path, fmt: str) -> None:
    sc = churn(seed=3, reference_rows=300, golden_rows=100, batch_rows=50, n_batches=4,
               covariate_at=1, concept_at=2)
    paths = sc.write(tmp_path / "out", fmt=fmt)
    out = tmp_path / "out"
    assert paths == {"reference": out / f"reference.{fmt}", "golden": out / f"golden.{fmt}",
                     "incoming": out / "incoming"}
    pdt.assert_frame_equal(read_frame(paths["reference"]), sc.reference)
    pdt.assert_frame_equal(read_frame(paths["golden"]), sc.golden)
    files = sorted(paths["incoming"].iterdir())
    assert [f.name for f in files] == [f"batch_{i:03d}.{fmt}" for i in range(4)]
    for f, batch in zip(files, sc.batches, strict=True):
        pdt.assert_frame_equal(read_frame(f), batch)

    meta = json.loads((out / "scenario.json").read_text())
    assert meta["drift_points"] == {"1": "covariate", "2": "concept"}
    assert meta["seed"] == 3 and meta["task"] == "binary_classification"
    assert meta["target"] == "churned" and meta["timestamp"] == "ts"
    assert meta["sizes"] == {"reference": 300, "golden": 100, "batches": [50] * 4}
    assert list(meta["columns"]) == list(sc.reference.columns)


def test_write_overwrites_and_removes_stale_files(tmp_path: Path) -> None:
    churn(seed=1, reference_rows=200, golden_rows=50, batch_rows=40, n_batches=5).write(tmp_path, fmt="csv")
    small = demand(seed=2, reference_rows=100, golden_rows=30, batch_rows=20, n_batches=2, concept_at=1)
    paths = small.write(tmp_path)
    assert sorted(p.name for p in paths["incoming"].iterdir()) == ["batch_000.parquet", "batch_001.parquet"]
    assert not (tmp_path / "reference.csv").exists()
    pdt.assert_frame_equal(read_frame(paths["reference"]), small.reference)
    assert json.loads((tmp_path / "scenario.json").read_text())["drift_points"] == {"1": "concept"}


def test_write_rejects_unknown_format(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        churn(n_batches=2, covariate_at=None, concept_at=1).write(tmp_path, fmt="xlsx")


# ---------------------------------------------------------------------------------------------
# CLI
# ---------------------------------------------------------------------------------------------


def test_cli_main_writes_and_prints(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert scenarios.main(["demand", "--out", str(tmp_path), "--seed", "4", "--format", "csv",
                           "--batches", "3"]) == 0
    lines = capsys.readouterr().out.split()
    assert len(lines) == 2 + 3 + 1
    assert all(Path(line).is_file() for line in lines)
    meta = json.loads((tmp_path / "scenario.json").read_text())
    assert meta["seed"] == 4 and meta["drift_points"] == {}  # default concept_at=5 does not fit in 3
    pdt.assert_frame_equal(read_frame(tmp_path / "incoming" / "batch_002.csv"), demand(seed=4, n_batches=3,
                                                                                        concept_at=None).batches[2])


def test_cli_as_script(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, str(ROOT / "experiments" / "scenarios.py"), "churn",
                           "--out", str(tmp_path), "--batches", "5"],
                          capture_output=True, text=True, check=True, cwd=tmp_path)
    lines = proc.stdout.splitlines()
    assert len(lines) == 2 + 5 + 1
    assert lines[0].endswith("reference.parquet") and lines[-1].endswith("scenario.json")
    meta = json.loads((tmp_path / "scenario.json").read_text())
    assert meta["drift_points"] == {"3": "covariate"}
    pdt.assert_frame_equal(pd.read_parquet(tmp_path / "incoming" / "batch_004.parquet"),
                           churn(n_batches=5, concept_at=None).batches[4])
