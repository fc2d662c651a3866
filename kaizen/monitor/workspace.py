"""Each triggering cycle's Evidently result in a local Evidently workspace: ``evidently ui --workspace <path>``.

One project per policy (named ``kaizen/<policy>``, like its MLflow experiment), created once and found again by
name; each cycle that writes a report adds its snapshot (:func:`kaizen.monitor.report.build_snapshot`) as one
run of that project, named after the cycle. The workspace is a folder of JSON files
(``[evidently] workspace``, default ``<state>/evidently``); the snapshot's JSON is also kept in the cycle's MLflow
run, which is what Kaizen's own pages render (:func:`kaizen.monitor.report.render_report`).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["EVIDENTLY_METRIC", "PROJECT_PREFIX", "Stored", "add_snapshot", "project_name"]

_LOCK = threading.Lock()  # two policies' cycles in one process: creating the same project once


@dataclass(frozen=True)
class Stored:
    """Where a snapshot went: the workspace folder, the policy's project and the snapshot's id."""

    workspace: str
    project_id: str
    snapshot_id: str

    def to_dict(self) -> dict[str, str]:
        return {"workspace": self.workspace, "project_id": self.project_id, "snapshot_id": self.snapshot_id}


#: the start of every project Kaizen makes (retention deletes snapshots of these projects only)
PROJECT_PREFIX = "kaizen/"


def project_name(policy: str) -> str:
    return f"{PROJECT_PREFIX}{policy}"


#: the policy's metric as Evidently names it (the performance part of the snapshot, kaizen.monitor.report)
EVIDENTLY_METRIC = {"roc_auc": "RocAuc", "accuracy": "Accuracy", "f1": "F1Score", "rmse": "RMSE", "mae": "MAE",
                    "r2": "R2Score", "f1_macro": "F1Score", "balanced_accuracy": "Recall"}


def _project(ws: Any, policy: str, metric: str | None) -> Any:
    """The policy's project; made once, with a dashboard: each column's drift score and the champion's metric over
    the snapshots (the cycles that reported)."""
    from evidently.sdk.models import PanelMetric
    from evidently.sdk.panels import line_plot_panel

    name = project_name(policy)
    found = [p for p in ws.search_project(name) if p is not None and p.name == name]
    if found:
        return found[0]
    project = ws.create_project(name, description=f"Kaizen's monitoring of policy {policy!r}: one snapshot per "
                                                  "cycle that triggered (or that the policy asked a report of)")
    project.dashboard.add_panel(line_plot_panel("Drift score per column", [PanelMetric(metric="ValueDrift")],
                                                description="Evidently's score of each column against the "
                                                            "champion's reference, one point per reporting cycle"))
    if metric in EVIDENTLY_METRIC:
        project.dashboard.add_panel(line_plot_panel(
            f"Champion's {metric} on the labelled rows", [PanelMetric(metric=EVIDENTLY_METRIC[metric], legend=metric)]))
    return project


def add_snapshot(workspace: Path | str, policy: str, snapshot: Any, *, name: str, metric: str | None = None) -> Stored:
    """Add ``snapshot`` (an Evidently ``Snapshot``) to the project of ``policy`` in ``workspace`` as ``name``; the
    project is made at the first, its dashboard charting the policy's ``metric`` too."""
    from evidently.ui.workspace import Workspace

    path = Path(workspace)
    path.mkdir(parents=True, exist_ok=True)
    with _LOCK:
        ws = Workspace(str(path))
        project = _project(ws, policy, metric)
    ref = ws.add_run(project.id, snapshot, name=name)
    return Stored(str(path), str(project.id), str(ref.id))
