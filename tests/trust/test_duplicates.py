from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from kaizen.data.predictions import Predictions
from kaizen.data.schema import infer_schema
from kaizen.trust import TrustInputs
from kaizen.trust.duplicates import Duplicates, burst_copies
from tests.trust.conftest import attack, only, precision_recall, run


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_flood_of_copies_is_caught_copy_for_copy(seed: int, policy_file) -> None:
    res, truth = run(only(policy_file(), "duplicates"), attack("duplicates", seed), 3, seed)
    (found,) = res.findings
    assert found.fired and found.action == "drop"
    assert precision_recall(found.rows, truth) == (1.0, 1.0)  # every copy, and not the rows it copies
    assert found.numbers["burst_copies"] == 150 and found.numbers["largest_burst"] == 31


def _jittered_flood(seed: int, relative: float) -> tuple[pd.DataFrame, pd.DataFrame, np.ndarray]:
    att = attack("duplicates", seed)
    new = pd.concat(att.scenario.batches[:4], ignore_index=True)
    truth = np.concatenate([att.poisoned[i] for i in range(4)])
    rng = np.random.default_rng(seed)
    for c in ("monthly_charges", "total_charges", "usage_gb"):
        new.loc[truth, c] = new.loc[truth, c] * (1 + rng.uniform(-relative, relative, int(truth.sum())))
    return new, att.scenario.reference, truth


def test_near_duplicates_count_to_duplicate_digits(policy_file) -> None:
    new, ref, truth = _jittered_flood(4, 1e-5)  # copies differing in the 6th significant digit
    schema = infer_schema(ref, target="churned", timestamp="ts")
    pred = Predictions(np.zeros(len(new)), np.zeros(len(new)))

    def flagged(digits: int) -> pd.Index:
        pol = policy_file(duplicate_digits=digits)
        return Duplicates().check(TrustInputs(new, ref, schema, "binary_classification", 1, pred, pol.trust, 4)).rows

    assert precision_recall(flagged(3), truth)[1] >= 0.95
    assert len(flagged(10)) == 0  # ten digits see every jittered copy as a new row


def test_data_that_repeats_naturally_fires_only_on_a_burst(policy_file) -> None:
    rng = np.random.default_rng(0)

    def draw(n: int) -> pd.DataFrame:
        return pd.DataFrame({"plan": rng.choice(["a", "b", "c"], n), "seats": rng.integers(1, 6, n),
                             "y": rng.integers(0, 2, n)})

    ref, new = draw(3000), draw(1000)
    schema = infer_schema(ref, target="y")
    spec = policy_file().trust
    pred = Predictions(np.zeros(1000), np.zeros(1000))
    quiet = Duplicates().check(TrustInputs(new, ref, schema, "binary_classification", 1, pred, spec, 0))
    assert not quiet.fired and quiet.numbers["extra_copies"] == 985  # 15 combinations: nearly every row repeats

    burst = pd.concat([new, pd.DataFrame({"plan": ["a"] * 300, "seats": [5] * 300, "y": [1] * 300})],
                      ignore_index=True)
    pred = Predictions(np.zeros(1300), np.zeros(1300))
    loud = Duplicates().check(TrustInputs(burst, ref, schema, "binary_classification", 1, pred, spec, 0))
    assert loud.fired
    flagged = burst.loc[loud.rows]
    assert (flagged[["plan", "seats"]] == ["a", 5]).all(axis=None)  # only the bursting combination
    assert 200 <= len(flagged) <= 300  # its copies beyond what the reference frequency allows


def test_burst_copies_allow_each_key_its_reference_frequency() -> None:
    keys = pd.Series(["a"] * 30 + ["b"] * 3 + ["c"])
    freq = pd.Series({"a": 0.5})  # "a" is half of the reference; "b" and "c" never repeated there
    burst = burst_copies(keys, freq, z=3.0)
    assert not burst[:30].any()  # 30 of 34 rows: within 34 * 0.5 + 3 sqrt(17) = 29.4, rounded up
    assert burst[30:33].tolist() == [False, True, True] and not burst[33]
    assert burst_copies(keys, freq, z=2.0)[:30].sum() == 4  # 17 + 2 sqrt(17) = 25.2: the 27th-30th are copies


def test_works_on_a_regression_policy_too(policy_file) -> None:
    pol = policy_file()
    reg = dataclasses.replace(pol, model=dataclasses.replace(pol.model, task="regression"))
    att = attack("duplicates", 1)
    new = pd.concat(att.scenario.batches[:4], ignore_index=True).assign(churned=lambda d: d["churned"] * 1.5)
    schema = infer_schema(att.scenario.reference, target="churned", timestamp="ts")
    pred = Predictions(np.zeros(len(new)))
    found = Duplicates().check(TrustInputs(new, att.scenario.reference, schema, "regression", 1, pred, reg.trust, 1))
    assert found.fired and len(found.rows) == 150
