"""Score both models on the same rows and run the gates: the one place that turns models into evidence."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from kaizen.data.frames import model_frame, target_values
from kaizen.data.schema import Schema
from kaizen.gates import Evidence, GateResult, Labelled, gates_for, run_gates
from kaizen.policy import Policy

__all__ = ["Judgement", "judge"]

log = logging.getLogger("kaizen.gates")


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
    """Run the policy's gates (``only`` these, by name, when given) with both models scored on the same rows.

    The evidence carries the holdout's raw rows and model inputs, the loaded challenger (timed by
    the latency gate, probed by the behaviour gate), the size of its registered files (measured
    only when the size gate runs) and ``build.seed`` for every resampling.
    """
    from kaizen.metrics import score

    task, metric = policy.model.task, policy.model.metric
    gates = gates_for(policy)
    if only is not None:
        gates = tuple(x for x in gates if x.name in only)

    def labelled(name: str, x: pd.DataFrame, rows: pd.DataFrame) -> Labelled:
        return Labelled(name, target_values(rows, schema, task),
                        champion_model.predict(x) if champion_model is not None else None,
                        challenger_model.predict(x))

    x_hold = model_frame(holdout, schema)
    h = labelled("holdout", x_hold, holdout)
    g = labelled("golden", model_frame(golden, schema), golden) if golden is not None and len(golden) else None
    ty = target_values(train, schema, task)
    ev = Evidence(policy=policy, holdout=h, golden=g,
                  classes=tuple(sorted(set(ty.tolist()), key=str)) if task != "regression" else (),
                  target_range=(float(np.min(ty)), float(np.max(ty))) if task == "regression" else None,
                  holdout_frame=holdout.reset_index(drop=True), holdout_inputs=x_hold,
                  challenger_model=challenger_model,
                  challenger_bytes=_size(challenger_model) if any(x.name == "size" for x in gates) else None,
                  seed=policy.build.seed)
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


def _size(model: Any) -> int | None:
    """Bytes of the registered files of ``model`` as downloaded when it was loaded; None when unknown."""
    return getattr(model, "size_bytes", None)
