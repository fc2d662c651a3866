"""``extra_trees``: the family added as one module (kaizen/challenger/families/extra_trees.py)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from kaizen.challenger import build_challenger, predict_frame
from kaizen.errors import PolicyError
from kaizen.policy import load_policy
from tests.conftest import BASE_POLICY, to_toml


@pytest.mark.parametrize("task", ["binary_classification", "regression"])
def test_a_policy_that_asks_for_extra_trees_builds_one(task, rows_factory, schema, policy_factory, tmp_path) -> None:
    rows = rows_factory(400, seed=11, task="regression" if task == "regression" else "binary_classification")
    pol = policy_factory(task, trials=3, families=("extra_trees",))
    r = build_challenger(rows, schema=schema, policy=pol, workdir=tmp_path)
    assert r.family == "extra_trees" and r.trial_counts["COMPLETE"] == 3
    assert {"n_estimators", "max_depth", "min_samples_leaf", "max_features"} <= set(r.params)
    meta = json.loads((r.artifacts_dir / "build.json").read_text())
    assert meta["family"] == "extra_trees"
    out = predict_frame(r.artifacts_dir, rows.iloc[-20:])
    assert np.isfinite(out.to_numpy(dtype=float)).all()
    again = build_challenger(rows, schema=schema, policy=pol, workdir=tmp_path / "again")
    assert (again.params, again.validation_metric) == (r.params, r.validation_metric)


def test_the_policy_names_it_for_both_tasks_and_it_is_opt_in(tmp_path) -> None:
    doc = {k: dict(v) for k, v in BASE_POLICY.items()}
    del doc["build"]["families"]
    path = tmp_path / "p.toml"
    path.write_text(to_toml(doc))
    assert load_policy(path).build.families == ("hist_gradient_boosting", "random_forest", "logistic_regression")
    doc["build"]["families"] = ["extra_trees", "logistic_regression"]
    path.write_text(to_toml(doc))
    assert load_policy(path).build.families == ("extra_trees", "logistic_regression")
    doc["build"]["families"] = ["extra_tree"]
    path.write_text(to_toml(doc))
    with pytest.raises(PolicyError, match="build.families must be a non-empty list of strings from "
                                          "'hist_gradient_boosting', 'random_forest', 'logistic_regression', "
                                          "'extra_trees', 'lightgbm', 'xgboost'; got \\['extra_tree'\\]"):
        load_policy(path)
