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



def _three_classes(n: int, seed: int):
    """Rows of two numbers and a region, and a class of three by a linear rule plus noise (``bird``/``cat``/``dog``)."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({"a": rng.normal(0, 1, n), "b": rng.normal(0, 1, n),
                          "region": rng.choice(["north", "south"], n)})
    scores = np.stack([-2 * frame["a"], 2 * frame["b"], 2 * frame["a"]], axis=1) + rng.gumbel(0, 0.5, (n, 3))
    return frame.assign(kind=np.array(["bird", "cat", "dog"], dtype=object)[scores.argmax(axis=1)])


def _judge(new, reference, seed: int = 0):
    import numpy as np

    from kaizen.data.predictions import Predictions
    from kaizen.data.schema import Schema
    from kaizen.policy import TrustSpec
    from kaizen.trust._base import TrustInputs
    from kaizen.trust.label_noise import LabelNoise

    schema = Schema(features=("a", "b", "region"), numerical=("a", "b"), categorical=("region",), target="kind")
    inputs = TrustInputs(new=new, reference=reference, schema=schema, task="multiclass_classification",
                         positive_label=None, predictions=Predictions(new["kind"].to_numpy(), np.ones(len(new))),
                         spec=TrustSpec(), seed=seed)
    return LabelNoise().check(inputs)


def test_multiclass_labels_are_judged_by_a_multinomial_model() -> None:
    """A stretch of rows the rule is sure are ``dog`` relabelled ``bird``: named; the clean rows: quiet."""
    import numpy as np

    reference, new = _three_classes(1500, 1), _three_classes(1000, 2)
    clean = _judge(new, reference)
    assert not clean.fired and clean.numbers["model"] == "logistic regression", clean.message
    sure = ((new["kind"] == "dog") & (new["a"] > 1.0)).to_numpy()
    poisoned = sure & (np.arange(len(new)) >= 500) & (np.arange(len(new)) < 900)
    bad = new.assign(kind=np.where(poisoned, "bird", new["kind"]))
    found = _judge(bad, reference)
    assert found.fired, found.message
    named = set(found.rows)
    truth = set(new.index[poisoned])
    # as for binary labels: nearly all it names are poisoned, and it finds the ones its model is surest of
    precision, recall = len(named & truth) / len(named), len(named & truth) / len(truth)
    assert precision >= 0.8 and recall >= 0.3, (precision, recall)
