from __future__ import annotations

import dataclasses

import pytest

from tests.trust.conftest import attack, only, precision_recall, run


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_names_the_relabelled_rows_the_new_rows_model_is_sure_of(seed: int, policy_file) -> None:
    res, truth = run(only(policy_file(), "label_noise"), attack("flip", seed), 3, seed)
    (found,) = res.findings
    assert found.fired and found.action == "drop"
    precision, recall = precision_recall(found.rows, truth)
    # few rows, nearly all poisoned: the flipped long-tenure customers its model is surest would stay
    assert precision >= 0.8 and recall >= 0.3, (precision, recall)


def test_the_probability_threshold_decides_what_is_contradicted(policy_file) -> None:
    policy = only(policy_file(), "label_noise")
    loose = run(policy, attack("flip", 1), 3, 1)[0].findings[0]
    strict = dataclasses.replace(policy, trust=dataclasses.replace(policy.trust, noise_probability=0.001))
    tight = run(strict, attack("flip", 1), 3, 1)[0].findings[0]
    assert loose.fired and not tight.fired
    assert tight.numbers["contradicted"] < loose.numbers["contradicted"]


def test_regression_targets_are_not_judged(policy_file) -> None:
    policy = only(policy_file(), "label_noise")
    reg = dataclasses.replace(policy, model=dataclasses.replace(policy.model, task="regression"))
    (found,) = run(reg, attack("flip", 1), 3, 1)[0].findings
    assert not found.fired and found.message.startswith("not judged: regression targets")


def test_multiclass_targets_are_not_judged_and_say_why(policy_file) -> None:
    policy = only(policy_file(), "label_noise")
    three = dataclasses.replace(policy, model=dataclasses.replace(policy.model, task="multiclass_classification",
                                                                  metric="accuracy", positive_label=None))
    (found,) = run(three, attack("flip", 1), 3, 1)[0].findings
    assert not found.fired and found.message == ("not judged: multiclass targets (this check reads P(positive) of "
                                                 "a binary classifier; see docs/policies.md)")
