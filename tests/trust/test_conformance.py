"""The contract every trust check keeps (kaizen/trust/_base.py), run once per check."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from kaizen.policy import TRUST_CHECKS
from kaizen.trust import CHECKS, TrustCheck, TrustInputs
from tests.trust.conftest import attack, champion, schema_of

#: the seeded attack each check must fire on (label_noise fires on the relabelled segment's clear-cut rows)
FIRES_ON = {"duplicates": "duplicates", "outliers": "outliers", "label_shift": "flip", "label_noise": "flip"}
SEED = 2


def inputs_for(check: TrustCheck, policy_file, *, index: pd.Index | None = None, upto: int = 3) -> TrustInputs:
    att = attack(FIRES_ON[check.name], SEED)
    sc = att.scenario
    new = pd.concat(sc.batches[: upto + 1], ignore_index=True)
    if index is not None:
        new.index = index[: len(new)]
    predict = champion(SEED)
    policy = policy_file()
    return TrustInputs(new=new, reference=sc.reference, schema=schema_of(sc.reference), task=policy.model.task,
                       positive_label=1, predictions=predict(new), spec=policy.trust, seed=SEED,
                       reference_predictions=predict(sc.reference))


def test_every_policy_check_has_one_implementation_in_run_order() -> None:
    assert tuple(c.name for c in CHECKS) == TRUST_CHECKS


@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.name)
def test_fires_on_its_attack_naming_rows_by_the_callers_index(check: TrustCheck, policy_file) -> None:
    labels = pd.Index([f"row-{i}" for i in range(10_000)])
    found = check.check(inputs_for(check, policy_file, index=labels))
    assert found.fired, found.message
    assert found.check == check.name and found.action == getattr(policy_file().trust, check.name)
    assert set(found.rows) <= set(labels) and not found.rows.has_duplicates
    assert found.to_dict()["rows"] == len(found.rows) and found.to_dict()["fired"] is True


@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.name)
def test_pure_and_deterministic(check: TrustCheck, policy_file) -> None:
    inputs = inputs_for(check, policy_file)
    before_new, before_ref = inputs.new.copy(), inputs.reference.copy()
    scores = np.array(inputs.predictions.scores, copy=True)
    first, second = check.check(inputs), check.check(inputs)
    pd.testing.assert_frame_equal(inputs.new, before_new)
    pd.testing.assert_frame_equal(inputs.reference, before_ref)
    np.testing.assert_array_equal(inputs.predictions.scores, scores)
    assert first.rows.equals(second.rows) and first.to_dict() == second.to_dict()


@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.name)
def test_numbers_are_plain_json_values(check: TrustCheck, policy_file) -> None:
    import json

    d = check.check(inputs_for(check, policy_file)).to_dict()
    json.dumps(d, allow_nan=False)
    assert all(not isinstance(v, float) or math.isfinite(v) for v in d["numbers"].values())


@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.name)
def test_too_few_new_rows_are_not_judged(check: TrustCheck, policy_file) -> None:
    inputs = inputs_for(check, policy_file)
    few = TrustInputs(**{**inputs.__dict__, "new": inputs.new.iloc[:150],
                         "predictions": type(inputs.predictions)(inputs.predictions.labels[:150],
                                                                 inputs.predictions.scores[:150])})
    found = check.check(few)
    assert not found.fired
    assert found.message == "not judged: 150 new rows, fewer than trust.min_rows = 200"
