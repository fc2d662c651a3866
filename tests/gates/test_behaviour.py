"""The behaviour gate: the policy's invariances, and the champion's input schema (order, extra columns)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from kaizen.gates import Evidence, Labelled, gates_for
from kaizen.gates.behaviour import UNKNOWN_COLUMN, BehaviourGate, changed
from kaizen.policy import InvarianceSpec
from tests.gates.conftest import ColumnModel

rng = np.random.default_rng(0)
X = pd.DataFrame({"tenure": rng.integers(1, 72, 200).astype(float), "calls": rng.poisson(2, 200).astype(float),
                  "region": pd.Categorical(rng.choice(["n", "s"], 200))})
Y = rng.integers(0, 2, 200)
NOISE_ADD = '[[gates.invariance]]\ncolumn = "calls"\nchange = { add = 5 }\nmax_change = 0.01\n'


def evidence(policy, model: ColumnModel, inputs: pd.DataFrame = X) -> Evidence:
    """The holdout inputs, the model's predictions on them (the challenger's in the record) and the model."""
    return Evidence(policy, Labelled("holdout", Y, None, model.predict(inputs)), holdout_inputs=inputs,
                    challenger_model=model)


def test_a_model_that_ignores_the_column_keeps_the_invariance(make_policy) -> None:
    r = BehaviourGate().check(evidence(make_policy(extra=NOISE_ADD), ColumnModel({"tenure": 0.05})))
    assert r.passed, r.message
    inv = r.numbers["invariance"][0]
    assert inv == {"column": "calls", "change": "add", "value": 5, "max_change": 0.01, "observed_max": 0.0,
                   "observed_mean": 0.0, "rows_over": 0, "ok": True}
    assert r.numbers["schema"] == {"ok": True, "labels_changed": 0, "max_score_change": 0.0}


def test_a_model_that_breaks_the_invariance_fails_naming_it(make_policy) -> None:
    r = BehaviourGate().check(evidence(make_policy(extra=NOISE_ADD), ColumnModel({"calls": 0.4})))
    assert not r.passed
    inv = r.numbers["invariance"][0]
    assert not inv["ok"] and inv["rows_over"] == 200 and inv["observed_max"] > 0.3
    assert r.message.startswith("add 5 on 'calls' moved 200 of 200 predictions by more than 0.01")


def test_a_model_that_reads_columns_by_position_fails_the_schema_check(make_policy) -> None:
    model = ColumnModel({"tenure": 0.05, "calls": -0.4}, by_position=True)
    r = BehaviourGate().check(evidence(make_policy(), model, X[["tenure", "calls"]]))
    assert not r.passed and r.numbers["schema"]["ok"] is False and r.numbers["schema"]["max_score_change"] > 0.1
    assert r.message.startswith("reordered columns plus an unknown column changed")


def test_a_model_that_refuses_unknown_columns_fails_the_schema_check(make_policy) -> None:
    model = ColumnModel({"tenure": 0.05, "calls": 0.1}, strict=True)
    r = BehaviourGate().check(evidence(make_policy(), model, X[["tenure", "calls"]]))
    assert not r.passed and UNKNOWN_COLUMN in r.numbers["schema"]["error"]
    assert r.message.startswith("the challenger cannot score reordered columns plus an unknown column: ValueError")


def test_the_schema_check_can_be_turned_off(make_policy) -> None:
    policy = make_policy({"gates": {"check_schema": False}}, extra=NOISE_ADD)
    model = ColumnModel({"tenure": 0.05, "calls": 0.0}, strict=True)
    r = BehaviourGate().check(evidence(policy, model, X[["tenure", "calls"]]))
    assert r.passed and r.numbers["schema"] is None
    assert "behaviour" not in [g.name for g in gates_for(make_policy({"gates": {"check_schema": False}}))]


def test_invariance_on_a_missing_or_non_numeric_column_fails_with_the_setting_named(make_policy) -> None:
    extra = ('[[gates.invariance]]\ncolumn = "nope"\nchange = { set = 1 }\nmax_change = 0\n\n'
             '[[gates.invariance]]\ncolumn = "region"\nchange = { multiply = 2 }\nmax_change = 0\n')
    r = BehaviourGate().check(evidence(make_policy(extra=extra), ColumnModel({"tenure": 0.05})))
    assert not r.passed
    assert r.message == ("gates.invariance[0]: column 'nope' is not a model input; gates.invariance[1]: column "
                         "'region' is not numeric (category); multiply needs numbers")


def test_changes_apply_to_a_copy() -> None:
    out = changed(X, InvarianceSpec("region", "set", "w", 0.0))
    assert set(out["region"]) == {"w"} and set(X["region"]) == {"n", "s"}
    assert (changed(X, InvarianceSpec("tenure", "multiply", 2, 0.0))["tenure"] == X["tenure"] * 2).all()
    assert (changed(X, InvarianceSpec("calls", "add", -1, 0.0))["calls"] == X["calls"] - 1).all()


def test_without_a_model_it_fails(make_policy) -> None:
    h = Labelled("holdout", Y, None, ColumnModel({"tenure": 0.05}).predict(X))
    r = BehaviourGate().check(Evidence(make_policy(), h, holdout_inputs=X))
    assert not r.passed and "behaviour not checked" in r.message
