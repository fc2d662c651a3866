"""``ridge``: ridge regression on standardised inputs (regression)."""

from __future__ import annotations

from typing import Any

from kaizen.challenger.families._base import Family


class Ridge(Family):
    name = "ridge"
    order = 30
    tasks = ("regression",)
    prefix = "ridge_"
    scale = True

    def space(self, trial: Any) -> dict[str, Any]:
        return {"alpha": trial.suggest_float("alpha", 1e-3, 100.0, log=True)}

    def estimator(self, params: dict[str, Any], task: str, seed: int) -> Any:
        from sklearn.linear_model import Ridge as Model

        return Model(random_state=seed, **params)
