"""The challenger must behave as the policy says: invariances, and the champion's input schema.

* Invariance (``[[gates.invariance]]``): on a copy of the holdout inputs, one
  column is changed (``add`` a number, ``multiply`` by one, or ``set`` a value);
  no row's prediction may move by more than ``max_change``. The prediction is
  the positive-class probability (binary classification) or the predicted value
  (regression); for multiclass classification, the probability of the
  predicted class, and a row whose predicted class changes moved by 1.
* Schema (``gates.check_schema``): a champion is fed the raw feature columns in
  whatever order and with whatever extra columns production sends. The
  challenger must score the holdout with its columns in reverse order and an
  unknown column added, without error and with the same predictions (labels
  equal, scores within :data:`SAME`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from kaizen.data.predictions import Predictions
from kaizen.gates._base import Evidence, Gate, GateResult
from kaizen.policy import InvarianceSpec

__all__ = ["BehaviourGate", "SAME", "UNKNOWN_COLUMN", "changed"]

#: scores closer than this are the same prediction (floating-point noise)
SAME = 1e-9
#: the extra column the schema check adds
UNKNOWN_COLUMN = "__kaizen_unknown_column__"


def changed(frame: Any, inv: InvarianceSpec) -> Any:
    """A copy of ``frame`` with ``inv`` applied; ``KeyError``/``TypeError`` name the problem."""
    import pandas as pd

    if inv.column not in frame.columns:
        raise KeyError(f"column {inv.column!r} is not a model input")
    out = frame.copy()
    col = out[inv.column]
    if inv.change == "set":
        if isinstance(col.dtype, pd.CategoricalDtype) and inv.value not in col.cat.categories:
            col = col.cat.add_categories([inv.value])
        out[inv.column] = pd.Series([inv.value] * len(out), index=out.index, dtype=col.dtype
                                    if isinstance(col.dtype, pd.CategoricalDtype) else None)
        return out
    if not pd.api.types.is_numeric_dtype(col) or pd.api.types.is_bool_dtype(col):
        raise TypeError(f"column {inv.column!r} is not numeric ({col.dtype}); {inv.change} needs numbers")
    out[inv.column] = col + inv.value if inv.change == "add" else col * inv.value
    return out


def _values(p: Predictions) -> np.ndarray:
    return np.asarray(p.scores if p.scores is not None else p.labels, dtype=float)


def _moved(new: Predictions, base: Predictions, task: str) -> np.ndarray:
    """How far each row's prediction moved (module docstring)."""
    moved = np.abs(_values(new) - _values(base))
    if task == "multiclass_classification":
        return np.where(np.asarray(new.labels) != np.asarray(base.labels), 1.0, moved)
    return moved


class BehaviourGate(Gate):
    """Every ``[[gates.invariance]]`` holds and (``gates.check_schema``) the input schema is accepted."""

    name = "behaviour"
    order = 60

    def enabled(self, gates: Any) -> bool:
        return bool(gates.check_schema or gates.invariance)

    def check(self, evidence: Evidence) -> GateResult:
        spec = evidence.policy.gates
        model, x, base = evidence.challenger_model, evidence.holdout_inputs, evidence.holdout.challenger
        if model is None or x is None:
            return self.result(False, "no loaded challenger or holdout inputs in the evidence: behaviour not checked")
        problems: list[str] = []
        invariance: list[dict[str, Any]] = []
        for k, inv in enumerate(spec.invariance):
            row: dict[str, Any] = {"column": inv.column, "change": inv.change, "value": inv.value,
                                   "max_change": inv.max_change}
            invariance.append(row)
            try:
                moved = _moved(model.predict(changed(x, inv)), base, evidence.policy.model.task)
            except (KeyError, TypeError) as exc:
                problems.append(f"gates.invariance[{k}]: {exc.args[0]}")
                row["ok"] = False
                continue
            except Exception as exc:  # noqa: BLE001 - a model that cannot predict fails the gate, with the reason
                problems.append(f"gates.invariance[{k}]: the challenger failed to predict with {inv.column} "
                                f"changed: {type(exc).__name__}: {exc}")
                row["ok"] = False
                continue
            worst = float(np.nanmax(moved)) if len(moved) else 0.0
            over = int(np.sum(~(moved <= inv.max_change)))
            row.update(observed_max=worst, observed_mean=float(np.nanmean(moved)) if len(moved) else 0.0,
                       rows_over=over, ok=over == 0)
            if over:
                problems.append(f"{inv.change} {inv.value!r} on {inv.column!r} moved {over} of {len(moved)} "
                                f"predictions by more than {inv.max_change:g} (at most {worst:.4g})")
        schema = self._schema(model, x, base, problems) if spec.check_schema else None
        numbers = dict(invariance=invariance, schema=schema, rows=len(x))
        if problems:
            return self.result(False, "; ".join(problems), **numbers)
        done = [f"{len(invariance)} invariance check(s) held"] + (
            ["the challenger accepts reordered columns and an unknown column"] if schema else [])
        return self.result(True, "; ".join(done), **numbers)

    def _schema(self, model: Any, x: Any, base: Predictions, problems: list[str]) -> dict[str, Any]:
        shuffled = x[list(reversed(x.columns))].assign(**{UNKNOWN_COLUMN: "unexpected"})
        try:
            p = model.predict(shuffled)
        except Exception as exc:  # noqa: BLE001 - a model that cannot predict fails the gate, with the reason
            problems.append(f"the challenger cannot score reordered columns plus an unknown column: "
                            f"{type(exc).__name__}: {exc}")
            return {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
        if len(p) != len(base):
            problems.append(f"with reordered columns plus an unknown column the challenger returned {len(p)} "
                            f"predictions for {len(base)} rows")
            return {"ok": False, "rows": len(p)}
        labels = int(np.sum(np.asarray(p.labels) != np.asarray(base.labels)))
        moved = float(np.nanmax(np.abs(_values(p) - _values(base)))) if len(p) else 0.0
        ok = labels == 0 and moved <= SAME
        if not ok:
            problems.append(f"reordered columns plus an unknown column changed {labels} predicted labels and "
                            f"moved scores by up to {moved:.3g}")
        return {"ok": ok, "labels_changed": labels, "max_score_change": moved}
