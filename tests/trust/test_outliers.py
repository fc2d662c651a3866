from __future__ import annotations

import dataclasses

import pytest

from tests.trust.conftest import attack, only, precision_recall, run


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_an_injected_pocket_is_caught(seed: int, policy_file) -> None:
    res, truth = run(only(policy_file(), "outliers"), attack("outliers", seed), 3, seed)
    (found,) = res.findings
    assert found.fired and found.action == "drop"
    precision, recall = precision_recall(found.rows, truth)
    assert recall >= 0.9 and precision >= 0.6, (precision, recall)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_covariate_drift_moves_rows_off_the_reference_within_the_allowance(seed: int, policy_file) -> None:
    policy = only(policy_file(), "outliers")
    res, _ = run(policy, attack("clean", seed), 4, seed)
    (found,) = res.findings
    assert not found.fired
    assert found.numbers["all_rows_share"] > found.numbers["reference_share"]  # the drift is visible ...
    strict = dataclasses.replace(policy, trust=dataclasses.replace(policy.trust, outlier_ratio=1.0))
    assert run(strict, attack("clean", seed), 4, seed)[0].findings[0].fired  # ... and only the allowance absorbs it
