"""The latency gate: p95 of timed predictions of 1,000 rows within the policy's budget.

Thresholds are obviously met (1e9 ms) or obviously violated (1e-9 ms): no wall-clock assertion.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from kaizen.gates import Evidence, LatencyGate, gates_for
from tests.gates.conftest import ColumnModel, labelled

X = pd.DataFrame({"a": np.linspace(-1, 1, 50), "b": np.ones(50)})
H = labelled(np.r_[np.zeros(25), np.ones(25)].astype(int), None, np.linspace(0, 1, 50))


def test_a_generous_budget_passes_and_records_every_timing(make_policy) -> None:
    model = ColumnModel({"a": 1.0, "b": 0.5})
    policy = make_policy({"gates": {"max_latency_ms_per_1000": 1e9, "latency_repeats": 4}})
    r = LatencyGate().check(Evidence(policy, H, holdout_inputs=X, challenger_model=model))
    assert r.passed and r.numbers["rows"] == 1000 and r.numbers["repeats"] == 4 and len(r.numbers["times_ms"]) == 4
    assert r.numbers["budget_ms"] == 1e9 and r.numbers["p95_ms"] >= r.numbers["median_ms"] > 0
    assert model.calls == 5  # one warm-up, four timed


def test_an_impossible_budget_fails(make_policy) -> None:
    policy = make_policy({"gates": {"max_latency_ms_per_1000": 1e-9}})
    r = LatencyGate().check(Evidence(policy, H, holdout_inputs=X, challenger_model=ColumnModel({"a": 1.0})))
    assert not r.passed and "over the budget of 1e-09 ms" in r.message and r.numbers["repeats"] == 5


def test_a_model_that_cannot_predict_or_is_missing_fails(make_policy) -> None:
    policy = make_policy({"gates": {"max_latency_ms_per_1000": 1e9}})
    broken = LatencyGate().check(Evidence(policy, H, holdout_inputs=X, challenger_model=ColumnModel({}, fail=True)))
    assert not broken.passed and broken.message.endswith("RuntimeError: model file is corrupt")
    missing = LatencyGate().check(Evidence(policy, H, holdout_inputs=X))
    assert not missing.passed and "latency not measured" in missing.message


def test_the_gate_runs_only_with_a_budget(make_policy) -> None:
    assert "latency" not in [g.name for g in gates_for(make_policy())]
    assert "latency" in [g.name for g in gates_for(make_policy({"gates": {"max_latency_ms_per_1000": 50}}))]
