"""One MLflow run, written through the registry's own client: metrics, parameters, files, datasets, models.

MLflow's fluent API (``mlflow.start_run``, ``mlflow.log_metrics``, ``mlflow.pyfunc.log_model``) writes
to a process-wide active run at process-wide URIs: two cycles of two policies on two registries in
one process would write into each other's runs. Every write of a Kaizen run goes through a
:class:`RunLog` bound to one run id and one :class:`~kaizen.registry.Registry` instead.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["LoggedModel", "RunLog"]

log = logging.getLogger("kaizen.registry")


@dataclass(frozen=True)
class LoggedModel:
    """A model saved as run artifacts: what registering a version needs."""

    run_id: str
    artifact_path: str

    @property
    def model_uri(self) -> str:
        return f"runs:/{self.run_id}/{self.artifact_path}"


class RunLog:
    """Writes to one run (``run_id``) through ``registry``'s client. Thread-safe as the client is."""

    def __init__(self, registry: Any, run_id: str) -> None:
        self.registry = registry
        self.run_id = run_id

    @property
    def client(self) -> Any:
        return self.registry.client

    def log_metrics(self, metrics: Mapping[str, float], *, step: int = 0) -> None:
        import time

        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        items = [Metric(k, float(v), now, step) for k, v in metrics.items()]
        if items:
            self.client.log_batch(self.run_id, metrics=items)

    def log_params(self, params: Mapping[str, Any]) -> None:
        from mlflow.entities import Param

        items = [Param(str(k), str(v)[:6000]) for k, v in params.items()]
        if items:
            self.client.log_batch(self.run_id, params=items)

    def log_artifact(self, local_path: Path | str, artifact_path: str | None = None) -> str:
        """Upload one file; return its artifact URI."""
        self.client.log_artifact(self.run_id, str(local_path), artifact_path)
        name = Path(local_path).name
        return self.artifact_uri(f"{artifact_path}/{name}" if artifact_path else name)

    def log_artifacts(self, local_dir: Path | str, artifact_path: str | None = None) -> None:
        self.client.log_artifacts(self.run_id, str(local_dir), artifact_path)

    def artifact_uri(self, path: str = "") -> str:
        root = self.client.get_run(self.run_id).info.artifact_uri.rstrip("/")
        return f"{root}/{path.lstrip('/')}" if path else root

    def log_input(self, dataset: Any, *, context: str) -> None:
        """An MLflow dataset (``mlflow.data.from_pandas``) as an input of the run."""
        from mlflow.entities import DatasetInput, InputTag

        inp = DatasetInput(dataset=dataset._to_mlflow_entity(), tags=[InputTag("mlflow.data.context", context)])
        self.client.log_inputs(self.run_id, datasets=[inp])

    def log_model(self, save: Any, name: str) -> LoggedModel:
        """``save(path)`` writes an MLflow model folder (``mlflow.pyfunc.save_model``); it is uploaded as the run's
        ``name`` folder. Saving to a local folder and uploading through the client reads no process-wide URI."""
        with tempfile.TemporaryDirectory(prefix="kaizen-model-") as tmp:
            local = Path(tmp) / name
            save(local)
            self.log_artifacts(local, name)
        return LoggedModel(self.run_id, name)
