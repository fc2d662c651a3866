"""``xgboost``: XGBoost's gradient-boosted trees (histogram method), both tasks, where installed.

Depth-wise boosting with row and column sampling: a different bias from LightGBM's leaf-wise trees.
Opt-in (``build.families = [..., "xgboost"]``) and only where the package is installed
(``pip install 'kaizen[boosting]'``); a policy that names it elsewhere is refused with that message.
Seeded and repeatable: one thread, silent. XGBoost's classifier takes labels 0..k-1 only, so the
classifier is :class:`kaizen.challenger.families._xgb.XGBLabelled`, which encodes the policy's labels.
"""

from __future__ import annotations

from typing import Any

from kaizen.challenger.families._base import Family


class XGBoost(Family):
    name = "xgboost"
    order = 60
    tasks = ("binary_classification", "regression")
    prefix = "xgb_"
    default = False
    requires = "xgboost"
    extra = "boosting"

    def space(self, trial: Any) -> dict[str, Any]:
        return {"n_estimators": trial.suggest_int("n_estimators", 50, 300),
                "learning_rate": trial.suggest_float("learning_rate", 0.02, 0.3, log=True),
                "max_depth": trial.suggest_int("max_depth", 2, 8),
                "min_child_weight": trial.suggest_float("min_child_weight", 1.0, 20.0, log=True),
                "subsample": trial.suggest_float("subsample", 0.6, 1.0),
                "colsample_bytree": trial.suggest_float("colsample_bytree", 0.5, 1.0),
                "reg_lambda": trial.suggest_float("reg_lambda", 1e-3, 10.0, log=True)}

    def estimator(self, params: dict[str, Any], task: str, seed: int) -> Any:
        if why := self.missing():
            raise ImportError(why)
        if task == "binary_classification":
            from kaizen.challenger.families._xgb import XGBLabelled

            return XGBLabelled(random_state=seed, **params)
        from xgboost import XGBRegressor

        return XGBRegressor(n_jobs=1, random_state=seed, verbosity=0, tree_method="hist", **params)
