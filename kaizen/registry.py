"""Champion and challenger in the MLflow model registry.

The registered model is named after the policy's model. Two aliases carry
the state: ``champion`` (serving) and ``challenger`` (the newest candidate).
Moving ``champion`` is the single commit point of a promotion; the version
that held it is tagged with when and why it was retired. MLflow keeps no
alias history, so the promotion log (:mod:`kaizen.ledger`) is the record.

This is deliberately narrow: it knows aliases, version tags and experiment
ids, nothing else. MLflow is imported only when a Registry is created.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from kaizen._env import prepare
from kaizen.errors import RegistryError
from kaizen.ledger import utcnow

__all__ = ["CHAMPION", "CHALLENGER", "Registry", "Version"]

CHAMPION = "champion"
CHALLENGER = "challenger"
BASELINE_TAG = "kaizen.baseline"


@dataclass(frozen=True)
class Version:
    name: str
    version: str
    run_id: str | None
    tags: dict[str, str]

    @property
    def uri(self) -> str:
        return f"models:/{self.name}/{self.version}"


class Registry:
    """MLflow tracking + registry for Kaizen's cycles, at the URIs from config."""

    def __init__(self, tracking_uri: str, registry_uri: str, artifact_location: str) -> None:
        prepare()
        import mlflow
        from mlflow import MlflowClient

        if tracking_uri.startswith("sqlite:///"):
            os.makedirs(os.path.dirname(tracking_uri[len("sqlite:///"):]) or ".", exist_ok=True)
        # MLflow's fluent API (start_run, log_model) reads process-wide URIs; Kaizen sets them here only.
        mlflow.set_tracking_uri(tracking_uri)
        mlflow.set_registry_uri(registry_uri)
        self.tracking_uri = tracking_uri
        self.artifact_location = artifact_location.rstrip("/")
        self.client = MlflowClient(tracking_uri=tracking_uri, registry_uri=registry_uri)

    @classmethod
    def from_config(cls, config: Any) -> Registry:
        return cls(config.tracking_uri, config.registry_uri, config.artifact_location)

    # -- experiments ------------------------------------------------------
    def experiment_id(self, model_name: str) -> str:
        name = f"kaizen/{model_name}"
        exp = self.client.get_experiment_by_name(name)
        if exp is not None:
            return exp.experiment_id
        return self.client.create_experiment(name, artifact_location=f"{self.artifact_location}/{model_name}")

    # -- versions ---------------------------------------------------------
    def _alias(self, name: str, alias: str) -> Version | None:
        from mlflow.exceptions import MlflowException

        try:
            mv = self.client.get_model_version_by_alias(name, alias)
        except MlflowException as exc:
            if "RESOURCE_DOES_NOT_EXIST" in str(exc.error_code) or "INVALID_PARAMETER_VALUE" in str(
                    exc.error_code) or "not found" in str(exc).lower():
                return None
            raise
        return Version(name, str(mv.version), mv.run_id, dict(mv.tags or {}))

    def champion(self, name: str) -> Version | None:
        return self._alias(name, CHAMPION)

    def challenger(self, name: str) -> Version | None:
        return self._alias(name, CHALLENGER)

    def version(self, name: str, version: str) -> Version:
        from mlflow.exceptions import MlflowException

        try:
            mv = self.client.get_model_version(name, str(version))
        except MlflowException as exc:
            raise RegistryError(f"model {name!r} has no version {version}") from exc
        return Version(name, str(mv.version), mv.run_id, dict(mv.tags or {}))

    def tag(self, name: str, version: str, tags: dict[str, Any]) -> None:
        for k, v in tags.items():
            self.client.set_model_version_tag(name, str(version), k, str(v))

    def set_challenger(self, name: str, version: str) -> None:
        self.client.set_registered_model_alias(name, CHALLENGER, str(version))

    def promote(self, name: str, version: str, *, reason: str, cycle_id: str) -> Version | None:
        """Make ``version`` the champion; return the version it replaced (tagged as retired)."""
        old = self.champion(name)
        now = utcnow()
        self.tag(name, version, {"kaizen.promoted_at": now, "kaizen.promoted_by": cycle_id,
                                 "kaizen.status": "champion"})
        self.client.set_registered_model_alias(name, CHAMPION, str(version))  # the commit point
        self.settle_promotion(name, version, old.version if old else None, reason=reason, cycle_id=cycle_id,
                              when=now)
        return old

    def settle_promotion(self, name: str, version: str, old: str | None, *, reason: str, cycle_id: str,
                         when: str | None = None) -> None:
        """The bookkeeping after ``champion`` moved to ``version``: retire ``old``, drop a stale challenger alias.

        Safe to repeat: crash recovery calls it for a process that died right after the alias move.
        """
        if old is not None and str(old) != str(version):
            self.tag(name, str(old), {"kaizen.retired_at": when or utcnow(), "kaizen.retired_reason": reason,
                                      "kaizen.retired_by": cycle_id, "kaizen.status": "retired"})
        cur = self.challenger(name)
        if cur is not None and cur.version == str(version):
            self.client.delete_registered_model_alias(name, CHALLENGER)

    # -- registered-model tags (the performance baseline) -------------------
    def baseline(self, name: str) -> float | None:
        try:
            rm = self.client.get_registered_model(name)
        except Exception:
            return None
        v = (rm.tags or {}).get(BASELINE_TAG)
        return float(v) if v not in (None, "") else None

    def set_baseline(self, name: str, value: float) -> None:
        self.client.set_registered_model_tag(name, BASELINE_TAG, repr(float(value)))

    def raise_baseline(self, name: str, metric: str, value: float | None) -> None:
        """Move the baseline to ``value`` if that is a better level of ``metric``; it is never lowered."""
        import math

        from kaizen.metrics import improvement

        if value is None or math.isnan(value):
            return
        base = self.baseline(name)
        if base is None or improvement(metric, value, base) > 0:
            self.set_baseline(name, value)

    def ensure_model(self, name: str) -> None:
        from mlflow.exceptions import MlflowException

        try:
            self.client.get_registered_model(name)
        except MlflowException:
            self.client.create_registered_model(name)
