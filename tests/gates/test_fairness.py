"""The fairness gate: demographic parity and equal opportunity gaps, challenger vs champion."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from kaizen.errors import PolicyError
from kaizen.gates import Evidence, FairnessGate, gates_for
from tests.gates.conftest import labelled

FAIR = {"gates": {"fairness_column": "sex", "fairness_tolerance": 0.05}}


def case(chall_bias: float):
    """400 rows, groups f/m; the champion predicts positive at the same rate in both groups, the
    challenger ``chall_bias`` more often for m (on negatives and positives alike)."""
    rng = np.random.default_rng(0)
    sex = np.repeat(["f", "m"], 200)
    y = np.tile(np.r_[np.ones(100), np.zeros(100)], 2).astype(int)
    u = rng.random(400)
    champ = np.where(u < 0.5, 0.9, 0.1)
    chall = np.where(u < 0.5 + np.where(sex == "m", chall_bias, 0.0), 0.9, 0.1)
    return labelled(y, champ, chall), pd.DataFrame({"sex": sex})


@pytest.mark.parametrize("metric", ["demographic_parity", "equal_opportunity"])
def test_a_challenger_that_favours_one_group_fails(make_policy, metric: str) -> None:
    policy = make_policy({"gates": {**FAIR["gates"], "fairness_metric": metric}})
    h, frame = case(0.3)
    r = FairnessGate().check(Evidence(policy, h, holdout_frame=frame))
    n = r.numbers
    assert not r.passed and r.message.endswith(": worse") and n["fairness_metric"] == metric
    assert n["challenger_gap"] - n["champion_gap"] == pytest.approx(n["change"]) and n["change"] > 0.05
    rows = 200 if metric == "demographic_parity" else 100
    assert n["challenger"]["m"]["rows"] == n["challenger"]["f"]["rows"] == rows
    assert n["challenger"]["m"]["rate"] > n["challenger"]["f"]["rate"]


def test_a_small_change_within_tolerance_passes(make_policy) -> None:
    h, frame = case(0.02)
    r = FairnessGate().check(Evidence(make_policy(FAIR), h, holdout_frame=frame))
    assert r.passed and r.numbers["change"] <= 0.05


def test_groups_below_min_rows_are_left_out(make_policy) -> None:
    h, frame = case(0.3)
    r = FairnessGate().check(Evidence(make_policy({"gates": {**FAIR["gates"], "min_slice_rows": 201}}), h,
                                      holdout_frame=frame))
    assert r.passed and r.numbers["challenger_gap"] is None and "fewer than 2 groups" in r.message


def test_a_missing_column_fails_with_the_setting_named(make_policy) -> None:
    h, _ = case(0.0)
    r = FairnessGate().check(Evidence(make_policy(FAIR), h, holdout_frame=pd.DataFrame({"x": np.zeros(400)})))
    assert not r.passed and r.message == "gates.fairness_column 'sex' is not in the holdout rows"


def test_the_gate_runs_only_when_the_policy_names_a_column(make_policy) -> None:
    assert "fairness" not in [g.name for g in gates_for(make_policy())]
    assert "fairness" in [g.name for g in gates_for(make_policy(FAIR))]


def test_a_fairness_column_on_a_regression_policy_is_refused(make_policy) -> None:
    with pytest.raises(PolicyError, match="gates.fairness_column needs task 'binary_classification'; got task "
                                          "'regression'"):
        make_policy({"model": {"task": "regression", "target": "y", "metric": "rmse"},
                     "build": {"families": ["ridge"]}, **FAIR})
