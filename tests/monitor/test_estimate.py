"""Performance before labels: the confidence-based estimate (kaizen.monitor.estimate) and its signal.

Stated tolerance: on a logistic regression calibrated on 2,000 labelled rows (scikit-learn's
``make_classification``, seeds 0-2), the estimate on 2,000 unlabelled rows is within 0.03 of the realised
roc_auc, accuracy and f1, both on rows like the reference and under a covariate shift that lowers the
realised roc_auc by more than 0.05. The real cycle at the end records estimated and realised side by side.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import make_classification
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score

from kaizen.data.predictions import Predictions
from kaizen.metrics import score
from kaizen.monitor import ColumnDriftResult, MonitorResult
from kaizen.monitor.estimate import Calibration, estimate, expected_metric, fit_calibration
from kaizen.monitor.rules import TriggerInputs, decide, trust_guard
from tests.monitor.test_rules import make_policy

TOLERANCE = 0.03


def _world(seed: int) -> tuple[LogisticRegression, np.ndarray, np.ndarray]:
    x, y = make_classification(n_samples=12_000, n_features=8, n_informative=5, flip_y=0.05, random_state=seed)
    model = LogisticRegression(max_iter=1000).fit(x[:3000], y[:3000])
    return model, x[3000:], y[3000:]


def _calibrated(seed: int) -> tuple[LogisticRegression, Calibration, np.ndarray, np.ndarray]:
    model, x, y = _world(seed)
    s = model.predict_proba(x[:2000])[:, 1]
    cal = fit_calibration(y[:2000], s, (s >= 0.5).astype(int), metric="roc_auc")
    return model, cal, x[2000:], y[2000:]


def _shifted(model: LogisticRegression, x: np.ndarray, y: np.ndarray, n: int, seed: int) -> tuple[np.ndarray, ...]:
    """A covariate shift that keeps P(y | x): rows kept with a probability falling with the distance from the
    champion's boundary (a function of x alone), so the realised performance falls."""
    w = np.exp(-np.abs(model.decision_function(x)))
    pick = np.random.default_rng(seed).choice(len(x), size=n, replace=False, p=w / w.sum())
    return x[pick], y[pick]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_estimate_tracks_the_realised_metric_of_a_calibrated_model(seed: int) -> None:
    model, cal, x, y = _calibrated(seed)
    stationary = (x[:2000], y[:2000])
    shifted = _shifted(model, x[2000:], y[2000:], 2000, seed)
    realised_auc = {}
    for name, (xs, ys) in (("stationary", stationary), ("shifted", shifted)):
        s = model.predict_proba(xs)[:, 1]
        labels = (s >= 0.5).astype(int)
        for metric in ("roc_auc", "accuracy", "f1"):
            est = estimate(cal, labels, s, metric=metric)
            real = score(metric, ys, labels, s)
            assert abs(est.value - real) <= TOLERANCE, (name, metric, est.value, real)
            assert est.rows == 2000 and est.calibration_rows == 2000
        realised_auc[name] = score("roc_auc", ys, labels, s)
    assert realised_auc["stationary"] - realised_auc["shifted"] > 0.05  # the shift does lower performance


def test_the_expected_roc_auc_is_a_weighted_roc_auc_and_ties_count_half() -> None:
    rng = np.random.default_rng(4)
    s = np.round(rng.random(600), 2)  # many ties
    p = rng.random(600)
    want = roc_auc_score(np.r_[np.ones(600), np.zeros(600)], np.r_[s, s], sample_weight=np.r_[p, 1 - p])
    assert expected_metric("roc_auc", p, s, s >= 0.5) == pytest.approx(want, abs=1e-12)
    # the expected confusion matrix at the champion's own labels
    pos = s >= 0.5
    tp, fp, fn = p[pos].sum(), (1 - p[pos]).sum(), p[~pos].sum()
    assert expected_metric("f1", p, s, pos) == pytest.approx(2 * tp / (2 * tp + fp + fn))
    assert expected_metric("accuracy", p, s, pos) == pytest.approx((tp + (1 - p[~pos]).sum()) / 600)


def test_the_estimate_per_batch_and_what_it_cannot_estimate() -> None:
    model, cal, x, y = _calibrated(0)
    s = model.predict_proba(x[:900])[:, 1]
    names = np.array(["b1"] * 300 + ["b2"] * 600, dtype=object)
    est = estimate(cal, (s >= 0.5).astype(int), s, metric="roc_auc", batches=names)
    assert [(b, n) for b, n, _ in est.batches] == [("b1", 300), ("b2", 600)]
    assert est.batches[1][2] == pytest.approx(estimate(cal, (s[300:] >= .5).astype(int), s[300:],
                                                       metric="roc_auc").value)
    for metric, scores, why in (("rmse", s, "no label-free estimate of rmse"), ("roc_auc", None, "no scores")):
        unknown = estimate(cal, (s >= 0.5).astype(int), scores, metric=metric)
        assert unknown.value is None and why in unknown.why_unknown
    one_class = fit_calibration(np.zeros(50), s[:50], np.zeros(50), metric="roc_auc")
    assert estimate(one_class, (s >= 0.5).astype(int), s, metric="roc_auc").value is None


def _monitor(est, *, rows: int = 2000, labelled: int = 0, champion_metric: float | None = None) -> MonitorResult:
    pred = ColumnDriftResult("prediction", "wasserstein", 0.15, 0.0, False)
    return MonitorResult(rows=rows, labelled_rows=labelled, columns=(), drift_share=0.0, prediction_drift=pred,
                         metric="roc_auc", champion_metric=champion_metric, report_path=None, sampled=False,
                         extras={"estimate": est})


def test_the_signal_fires_on_a_shift_that_lowers_performance_and_stays_quiet_on_a_stationary_stream(
        tmp_path: Path) -> None:
    policy = make_policy(tmp_path, metric="roc_auc", estimated_drop=0.03, drift_share=False, prediction_drift=False,
                         performance_drop=False, sequential=False, consecutive=1)
    model, cal, x, y = _calibrated(1)
    baseline = cal.realised
    for i in range(5):  # stationary batches of 400 unlabelled rows: quiet every time
        s = model.predict_proba(x[400 * i:400 * (i + 1)])[:, 1]
        d = decide(policy, TriggerInputs(_monitor(estimate(cal, (s >= .5).astype(int), s, metric="roc_auc"),
                                                  rows=400), baseline))
        [sig] = d.signals
        assert sig.rule == "estimated_drop" and sig.verdict == "quiet" and not d.triggered, sig.message
    xs, ys = _shifted(model, x[2000:], y[2000:], 400, 1)
    s = model.predict_proba(xs)[:, 1]
    d = decide(policy, TriggerInputs(_monitor(estimate(cal, (s >= .5).astype(int), s, metric="roc_auc"),
                                              rows=400), baseline))
    [sig] = d.signals
    assert sig.verdict == "fired" and d.triggered and sig.value >= 0.03, sig.message
    assert "label-free" in sig.message and sig.details["realised"] is None
    # no labels: the min_labelled_rows guard still blocks building on it
    assert d.action == "skip" and any("labelled" in r for r in d.stops)


def test_label_free_evidence_is_drift_never_labelled_evidence_nor_an_exemption(tmp_path: Path) -> None:
    from kaizen.monitor.rules._base import DRIFT_SIGNALS
    from kaizen.trust import TrustFinding, TrustResult

    policy = make_policy(tmp_path, metric="roc_auc", estimated_drop=0.03, drift_share=False, prediction_drift=False,
                         performance_drop=0.03, performance_drop_se=False, data_drift_alone=False,
                         sequential=False, consecutive=1)
    model, cal, x, y = _calibrated(1)
    xs, ys = _shifted(model, x[2000:], y[2000:], 400, 1)
    s = model.predict_proba(xs)[:, 1]
    labels = (s >= 0.5).astype(int)
    est = estimate(cal, labels, s, metric="roc_auc")
    assert "estimated_drop" in DRIFT_SIGNALS
    # labelled performance measured on rows like the reference and fine: the estimate is discounted
    s0 = model.predict_proba(x[:400])[:, 1]
    ok = Predictions((s0 >= 0.5).astype(int), s0)
    real = score("roc_auc", y[:400], ok.labels, ok.scores)
    assert real > cal.realised - 0.03  # no drop on the labelled rows
    d = decide(policy, TriggerInputs(_monitor(est, rows=400, labelled=400, champion_metric=real), cal.realised,
                                     labelled_y=y[:400], labelled_pred=ok))
    sig = next(x for x in d.signals if x.rule == "estimated_drop")
    assert sig.verdict == "discounted" and not d.triggered
    # without labels it counts, but it is never labelled evidence and never overrides a trust block
    d = decide(policy, TriggerInputs(_monitor(est, rows=400, labelled=400), cal.realised))
    assert d.triggered and d.labelled_evidence == () and not d.decisive
    trust = TrustResult((TrustFinding("label_shift", "block", pd.Index([1, 2]), "labels moved"),), pd.Index([]),
                        True, ["label_shift (blocks the cycle)"])
    assert trust_guard(policy, d, trust).verdict == "blocks"


def test_a_cycle_records_estimated_and_realised_side_by_side(home) -> None:
    """Batch 0 arrives unlabelled (estimated), then its labels arrive with batch 1 (realised beside the estimate)."""
    from kaizen.cycle import run_cycle
    from kaizen.ui.text import print_record
    from tests.conftest import restore_bootstrap

    assert restore_bootstrap(home).decision == "promoted"
    home.write_policy({"trigger": {"estimated_drop": 0.1, "target_drift": "chisquare"},
                       "data": {"window_batches": 2}})
    incoming = sorted(home.incoming.iterdir())
    home.production.mkdir(parents=True, exist_ok=True)
    truth = pd.read_parquet(incoming[0])
    unlabelled = truth.assign(churned=None)
    unlabelled.to_parquet(home.production / incoming[0].name, index=False)
    first = run_cycle(home.config(), home.policy())
    sig = next(s for s in first.trigger["signals"] if s["rule"] == "estimated_drop")
    [b0] = sig["details"]["batches"]
    assert b0["batch"] == incoming[0].name and b0["rows"] == len(truth) and 0.5 < b0["estimated"] <= 1
    assert "realised" not in b0 and sig["details"]["realised"] is None
    assert sig["details"]["calibration_rows"] > 0 and not sig["details"]["calibration_cached"]
    target = next(s for s in first.trigger["signals"] if s["rule"] == "target_drift")
    assert target["verdict"] == "unknown"  # no labels yet

    truth.to_parquet(home.production / incoming[0].name, index=False)  # the labels arrive
    unlabelled_1 = pd.read_parquet(incoming[1]).assign(churned=None)
    unlabelled_1.to_parquet(home.production / incoming[1].name, index=False)
    second = run_cycle(home.config(), home.policy())
    sig = next(s for s in second.trigger["signals"] if s["rule"] == "estimated_drop")
    old, new = sig["details"]["batches"]
    assert old["batch"] == incoming[0].name and old["estimated"] == b0["estimated"]
    assert old["estimated_in"] == first.id and old["labelled_rows"] == len(truth)
    assert new["batch"] == incoming[1].name and new["estimated_in"] is None and "realised" not in new
    assert sig["details"]["calibration_cached"]  # the calibrator is kept per champion and reference
    # the realised figure is the champion's metric on batch 0's labels, the one the performance signal reads
    assert old["realised"] == pytest.approx(second.trigger["monitor"]["champion_metric"])
    assert sig["details"]["realised"] == pytest.approx(old["realised"])
    assert abs(old["estimated"] - old["realised"]) < 0.1
    target = next(s for s in second.trigger["signals"] if s["rule"] == "target_drift")
    assert target["verdict"] in ("quiet", "fired", "discounted") and target["details"]["labelled_rows"] == len(truth)
    out = io.StringIO()
    print_record(second, full=True, out=out)
    [line] = [x for x in out.getvalue().splitlines() if x.startswith("  estimate (")]  # `kaizen show` prints it
    assert f"per batch estimated / realised: {incoming[0].name} {old['estimated']:.4f} / {old['realised']:.4f}" in line


@pytest.mark.parametrize("metric", ["mae", "rmse"])
def test_direct_loss_estimation_tracks_a_regressors_error(metric: str) -> None:
    """DLE (regressors): within 10 % of the realised mae / rmse on 2,000 rows, also under a covariate shift into
    the noisier region that raises the realised error by more than 20 %."""
    from sklearn.linear_model import LinearRegression

    from kaizen.monitor.estimate import estimate_loss, fit_loss_model

    rng = np.random.default_rng(6)

    def draw(n: int, shifted: bool = False) -> tuple[pd.DataFrame, np.ndarray]:
        x = rng.normal(1.0 if shifted else 0.0, 1.0, (n, 3))
        kind = rng.choice(np.array(["a", "b"], dtype=object), n)
        noise = (0.5 + np.abs(x[:, 0])) * (1 + (kind == "b"))  # the error grows with x0 and in segment b
        y = x @ np.array([2.0, -1.0, 0.5]) + rng.normal(0, 1, n) * noise
        return pd.DataFrame({"x0": x[:, 0], "x1": x[:, 1], "x2": x[:, 2], "kind": kind}), y

    nums = ["x0", "x1", "x2"]
    train, y_train = draw(3000)
    model = LinearRegression().fit(train[nums], y_train)
    cal, y_cal = draw(2000)
    loss = fit_loss_model(cal, nums + ["kind"], ["kind"], model.predict(cal[nums]), y_cal, metric=metric)
    realised = {}
    for name, shifted in (("stationary", False), ("shifted", True)):
        rows, y = draw(2000, shifted)
        pred = model.predict(rows[nums])
        est = estimate_loss(loss, rows, pred, batches=np.array(["b1"] * 1000 + ["b2"] * 1000, dtype=object))
        realised[name] = score(metric, y, pred)
        assert est.method == "dle" and len(est.batches) == 2
        assert abs(est.value - realised[name]) <= 0.1 * realised[name], (name, est.value, realised[name])
    assert realised["shifted"] > 1.2 * realised["stationary"]
    r2 = fit_loss_model(cal, nums, [], model.predict(cal[nums]), y_cal, metric="r2")
    assert estimate_loss(r2, cal, model.predict(cal[nums])).value is None  # r2 needs the labels' variance
