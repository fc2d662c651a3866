"""Resumable studies (kaizen.challenger.studies): a build killed during its search carries on when run again.

Real processes, a real SIGKILL, Optuna's SQLite storage under tmp_path. The killed build's trials are slowed by a
sleep before each fit (``--slow``) so the kill lands while a trial runs; nothing else is changed.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
BUDGET = 12

#: one build in a fresh process: rows make_rows(n, seed=rows_seed), the policy of the challenger tests with a budget
SCRIPT = r"""
import json, sys, time
from pathlib import Path
args = json.loads(sys.argv[1])
from kaizen._env import prepare
prepare()
import kaizen.challenger.search as search
from kaizen.challenger import build_challenger
from kaizen.challenger.studies import Studies
from tests.challenger.conftest import make_policy, make_rows, make_schema

if args["slow"]:
    fit = search._fit
    def slow_fit(*a, **k):
        time.sleep(args["slow"])
        return fit(*a, **k)
    search._fit = slow_fit
policy = make_policy(trials=args["trials"], families=("hist_gradient_boosting", "logistic_regression"),
                     **args.get("build", {}))
studies = Studies(Path(args["studies"]), rung="full", heartbeat_seconds=1, grace_seconds=2)
r = build_challenger(make_rows(args["rows"], seed=args["rows_seed"]), schema=make_schema(), policy=policy,
                     workdir=Path(args["workdir"]), studies=studies)
print(json.dumps(r.to_dict()))
"""


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1",
            "MKL_NUM_THREADS": "1", "MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "true"}


def _args(tmp: Path, name: str, *, studies: Path, rows_seed: int = 1, slow: float = 0.0, **build: Any) -> str:
    return json.dumps({"studies": str(studies), "workdir": str(tmp / name), "rows": 600, "rows_seed": rows_seed,
                       "trials": BUDGET, "slow": slow, "build": build})


def build(tmp: Path, name: str, *, studies: Path, rows_seed: int = 1, **build: Any) -> dict[str, Any]:
    """A build in a fresh process, to its end; its BuildResult.to_dict()."""
    out = subprocess.run([sys.executable, "-c", SCRIPT, _args(tmp, name, studies=studies, rows_seed=rows_seed,
                                                              **build)],
                         cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=240)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def trials(url: Any, name: str) -> list[Any]:
    import optuna

    return optuna.load_study(study_name=name, storage=url).get_trials(deepcopy=False)


def only_study(url: str) -> str:
    import optuna

    names = [s.study_name for s in optuna.get_all_study_summaries(storage=url)]
    assert len(names) == 1, names
    return names[0]


def test_a_build_killed_during_its_search_resumes_the_same_study(tmp_path: Path) -> None:
    """SIGKILL with >= 3 trials done and one running; the re-run on the same rows continues the study: trial
    numbers go on, the running trial ends FAIL (heartbeat) and its configuration runs again, the budget counts
    the trials done before (COMPLETE trials reach the budget, not budget + done before), no opening trial is
    drawn again, and resuming the same partial study twice gives the same search and model. Uninterrupted, the
    build with a study file chooses what it chooses in memory. Rows of another day start a study of their own."""
    import optuna
    from optuna.trial import TrialState

    from kaizen.challenger.search import _SHARED as SAMPLED_LAST  # what every trial samples last, before its fit

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    studies = tmp_path / "studies"
    url = f"sqlite:///{studies / 'churn.db'}"
    proc = subprocess.Popen([sys.executable, "-c", SCRIPT, _args(tmp_path, "killed", studies=studies, slow=1.0)],
                            cwd=ROOT, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    name, storage = None, None
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            assert proc.poll() is None, proc.communicate()[1][-3000:]
            seen = []
            if name is None and (studies / "churn.db").is_file():
                time.sleep(0.5)  # let the build create the schema and its study
                try:
                    name = only_study(url)
                    storage = optuna.storages.RDBStorage(url)  # one reader for the polls
                except Exception:  # the file is being created: the schema is not there yet
                    name = None
            if name is not None:
                seen = trials(storage, name)
                states = [t.state for t in seen]
                if (states.count(TrialState.COMPLETE) >= 3 and states[-1] == TrialState.RUNNING
                        and set(SAMPLED_LAST) <= seen[-1].params.keys()):
                    break  # a trial is fitting: its whole configuration is sampled (each suggest is written at once,
                    #        so a trial with only some of its parameters is still sampling, not fitting)
            time.sleep(0.05)
        else:
            pytest.fail("the build never had 3 complete trials and one running")
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.kill()
        proc.communicate()
        if storage is not None:
            storage.engine.dispose()
    before = trials(url, name)
    running = [t.number for t in before if t.state == TrialState.RUNNING]
    assert len(running) == 1 and len(before) < BUDGET
    done_before = [t for t in before if t.state == TrialState.COMPLETE]
    copy = tmp_path / "studies-copy"  # the study as the kill left it: SQLite's backup API, a consistent snapshot
    copy.mkdir()                       # (a file copy may catch a checkpoint of the write-ahead log half-way)
    with closing(sqlite3.connect(studies / "churn.db")) as src, closing(sqlite3.connect(copy / "churn.db")) as dst:
        src.backup(dst)

    resumed = build(tmp_path, "resumed", studies=studies)
    after = trials(url, name)
    assert resumed["study"]["name"] == name and only_study(url) == name          # the same study, not a new one
    assert resumed["study"]["resumed"] is True
    assert resumed["study"]["resumed_trials"] == len(done_before)
    assert resumed["study"]["failed_stale"] == 1
    assert [t.number for t in after] == list(range(len(after)))                   # numbers continue
    assert [(t.number, t.params) for t in after[:len(done_before)]] == [(t.number, t.params) for t in done_before]
    crashed = after[running[0]]
    assert crashed.state == TrialState.FAIL and "error" not in crashed.user_attrs  # failed by the heartbeat
    retry = next(t for t in after if t.system_attrs.get("failed_trial") == running[0])
    assert retry.number > running[0] and retry.params == crashed.params and retry.state == TrialState.COMPLETE
    complete = [t for t in after if t.state == TrialState.COMPLETE]
    assert len(complete) == BUDGET                                                # the budget, not budget + before
    assert len(after) == BUDGET + 1                                               # and the one the crash failed
    assert resumed["trial_counts"] == {"COMPLETE": BUDGET, "PRUNED": 0, "FAIL": 1}
    assert resumed["stopped_by"] == "trials"
    opening = [t.params for t in done_before]
    assert not any(t.params in opening for t in after[len(before):] if t.number != retry.number), \
        "a resumed search drew one of the opening trials again"

    # resuming the same partial study again (its copy) repeats the resumed search exactly
    again = build(tmp_path, "again", studies=copy)
    again_trials = trials(f"sqlite:///{copy / 'churn.db'}", name)
    assert [(t.number, t.state, t.params, t.value) for t in again_trials] == [
        (t.number, t.state, t.params, t.value) for t in after]
    assert (again["family"], again["params"], again["validation_metric"]) == (
        resumed["family"], resumed["params"], resumed["validation_metric"])

    # uninterrupted, a build with a study file chooses what the same build in memory chooses
    whole = build(tmp_path, "whole", studies=tmp_path / "other-studies")
    memory = build(tmp_path, "memory", studies=tmp_path / "unused", resume=False)
    assert whole["study"]["name"] == name and whole["study"]["resumed"] is False
    assert memory["study"]["storage"] is None and not (tmp_path / "unused").exists()
    assert (whole["family"], whole["params"], whole["validation_metric"], whole["trials"]) == (
        memory["family"], memory["params"], memory["validation_metric"], memory["trials"])

    # other rows: a study of their own next to it (kept: build.keep_studies = 4)
    other = build(tmp_path, "other", studies=studies, rows_seed=5)
    assert other["study"]["name"] != name and other["study"]["resumed"] is False
    assert other["study"]["resumed_trials"] == 0
    assert sorted(s.study_name for s in optuna.get_all_study_summaries(storage=url)) == sorted(
        [name, other["study"]["name"]])


def test_two_fresh_builds_with_storage_repeat_exactly(tmp_path: Path, classification_rows, schema,
                                                     policy_factory) -> None:
    """Same rows and seed, each build with a storage of its own: the same parameters and validation metric; a
    third build on the first storage finds the finished study (budget spent) and returns the same model."""
    from kaizen.challenger import build_challenger
    from kaizen.challenger.studies import Studies

    pol = policy_factory(trials=6)
    runs = [build_challenger(classification_rows, schema=schema, policy=pol, workdir=tmp_path / w,
                             studies=Studies(tmp_path / s)) for w, s in (("a", "sa"), ("b", "sb"), ("c", "sa"))]
    a, b, c = runs
    assert (a.family, a.params, a.validation_metric) == (b.family, b.params, b.validation_metric)
    assert (a.family, a.params, a.validation_metric) == (c.family, c.params, c.validation_metric)
    assert a.study["name"] == b.study["name"] and not a.study["resumed"] and not b.study["resumed"]
    assert c.study["resumed"] and c.study["resumed_trials"] == 6 and c.trials == 6
    assert a.study["storage"] == f"sqlite:///{(tmp_path / 'sa' / 'churn.db').resolve()}"


def test_keep_studies_bounds_the_file_and_resume_false_keeps_none(tmp_path: Path, rows_factory, schema,
                                                                  policy_factory) -> None:
    """Each build on other rows makes a study; the file keeps the newest ``keep_studies``. ``resume = false``:
    an in-memory study, no file."""
    import optuna

    from kaizen.challenger import build_challenger
    from kaizen.challenger.studies import Studies

    pol = policy_factory(trials=2, keep_studies=2, families=("logistic_regression",))
    names = [build_challenger(rows_factory(200, seed=s), schema=schema, policy=pol, workdir=tmp_path / str(s),
                              studies=Studies(tmp_path / "st")).study["name"] for s in (1, 2, 3)]
    url = f"sqlite:///{tmp_path / 'st' / 'churn.db'}"
    assert sorted(s.study_name for s in optuna.get_all_study_summaries(storage=url)) == sorted(names[1:])
    off = build_challenger(rows_factory(200, seed=4), schema=schema, workdir=tmp_path / "off",
                           policy=policy_factory(trials=2, resume=False, families=("logistic_regression",)),
                           studies=Studies(tmp_path / "off-st"))
    assert off.study["storage"] is None and not (tmp_path / "off-st").exists()


def test_the_study_name_follows_the_inputs(rows_factory, schema) -> None:
    """The fingerprint changes with a row's value, the target, the seed and the search settings; not otherwise."""
    import dataclasses

    import numpy as np

    from kaizen.challenger.search import SearchInputs
    from kaizen.challenger.studies import fingerprint, study_name

    rows = rows_factory(60, seed=3)
    x = rows[list(schema.features)]
    y = rows["target"].to_numpy()
    base = SearchInputs(x_fit=x.iloc[:40], y_fit=y[:40], x_val=x.iloc[40:], y_val=y[40:], names=schema.features,
                        identity=schema.features, categorical=schema.categorical, families=("ridge",),
                        windows=(1.0,), task="binary_classification", metric="roc_auc", positive_label=1,
                        higher_is_better=True, seed=0)
    f0 = fingerprint(base)
    assert fingerprint(dataclasses.replace(base, x_fit=x.iloc[:40].copy())) == f0
    changed_value = x.iloc[:40].copy()
    changed_value.iloc[5, 0] += 1
    flipped = y[40:].copy()
    flipped[0] = 1 - flipped[0]
    for other in (dataclasses.replace(base, x_fit=changed_value), dataclasses.replace(base, y_val=flipped),
                  dataclasses.replace(base, seed=1), dataclasses.replace(base, windows=(1.0, 0.5)),
                  dataclasses.replace(base, pruning="successive_halving"),
                  dataclasses.replace(base, y_fit=np.roll(y[:40], 1))):
        assert fingerprint(other) != f0
    assert fingerprint(base, enqueue=[{"family": "ridge"}]) != f0
    assert study_name("churn", "full", f0) == f"churn/full/{f0[:16]}"


def test_a_study_file_that_cannot_be_opened_leaves_the_search_in_memory(tmp_path: Path, classification_rows, schema,
                                                                        policy_factory) -> None:
    """A state folder whose study file cannot be opened (here a folder stands where the file should be; a full disk
    or a read-only mount alike): the build searches in memory, chooses what it chooses with resume off, and records
    why it could not keep the study."""
    from kaizen.challenger import build_challenger
    from kaizen.challenger.studies import Studies

    (tmp_path / "st" / "churn.db").mkdir(parents=True)
    pol = policy_factory(trials=4, families=("logistic_regression", "random_forest"))
    r = build_challenger(classification_rows, schema=schema, policy=pol, workdir=tmp_path / "a",
                         studies=Studies(tmp_path / "st"))
    assert r.study["storage"] is None and r.study["resumed"] is False
    assert "unable to open database file" in r.study["error"]
    off = build_challenger(classification_rows, schema=schema, workdir=tmp_path / "b",
                           policy=policy_factory(trials=4, families=("logistic_regression", "random_forest"),
                                                 resume=False))
    assert (r.family, r.params, r.validation_metric) == (off.family, off.params, off.validation_metric)
