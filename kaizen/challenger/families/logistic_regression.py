"""``logistic_regression``: L2-regularised logistic regression on standardised inputs (classification)."""

from __future__ import annotations

from typing import Any

from kaizen.challenger.families._base import Family


class LogisticRegression(Family):
    name = "logistic_regression"
    order = 30
    tasks = ("binary_classification", "multiclass_classification")
    prefix = "lr_"
    scale = True

    def space(self, trial: Any) -> dict[str, Any]:
        return {"C": trial.suggest_float("C", 1e-3, 100.0, log=True)}

    def estimator(self, params: dict[str, Any], task: str, seed: int) -> Any:
        from sklearn.linear_model import LogisticRegression as Model

        return Model(max_iter=2000, random_state=seed, **params)
