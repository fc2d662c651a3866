"""Which Evidently drift method each column gets, and how Evidently's stattest objects are reached.

Some Evidently methods only apply to one kind of column (``wasserstein``,
``ks``, ``anderson``, ``cramer_von_mises``, ``mannw``, ``energy`` to
numerical ones; ``chisquare``, ``z``, ``TVD`` to categorical ones). A
``[trigger.columns.X]`` override that does not fit its column is a
:class:`~kaizen.errors.PolicyError`. The policy-wide default
(``trigger.drift_method``) is meant for every column, so where it does not
fit it is swapped for the nearest method of the same family with the same
threshold: a distance becomes ``jensenshannon``, a categorical p-value test
becomes ``ks``, a numerical one ``chisquare``. The method actually used is
recorded in each result.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from kaizen.data.schema import Schema
from kaizen.errors import PolicyError
from kaizen.policy import DRIFT_METHODS, ColumnDrift, Policy

__all__ = ["NUMERICAL", "CATEGORICAL", "PREDICTION", "Planned", "plan_columns", "plan_prediction",
           "prediction_values", "stattest"]

NUMERICAL, CATEGORICAL = "numerical", "categorical"
#: The result name of prediction drift (it is not a feature).
PREDICTION = "prediction"

_NUMERICAL_ONLY = frozenset({"wasserstein", "ks", "anderson", "cramer_von_mises", "mannw", "energy"})
_CATEGORICAL_ONLY = frozenset({"chisquare", "z", "TVD"})
#: Methods whose score is a p-value (drift when p < threshold); the rest are distances.
_PVALUE = frozenset({"ks", "chisquare", "z", "anderson", "cramer_von_mises", "mannw", "TVD"})
#: Kaizen's method names that Evidently spells differently.
_EVIDENTLY_NAME = {"energy": "ed"}


@dataclass(frozen=True)
class Planned:
    """One column to compare: its kind and the (possibly swapped) method and threshold."""

    name: str
    kind: str
    drift: ColumnDrift

    @property
    def evidently_method(self) -> str:
        return _EVIDENTLY_NAME.get(self.drift.method, self.drift.method)


def plan_columns(schema: Schema, policy: Policy) -> list[Planned]:
    """The method of every feature, in schema order; a misfitting override raises PolicyError."""
    trig = policy.trigger
    numerical = set(schema.numerical)
    out = []
    for c in schema.features:
        kind = NUMERICAL if c in numerical else CATEGORICAL
        out.append(Planned(c, kind, _fit(c, kind, trig.drift_for(c), explicit=c in trig.columns, policy=policy)))
    return out


def plan_prediction(ref_values: np.ndarray, cur_values: np.ndarray, policy: Policy) -> Planned:
    """Prediction drift: numerical when both sides are numeric (scores, values, 0/1 labels)."""
    kind = NUMERICAL if _is_numeric(ref_values) and _is_numeric(cur_values) else CATEGORICAL
    trig = policy.trigger
    default = ColumnDrift(trig.prediction_drift_method, trig.prediction_drift_threshold)
    return Planned(PREDICTION, kind, _fit(PREDICTION, kind, default, explicit=False, policy=policy))


def prediction_values(p: Any) -> np.ndarray:
    """What prediction drift compares: the scores when there are any, else the labels/values."""
    return np.asarray(p.scores if p.scores is not None else p.labels)


def stattest(planned: Planned) -> Any:
    """Evidently's registered ``StatTest`` object for the planned method and column kind."""
    from evidently.legacy.calculations.stattests import get_stattest
    from evidently.legacy.core import ColumnType

    kind = ColumnType.Numerical if planned.kind == NUMERICAL else ColumnType.Categorical
    # get_stattest reads the data only to pick a default method; the method is always given here.
    return get_stattest(_EMPTY, _EMPTY, kind, planned.evidently_method)


_EMPTY = pd.Series([], dtype=float)


def _fit(column: str, kind: str, spec: ColumnDrift, *, explicit: bool, policy: Policy) -> ColumnDrift:
    """``spec`` if Evidently applies it to a ``kind`` column, else the same-family fallback (module doc)."""
    wrong = _NUMERICAL_ONLY if kind == CATEGORICAL else _CATEGORICAL_ONLY
    if spec.method not in wrong:
        return spec
    if explicit:
        allowed = [m for m in DRIFT_METHODS if m not in wrong]
        raise PolicyError(str(policy.path), [
            f"trigger.columns.{column}.method {spec.method!r} does not apply to {kind} column {column!r}; "
            f"use one of {', '.join(map(repr, allowed))}"])
    if spec.method in _PVALUE:
        return ColumnDrift("chisquare" if kind == CATEGORICAL else "ks", spec.threshold)
    return ColumnDrift("jensenshannon", spec.threshold)


def _is_numeric(values: np.ndarray) -> bool:
    return pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values)
