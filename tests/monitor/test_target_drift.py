"""Target drift: the labels of the window's labelled rows against the reference labels (its own signal)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from kaizen.data.predictions import Predictions
from kaizen.errors import PolicyError
from kaizen.monitor import ColumnDriftResult, MonitorResult
from kaizen.monitor.estimate import target_drift
from kaizen.monitor.rules import TriggerInputs, decide, trust_guard
from tests.monitor.test_rules import make_policy

ONLY = dict(drift_share=False, prediction_drift=False, performance_drop=False, sequential=False, consecutive=1)


def _monitor(td: ColumnDriftResult | None, labelled: int, champion_metric: float | None = None) -> MonitorResult:
    return MonitorResult(rows=500, labelled_rows=labelled, columns=(), drift_share=0.0, prediction_drift=None,
                         metric="accuracy", champion_metric=champion_metric, report_path=None, sampled=False,
                         extras=None if td is None else {"target_drift": td})


@pytest.mark.parametrize("method", ["jensenshannon", "chisquare"])
def test_target_drift_fires_on_a_label_prior_shift_and_not_on_a_stationary_stream(tmp_path: Path,
                                                                                    method: str) -> None:
    policy = make_policy(tmp_path, target_drift=method, **ONLY)
    rng = np.random.default_rng(0)
    reference = (rng.random(2000) < 0.25).astype(int)
    quiet = fired = 0
    for _ in range(10):
        for share, want in ((0.25, "quiet"), (0.5, "fired")):
            y = (rng.random(500) < share).astype(int)
            td = target_drift(reference, y, policy)
            assert td.column == "target" and td.method == method
            d = decide(policy, TriggerInputs(_monitor(td, len(y)), None))
            [sig] = d.signals
            assert sig.rule == "target_drift" and sig.details["labelled_rows"] == 500
            quiet += want == "quiet" and sig.verdict == "quiet"
            fired += want == "fired" and sig.verdict == "fired" and d.triggered
    assert fired == 10 and quiet >= 9  # a p-value test at 0.05 may fire once in 20 stationary windows


def test_target_drift_on_a_regression_target_and_string_labels(tmp_path: Path) -> None:
    policy = make_policy(tmp_path, metric="rmse", target_drift="wasserstein", **ONLY)
    rng = np.random.default_rng(1)
    ref = rng.normal(10, 2, 2000)
    assert not target_drift(ref, rng.normal(10, 2, 500), policy).drifted
    moved = target_drift(ref, rng.normal(11, 2, 500), policy)
    assert moved.drifted and moved.method == "wasserstein" and moved.threshold == 0.1
    # a numerical-only method on class labels is swapped like the feature default (same family, same threshold)
    cls = make_policy(tmp_path, target_drift="wasserstein", target_drift_threshold=0.2, **ONLY)
    td = target_drift(np.array(["no", "yes"] * 500, dtype=object), np.array(["yes"] * 400 + ["no"] * 100), cls)
    assert td.method == "jensenshannon" and td.threshold == 0.2 and td.drifted


def test_target_drift_needs_labelled_rows_and_a_valid_method(tmp_path: Path) -> None:
    policy = make_policy(tmp_path, target_drift="chisquare", **ONLY)
    td = ColumnDriftResult("target", "chisquare", 0.05, 0.0, True)
    [sig] = decide(policy, TriggerInputs(_monitor(td, 40), None)).signals
    assert sig.verdict == "unknown" and "40 labelled rows (trigger.min_labelled_rows = 100)" in sig.message
    [sig] = decide(policy, TriggerInputs(_monitor(None, 400), None)).signals
    assert sig.verdict == "unknown" and "not computed" in sig.message
    assert not decide(make_policy(tmp_path, **ONLY), TriggerInputs(_monitor(td, 400), None)).signals  # off
    with pytest.raises(PolicyError, match="trigger.target_drift"):
        make_policy(tmp_path, target_drift="bogus", **ONLY)


def test_flipped_labels_drift_the_target_but_never_weaken_a_defence(tmp_path: Path) -> None:
    """An attacker's flipped labels move the label distribution: drift-family evidence, discounted while labelled
    performance shows no drop, never labelled evidence, never an exemption from a trust block."""
    from kaizen.trust import TrustFinding, TrustResult

    policy = make_policy(tmp_path, target_drift="jensenshannon", drift_share=False, prediction_drift=False,
                         performance_drop=0.05, performance_drop_se=False, data_drift_alone=False,
                         sequential=False, consecutive=1)
    rng = np.random.default_rng(2)
    reference = (rng.random(2000) < 0.25).astype(int)
    y = (rng.random(500) < 0.25).astype(int)
    flipped = y.copy()
    flipped[np.flatnonzero(y == 0)[:150]] = 1  # 150 negatives relabelled as positives
    td = target_drift(reference, flipped, policy)
    assert td.drifted
    pred = Predictions(y, None)  # the champion still predicts the truth; its accuracy on the flipped labels is 0.7
    acc = float((flipped == y).mean())
    calm = decide(policy, TriggerInputs(_monitor(td, 500, acc), acc, labelled_y=flipped, labelled_pred=pred))
    sig = next(s for s in calm.signals if s.rule == "target_drift")
    assert sig.verdict == "discounted" and not calm.triggered  # labelled performance (vs its baseline) shows no drop
    # with labelled performance unknown it counts, as drift does; it is never labelled evidence and overrides nothing
    d = decide(policy, TriggerInputs(_monitor(td, 500), None))
    assert d.triggered and d.labelled_evidence == ()
    trust = TrustResult((TrustFinding("label_noise", "block", pd.Index(range(150)), "labels flipped"),),
                        pd.Index([]), True, ["label_noise (blocks the cycle)"])
    assert trust_guard(policy, d, trust).verdict == "blocks"
