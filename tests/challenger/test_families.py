"""The model-family conformance suite: every family (one module of kaizen/challenger/families/) passes it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from kaizen.challenger.families import BY_NAME, FAMILIES, default_families, family
from kaizen.challenger.search import _params, make_pipeline, trial_params
from kaizen.policy import TASKS

PAIRS = [(f.name, task) for f in BY_NAME.values() for task in f.tasks]


def _trial(seed: int = 0):
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed)).ask()


def test_the_registry_is_the_folder_and_names_are_unique() -> None:
    root = Path(__file__).resolve().parents[2] / "kaizen" / "challenger" / "families"
    assert sorted(BY_NAME) == sorted(p.stem for p in root.glob("*.py") if not p.stem.startswith("_"))
    prefixes = [f.prefix for f in BY_NAME.values()]
    assert len(set(prefixes)) == len(prefixes) and all(p.endswith("_") for p in prefixes)
    assert not any(a != b and b.startswith(a) for a in prefixes for b in prefixes)
    assert all(f.tasks and set(f.tasks) <= set(TASKS) for f in BY_NAME.values())
    with pytest.raises(ValueError, match="unknown model family 'catboost'; known: hist_gradient_boosting"):
        family("catboost")


def test_the_default_search_is_unchanged_by_new_families() -> None:
    """A seeded search of a policy without build.families stays what it was: new families are opt-in."""
    assert default_families("binary_classification") == ("hist_gradient_boosting", "random_forest",
                                                          "logistic_regression")
    assert default_families("regression") == ("hist_gradient_boosting", "random_forest", "ridge")
    assert all(set(default_families(t)) <= set(FAMILIES[t]) for t in TASKS)


@pytest.mark.parametrize(("name", "task"), PAIRS)
def test_family_conformance(name: str, task: str, classification_rows, multiclass_rows, regression_rows,
                            schema) -> None:
    f = family(name)
    if f.missing():
        pytest.skip(f.missing())
    trial = _trial()
    params = f.suggest(trial)
    # its trial parameters carry its prefix; the recipe holds the estimator's own names
    assert params and all(k.startswith(f.prefix) for k in trial.params)
    assert {f.param_name(k) for k in trial.params} == set(params)
    # a recipe goes to the search's names and back (the ladder's warm start, a recipe's refit)
    recipe = {**params, "window_fraction": 0.5, "engineered": False}
    again = trial_params(name, recipe)
    assert again["family"] == name and _params(SimpleNamespace(params=again)) == (name, recipe)
    # its estimator: unfitted, seeded, of the task's kind; a seeded fit repeats exactly
    est = f.estimator(params, task, seed=3)
    assert est.get_params().get("random_state") == 3 and not hasattr(est, "n_features_in_")
    rows = {"binary_classification": classification_rows,
            "multiclass_classification": multiclass_rows}.get(task, regression_rows).iloc[:300]
    x, y = rows[list(schema.features)], rows["target"].to_numpy()

    def fit() -> np.ndarray:
        pipe = make_pipeline(name, recipe, task=task, numeric=schema.numerical, categorical=schema.categorical,
                             seed=3)
        pipe.fit(x, y)
        if task == "multiclass_classification":  # one probability per class, three classes
            assert list(pipe.classes_) == [0, 1, 2]
            return pipe.predict_proba(x).ravel()
        return pipe.predict_proba(x)[:, 1] if task == "binary_classification" else pipe.predict(x)

    first = fit()
    assert np.isfinite(first).all() and np.array_equal(first, fit())


@pytest.mark.parametrize("name", sorted(BY_NAME))
def test_a_family_refuses_a_task_it_does_not_serve(name: str) -> None:
    missing = [t for t in TASKS if t not in family(name).tasks]
    for task in missing:
        with pytest.raises(ValueError, match=f"model family {name!r} does not fit task {task!r}"):
            make_pipeline(name, {"window_fraction": 1.0, "engineered": False}, task=task, numeric=("a",),
                          categorical=(), seed=0)


def test_importing_the_families_loads_no_model_library() -> None:
    code = ("import sys, kaizen.challenger.families as f; assert f.BY_NAME; "
            "print(sorted(m for m in ('sklearn', 'optuna', 'pandas', 'featuretools', 'lightgbm', 'xgboost') "
            "if m in sys.modules))")
    root = Path(__file__).resolve().parents[2]
    out = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
