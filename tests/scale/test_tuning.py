"""Distributed tuning: one build's study in RDB storage on PostgreSQL, joined by ``kaizen worker --tune`` processes.

Real PostgreSQL (Optuna's storage in a database of its own, the coordination database apart), real
``kaizen worker --tune`` processes, the search inputs published as artifacts of an MLflow run (SQLite
tracking, a file artifact store: every process of the test reads it, as every host reads the MLflow server).
"""

from __future__ import annotations

import hashlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.challenger.conftest import make_policy, make_rows, make_schema
from tests.scale.conftest import drop_database, new_database

GRACE = 3  # [coordination] stalled_seconds: Optuna's heartbeat grace period (interval: 1 s)


@pytest.fixture
def optuna_url(pg_server: str) -> Iterator[str]:
    """A database of Optuna's own, its schema created once (as `kaizen db upgrade` does)."""
    from kaizen.scale.tuning import create_storage

    url = new_database("kz_optuna")
    try:
        create_storage(url)
        yield url
    finally:
        drop_database(url)


class Site:
    """The build's side (an MLflow run to publish into) and the config every tuner reads."""

    def __init__(self, root: Path, pg_url: str, optuna_url: str) -> None:
        from kaizen.registry import Registry
        from kaizen.registry.runlog import RunLog

        root.mkdir(parents=True, exist_ok=True)
        self.root, self.optuna_url = root, optuna_url
        tracking, artifacts = f"sqlite:///{root / 'mlflow.db'}", (root / "artifacts").as_uri()
        self.config = root / "config.toml"
        self.config.write_text(f'[state]\ndir = "state"\n\n[mlflow]\ntracking_uri = "{tracking}"\n'
                               f'artifact_location = "{artifacts}"\n\n[service]\nlog_format = "text"\n\n'
                               f'[coordination]\nurl = "{pg_url}"\noptuna_storage = "{optuna_url}"\n'
                               f'heartbeat_seconds = 1\nstalled_seconds = {GRACE}\n')
        self.registry = Registry(tracking, tracking, artifacts)
        run = self.registry.start_run("churn", run_name="cycle", tags={})
        self.runlog = RunLog(self.registry, run.info.run_id)
        self.tuners: list[subprocess.Popen] = []
        self._storage: Any = None

    def tuner(self, *args: str) -> subprocess.Popen:
        log = (self.root / f"tuner-{len(self.tuners)}.log").open("w")
        proc = subprocess.Popen([sys.executable, "-m", "kaizen", "--config", str(self.config), "worker", "--tune",
                                 *args], cwd=self.root, stdout=log, stderr=subprocess.STDOUT, text=True,
                                env={**os.environ, "PYTHONPATH": os.getcwd(), "OMP_NUM_THREADS": "1"})
        self.tuners.append(proc)
        return proc

    def output(self, i: int) -> str:
        return (self.root / f"tuner-{i}.log").read_text(errors="replace")

    def wait_ready(self, timeout: float = 120.0) -> None:
        """Until every tuner logged that it watches the storage (its imports are done)."""
        end = time.monotonic() + timeout
        while not all("joining searches" in self.output(i) for i in range(len(self.tuners))):
            for i, p in enumerate(self.tuners):
                assert p.poll() is None, f"tuner {i} exited {p.returncode}: {self.output(i)[-2000:]}"
            assert time.monotonic() < end, [self.output(i)[-500:] for i in range(len(self.tuners))]
            time.sleep(0.2)

    def shared(self, rung: str = "full") -> Any:
        from kaizen.config import load_config
        from kaizen.scale.tuning import SharedSearch

        return SharedSearch.for_cycle(load_config(self.config), self.runlog, policy="churn", cycle_id="c1",
                                      rung=rung)

    def stop(self) -> list[int]:
        """SIGTERM every live tuner (it ends after its running trial); their exit codes."""
        for p in self.tuners:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        return [p.wait(timeout=120) for p in self.tuners]

    @property
    def storage(self) -> Any:
        if self._storage is None:
            import optuna

            from kaizen.scale.tuning import storage_url

            self._storage = optuna.storages.RDBStorage(storage_url(self.optuna_url))
        return self._storage

    def close(self) -> None:
        for p in self.tuners:
            if p.poll() is None:
                p.kill()
                p.wait()
        if self._storage is not None:
            self._storage.engine.dispose()


@pytest.fixture
def site(tmp_path: Path, pg_url: str, optuna_url: str) -> Iterator[Site]:
    s = Site(tmp_path / "site", pg_url, optuna_url)
    try:
        yield s
    finally:
        s.close()


def _study(site: Site) -> Any:
    """The one study in the storage (ValueError before it exists), through one storage object (one pool)."""
    import optuna

    [frozen] = site.storage.get_all_studies() or [None]
    if frozen is None:
        raise ValueError("no study yet")
    return optuna.load_study(study_name=frozen.study_name, storage=site.storage)


def _counted(trials: list[Any]) -> list[Any]:
    from kaizen.scale.tuning import counts_toward_budget

    return [t for t in trials if t.state.is_finished() and counts_toward_budget(t)]


def test_two_tuners_join_a_build_and_the_budget_holds_across_processes(site: Site, tmp_path: Path) -> None:
    from kaizen.challenger import build_challenger
    from kaizen.scale.tuning import PROCESS, SURPLUS, process_id

    for _ in range(2):
        site.tuner()
    site.wait_ready()
    rows, pol = make_rows(1500, seed=5), make_policy(trials=24, trans_primitives=("divide_numeric",))
    result = build_challenger(rows, schema=make_schema(), policy=pol, workdir=tmp_path / "build",
                              shared=site.shared())
    assert site.stop() == [0, 0], [site.output(i)[-2000:] for i in range(2)]

    study = _study(site)
    trials = study.get_trials()
    counted = _counted(trials)
    assert len(counted) == 24                                # the budget, across every process: never more
    assert not [t for t in trials if t.state.name in ("RUNNING", "WAITING")]
    by = {t.user_attrs[PROCESS] for t in counted}
    tuners = {f"{socket.gethostname()}:{p.pid}" for p in site.tuners}
    assert by == tuners | {process_id()}, by                 # trials from every process
    assert all(t.state.name == "PRUNED" for t in trials if t.user_attrs.get(SURPLUS))
    best = max((t for t in counted if t.state.name == "COMPLETE"), key=lambda t: (t.value, -t.number))
    assert result.validation_metric == best.value            # the build took the best trial, whoever ran it
    assert result.trials == 24 and result.trial_counts["COMPLETE"] == 24
    attrs = study.user_attrs
    assert attrs["kaizen.open"] is False and attrs["kaizen.trials"] == 24 and attrs["kaizen.policy"] == "churn"
    assert attrs["kaizen.inputs"] == {"run_id": site.runlog.run_id, "path": "tuning/full"}
    assert "tuning/full/search.json" in {f.path for f in site.registry.client.list_artifacts(
        site.runlog.run_id, "tuning/full")}
    for i in range(2):
        assert "joined" in site.output(i) and "stopped after" in site.output(i)


def test_pruning_works_in_a_shared_search_helpers_included(site: Site, tmp_path: Path) -> None:
    """build.pruning travels with the search inputs: a helper fits its trials on the same rungs of rows, reports
    them to the same successive-halving pruner (its rung records are in the study), and a pruned trial is never
    the best."""
    from kaizen.challenger import build_challenger
    from kaizen.scale.tuning import PROCESS, SURPLUS, process_id

    site.tuner()
    site.wait_ready()
    rows = make_rows(1500, seed=5)
    pol = make_policy(trials=16, trans_primitives=("divide_numeric",), pruning="successive_halving")
    result = build_challenger(rows, schema=make_schema(), policy=pol, workdir=tmp_path / "build",
                              shared=site.shared())
    assert site.stop() == [0], site.output(0)[-2000:]
    trials = _counted(_study(site).get_trials())
    assert len(trials) == 16
    pruned = [t for t in trials if t.state.name == "PRUNED" and not t.user_attrs.get(SURPLUS)]
    assert pruned and all(t.user_attrs["fit_rows"] < t.user_attrs["window_rows"] for t in pruned)
    helper = [t for t in trials if t.user_attrs[PROCESS] != process_id()]
    assert helper and all(t.intermediate_values and "completed_rung_0" in t.system_attrs for t in helper)
    best = max((t for t in trials if t.state.name == "COMPLETE"), key=lambda t: (t.value, -t.number))
    assert result.validation_metric == best.value and result.pruning == "successive_halving"
    assert result.study["shared"] is True and result.trial_counts["PRUNED"] == len(pruned)


def test_a_tuner_killed_mid_trial_leaves_no_trial_running_and_its_trial_is_retried(site: Site,
                                                                                  tmp_path: Path) -> None:
    from kaizen.challenger import build_challenger
    from kaizen.scale.tuning import PROCESS

    victim, _ = site.tuner(), site.tuner()
    site.wait_ready()
    rows = make_rows(3000, seed=6)
    pol = make_policy(trials=20, families=("hist_gradient_boosting",), trans_primitives=())
    out: dict[str, Any] = {}

    def build() -> None:
        try:
            out["result"] = build_challenger(rows, schema=make_schema(), policy=pol, workdir=tmp_path / "b",
                                             shared=site.shared())
        except BaseException as exc:  # reported by the main thread
            out["error"] = exc

    worker = threading.Thread(target=build, name="build")
    worker.start()
    who, killed, killed_at = f"{socket.gethostname()}:{victim.pid}", None, 0.0
    end = time.monotonic() + 180
    while killed is None and time.monotonic() < end and worker.is_alive():
        try:
            study = _study(site)
        except ValueError:  # not created yet
            time.sleep(0.1)
            continue
        running = [t for t in study.get_trials(deepcopy=False)  # every parameter sampled: fitting
                   if t.state.name == "RUNNING" and t.user_attrs.get(PROCESS) == who and len(t.params) == 8]
        if running:
            victim.send_signal(signal.SIGKILL)
            victim.wait()
            killed_at = time.time()
            killed = running[0].number
        time.sleep(0.05)
    assert killed is not None, "the victim never ran a trial: " + site.output(0)[-2000:]
    assert _study(site).trials[killed].state.name == "RUNNING"   # killed mid-trial: left RUNNING ...
    worker.join(timeout=300)
    assert "error" not in out, out.get("error")
    assert site.stop() == [-signal.SIGKILL, 0]

    study = _study(site)
    trials = study.get_trials()
    dead = trials[killed]
    assert dead.state.name == "FAIL" and "error" not in dead.user_attrs  # ... until the grace: failed, not counted
    assert (dead.datetime_complete.timestamp() - killed_at) < GRACE + 15
    [retry] = [t for t in trials if t.system_attrs.get("failed_trial") == killed]
    assert retry.state.name == "COMPLETE" and retry.params == dead.params      # and run again by a live process
    assert retry.user_attrs[PROCESS] != who
    assert not [t for t in trials if t.state.name == "RUNNING"]
    assert len(_counted(trials)) == 20
    assert out["result"].trial_counts == {"COMPLETE": 20, "PRUNED": 0, "FAIL": 1}


def _digest(result: Any) -> dict[str, str]:
    return {f.name: hashlib.sha256(f.read_bytes()).hexdigest() for f in sorted(result.artifacts_dir.iterdir())}


def test_without_helpers_a_build_is_the_same_with_and_without_storage(site: Site, tmp_path: Path) -> None:
    """Seeded and alone, the RDB study samples what the in-memory one does; without storage the build repeats
    byte for byte (the objective is the same function in both)."""
    from kaizen.challenger import build_challenger

    rows, pol = make_rows(800, seed=3), make_policy(trials=6)
    a = build_challenger(rows, schema=make_schema(), policy=pol, workdir=tmp_path / "a", seed=11)
    b = build_challenger(rows, schema=make_schema(), policy=pol, workdir=tmp_path / "b", seed=11)
    assert _digest(a) == _digest(b)
    c = build_challenger(rows, schema=make_schema(), policy=pol, workdir=tmp_path / "c", seed=11,
                         shared=site.shared())
    assert (c.family, c.params, c.validation_metric, c.trials) == (a.family, a.params, a.validation_metric, a.trials)
    assert _digest(c)["model.joblib"] == _digest(a)["model.joblib"]


def test_tune_once_without_open_studies_returns_and_a_closed_study_is_not_joined(site: Site, tmp_path: Path) -> None:
    from kaizen.challenger import build_challenger

    build_challenger(make_rows(400, seed=2), schema=make_schema(), policy=make_policy(trials=2),
                     workdir=tmp_path / "a", shared=site.shared())      # closed when it returns
    p = site.tuner("--once")
    assert p.wait(timeout=120) == 0, site.output(0)[-2000:]
    assert "stopped after 0 trials in 0 studies" in site.output(0)


def test_tune_needs_optuna_storage(tmp_path: Path, pg_url: str) -> None:
    cfg = tmp_path / "config.toml"
    cfg.write_text(f'[state]\ndir = "state"\n\n[coordination]\nurl = "{pg_url}"\n')
    done = subprocess.run([sys.executable, "-m", "kaizen", "--config", str(cfg), "worker", "--tune", "--once"],
                          capture_output=True, text=True, cwd=tmp_path, timeout=120,
                          env={**os.environ, "PYTHONPATH": os.getcwd()})
    assert done.returncode == 78 and "optuna_storage" in done.stderr, done.stderr


#: a cycle that goes straight to the full search, whose trials take long enough for helpers to join
FULL = {"trigger": {"drift_share": 0.05}, "gates": {"min_improvement": 0.0, "golden_tolerance": 1.0},
        "build": {"window_fractions": [1.0], "strategy": "full", "trials": 16, "timeout_seconds": 240}}


@pytest.mark.timeout(600)  # two whole cycles and four processes on two cores: about 3.5 minutes
def test_two_workers_and_two_tuners_share_the_cycles_studies(pg_url: str, optuna_url: str, tmp_path: Path,
                                                             churn_data: Path) -> None:
    """The issue's scene: two policies' cycles in two `kaizen worker`s, two `kaizen worker --tune` joining their
    searches; every study holds trials of its cycle's process and of a tuner, and keeps its budget."""
    from kaizen.commands.bootstrap import bootstrap
    from kaizen.ledger import Ledger
    from kaizen.scale.queue import app_for, enqueue_cycle, schema
    from kaizen.scale.tuning import PROCESS, storage_url
    from tests.conftest import make_home, restore_bootstrap

    home = make_home(tmp_path / "home", churn_data)
    assert restore_bootstrap(home, FULL).decision == "promoted"
    home.write_policy({**FULL, "model": {"name": "churn_b"}}, name="churn_b")
    (home.root / "config.toml").write_text(f'[state]\ndir = "state"\n\n[service]\nlog_format = "text"\n\n'
                                           f'[coordination]\nurl = "{pg_url}"\noptuna_storage = "{optuna_url}"\n'
                                           f'heartbeat_seconds = 1.0\nstalled_seconds = {GRACE}.0\n')
    assert bootstrap(home.config(), home.policy("churn_b")).decision == "promoted"
    home.arrive(3)
    schema(pg_url)
    app = app_for(pg_url)
    with app.open():
        for policy in ("churn", "churn_b"):
            assert enqueue_cycle(app, policy, epoch=None) is not None

    env = {**os.environ, "PYTHONPATH": os.getcwd(), "OMP_NUM_THREADS": "1"}
    procs: list[tuple[subprocess.Popen, Path]] = []

    def start(*args: str) -> subprocess.Popen:
        log = tmp_path / f"p{len(procs)}.log"
        p = subprocess.Popen([sys.executable, "-m", "kaizen", "--config", str(home.root / "config.toml"), "worker",
                              *args], cwd=home.root, stdout=log.open("w"), stderr=subprocess.STDOUT, env=env)
        procs.append((p, log))
        return p

    try:
        tuners = [start("--tune"), start("--tune")]
        workers = [start("--once", "--name", "w1"), start("--once", "--name", "w2")]
        for w in workers:
            assert w.wait(timeout=280) == 0
        for t in tuners:
            t.send_signal(signal.SIGTERM)
        assert [t.wait(timeout=60) for t in tuners] == [0, 0]
    finally:
        for p, _ in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    logs = "\n".join(f"--- {log.name}\n{log.read_text(errors='replace')[-3000:]}" for _, log in procs)

    import optuna

    storage = optuna.storages.RDBStorage(storage_url(optuna_url))
    try:
        studies = {s.study_name.split("/")[0]: s for s in storage.get_all_studies()}
        assert set(studies) == {"churn", "churn_b"}, logs
        tuner_ids = {f"{socket.gethostname()}:{t.pid}" for t in tuners}
        seen: set[str] = set()
        for policy, frozen in studies.items():
            trials = optuna.load_study(study_name=frozen.study_name, storage=storage).get_trials()
            counted = _counted(trials)
            assert len(counted) == 16 and not [t for t in trials if t.state.name == "RUNNING"], logs
            by = {t.user_attrs[PROCESS] for t in counted}
            assert by & tuner_ids and by - tuner_ids, (policy, by, logs)   # its cycle's process and a tuner
            assert frozen.user_attrs["kaizen.open"] is False and frozen.study_name.split("/")[2] == "full"
            seen |= by
        assert tuner_ids <= seen, logs                                     # both tuners worked
    finally:
        storage.engine.dispose()
    recs = [r for r in Ledger(home.config().ledger_path).records() if r.kind == "cycle"]
    assert sorted(r.policy for r in recs) == ["churn", "churn_b"], logs
    assert all(r.decision != "failed" for r in recs), [r.reasons for r in recs]
