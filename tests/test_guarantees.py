"""The runner's guarantees on real cycles: every entry point locked, journalled, recorded once.

Real MLflow (SQLite in a temp folder), Evidently, featuretools, Optuna. Crashes are real SIGKILLs of
``kaizen once`` subprocesses (the journal's test hooks pick the moment).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from kaizen.commands.bootstrap import bootstrap
from kaizen.commands.review import approve
from kaizen.cycle import run_cycle
from kaizen.errors import KaizenError, RegistryError
from kaizen.ledger import Ledger
from kaizen.registry import Registry
from kaizen.registry.champion import CACHE_DIR
from kaizen.run.journal import Journal
from tests.conftest import PROMOTE, kaizen_main, restore_bootstrap

ROOT = Path(__file__).resolve().parents[1]
def kaizen(home, *args: str, env: dict[str, str] | None = None, timeout: float = 600) -> subprocess.CompletedProcess:
    e = {k: v for k, v in os.environ.items() if not k.startswith("KAIZEN_TEST_")}
    e.update(env or {})
    e["PYTHONPATH"] = str(ROOT)
    return subprocess.run([sys.executable, "-m", "kaizen", "--config", str(home.root / "config.toml"), *args],
                          capture_output=True, text=True, env=e, cwd=home.root, timeout=timeout)


def test_bootstrap_force_replaces_the_champion(promoting) -> None:
    cfg, pol = promoting.config(), promoting.policy()
    rec = bootstrap(cfg, pol, force=True)
    assert rec.decision == "promoted" and rec.champion == {"version": "2", "replaced": "1"}
    reg = Registry.from_config(cfg)
    assert reg.champion("churn").version == "2"
    assert reg.version("churn", "1").tags["kaizen.status"] == "retired"


def test_two_concurrent_once_commands_promote_exactly_once(promoting) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KAIZEN_TEST_")}
    env["PYTHONPATH"] = str(ROOT)
    cmd = [sys.executable, "-m", "kaizen", "--config", str(promoting.root / "config.toml"), "once", "churn",
           "--wait", "600"]
    procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                              cwd=promoting.root) for _ in range(2)]
    outs = [p.communicate(timeout=900) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    recs = [r for r in Ledger(promoting.config().ledger_path).records() if r.kind == "cycle"]
    assert sorted(r.decision for r in recs) == ["promoted", "skipped"], [r.reasons for r in recs]
    skipped = next(r for r in recs if r.decision == "skipped")
    assert skipped.reasons[0].startswith("nothing new since cycle")
    promoted = next(r for r in recs if r.decision == "promoted")
    assert Registry.from_config(promoting.config()).champion("churn").version == promoted.challenger["version"]


def test_a_busy_policy_makes_once_exit_75_naming_the_holder(promoting) -> None:
    from kaizen.run.locks import PolicyLock

    with PolicyLock(promoting.config().state_dir, "churn"):
        out = kaizen_main("--config", str(promoting.root / "config.toml"), "once", "churn", cwd=promoting.root)
    assert out.returncode == 75, out.stderr
    assert f"policy 'churn' is busy: another kaizen process (pid {os.getpid()})" in out.stderr
    assert Journal(promoting.config().state_dir, promoting.config().ledger_path).pending() == []


@pytest.mark.parametrize("point,step", [("building+2", "building"), ("refitted", "refitted")])
def test_sigkill_of_once_is_recovered_by_the_next_command(promoting, point: str, step: str) -> None:
    cfg = promoting.config()
    if point.startswith("building"):
        promoting.write_policy({**PROMOTE, "build": {"trials": 400, "timeout_seconds": 120, "window_fractions": [1.0],
                                                     "strategy": "full"}})
    out = kaizen(promoting, "once", "churn", env={"KAIZEN_TEST_CRASH_AT": point})
    assert out.returncode == -signal.SIGKILL, out.stderr[-2000:]
    [entry] = Journal(cfg.state_dir, cfg.ledger_path).pending()
    assert entry["step"] == step and entry["run_id"]
    assert (cfg.work_dir / entry["id"]).exists() or step == "refitted"
    reg = Registry.from_config(cfg)
    assert reg.champion("churn").version == "1"

    promoting.write_policy(PROMOTE)
    out = kaizen_main("--config", str(promoting.root / "config.toml"), "once", "churn",
                      cwd=promoting.root)  # the next command settles the dead one first
    assert out.returncode == 0, out.stderr[-2000:]
    recs = Ledger(cfg.ledger_path).records()
    dead = [r for r in recs if r.id == entry["id"]]
    assert len(dead) == 1 and dead[0].decision == "failed"
    assert dead[0].reasons[0].startswith("aborted: process died during")
    assert Journal(cfg.state_dir, cfg.ledger_path).pending() == []
    assert not (cfg.work_dir / entry["id"]).exists()
    assert reg.client.get_run(entry["run_id"]).info.status == "KILLED"
    for v in entry["registered"]:
        assert reg.version("churn", v).tags.get("kaizen.status") == "aborted"
    chall = reg.challenger("churn")
    assert chall is None or chall.version not in entry["registered"]


def test_approve_is_refused_when_the_champion_changed(booted_manual) -> None:
    home, waiting = booted_manual
    assert bootstrap(home.config(), home.policy(), force=True).decision == "promoted"
    with pytest.raises(KaizenError, match=rf"^record {waiting.id} is superseded by .*: the champion changed: bootstrap "
                                          r".* promoted version 3; it can no longer be approved"):
        approve(home.config(), waiting.id)  # the log says so (kaizen/commands/review.py: superseded approvals)
    assert Registry.from_config(home.config()).champion("churn").version == "3"


@pytest.fixture
def booted_manual(home):
    assert restore_bootstrap(home, {**PROMOTE, "promotion": {"mode": "manual"},
                                    "gates": {**PROMOTE["gates"], "refit_on_holdout": False}}).decision == "promoted"
    home.arrive(3)
    rec = run_cycle(home.config(), home.policy())
    assert rec.decision == "awaiting_approval", rec.reasons
    return home, rec


def test_a_failed_refit_falls_back_to_the_gated_version(promoting, monkeypatch) -> None:
    import kaizen.challenger

    def broken(*a, **k):
        raise MemoryError("no room for the refit")

    monkeypatch.setattr(kaizen.challenger, "refit", broken)
    rec = run_cycle(promoting.config(), promoting.policy())
    assert rec.decision == "promoted", rec.reasons
    assert rec.challenger["refit"]["passed"] is False and "no room for the refit" in rec.challenger["refit"]["error"]
    assert rec.challenger["version"] == rec.challenger["gated_version"] == rec.champion["promoted"]
    assert any("refit of version" in r and "goes on as judged by the gates" in r for r in rec.reasons)


class FlakyRegistry(Registry):
    """A real registry whose baseline read fails as a network blip would."""

    def baseline(self, name: str) -> float | None:
        raise RegistryError(f"cannot read the performance baseline of {name!r}: TEMPORARILY_UNAVAILABLE")


def test_a_transient_registry_error_fails_the_cycle_and_keeps_the_baseline(promoting) -> None:
    cfg = promoting.config()
    reg = Registry.from_config(cfg)
    before = reg.baseline("churn")
    assert before is not None
    flaky = FlakyRegistry(cfg.tracking_uri, cfg.registry_uri, cfg.artifact_location)
    rec = run_cycle(cfg, promoting.policy(), registry=flaky)
    assert rec.decision == "failed" and "TEMPORARILY_UNAVAILABLE" in rec.reasons[0]
    assert reg.baseline("churn") == before and reg.champion("churn").version == "1"


def test_baseline_of_an_unknown_model_is_none_but_an_unreachable_registry_is_an_error(tmp_path) -> None:
    ok = Registry(f"sqlite:///{tmp_path}/m.db", f"sqlite:///{tmp_path}/m.db", str(tmp_path / "a"))
    assert ok.baseline("nobody") is None
    down = Registry("http://127.0.0.1:9", "http://127.0.0.1:9", str(tmp_path / "a"))
    with pytest.raises(RegistryError, match="cannot read the performance baseline of 'x'"):
        down.baseline("x")


def test_an_unreachable_registry_is_one_failed_record(home) -> None:
    (home.root / "config.toml").write_text('[state]\ndir = "state"\n[mlflow]\ntracking_uri = "http://127.0.0.1:9"\n')
    rec = run_cycle(home.config(), home.policy())
    assert rec.decision == "failed" and rec.error
    assert len(Ledger(home.config().ledger_path).records()) == 1


def test_a_vanished_registry_database_is_not_silently_recreated(promoting) -> None:
    cfg = promoting.config()
    db = Path(cfg.tracking_uri[len("sqlite:///"):])
    db.rename(db.with_suffix(".moved"))
    rec = run_cycle(cfg, promoting.policy())
    assert rec.decision == "failed" and "is gone" in rec.reasons[0] and not db.exists()


def test_a_corrupt_prediction_cache_is_recomputed(promoting) -> None:
    cfg, pol = promoting.config(), promoting.policy()
    promoting.write_policy({**PROMOTE, "trigger": {"drift_share": 0.99, "prediction_drift": False,
                                                   "performance_drop": 0.99}})
    first = run_cycle(cfg, promoting.policy())
    assert first.window["monitor_reference_predictions"] == "computed"
    [cache] = list((cfg.state_dir / CACHE_DIR / pol.name).glob("*.npz"))
    cache.write_bytes(b"not an npz file")
    promoting.arrive(4)
    second = run_cycle(cfg, promoting.policy())
    assert second.decision == "skipped" and second.window["monitor_reference_predictions"] == "computed"
    with np.load(cache) as z:  # rewritten whole
        assert len(z["labels"]) == second.window["monitor_reference_rows"]
    promoting.arrive(5)
    assert run_cycle(cfg, promoting.policy()).window["monitor_reference_predictions"] == "cached"


def test_a_window_of_two_batches(home) -> None:
    assert restore_bootstrap(home, {"data": {"window_batches": 2}}).decision == "promoted"
    a, b = home.arrive(0), home.arrive(1)
    rec = run_cycle(home.config(), home.policy())
    assert rec.window["batches"] == [a.name, b.name] and rec.window["rows"] == 1000
    assert rec.trigger["monitor"]["rows"] == 1000


def test_mlflow_tells_the_story_run_name_dataset_and_version_descriptions(promoting) -> None:
    rec = run_cycle(promoting.config(), promoting.policy())
    assert rec.decision == "promoted", rec.reasons
    reg = Registry.from_config(promoting.config())
    run = reg.client.get_run(rec.mlflow_run_id)
    assert run.info.run_name == f"churn · cycle · promoted · v1 vs v{rec.challenger['version']}"
    [ds] = run.inputs.dataset_inputs
    assert ds.dataset.name.startswith("churn window ") and [t.value for t in ds.tags] == ["production-window"]
    champ = reg.client.get_model_version("churn", rec.champion["promoted"])
    assert champ.description.startswith(f"Candidate of cycle {rec.id} (")
    assert "Serving since" in champ.description and f"in cycle {rec.id}" in champ.description
    # the model carries a signature (the raw feature columns in, prediction and proba out); a version's validation
    # number is its own search's, or named as its recipe's when it is a refit (no validation slice of its own)
    from mlflow.models import Model

    run_id, path = champ.source[len("runs:/"):].split("/", 1)
    sig = Model.load(str(reg.download_artifact(run_id, f"{path}/MLmodel", promoting.root / "mlmodel"))).signature
    assert set(sig.inputs.input_names()) == {c["column"] for c in rec.trigger["monitor"]["columns"]}
    assert sig.outputs.input_names() == ["prediction", "proba"]
    own, recipe = "kaizen.validation_metric" in champ.tags, "kaizen.recipe_validation_metric" in champ.tags
    assert own != recipe and (own or "no validation slice of its own" in champ.description)


def _complete_trials(path: Path, prefix: str) -> int:
    """COMPLETE trials of the studies named ``prefix...`` in the SQLite file ``path`` (0 while it is not there)."""
    import sqlite3

    if not path.is_file():
        return 0
    try:
        with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=1)) as db:
            return db.execute("SELECT count(*) FROM trials JOIN studies USING (study_id) WHERE studies.study_name "
                              "LIKE ? AND trials.state = 'COMPLETE'", (prefix + "%",)).fetchone()[0]
    except sqlite3.Error:  # the schema is being created
        return 0


def test_a_cycle_killed_during_its_search_resumes_the_study_on_the_next_run(promoting) -> None:
    """The issue's promise at the level of the service: ``kaizen once`` SIGKILLed while its search runs; the next
    ``kaizen once`` settles the dead cycle, runs the cycle again on the same rows and carries on the same study (its
    finished trials count toward the budget) instead of starting over."""
    import optuna

    cfg = promoting.config()
    policy = {**PROMOTE, "build": {"trials": 60, "timeout_seconds": False, "window_fractions": [1.0],
                                   "strategy": "full"}}
    promoting.write_policy(policy)
    env = {k: v for k, v in os.environ.items() if not k.startswith("KAIZEN_TEST_")}
    env["PYTHONPATH"] = str(ROOT)
    proc = subprocess.Popen([sys.executable, "-m", "kaizen", "--config", str(promoting.root / "config.toml"), "once",
                             "churn"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                            cwd=promoting.root)
    try:  # killed once the search has finished 3 trials: read-only SQL on the study file, no Optuna schema work
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and proc.poll() is None and _complete_trials(
                cfg.state_dir / "studies" / "churn.db", "churn/full/") < 3:
            time.sleep(0.1)
        assert proc.poll() is None, proc.communicate()[1][-2000:]
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.kill()
        proc.communicate()
    [entry] = Journal(cfg.state_dir, cfg.ledger_path).pending()
    assert entry["step"] == "building"
    url = f"sqlite:///{cfg.state_dir / 'studies' / 'churn.db'}"
    [summary] = [s for s in optuna.get_all_study_summaries(storage=url)  # the bootstrap's study is there too
                 if s.study_name.startswith("churn/full/")]
    killed = optuna.load_study(study_name=summary.study_name, storage=url).get_trials(deepcopy=False)
    done = [t for t in killed if t.state == optuna.trial.TrialState.COMPLETE]
    assert 0 < len(done) < 60, [t.state for t in killed]

    out = kaizen(promoting, "once", "churn")  # settles the dead cycle, then runs it again
    assert out.returncode == 0, out.stderr[-2000:]
    recs = [r for r in Ledger(cfg.ledger_path).records() if r.kind == "cycle"]
    assert [r.decision for r in recs if r.id == entry["id"]] == ["failed"]
    again = recs[-1]
    assert again.id != entry["id"] and again.challenger, again.reasons
    study = again.challenger["study"]
    assert study["name"] == summary.study_name and study["resumed"] is True, study
    assert study["resumed_trials"] == len(done)
    after = optuna.load_study(study_name=summary.study_name, storage=url).get_trials(deepcopy=False)
    assert [t.number for t in after[:len(killed)]] == [t.number for t in killed]  # the same trials, continued
    assert sum(t.state == optuna.trial.TrialState.COMPLETE for t in after) == 60  # the budget, not 60 + done
