"""``hist_gradient_boosting``: scikit-learn's histogram gradient boosting, every task."""

from __future__ import annotations

from typing import Any

from kaizen.challenger.families._base import Family


class HistGradientBoosting(Family):
    name = "hist_gradient_boosting"
    order = 10
    tasks = ("binary_classification", "multiclass_classification", "regression")
    prefix = "hgb_"

    def space(self, trial: Any) -> dict[str, Any]:
        return {"learning_rate": trial.suggest_float("learning_rate", 0.02, 0.3, log=True),
                "max_leaf_nodes": trial.suggest_int("max_leaf_nodes", 8, 64),
                "min_samples_leaf": trial.suggest_int("min_samples_leaf", 10, 100),
                "l2_regularization": trial.suggest_float("l2_regularization", 1e-4, 1.0, log=True),
                "max_iter": trial.suggest_int("max_iter", 50, 300)}

    def estimator(self, params: dict[str, Any], task: str, seed: int) -> Any:
        from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

        cls = HistGradientBoostingClassifier if task != "regression" else HistGradientBoostingRegressor
        return cls(early_stopping=False, random_state=seed, **params)
