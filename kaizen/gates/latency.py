"""The challenger must predict fast enough: p95 latency per 1,000 rows within the policy's budget.

Runs when the policy sets ``gates.max_latency_ms_per_1000``. The holdout's
model inputs are resampled (seeded) to exactly 1,000 rows; the loaded
challenger predicts them once to warm up, then ``gates.latency_repeats``
times, each timed on the wall clock. The gate compares the 95th percentile
of those times with the budget. Wall-clock time depends on the machine and
its load: set the budget with headroom.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from kaizen.gates._base import Evidence, Gate, GateResult

__all__ = ["LatencyGate", "ROWS"]

#: rows per timed call
ROWS = 1000


class LatencyGate(Gate):
    """p95 over ``gates.latency_repeats`` timed predictions of 1,000 rows <= ``gates.max_latency_ms_per_1000``."""

    name = "latency"
    order = 70

    def enabled(self, gates: Any) -> bool:
        return gates.max_latency_ms_per_1000 is not None

    def check(self, evidence: Evidence) -> GateResult:
        spec = evidence.policy.gates
        budget, repeats = spec.max_latency_ms_per_1000, spec.latency_repeats
        model, x = evidence.challenger_model, evidence.holdout_inputs
        if budget is None:
            return self.result(True, "no latency budget (gates.max_latency_ms_per_1000)", budget_ms=None)
        if model is None or x is None or not len(x):
            return self.result(False, "no loaded challenger or holdout inputs in the evidence: latency not measured",
                               budget_ms=budget)
        rows = np.random.default_rng([evidence.seed, ROWS]).integers(0, len(x), ROWS)
        frame = x.iloc[rows].reset_index(drop=True)
        try:
            model.predict(frame)  # warm-up: caches, lazy imports
            times = []
            for _ in range(repeats):
                t0 = time.perf_counter()
                model.predict(frame)
                times.append((time.perf_counter() - t0) * 1000.0)
        except Exception as exc:  # noqa: BLE001 - a model that cannot predict fails the gate, with the reason
            return self.result(False, f"the challenger failed to predict {ROWS} rows: {type(exc).__name__}: {exc}",
                               budget_ms=budget)
        p95 = float(np.percentile(times, 95))
        ok = p95 <= budget
        return self.result(ok, f"p95 prediction latency {p95:.1f} ms per {ROWS} rows over {repeats} runs "
                               f"({'within' if ok else 'over'} the budget of {budget:g} ms)",
                           p95_ms=p95, median_ms=float(np.median(times)), budget_ms=budget, repeats=repeats,
                           rows=ROWS, times_ms=[round(t, 3) for t in times])
