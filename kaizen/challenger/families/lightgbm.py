"""``lightgbm``: LightGBM's gradient-boosted trees (its scikit-learn estimators), every task, where installed.

Leaf-wise boosting with row and column sampling: often the strongest tabular learner for its CPU cost.
Opt-in (``build.families = [..., "lightgbm"]``) and only where the package is installed
(``pip install 'kaizen[boosting]'``); a policy that names it elsewhere is refused with that message.
Seeded and repeatable: one thread, ``deterministic`` with row-wise histograms, silent.
"""

from __future__ import annotations

from typing import Any

from kaizen.challenger.families._base import Family


class LightGBM(Family):
    name = "lightgbm"
    order = 50
    tasks = ("binary_classification", "multiclass_classification", "regression")
    prefix = "lgbm_"
    default = False
    requires = "lightgbm"
    extra = "boosting"

    def space(self, trial: Any) -> dict[str, Any]:
        return {"n_estimators": trial.suggest_int("n_estimators", 50, 300),
                "learning_rate": trial.suggest_float("learning_rate", 0.02, 0.3, log=True),
                "num_leaves": trial.suggest_int("num_leaves", 8, 64),
                "min_child_samples": trial.suggest_int("min_child_samples", 5, 100),
                "reg_lambda": trial.suggest_float("reg_lambda", 1e-4, 10.0, log=True),
                "colsample_bytree": trial.suggest_float("colsample_bytree", 0.5, 1.0)}

    def estimator(self, params: dict[str, Any], task: str, seed: int) -> Any:
        if why := self.missing():
            raise ImportError(why)
        from lightgbm import LGBMClassifier, LGBMRegressor

        cls = LGBMRegressor if task == "regression" else LGBMClassifier
        return cls(n_jobs=1, random_state=seed, deterministic=True, force_row_wise=True, verbosity=-1, **params)
