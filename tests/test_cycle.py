"""End to end: the whole cycle on real MLflow (SQLite in a temp folder), Evidently, featuretools, Optuna."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from kaizen.commands.bootstrap import bootstrap
from kaizen.cycle import run_cycle
from kaizen.ledger import Ledger
from kaizen.registry import Registry
from tests.conftest import by_hand, kaizen_main, restore_bootstrap

ROOT = Path(__file__).resolve().parents[1]


def registry_of(home) -> Registry:
    return Registry.from_config(home.config())


@pytest.fixture
def booted(home):
    """A home with a champion: the session's real bootstrap under the base policy, copied."""
    rec = restore_bootstrap(home)
    assert rec.decision == "promoted" and rec.kind == "bootstrap"
    return home


@pytest.fixture
def bootstrapped(home):
    """A home bootstrapped here, for the test of the bootstrap itself."""
    rec = bootstrap(home.config(), home.policy())
    assert rec.decision == "promoted" and rec.kind == "bootstrap"
    return home


def test_bootstrap_registers_a_champion_with_a_baseline(bootstrapped) -> None:
    booted = bootstrapped
    reg = registry_of(booted)
    champ = reg.champion("churn")
    assert champ is not None and champ.version == "1"
    assert champ.tags["kaizen.gate"] == "passed" and champ.tags["kaizen.reference_artifact"]
    assert 0.6 < reg.baseline("churn") < 1.0
    # a second bootstrap is refused, and the refusal is recorded (one record per run, even a failed one)
    before = len(Ledger(booted.config().ledger_path).records())
    rec = bootstrap(booted.config(), booted.policy())
    assert rec.decision == "failed" and rec.kind == "bootstrap" and "already has a champion" in rec.reasons[0]
    assert len(Ledger(booted.config().ledger_path).records()) == before + 1
    assert reg.champion("churn").version == "1"


def test_no_drift_is_skipped_with_reasons(booted) -> None:
    booted.arrive(0)
    rec = run_cycle(booted.config(), booted.policy())
    assert rec.decision == "skipped", rec.reasons
    assert rec.reasons[0].startswith("no trigger fired: data drift in")
    assert rec.trigger["action"] == "skip" and rec.trigger["monitor"]["drift_share"] < 0.3
    sample = rec.trigger["monitor"]["sample"]  # which rows drift was measured on: recorded (docs/policies.md)
    assert sample["current"] == {"rows": rec.trigger["monitor"]["rows"], "compared": rec.trigger["monitor"]["rows"]}
    assert sample["max_rows"] == 50_000 and sample["how"].startswith("time-stratified")
    assert {s["rule"] for s in rec.trigger["signals"]} == {"drift_share", "prediction_drift", "performance_drop"}
    assert rec.challenger == {}
    # a quiet cycle writes no Evidently report (monitor.report = "on_trigger") and opens no MLflow run of its
    # own: its numbers are one more step of the policy's monitoring run, which is never left RUNNING
    assert rec.report is None and rec.mlflow_run_id is None
    reg = registry_of(booted)
    assert reg.champion("churn").version == "1" and reg.challenger("churn") is None
    mon_run = reg.client.get_run(rec.trigger["monitoring_run_id"])
    assert mon_run.data.tags["kaizen.monitor_of"] == "policy" and mon_run.data.tags["kaizen.champion"] == "1"
    assert mon_run.info.status == "FINISHED" and rec.trigger["monitoring_step"] == 1
    assert mon_run.data.metrics["drift_share"] == pytest.approx(rec.trigger["monitor"]["drift_share"])
    again = run_cycle(booted.config(), booted.policy())
    assert again.decision == "skipped" and again.reasons[0].startswith("nothing new since cycle")
    booted.write_policy({"trigger": {"drift_share": 0.95, "prediction_drift": False, "performance_drop": 0.5}})
    booted.arrive(1)
    third = run_cycle(booted.config(), booted.policy())
    assert third.decision == "skipped" and third.trigger["monitoring_run_id"] == mon_run.info.run_id
    assert len(reg.client.get_metric_history(mon_run.info.run_id, "drift_share")) == 2


def test_the_report_is_written_when_asked_and_kept_once_in_the_run(booted) -> None:
    booted.write_policy({"monitor": {"report": "always"}})
    booted.arrive(0)
    rec = run_cycle(booted.config(), booted.policy())
    assert rec.decision == "skipped" and Path(rec.report).exists() and Path(rec.report).stat().st_size > 100_000
    run = registry_of(booted).client.get_run(rec.mlflow_run_id)
    assert run.data.tags["kaizen.decision"] == "skipped" and run.info.status == "FINISHED"
    assert run.info.run_name == "churn · cycle · skipped · champion v1"
    arts = [a.path for a in registry_of(booted).client.list_artifacts(rec.mlflow_run_id, "monitor")]
    assert arts == [f"monitor/{Path(rec.report).name}"]
    assert not list(booted.config().state_dir.rglob("reports/*.html"))  # not stored a second time


def test_concept_drift_builds_a_challenger_that_is_promoted(booted) -> None:
    for i in range(3):
        booted.arrive(i)
    run_cycle(booted.config(), booted.policy())  # window = batch 2 (covariate shift)
    booted.arrive(3)                              # concept drift starts
    rec = run_cycle(booted.config(), booted.policy())
    booted.arrive(4)
    rec2 = run_cycle(booted.config(), booted.policy())
    promoted = [r for r in (rec, rec2) if r.decision == "promoted"]
    assert promoted, [r.reasons for r in (rec, rec2)]
    p = promoted[-1]
    assert p.trigger["action"] == "improve"
    names = [g["name"] for g in p.gates]
    assert names == ["sanity", "significance", "golden", "behaviour"] and all(g["passed"] for g in p.gates)
    imp = next(g for g in p.gates if g["name"] == "significance")["numbers"]
    assert imp["challenger"] - imp["champion"] >= 0.01 and imp["rows"] == 250
    assert p.challenger["family"] in ("hist_gradient_boosting", "logistic_regression")
    sel, diff = p.challenger["feature_selection"], p.challenger["features_vs_champion"]
    assert sel["used"] == len(p.challenger["feature_names"]) and sel["proposed"] >= sel["kept"] >= sel["used"]
    (made,) = [r for r in Ledger(booted.config().ledger_path).records()  # the record that promoted the champion
               if r.decision == "promoted" and (r.challenger or {}).get("version") == p.champion["version"]]
    before, after = made.challenger["feature_names"], p.challenger["feature_names"]
    assert diff == {"added": [n for n in after if n not in before], "removed": [n for n in before if n not in after],
                    "same": after == before}
    assert p.cost["cpu_seconds"] > 0 and p.cost["build_cpu_seconds"] > 0 and p.cost["wall_seconds"] > 0
    reg = registry_of(booted)
    new = reg.champion("churn")
    assert new.version == p.challenger["version"]
    old = reg.version("churn", p.champion["version"])
    assert old.tags["kaizen.status"] == "retired" and old.tags["kaizen.retired_by"] == p.id
    assert "replaced by version" in old.tags["kaizen.retired_reason"] and old.tags["kaizen.retired_at"]
    # one record per cycle, in order, and the log file is valid JSON Lines
    lines = booted.config().ledger_path.read_text().splitlines()
    assert [json.loads(x)["decision"] for x in lines][-2:] == [rec.decision, rec2.decision]


def test_worse_challenger_is_rejected_by_the_gate_that_failed(booted) -> None:
    booted.write_policy({"gates": {"min_improvement": 0.5, "promotion_test": "margin"},
                         "trigger": {"drift_share": 0.05}})
    booted.arrive(2)
    rec = run_cycle(booted.config(), booted.policy())
    assert rec.decision == "rejected", rec.reasons
    failed = [g for g in rec.gates if not g["passed"]]
    assert [g["name"] for g in failed] == ["improvement"]
    assert any(r.startswith("gate improvement failed: challenger roc_auc") for r in rec.reasons)
    # the ladder climbed every rung: the champion's recipe refit, a small search, the full search
    ladder = rec.challenger["ladder"]
    assert [a["rung"] for a in ladder] == ["refit", "small", "full"] and rec.challenger["rung"] is None
    assert [a["version"] for a in ladder] == ["2", "3", "4"] and not any(a["passed"] for a in ladder)
    assert all(a["cpu_seconds"] > 0 and a["failed_gates"] == ["improvement"] for a in ladder)
    assert rec.cost["build_cpu_seconds"] == pytest.approx(sum(a["cpu_seconds"] for a in ladder), abs=0.01)
    reg = registry_of(booted)
    assert reg.champion("churn").version == "1"
    chall = reg.challenger("churn")
    assert chall.version == rec.challenger["version"] == "4"
    for v in ("2", "3", "4"):
        tags = reg.version("churn", v).tags
        assert tags["kaizen.status"] == "rejected" and tags["kaizen.gate"] == "failed: improvement"
    assert reg.version("churn", "2").tags["kaizen.rung"] == "refit"


def test_manual_mode_waits_for_approval_then_promotes(booted) -> None:
    booted.write_policy({"gates": {"min_improvement": 0.0, "golden_tolerance": 1.0},
                         "trigger": {"drift_share": 0.05}, "promotion": {"mode": "manual"}})
    booted.arrive(3)
    rec = run_cycle(booted.config(), booted.policy())
    assert rec.decision == "awaiting_approval", rec.reasons
    reg = registry_of(booted)
    assert reg.champion("churn").version == "1"
    r = kaizen_main("approve", rec.id, "--by", "alice", cwd=booted.root)
    assert r.returncode == 0, r.stderr
    assert reg.champion("churn").version == rec.challenger["version"]
    records = Ledger(booted.config().ledger_path).records()
    assert records[-1].kind == "approval" and records[-1].resolves == rec.id and records[-1].actor == "alice"
    again = kaizen_main("approve", rec.id, cwd=booted.root)
    assert again.returncode == 1 and "already answered" in again.stderr


def test_manual_reject_keeps_the_champion(booted) -> None:
    from kaizen.commands.review import reject

    booted.write_policy({"gates": {"min_improvement": 0.0, "golden_tolerance": 1.0},
                         "trigger": {"drift_share": 0.05}, "promotion": {"mode": "manual"}})
    booted.arrive(3)
    rec = run_cycle(booted.config(), booted.policy())
    assert rec.decision == "awaiting_approval"
    out = reject(booted.config(), rec.id, actor="bob", reason="too risky before the holidays")
    assert out.decision == "rejected" and out.resolves == rec.id and "too risky" in out.reasons[0]
    reg = registry_of(booted)
    assert reg.champion("churn").version == "1"
    assert reg.version("churn", rec.challenger["version"]).tags["kaizen.status"] == "rejected"


def test_champion_loads_in_a_fresh_process_from_raw_columns(booted, tmp_path) -> None:
    raw = pd.read_parquet(sorted(booted.incoming.iterdir())[0]).drop(columns=["churned"]).head(50)
    raw_path = tmp_path / "raw.parquet"
    raw.to_parquet(raw_path)
    code = (
        "import mlflow, pandas as pd, json\n"
        f"mlflow.set_tracking_uri({booted.config().tracking_uri!r})\n"
        "m = mlflow.pyfunc.load_model('models:/churn@champion')\n"
        f"out = m.predict(pd.read_parquet({str(raw_path)!r}))\n"
        "print(json.dumps({'cols': list(out.columns), 'n': len(out), 'p': out['proba'].tolist()}))\n")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    r = subprocess.run([sys.executable, "-c", code], cwd=elsewhere, env=env, capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    got = json.loads(r.stdout.strip().splitlines()[-1])
    assert got["cols"] == ["prediction", "proba"] and got["n"] == 50
    assert all(0.0 <= p <= 1.0 for p in got["p"])


def test_a_hand_registered_sklearn_champion_works(home) -> None:
    """Any pyfunc that takes the raw feature columns can be a champion."""
    import mlflow
    from sklearn.compose import make_column_transformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    ref = pd.read_parquet(home.root / "data" / "reference.parquet")
    x, y = ref.drop(columns=["churned", "ts"]), ref["churned"]
    cats = ["contract", "payment_method", "region"]
    pipe = make_pipeline(make_column_transformer((OneHotEncoder(handle_unknown="ignore"), cats),
                                                 remainder=StandardScaler()), LogisticRegression(max_iter=2000))
    pipe.fit(x, y)
    reg = registry_of(home)
    with by_hand(reg), mlflow.start_run(experiment_id=reg.experiment_id("churn")):
        info = mlflow.sklearn.log_model(pipe, name="m", registered_model_name="churn",
                                        serialization_format="cloudpickle", pip_requirements=["scikit-learn"])
    reg.client.set_registered_model_alias("churn", "champion", info.registered_model_version)
    home.arrive(0)
    rec = run_cycle(home.config(), home.policy())
    assert rec.decision == "skipped", rec.reasons
    assert any("performance baseline set to" in r for r in rec.reasons)
    assert 0.6 < rec.champion["window_metric"] < 1.0  # probabilities came from predict_proba
    assert rec.window["monitor_reference"] == "policy reference file"


def test_seeded_cycle_repeats_exactly(tmp_path, churn_data) -> None:
    from tests.conftest import make_home

    results = []
    for k in range(2):
        h = make_home(tmp_path / f"h{k}", churn_data,
                      {"trigger": {"drift_share": 0.05}, "gates": {"min_improvement": 0.0}})
        b = bootstrap(h.config(), h.policy())
        h.arrive(3)
        c = run_cycle(h.config(), h.policy())
        results.append((b.challenger["params"], b.challenger["holdout_metric"], c.decision,
                        c.challenger.get("params"), c.challenger.get("holdout_metric"),
                        c.trigger["monitor"]["drift_share"]))
    assert results[0] == results[1]
    assert results[0][3] is not None  # the second cycle really built a challenger


def test_regression_policy_runs_the_whole_cycle(tmp_path) -> None:
    from experiments.scenarios import demand
    from tests.conftest import Home

    root = tmp_path / "demand"
    sc = demand(seed=2, reference_rows=1200, golden_rows=300, batch_rows=400, n_batches=4, concept_at=2)
    paths = sc.write(root / "data")
    (root / "config.toml").write_text('[state]\ndir = "state"\n')
    h = Home(root=root, scenario=sc)
    h.write_policy({
        "model": {"name": "demand", "task": "regression", "target": "units", "metric": "rmse"},
        "build": {"families": ["hist_gradient_boosting", "ridge"], "trials": 4},
        "gates": {"min_improvement": 0.02, "golden_tolerance": 0.5, "promotion_test": "margin"},
    }, name="demand")
    b = bootstrap(h.config(), h.policy("demand"))
    assert b.decision == "promoted" and b.challenger["holdout_metric"] > 0
    (h.production).mkdir(parents=True)
    incoming = sorted(Path(paths["incoming"]).iterdir())
    decisions = []
    for src in incoming[1:4]:
        (h.production / src.name).write_bytes(src.read_bytes())
        decisions.append(run_cycle(h.config(), h.policy("demand")))
    assert all(r.decision in ("skipped", "promoted", "rejected") for r in decisions), [r.reasons for r in decisions]
    assert any(r.decision == "promoted" for r in decisions), [r.reasons for r in decisions]
    p = next(r for r in decisions if r.decision == "promoted")
    imp = next(g for g in p.gates if g["name"] == "improvement")["numbers"]
    assert imp["metric"] == "rmse" and imp["challenger"] < imp["champion"]   # lower error wins
    assert imp["improvement"] == pytest.approx((imp["champion"] - imp["challenger"]) / imp["champion"])


def test_a_trigger_that_cannot_act_is_counted_and_reported_first(booted) -> None:
    from kaizen.config import load_config
    from kaizen.status import collect, render

    booted.write_policy({"trigger": {"drift_share": 0.05}, "gates": {"min_holdout_rows": 100_000,
                                                                     "max_holdout_batches": 2}})
    booted.arrive(2)
    first = run_cycle(booted.config(), booted.policy())
    booted.arrive(3)
    second = run_cycle(booted.config(), booted.policy())
    for rec, n in ((first, 1), (second, 2)):
        assert rec.decision == "skipped" and rec.trigger["action"] == "improve", rec.reasons
        assert rec.reasons[0].startswith("triggered but cannot act: ") and "min_holdout_rows = 100000" in rec.reasons[0]
        assert rec.trigger["without_acting"] == n
    assert second.reasons[1].startswith("the trigger has fired 2 cycles in a row without acting")
    st = collect(load_config(booted.root / "config.toml"))
    assert st["policies"][0]["triggered_without_acting"] == 2
    assert "triggered 2 times in a row without acting" in render(st)
