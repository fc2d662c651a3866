from __future__ import annotations

import dataclasses

import pandas as pd
import pytest

from experiments.scenarios import churn
from kaizen.data.predictions import Predictions
from kaizen.trust import check_training_rows
from tests.trust.conftest import attack, champion, only, precision_recall, run, schema_of


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
@pytest.mark.parametrize("name", ["flip20", "flip", "flip40"])
def test_one_segment_relabelled_blocks_the_cycle(name: str, seed: int, policy_file) -> None:
    res, truth = run(only(policy_file(label_shift="block"), "label_shift"), attack(name, seed), 3, seed)
    (found,) = res.findings
    assert found.fired and res.blocked, found.message
    assert found.numbers["column"] in ("tenure_months", "total_charges")  # long tenure, or its lifetime charges
    precision, recall = precision_recall(found.rows, truth)
    # the segment named is a decile range: it may be narrower than the attacked one (tenure >= 51 for >= 40)
    assert precision >= 0.6 and recall >= 0.6, (precision, recall)
    assert "one segment relabelled" in res.reasons[0]


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_a_slow_poisoning_adds_up(seed: int, policy_file) -> None:
    policy = only(policy_file(label_shift="block"), "label_shift")
    res, truth = run(policy, attack("slow", seed), 4, seed)
    (found,) = res.findings
    assert found.fired and found.numbers["rows"] >= 1000  # judged over more than one batch
    assert precision_recall(found.rows, truth)[0] >= 0.6


def _concept_run(seed: int, policy, upto: int):
    """The shipped churn scenario (covariate shift at 3, new labelling rule at 7) with a champion of its reference."""
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    sc = churn(seed=seed, reference_rows=3000, batch_rows=1000, n_batches=upto + 1)
    s = schema_of(sc.reference)
    model = make_pipeline(ColumnTransformer([("n", StandardScaler(), list(s.numerical)),
                                             ("c", OneHotEncoder(handle_unknown="ignore"), list(s.categorical))]),
                          LogisticRegression(max_iter=2000))
    model.fit(sc.reference[list(s.features)], sc.reference["churned"])

    def predict(f: pd.DataFrame) -> Predictions:
        p = model.predict_proba(f[list(s.features)])[:, 1]
        return Predictions((p >= 0.5).astype(int), p)

    new = pd.concat(sc.batches, ignore_index=True)
    return check_training_rows(policy, new_rows=new, reference=sc.reference, schema=s,
                               champion_predictions_on_new=predict(new), seed=seed,
                               champion_predictions_on_reference=predict(sc.reference))


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_concept_change_is_not_a_relabelled_segment(seed: int, policy_file) -> None:
    # two batches under the new rule
    res = _concept_run(seed, only(policy_file(label_shift="block"), "label_shift"), upto=8)
    (found,) = res.findings
    assert not found.fired and not res.blocked
    assert found.numbers["moved_segments"] >= 1  # labels did move against the champion ...
    assert "reads as a concept change" in found.message  # ... in several places, or as a rule of the features


@pytest.mark.parametrize("seed", [1, 2])
def test_the_champions_own_errors_are_discounted(seed: int, policy_file) -> None:
    """The logistic champion misses the price-per-GB ratio: without its predictions on the reference, its own
    error on heavy-usage customers reads as a moved segment on clean data."""
    policy = only(policy_file(label_shift="block"), "label_shift")
    with_ref = run(policy, attack("clean", seed), 4, seed)[0].findings[0]
    without = run(policy, attack("clean", seed), 4, seed, with_reference=False)[0].findings[0]
    assert not with_ref.fired
    assert without.fired and without.numbers["column"] == "usage_gb"
    assert "its own errors by segment are not discounted" in without.message


def test_names_only_rows_carrying_the_label_that_rose(policy_file) -> None:
    att = attack("flip", 2)
    res, _ = run(only(policy_file(label_shift="block"), "label_shift"), att, 3, 2)
    new = pd.concat(att.scenario.batches[:4], ignore_index=True)
    assert (new.loc[res.findings[0].rows, "churned"] == 1).all()


def test_regression_targets_are_not_judged(policy_file) -> None:
    policy = only(policy_file(label_shift="block"), "label_shift")
    reg = dataclasses.replace(policy, model=dataclasses.replace(policy.model, task="regression"))
    (found,) = run(reg, attack("flip", 1), 3, 1)[0].findings
    assert not found.fired and found.message.startswith("not judged: regression targets")


def test_a_champion_without_probabilities_is_not_judged(policy_file) -> None:
    sc = attack("flip40", 3).scenario
    new = pd.concat(sc.batches[:4], ignore_index=True)
    labels = champion(3)(new).labels
    blocking = only(policy_file(label_shift="block"), "label_shift")
    res = check_training_rows(blocking, new_rows=new, reference=sc.reference,
                              schema=schema_of(sc.reference), champion_predictions_on_new=Predictions(labels),
                              seed=3)
    (found,) = res.findings
    assert not found.fired and found.message.startswith("not judged: the champion gives hard labels")


def test_multiclass_targets_are_not_judged_and_say_why(policy_file) -> None:
    policy = only(policy_file(label_shift="block"), "label_shift")
    three = dataclasses.replace(policy, model=dataclasses.replace(policy.model, task="multiclass_classification",
                                                                  metric="accuracy", positive_label=None))
    (found,) = run(three, attack("flip", 1), 3, 1)[0].findings
    assert not found.fired and found.message.startswith("not judged: multiclass targets")
