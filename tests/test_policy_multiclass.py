"""Task multiclass_classification in a policy: its metrics, no positive class, the gates it can run, its classes."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from kaizen.errors import PolicyError
from kaizen.policy import load_policy
from kaizen.policy_check import check_policy_data
from tests.conftest import BASE_POLICY, make_home, to_toml

MULTICLASS = {"task": "multiclass_classification", "metric": "f1_macro"}


def write(tmp_path: Path, **overrides: dict) -> Path:
    doc = {k: dict(v) for k, v in BASE_POLICY.items()}
    for s, vals in overrides.items():
        doc.setdefault(s, {}).update(vals)
    path = tmp_path / "p.toml"
    path.write_text(to_toml(doc))
    return path


@pytest.mark.parametrize("metric", ["accuracy", "balanced_accuracy", "f1_macro"])
def test_a_multiclass_policy_loads_without_a_positive_class(tmp_path: Path, metric: str) -> None:
    policy = load_policy(write(tmp_path, model={**MULTICLASS, "metric": metric}))
    assert policy.model.task == "multiclass_classification" and policy.model.metric == metric
    assert policy.model.positive_label is None and policy.model.higher_is_better


def test_a_positive_label_a_binary_metric_and_a_binary_only_gate_are_refused(tmp_path: Path) -> None:
    path = write(tmp_path, model={**MULTICLASS, "metric": "roc_auc", "positive_label": 2},
                 gates={"max_brier_loss": 0.01})
    with pytest.raises(PolicyError) as err:
        load_policy(path)
    msg = str(err.value)
    assert (f"{path}: model.metric must be one of 'accuracy', 'balanced_accuracy', 'f1_macro' for task "
            "'multiclass_classification'; got 'roc_auc'") in msg
    assert (f"{path}: model.positive_label is only read for task 'binary_classification' (a multiclass model has "
            "no positive class): remove it; got 2 with task 'multiclass_classification'") in msg
    assert (f"{path}: gates.max_brier_loss needs task 'binary_classification'; got task "
            "'multiclass_classification'") in msg
    assert len(err.value.problems) == 3


def test_a_binary_policy_cannot_name_a_multiclass_metric(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match="model.metric must be one of 'roc_auc', 'accuracy', 'f1' for task "
                                          "'binary_classification'; got 'f1_macro'"):
        load_policy(write(tmp_path, model={"metric": "f1_macro"}))


def test_the_reference_must_hold_three_classes(tmp_path: Path, churn_data: Path) -> None:
    """Two classes are a binary problem: the data check says so, naming the file, the field and the classes."""
    home = make_home(tmp_path / "home", churn_data, {"model": MULTICLASS})
    home.arrive(0)
    ref = (home.root / "data" / "reference.parquet").resolve()
    assert check_policy_data(home.policy()) == [
        f"{ref}: model.target 'churned' must hold at least 3 classes for multiclass_classification (use "
        "binary_classification for 2); got 2: 0, 1"]
    frame = pd.read_parquet(ref)
    frame["churned"] = frame["churned"] + (frame["age"] > 60).astype(int)  # a third class: 2
    frame.to_parquet(ref, index=False)
    assert check_policy_data(home.policy()) == []
