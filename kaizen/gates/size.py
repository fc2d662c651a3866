"""The challenger's registered files must fit the policy's size budget.

Runs when the policy sets ``gates.max_model_mb``. The size is every file of
the registered model version (model, feature definitions, packaged code,
environment files), counted when the version is downloaded to be loaded
(:attr:`kaizen.registry.models.LoadedModel.size_bytes`) and carried in
:attr:`Evidence.challenger_bytes`.
"""

from __future__ import annotations

from typing import Any

from kaizen.gates._base import Evidence, Gate, GateResult

__all__ = ["MB", "SizeGate"]

MB = 1_000_000


class SizeGate(Gate):
    """``challenger_bytes / 1e6 <= gates.max_model_mb``."""

    name = "size"
    order = 80

    def enabled(self, gates: Any) -> bool:
        return gates.max_model_mb is not None

    def check(self, evidence: Evidence) -> GateResult:
        budget = evidence.policy.gates.max_model_mb
        if budget is None:
            return self.result(True, "no size budget (gates.max_model_mb)", budget_mb=None)
        if evidence.challenger_bytes is None:
            return self.result(False, "the challenger's size on disk is unknown: not measured", budget_mb=budget)
        mb = evidence.challenger_bytes / MB
        ok = mb <= budget
        return self.result(ok, f"the challenger's files take {mb:.2f} MB ({'within' if ok else 'over'} the budget "
                               f"of {budget:g} MB)", megabytes=mb, bytes=evidence.challenger_bytes, budget_mb=budget)
