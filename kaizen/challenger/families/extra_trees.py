"""``extra_trees``: scikit-learn's extremely randomised trees, every task.

Like a random forest, but each split's threshold is drawn at random instead of searched: cheaper to
fit, smoother on noisy numeric inputs, and a different bias from the boosted trees. Opt-in
(``build.families = [..., "extra_trees"]``) until it has run beside the defaults on real policies.
"""

from __future__ import annotations

from typing import Any

from kaizen.challenger.families._base import Family


class ExtraTrees(Family):
    name = "extra_trees"
    order = 40
    tasks = ("binary_classification", "multiclass_classification", "regression")
    prefix = "et_"
    default = False

    def space(self, trial: Any) -> dict[str, Any]:
        return {"n_estimators": trial.suggest_int("n_estimators", 50, 150),
                "max_depth": trial.suggest_int("max_depth", 3, 16),
                "min_samples_leaf": trial.suggest_int("min_samples_leaf", 1, 20),
                "max_features": trial.suggest_categorical("max_features", ["sqrt", 0.5, 1.0])}

    def estimator(self, params: dict[str, Any], task: str, seed: int) -> Any:
        from sklearn.ensemble import ExtraTreesClassifier, ExtraTreesRegressor

        cls = ExtraTreesClassifier if task != "regression" else ExtraTreesRegressor
        return cls(n_jobs=1, random_state=seed, **params)
