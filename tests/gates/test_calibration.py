"""The calibration gate (kaizen/gates/calibration.py, the gate added as one module): Brier-score non-inferiority."""

from __future__ import annotations

import numpy as np
import pytest

from kaizen.data.predictions import Predictions
from kaizen.errors import PolicyError
from kaizen.gates import Evidence, Labelled, gates_for
from kaizen.gates.calibration import CalibrationGate
from kaizen.metrics import score

rng = np.random.default_rng(1)
TRUE = 1 / (1 + np.exp(-rng.normal(0, 1.5, 2000)))     # each row's real probability
Y = (rng.random(2000) < TRUE).astype(int)


def _sharpened(p: np.ndarray, k: float) -> np.ndarray:
    """The same ranking with probabilities pushed towards 0 and 1 (k > 1: overconfident)."""
    logit = np.log(p / (1 - p))
    return 1 / (1 + np.exp(-k * logit))


def _evidence(policy, champ: np.ndarray | None, chall: np.ndarray, n: int = 2000, seed: int = 0) -> Evidence:
    def preds(s: np.ndarray | None) -> Predictions | None:
        return None if s is None else Predictions((s[:n] >= 0.5).astype(int), s[:n])
    return Evidence(policy, Labelled("holdout", Y[:n], preds(champ), preds(chall)), seed=seed)


def test_an_overconfident_challenger_that_ranks_as_well_fails(make_policy) -> None:
    policy = make_policy({"gates": {"max_brier_loss": 0.005}})
    over = _sharpened(TRUE, 3.0)
    assert score("roc_auc", Y, None, over) == pytest.approx(score("roc_auc", Y, None, TRUE))  # the same ranking
    r = CalibrationGate().check(_evidence(policy, TRUE, over))
    assert not r.passed and r.numbers["change"] > 0.02 and r.numbers["upper_bound"] > 0.005
    assert "non-inferiority not shown" in r.message


def test_a_challenger_as_well_calibrated_passes_and_the_numbers_repeat(make_policy) -> None:
    policy = make_policy({"gates": {"max_brier_loss": 0.005}})
    r = CalibrationGate().check(_evidence(policy, _sharpened(TRUE, 1.3), TRUE))
    assert r.passed and r.numbers["change"] < 0 and r.numbers["upper_bound"] < 0.005
    assert r.message.startswith("challenger Brier score ") and "shows it is calibrated no worse" in r.message
    assert CalibrationGate().check(_evidence(policy, _sharpened(TRUE, 1.3), TRUE)) == r
    assert set(r.numbers) == {"rows", "champion", "challenger", "change", "upper_bound", "margin", "confidence",
                              "resamples"}


def test_the_burden_of_proof_is_the_challengers(make_policy) -> None:
    """A small loss the holdout cannot rule out fails on few rows and passes on many: not shown is not passed."""
    policy = make_policy({"gates": {"max_brier_loss": 0.01}})
    slightly = _sharpened(TRUE, 1.5)
    many = CalibrationGate().check(_evidence(policy, TRUE, slightly))
    few = CalibrationGate().check(_evidence(policy, TRUE, slightly, n=40))
    assert many.passed and not few.passed
    assert 0 < many.numbers["change"] < 0.01 and few.numbers["upper_bound"] >= 0.01


def test_without_probabilities_or_a_champion(make_policy) -> None:
    policy = make_policy({"gates": {"max_brier_loss": 0.01}})
    alone = CalibrationGate().check(_evidence(policy, None, TRUE))
    assert alone.passed and "no champion to compare with" in alone.message
    labels_only = Evidence(policy, Labelled("holdout", Y, Predictions(Y), Predictions(Y, TRUE)))
    assert not CalibrationGate().check(labels_only).passed
    no_scores = Evidence(policy, Labelled("holdout", Y, Predictions(Y, TRUE), Predictions(Y)))
    assert "gives no probabilities" in CalibrationGate().check(no_scores).message


def test_off_unless_the_policy_sets_a_margin(make_policy) -> None:
    assert "calibration" not in [g.name for g in gates_for(make_policy())]
    assert make_policy({"gates": {"max_brier_loss": False}}).gates.max_brier_loss is None
    on = make_policy({"gates": {"max_brier_loss": 0.01}})
    assert [g.name for g in gates_for(on)] == ["sanity", "significance", "golden", "calibration", "behaviour"]
    with pytest.raises(PolicyError, match=r"gates.max_brier_loss must be a number in \[0, 1\]; got 2"):
        make_policy({"gates": {"max_brier_loss": 2}})
