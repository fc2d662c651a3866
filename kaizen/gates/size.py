"""The challenger's registered files must fit the policy's size budget.

Runs when the policy sets ``gates.max_model_mb``. The size is every file of
the registered model version (model, feature definitions, packaged code,
environment files), measured by :func:`artifact_bytes` when the gates are
judged and carried in :attr:`Evidence.challenger_bytes`.
"""

from __future__ import annotations

from kaizen.gates._base import Evidence, Gate, GateResult

__all__ = ["MB", "SizeGate", "artifact_bytes"]

MB = 1_000_000


def artifact_bytes(uri: str) -> int:
    """Total size of the files under MLflow artifact URI ``uri`` (``models:/name/3``, ``runs:/…``, ``file:…``),
    listed through MLflow's artifact repositories (nothing is downloaded)."""
    from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository

    repo = get_artifact_repository(uri)
    total, todo = 0, [None]
    while todo:
        for f in repo.list_artifacts(todo.pop()):
            if f.is_dir:
                todo.append(f.path)
            else:
                total += int(f.file_size or 0)
    return total


class SizeGate(Gate):
    """``challenger_bytes / 1e6 <= gates.max_model_mb``."""

    name = "size"

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
