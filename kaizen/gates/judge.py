"""Score both models on the same rows and run the gates: the one place that turns models into evidence."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from kaizen.data.frames import model_frame, target_values
from kaizen.data.schema import Schema
from kaizen.gates import DEFAULT_GATES, Evidence, GateResult, Labelled, run_gates
from kaizen.policy import Policy

__all__ = ["Judgement", "judge"]


@dataclass(frozen=True)
class Judgement:
    """Every gate's verdict and both models' metrics on the holdout and golden rows."""

    gates: tuple[GateResult, ...]
    champion: dict[str, Any]
    challenger: dict[str, Any]

    @property
    def failed(self) -> tuple[GateResult, ...]:
        return tuple(g for g in self.gates if not g.passed)

    def messages(self) -> str:
        return "; ".join(f"{g.name}: {g.message}" for g in self.gates)


def judge(policy: Policy, schema: Schema, champion_model: Any, challenger_model: Any, holdout: pd.DataFrame,
          golden: pd.DataFrame | None, train: pd.DataFrame, only: tuple[str, ...] | None = None) -> Judgement:
    """Run the gates (``only`` these, by name, when given) with both models scored on the same rows."""
    from kaizen.metrics import score

    task, metric = policy.model.task, policy.model.metric

    def labelled(name: str, rows: pd.DataFrame) -> Labelled:
        x = model_frame(rows, schema)
        return Labelled(name, target_values(rows, schema, task),
                        champion_model.predict(x) if champion_model is not None else None,
                        challenger_model.predict(x))

    h = labelled("holdout", holdout)
    g = labelled("golden", golden) if golden is not None and len(golden) else None
    ty = target_values(train, schema, task)
    ev = Evidence(policy=policy, holdout=h, golden=g,
                  classes=tuple(sorted(set(ty.tolist()), key=str)) if task != "regression" else (),
                  target_range=(float(np.min(ty)), float(np.max(ty))) if task == "regression" else None)
    gates = DEFAULT_GATES if only is None else tuple(x for x in DEFAULT_GATES if x.name in only)
    results = run_gates(ev, gates)

    def m(s: Labelled | None, who: str) -> float | None:
        if s is None or getattr(s, who) is None:
            return None
        p = getattr(s, who)
        return score(metric, s.y, p.labels, p.scores, pos_label=policy.model.positive_label)

    champ = {"metric": metric, "holdout_metric": m(h, "champion"), "golden_metric": m(g, "champion")}
    chall = {"metric": metric, "holdout_metric": m(h, "challenger"), "golden_metric": m(g, "challenger"),
             "holdout_rows": len(h.y)}
    return Judgement(results, champ, chall)
