"""Drift over time in the tools people run, after real cycles on real MLflow (SQLite) and real Evidently.

One policy, three monitored cycles (two that write a report, one quiet): MLflow holds one monitoring run for the
policy with its figures at steps 1..3 and status FINISHED; the experiment opens in MLflow's classic view; the cycle
runs carry parameters; the local Evidently workspace holds the policy's project with one snapshot per reporting
cycle; the report page, rendered from the snapshot fetched through MLflow, opens with the answer.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from kaizen.cycle import run_cycle
from kaizen.registry import EXPERIMENT_KIND, Registry
from kaizen.ui.server import App, Request
from tests.conftest import make_home, restore_bootstrap

QUIET = {"trigger": {"drift_share": 0.95, "prediction_drift": False, "performance_drop": 0.5},
         "monitor": {"report": "never"}}


@pytest.fixture(scope="module")
def cycled(tmp_path_factory: pytest.TempPathFactory, churn_data: Path) -> dict[str, Any]:
    home = make_home(tmp_path_factory.mktemp("monitoring") / "home", churn_data)
    restore_bootstrap(home)
    # every cycle reports; the trigger may fire but the spent compute budget stops any build (a fast module)
    home.write_policy({"monitor": {"report": "always"}, "budget": {"daily_cpu_seconds": 0.001}})
    recs = []
    for batch in (0, 1):
        home.arrive(batch)
        recs.append(run_cycle(home.config(), home.policy()))
    home.write_policy(QUIET)
    home.arrive(2)
    recs.append(run_cycle(home.config(), home.policy()))
    return {"home": home, "config": home.config(), "records": recs, "registry": Registry.from_config(home.config())}


def test_one_monitoring_run_per_policy_with_a_step_per_cycle_and_never_left_running(cycled: dict[str, Any]) -> None:
    reg, recs = cycled["registry"], cycled["records"]
    assert [r.decision for r in recs] == ["skipped"] * 3, [r.reasons for r in recs]
    exp = reg.client.get_experiment_by_name("kaizen/churn")
    assert exp.tags[EXPERIMENT_KIND[0]] == EXPERIMENT_KIND[1]  # MLflow 3 opens the classic view, not GenAI's
    runs = reg.client.search_runs([exp.experiment_id], filter_string="tags.`kaizen.kind` = 'monitoring'")
    assert len(runs) == 1 and runs[0].info.status == "FINISHED"
    run_id = runs[0].info.run_id
    assert {r.trigger["monitoring_run_id"] for r in recs} == {run_id}
    assert [r.trigger["monitoring_step"] for r in recs] == [1, 2, 3]
    history = reg.client.get_metric_history(run_id, "drift_share")
    assert sorted(m.step for m in history) == [1, 2, 3]
    by_step = {m.step: m.value for m in history}
    assert [by_step[i + 1] for i in range(3)] == pytest.approx([r.trigger["monitor"]["drift_share"] for r in recs])
    assert {m.value for m in reg.client.get_metric_history(run_id, "champion_version")} == {1.0}
    assert len(reg.client.get_metric_history(run_id, "performance_baseline")) == 3
    # the reporting cycles' own runs carry what they were about
    params = reg.client.get_run(recs[0].mlflow_run_id).data.params
    assert params["policy"] == "churn" and params["champion_version"] == "1" and params["window_batches"] == "1"
    assert params["trigger_action"] == "skip" and params["seed"] == str(recs[0].seed)


def test_each_reporting_cycle_adds_a_snapshot_to_the_policys_evidently_project(cycled: dict[str, Any]) -> None:
    from evidently.ui.workspace import Workspace

    cfg, recs = cycled["config"], cycled["records"]
    assert cfg.evidently_workspace == cfg.state_dir / "evidently"
    ws = Workspace(str(cfg.evidently_workspace))
    [project] = [p for p in ws.list_projects() if p.name == "kaizen/churn"]
    assert len(ws.list_runs(project.id)) == 2  # the quiet cycle wrote none
    panels = ws.get_dashboard(project.id).panels  # made once with the project: drift per column, the metric
    assert [p.title for p in panels] == ["Drift score per column", "Champion's roc_auc on the labelled rows"]
    for rec in recs[:2]:
        assert rec.report.endswith(f"monitor/{rec.id}.json") and rec.trigger["monitor"]["report_path"] == rec.report
        assert Path(rec.report).stat().st_size < 1_000_000  # a snapshot, not 3.8 MB of rendered page
        arts = [a.path for a in cycled["registry"].client.list_artifacts(rec.mlflow_run_id, "monitor")]
        assert arts == [f"monitor/{rec.id}.json"]
    assert recs[2].report is None


def test_the_report_opens_with_the_answer_then_performance_then_the_columns(cycled: dict[str, Any]) -> None:
    rec = cycled["records"][1]
    app = App(cycled["config"], token="")  # fetched through MLflow's artifact API (tests/ui: from an MLflow server)
    resp = app.handle(Request("GET", f"/decisions/{rec.id}/report", headers={"host": "127.0.0.1"}))
    assert resp.status == 200, resp.body[:500]
    page = resp.body.decode()
    summary = page.index('id="kaizen-summary"')
    assert summary < page.index('<div id="root_')  # the answer before Evidently's widgets
    head = page[summary:page.index("</section>", summary)]
    batch = rec.window["batches"][0]
    assert f"churn · champion v1 · cycle {rec.id} · window {batch}" in head
    mon = rec.trigger["monitor"]
    assert f"{len(mon['drifted_columns'])} of {len(mon['columns'])} columns drifted" in head
    assert head.count("<tr>") >= len(mon["columns"]) + 1 and f"s {mon['metric']}: " in head
    detail = app.handle(Request("GET", f"/decisions/{rec.id}", headers={"host": "127.0.0.1"}))
    assert f'href="/decisions/{rec.id}/report"' in detail.body.decode()
    # Evidently's part: the champion's metric first (the performance section), then the drifted columns
    import json

    snap = json.loads(Path(rec.report).read_text())
    assert snap["widgets"][0]["title"] == "RocAuc metric"
    shown = [m.group(1) for w in snap["widgets"] for m in re.finditer(r"(?i)drift in column '([^']+)'", json.dumps(w))]
    drifted, stable = mon["drifted_columns"], [c["column"] for c in mon["columns"] if not c["drifted"]]
    assert drifted and stable and shown.index(stable[0]) > max(shown.index(c) for c in drifted)  # drifted first
