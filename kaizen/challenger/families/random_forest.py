"""``random_forest``: scikit-learn's random forest, every task (one job: the search runs one trial at a time)."""

from __future__ import annotations

from typing import Any

from kaizen.challenger.families._base import Family


class RandomForest(Family):
    name = "random_forest"
    order = 20
    tasks = ("binary_classification", "multiclass_classification", "regression")
    prefix = "rf_"

    def space(self, trial: Any) -> dict[str, Any]:
        return {"n_estimators": trial.suggest_int("n_estimators", 50, 150),
                "max_depth": trial.suggest_int("max_depth", 3, 16),
                "min_samples_leaf": trial.suggest_int("min_samples_leaf", 1, 20),
                "max_features": trial.suggest_categorical("max_features", ["sqrt", 0.5])}

    def estimator(self, params: dict[str, Any], task: str, seed: int) -> Any:
        from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor

        cls = RandomForestClassifier if task != "regression" else RandomForestRegressor
        return cls(n_jobs=1, random_state=seed, **params)
