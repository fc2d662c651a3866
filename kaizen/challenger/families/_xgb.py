"""XGBoost's classifier for any two labels (imported by :mod:`kaizen.challenger.families.xgboost` when it builds one).

``xgboost.XGBClassifier`` accepts labels 0..k-1 only; a policy's labels may be anything (``"yes"``,
``-1``/``1``, ...). :class:`XGBLabelled` encodes them for the booster and decodes its predictions, with
scikit-learn's ``classes_`` contract (sorted labels; ``predict_proba`` columns in that order). It
lives in its own module because a fitted pipeline is pickled with it: the class must be importable
where the model is loaded (the ``kaizen`` package travels with every model).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin

__all__ = ["XGBLabelled"]


class XGBLabelled(ClassifierMixin, BaseEstimator):
    """``xgboost.XGBClassifier`` (histogram trees, one thread, silent) on labels encoded as 0..k-1."""

    def __init__(self, n_estimators: int = 100, learning_rate: float = 0.1, max_depth: int = 6,
                 min_child_weight: float = 1.0, subsample: float = 1.0, colsample_bytree: float = 1.0,
                 reg_lambda: float = 1.0, random_state: int = 0) -> None:
        self.n_estimators = n_estimators
        self.learning_rate = learning_rate
        self.max_depth = max_depth
        self.min_child_weight = min_child_weight
        self.subsample = subsample
        self.colsample_bytree = colsample_bytree
        self.reg_lambda = reg_lambda
        self.random_state = random_state

    def fit(self, x: Any, y: Any) -> XGBLabelled:
        from xgboost import XGBClassifier

        self.classes_, codes = np.unique(np.asarray(y), return_inverse=True)
        self.booster_ = XGBClassifier(n_jobs=1, verbosity=0, tree_method="hist", **self.get_params())
        self.booster_.fit(x, codes)
        self.n_features_in_ = self.booster_.n_features_in_
        return self

    def predict_proba(self, x: Any) -> np.ndarray:
        return self.booster_.predict_proba(x)

    def predict(self, x: Any) -> np.ndarray:
        return self.classes_[np.argmax(self.predict_proba(x), axis=1)]
