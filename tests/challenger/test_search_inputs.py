"""SearchInputs: what a helper downloads must give every trial the value the build's own process gets."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from kaizen.challenger.search import SearchInputs, make_objective
from kaizen.errors import BuildError


def _inputs(labels: tuple = (0, 1), positive=1) -> SearchInputs:
    rng = np.random.default_rng(4)
    n = 300
    x = pd.DataFrame({"a": rng.normal(size=n), "b": rng.normal(size=n), "a / b": rng.normal(size=n),
                      "plan": rng.choice(["basic", "pro", "__missing__"], n).astype(object)})
    x.loc[rng.random(n) < 0.05, "a"] = np.nan
    y = np.where(x["b"] + rng.normal(0, 0.5, n) > 0, labels[1], labels[0])
    return SearchInputs(x_fit=x.iloc[:220].reset_index(drop=True), y_fit=y[:220],
                        x_val=x.iloc[220:].reset_index(drop=True), y_val=y[220:], names=("a", "b", "plan", "a / b"),
                        identity=("a", "b", "plan"), categorical=("plan",),
                        families=("hist_gradient_boosting", "logistic_regression"), windows=(1.0, 0.5),
                        task="binary_classification", metric="roc_auc", positive_label=positive,
                        higher_is_better=True, seed=5)


@pytest.mark.parametrize("labels,positive", [((0, 1), 1), (("stay", "churn"), "churn")])
def test_saved_inputs_load_equal_and_score_every_trial_the_same(tmp_path, labels, positive):
    import optuna

    a = _inputs(labels, positive)
    a.save(tmp_path)
    b = SearchInputs.load(tmp_path)
    pd.testing.assert_frame_equal(a.x_fit, b.x_fit)
    pd.testing.assert_frame_equal(a.x_val, b.x_val)
    assert list(a.y_fit) == list(b.y_fit) and list(a.y_val) == list(b.y_val)
    assert (b.names, b.identity, b.categorical, b.families, b.windows) == (
        a.names, a.identity, a.categorical, a.families, a.windows)
    assert (b.positive_label, b.seed, b.direction) == (positive, 5, "maximize")
    for params in ({"family": "logistic_regression", "lr_C": 0.3, "window_fraction": 0.5, "engineered": True},
                   {"family": "hist_gradient_boosting", "hgb_learning_rate": 0.1, "hgb_max_leaf_nodes": 9,
                    "hgb_min_samples_leaf": 12, "hgb_l2_regularization": 0.01, "hgb_max_iter": 60,
                    "window_fraction": 1.0, "engineered": False}):
        values = [make_objective(x)(optuna.trial.FixedTrial(params)) for x in (a, b)]
        assert values[0] == values[1] and 0.5 < values[0] <= 1.0


def test_columns_without_engineered_features_are_the_raw_ones_in_order():
    names, numeric, categorical = _inputs().columns(False)
    assert names == ("a", "b", "plan") and numeric == ("a", "b") and categorical == ("plan",)
    assert _inputs().columns(True)[0] == ("a", "b", "plan", "a / b")


def test_inputs_of_another_format_are_refused(tmp_path):
    _inputs().save(tmp_path)
    doc = json.loads((tmp_path / "search.json").read_text())
    (tmp_path / "search.json").write_text(json.dumps({**doc, "format": 99}))
    with pytest.raises(BuildError, match="format 99"):
        SearchInputs.load(tmp_path)


def test_before_runs_first_and_may_prune():
    import optuna

    seen = []

    def before(trial):
        seen.append(trial)
        raise optuna.TrialPruned("budget spent")

    trial = optuna.trial.FixedTrial({"family": "logistic_regression", "lr_C": 1.0, "window_fraction": 1.0,
                                     "engineered": False})
    with pytest.raises(optuna.TrialPruned):
        make_objective(_inputs(), before=before)(trial)
    assert seen == [trial] and trial.user_attrs == {}
