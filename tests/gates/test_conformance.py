"""The gate conformance suite: every gate (one module of kaizen/gates/) keeps one contract.

Every gate runs on one evidence with every optional input filled and a policy that turns every gate on;
each verdict names its gate, carries JSON-able numbers, repeats exactly (seeded) and says "passed" only
as a boolean. The registry's order and switches are checked against each gate's own declaration.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from kaizen.gates import GATES, Evidence, Gate, Labelled, gates_for
from kaizen.policy import GateSettings, GateSpec
from tests.gates.conftest import ColumnModel

EVERY_GATE = {"gates": {"max_model_mb": 100, "max_latency_ms_per_1000": 1e9, "latency_repeats": 2,
                        "fairness_column": "region", "max_brier_loss": 0.05}}
SLICE = '[[gates.slices]]\ncolumn = "region"\nvalues = ["n", "s"]\n'

rng = np.random.default_rng(0)
X = pd.DataFrame({"a": rng.normal(0, 1, 400), "b": rng.normal(0, 1, 400)})
FRAME = X.assign(region=rng.choice(["n", "s"], 400))
Y = (rng.random(400) < 1 / (1 + np.exp(-1.5 * X["a"].to_numpy()))).astype(int)
CHAMPION, CHALLENGER = ColumnModel({"a": 1.2}), ColumnModel({"a": 1.5, "b": 0.1})


def evidence(policy) -> Evidence:
    hold = Labelled("holdout", Y, CHAMPION.predict(X), CHALLENGER.predict(X))
    gold = Labelled("golden", Y[:200], CHAMPION.predict(X.iloc[:200]), CHALLENGER.predict(X.iloc[:200]))
    return Evidence(policy, hold, golden=gold, classes=(0, 1), holdout_frame=FRAME, holdout_inputs=X,
                    challenger_model=CHALLENGER, challenger_bytes=2_000_000, seed=5)


def test_the_registry_is_the_folder_in_declared_order() -> None:
    root = Path(__file__).resolve().parents[2] / "kaizen" / "gates"
    modules = sorted(p.stem for p in root.glob("*.py") if not p.stem.startswith("_") and p.stem != "judge")
    assert sorted(type(g).__module__.rsplit(".", 1)[1] for g in GATES) == modules
    assert [g.order for g in GATES] == sorted(g.order for g in GATES)
    assert len({g.name for g in GATES}) == len(GATES)
    for g in GATES:
        assert isinstance(g, Gate) and g.name and g.order > 0
        for f in dataclasses.fields(g.settings) if g.settings else ():
            assert f.name in {x.name for x in dataclasses.fields(GateSpec)}, (g.name, f.name)
            assert f.name not in {x.name for x in dataclasses.fields(GateSettings)}, (g.name, f.name)
        if g.tasks is not None:
            assert g.switch in {x.name for x in dataclasses.fields(GateSpec)}


def test_a_policy_turns_a_gate_on_only_through_its_own_declaration(make_policy) -> None:
    every = make_policy(EVERY_GATE, extra=SLICE)
    assert [g.name for g in gates_for(every)] == [g.name for g in GATES if g.name != "improvement"]
    margin = make_policy({"gates": {"promotion_test": "margin"}})
    assert [g.name for g in gates_for(margin)] == ["sanity", "improvement", "golden", "behaviour"]


@pytest.mark.parametrize("gate", GATES, ids=lambda g: g.name)
def test_every_gate_keeps_the_contract(gate: Gate, make_policy) -> None:
    policy = make_policy(EVERY_GATE, extra=SLICE)
    first = gate.check(evidence(policy))
    assert first.name == gate.name and isinstance(first.passed, bool) and first.message
    assert json.loads(json.dumps(first.to_dict(), default=str))["name"] == gate.name
    again = gate.check(evidence(policy))
    if gate.name != "latency":  # wall-clock times differ; its verdict here does not
        assert again == first
    assert again.passed == first.passed


@pytest.mark.parametrize("gate", [g for g in GATES if g.tasks is not None], ids=lambda g: g.name)
def test_a_gate_for_one_task_is_a_policy_error_elsewhere(gate: Gate, make_policy) -> None:
    from kaizen.errors import PolicyError

    value = {"fairness_column": "region", "max_brier_loss": 0.01}[gate.switch]
    with pytest.raises(PolicyError, match=f"gates.{gate.switch} needs task 'binary_classification'; got task "
                                          "'regression'"):
        make_policy({"model": {"task": "regression", "metric": "rmse"}, "gates": {gate.switch: value}})
