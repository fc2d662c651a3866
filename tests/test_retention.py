"""Retention on a real MLflow registry (SQLite in tmp_path) with real files: what goes, what must stay."""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from kaizen.commands.retention import plan, run
from kaizen.config import load_config
from kaizen.errors import ConfigError
from kaizen.ledger import Ledger, Record
from kaizen.registry import Registry
from tests.conftest import by_hand, copy_template, kaizen_main, seed_registry

ROOT = Path(__file__).resolve().parents[1]
DAY = 86400.0
BASELINE = 0.8123
SETTINGS = """[retention]
reports_keep = 2
reports_days = 14
versions_keep = 2
versions_days = 30
keep_champions = 1
work_days = 1
cache_days = 7
"""
#: version → (kaizen.status or None, extra tags); the comments say what retention must do with it
VERSIONS: dict[int, tuple[str | None, dict[str, str]]] = {
    1: ("retired", {"kaizen.retired_at": "2026-01-01T00:00:00Z"}),   # old retired: goes
    2: ("retired", {"kaizen.retired_at": "2026-03-01T00:00:00Z"}),   # newest retired: rollback keeps it
    3: (None, {}),                                                   # no status (by hand): never touched
    4: ("superseded", {"kaizen.holdout_metric": f"{BASELINE:.6f}"}),  # the baseline came from it
    5: ("aborted", {}),                                              # goes
    6: ("rejected", {}),                                             # an open approval in the log names it
    7: ("rejected", {}),                                             # holds the challenger alias
    8: ("champion", {}),                                             # the champion
    9: ("rejected", {}),                                             # newest 2 versions: kept by count
}


@dataclass
class State:
    root: Path
    config: Any
    registry: Registry
    runs: dict[int, str] = field(default_factory=dict)  # version → run id
    files: dict[str, Path] = field(default_factory=dict)

    def model_dir(self, v: int) -> Path:
        src = self.registry.client.get_model_version("churn", str(v)).source
        return Path(self.registry.client.get_logged_model(src.split("/")[-1]).artifact_location[len("file://"):])

    def run_dir(self, v: int) -> Path:
        return Path(self.registry.run_files(self.runs[v])[len("file://"):])

    def tags(self, v: int) -> dict[str, str]:
        return self.registry.version("churn", str(v)).tags


def _age(path: Path, days: float) -> None:
    t = time.time() - days * DAY
    os.utime(path, (t, t))


@pytest.fixture
def state(tmp_path: Path) -> State:
    """A home of its own, for a test that deletes."""
    return _copy(tmp_path / "home")


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> State:
    """One home for the tests that only plan (and leave it as they found it)."""
    return _copy(tmp_path_factory.mktemp("retention") / "home")


def _copy(root: Path) -> State:
    """The home :func:`_build` makes, built once per session and copied to ``root`` (files keep their ages)."""

    def build(at: Path) -> None:
        st = _build(at)
        (at / "built.json").write_text(json.dumps({"runs": st.runs, "files": {k: str(p) for k, p in st.files.items()}}))

    copy_template("tests/test_retention.py _build", build, root)
    built = json.loads((root / "built.json").read_text())
    cfg = load_config(root / "config.toml")
    return State(root, cfg, Registry.from_config(cfg), runs={int(v): r for v, r in built["runs"].items()},
                 files={k: Path(p) for k, p in built["files"].items()})


def _build(root: Path) -> State:
    """Nine versions of ``churn`` with statuses, aliases, a baseline, an open approval, reports, work, cache."""
    import mlflow
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    (root / "policies").mkdir(parents=True)
    (root / "config.toml").write_text('[state]\ndir = "state"\n' + SETTINGS)
    seed_registry(root)
    cfg = load_config(root / "config.toml")
    reg = Registry.from_config(cfg)
    x, y = np.arange(20.0).reshape(-1, 1), np.array([0] * 10 + [1] * 10)
    st = State(root, cfg, reg)
    for v, (status, extra) in VERSIONS.items():
        cycle = f"2026110{v}T000000Z-churn-000{v}"
        with by_hand(reg), mlflow.start_run(experiment_id=reg.experiment_id("churn"), run_name=cycle) as r:
            info = mlflow.sklearn.log_model(LogisticRegression().fit(x, y), name="model",
                                            registered_model_name="churn", serialization_format="cloudpickle",
                                            pip_requirements=["scikit-learn"])
            mlflow.log_text("training rows\n" * 50, "reference/reference.parquet")
            mlflow.log_text("onnx graph\n" * 50, "onnx/model.onnx")
            if v != 3:
                mlflow.log_text("<html>" + "x" * 5000, f"monitor/{cycle}.html")
        assert str(info.registered_model_version) == str(v)
        st.runs[v] = r.info.run_id
        tags = {"kaizen.reference_artifact": "reference/reference.parquet", "kaizen.onnx_artifact": "onnx", **extra}
        if status:
            tags["kaizen.status"] = status
        reg.tag("churn", str(v), tags)
    reg.client.set_registered_model_alias("churn", "champion", "8")
    reg.client.set_registered_model_alias("churn", "challenger", "7")
    reg.set_baseline("churn", BASELINE)

    reports = cfg.reports_dir
    reports.mkdir(parents=True)
    for key, name, days in (("r_new", "20261120T000000Z-churn-aaa1", 0.1),
                            ("r_mid", "20261119T000000Z-churn-aaa2", 0.2),
                            ("r_third", "20261118T000000Z-churn-aaa3", 0.3),
                            ("r_old", "20261001T000000Z-churn-aaa4", 20),
                            ("r_open", "20261002T000000Z-churn-aaa5", 21),
                            ("r_fraud", "20261001T000000Z-fraud-bbb1", 0.5)):
        p = reports / f"{name}.html"
        p.write_text("<html>" + "r" * 1000)
        _age(p, days)
        st.files[key] = p
    st.files["notes"] = reports / "notes.txt"
    st.files["notes"].write_text("not a report")
    _age(st.files["notes"], 100)
    Ledger(cfg.ledger_path).append(Record(
        id="20261002T000000Z-churn-aaa5", policy="churn", decision="awaiting_approval",
        champion={"version": "8"}, challenger={"version": "6"}, mlflow_run_id=st.runs[6],
        report=str(st.files["r_open"])))

    for key, name, days in (("w_old", "20261101T000000Z-churn-cccc", 2),
                            ("w_journal", "20261102T000000Z-churn-dddd", 2),
                            ("w_new", "20261103T000000Z-churn-eeee", 0.1)):
        d = cfg.work_dir / name / "refit"
        d.mkdir(parents=True)
        (d / "model.joblib").write_bytes(b"m" * 2000)
        for p in (d / "model.joblib", d, d.parent):
            _age(p, days)
        st.files[key] = d.parent
    (cfg.state_dir / "journal").mkdir()
    (cfg.state_dir / "journal" / "20261102T000000Z-churn-dddd.json").write_text('{"id": "20261102T000000Z-churn-dddd"}')

    cache = cfg.state_dir / "cache" / "churn"
    cache.mkdir(parents=True)
    for key, name, days in (("c_champ", "v8-0123456789abcdef.npz", 30), ("c_old", "v2-0123456789abcdef.npz", 30),
                            ("c_new", "v5-0123456789abcdef.npz", 1), ("c_tmp", ".v9-0123456789abcdef.npz.77.tmp", 30)):
        p = cache / name
        p.write_bytes(b"c" * 300)
        _age(p, days)
        st.files[key] = p
    return st


def _expected(st: State) -> set[tuple[str, str]]:
    f = st.files
    return ({("report", str(f[k])) for k in ("r_third", "r_old")}
            | {("version", "churn v1"), ("version", "churn v5")}
            | {("run-report", f"file://{st.run_dir(v)}/monitor") for v in (1, 2, 4, 5, 7)}
            | {("work", str(f["w_old"])), ("cache", str(f["c_old"])), ("cache", str(f["c_tmp"]))})


def test_dry_run_lists_exactly_what_goes_and_deletes_nothing(shared: State) -> None:
    state = shared
    before = {p: p.stat().st_size for p in state.root.rglob("*") if p.is_file() and "mlflow.db" not in p.name}
    p, result = run(state.config, state.registry, dry_run=True)
    assert result is None
    assert {(i.kind, i.target) for i in p.items} == _expected(state)
    assert {k.version: k.reason for k in p.kept} == {
        "8": "champion", "7": "challenger", "6": "awaiting approval (20261002T000000Z-churn-aaa5)",
        "4": f"the performance baseline {BASELINE:.4f} came from it",
        "2": "rollback: retired champion 1 of the newest 1"}
    assert p.bytes == sum(i.bytes for i in p.items) and all(i.bytes > 0 for i in p.items)
    assert set(p.marks) == {state.runs[3]}  # its run has no report
    after = {q: q.stat().st_size for q in state.root.rglob("*") if q.is_file() and "mlflow.db" not in q.name}
    assert after == before
    assert all("kaizen.artifacts" not in state.tags(v) for v in VERSIONS)


def test_apply_deletes_exactly_the_plan_and_tags_the_versions(state: State) -> None:
    models = {v: state.model_dir(v) for v in VERSIONS}
    p, result = run(state.config, state.registry)
    assert result is not None and not result.failed and not result.stopped
    assert {(i.kind, i.target) for i in result.deleted} == _expected(state)
    assert result.bytes_freed == p.bytes
    for v in VERSIONS:
        gone = v in (1, 5)
        assert models[v].exists() != gone, v
        assert models[v].parent.exists() != gone, v  # the emptied models/m-… folder goes too
        assert (state.run_dir(v) / "reference" / "reference.parquet").exists() != gone, v
        assert (state.run_dir(v) / "onnx").exists() != gone, v  # its ONNX export goes with it
        tags = state.tags(v)
        assert (tags.get("kaizen.artifacts") == "deleted") == gone, v
        assert bool(tags.get("kaizen.artifacts_deleted_at")) == gone, v
        assert (state.run_dir(v) / "monitor").exists() == (v in (6, 8, 9)), v  # 3 never had a report
    assert state.registry.version("churn", "1").tags["kaizen.status"] == "retired"  # the entry itself stays
    f = state.files
    assert not any(f[k].exists() for k in ("r_third", "r_old", "w_old", "c_old", "c_tmp"))
    assert all(f[k].exists() for k in ("r_new", "r_mid", "r_open", "r_fraud", "notes", "w_journal", "w_new",
                                       "c_champ", "c_new"))
    runs = {r.info.run_id: r.data.tags.get("kaizen.report")
            for r in state.registry.client.search_runs([state.registry.experiment_id("churn")])}
    assert runs == {state.runs[v]: {3: "none", 6: None, 8: None, 9: None}.get(v, "deleted") for v in VERSIONS}
    again = plan(state.config, state.registry)
    assert again.items == () and again.marks == ()


def test_age_limits_apply_beyond_the_newest_n(shared: State) -> None:
    """40 days later everything old goes, count or not; the protected versions still stay."""
    state = shared
    p = plan(state.config, state.registry, now=time.time() + 40 * DAY)
    versions = {i.version for i in p.items if i.kind == "version"}
    assert versions == {"1", "5", "9"}
    assert {i.reason for i in p.items if i.version == "9"} == {"rejected, older than 30 days (40.0 days old)"}
    reports = {i.target for i in p.items if i.kind == "report"}
    assert reports == {str(state.files[k]) for k in ("r_new", "r_mid", "r_third", "r_old", "r_fraud")}
    run_reports = {i.run_id for i in p.items if i.kind == "run-report"}
    assert run_reports == {state.runs[v] for v in (1, 2, 4, 5, 7, 8, 9)}  # 6 awaits approval, 3 has none


def test_without_a_baseline_source_every_retired_version_stays(shared: State) -> None:
    state = shared
    state.registry.set_baseline("churn", 0.5)  # matches no version's tag and no record
    try:
        p = plan(state.config, state.registry)
    finally:
        state.registry.set_baseline("churn", BASELINE)
    assert {i.version for i in p.items if i.kind == "version"} == {"4", "5"}  # 4 is no longer its source
    assert any("no version matches its baseline 0.5000" in n for n in p.notes)
    assert {k.version: k.reason for k in p.kept}["1"] == "the baseline's version is unknown"


def test_keep_champions_zero_lets_every_unprotected_retired_version_go(shared: State) -> None:
    from dataclasses import replace

    state = shared
    cfg = replace(state.config, retention=replace(state.config.retention, keep_champions=0))
    p = plan(cfg, state.registry)
    assert {i.version for i in p.items if i.kind == "version"} == {"1", "2", "5"}


def test_kaizen_gc_dry_run_prints_the_plan(shared: State) -> None:
    state = shared
    r = kaizen_main("gc", "--dry-run", cwd=state.root)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith(f"would delete {len(_expected(state))} item(s), ")
    assert "churn v1  (retired, beyond the newest 2 versions of churn)" in r.stdout
    assert f"{state.files['r_old']}  (older than 14 days (20.0 days old))" in r.stdout
    assert "churn v8: champion" in r.stdout
    assert state.files["r_old"].exists() and state.model_dir(1).exists()
    j = kaizen_main("gc", "--dry-run", "--json", cwd=state.root)
    doc = json.loads(j.stdout)
    assert doc["dry_run"] is True and doc["result"] is None
    assert {(i["kind"], i["target"]) for i in doc["plan"]["items"]} == _expected(state)


def test_the_service_sweep_is_a_stored_job_that_deletes(state: State) -> None:
    from kaizen.service import housekeeping
    from kaizen.service.scheduler import make_scheduler

    sched = make_scheduler(state.config.service)
    sched.start(paused=True)
    try:
        housekeeping.schedule(sched, state.config)
        job = sched.get_job(housekeeping.JOB_ID)
        assert job.func_ref == "kaizen.service.housekeeping:sweep" and job.trigger.interval.total_seconds() == 3600
        housekeeping.sweep()
        assert not state.files["r_old"].exists() and not state.model_dir(1).exists()
        assert state.model_dir(8).exists()
        from dataclasses import replace

        off = replace(state.config, retention=replace(state.config.retention, enabled=False))
        housekeeping.schedule(sched, off)
        assert sched.get_job(housekeeping.JOB_ID) is None
    finally:
        sched.shutdown(wait=False)


@pytest.mark.parametrize(("line", "message"), [
    ('every = "soon"', 'retention.every must be a positive duration such as "15m", "1h" or "1d"; got \'soon\''),
    ("reports_keep = -1", "retention.reports_keep must be an integer >= 0; got -1"),
    ("versions_days = 0", "retention.versions_days must be a number in (0, inf); got 0"),
    ("enabled = 1", "retention.enabled must be true or false; got 1"),
    ("keep = 3", "retention.keep is not a known setting"),
])
def test_bad_retention_settings_name_file_key_and_value(tmp_path: Path, line: str, message: str) -> None:
    path = tmp_path / "config.toml"
    path.write_text(f"[retention]\n{line}\n")
    with pytest.raises(ConfigError, match="retention") as err:
        load_config(path)
    assert str(err.value) == f"{path}: {message}"


def test_the_evidently_workspace_keeps_each_policys_newest_snapshots_and_never_touches_other_projects(
        tmp_path: Path) -> None:
    """Real snapshots in a real workspace (kaizen.monitor.workspace.add_snapshot, as cycles add them): per policy
    the newest ``reports_keep`` younger than ``reports_days`` stay; a project Kaizen did not make stays whole."""
    import pandas as pd
    from evidently import Report
    from evidently.metrics import ValueDrift
    from evidently.ui.workspace import Workspace

    from kaizen.monitor.workspace import add_snapshot

    (tmp_path / "config.toml").write_text('[state]\ndir = "state"\n' + SETTINGS)
    config = load_config(tmp_path / "config.toml")
    ws_path = config.evidently_workspace
    ref, cur = pd.DataFrame({"a": [0.0, 1.0, 2.0, 3.0] * 5}), pd.DataFrame({"a": [1.0, 2.0, 3.0, 4.0] * 5})

    def snapshot() -> Any:
        return Report([ValueDrift(column="a")]).run(cur, ref)

    now = time.time()
    stored: dict[str, list[Any]] = {"churn": [], "demand": []}
    for policy, ages in (("churn", (0, 1, 2, 20)), ("demand", (30,))):  # days old
        for age in ages:
            s = add_snapshot(ws_path, policy, snapshot(), name=f"{policy}-{age}")
            path = ws_path / s.project_id / "snapshots" / f"{s.snapshot_id}.json"
            os.utime(path, (now - age * DAY, now - age * DAY))
            stored[policy].append((age, s))
    theirs = Workspace(str(ws_path)).create_project("someone-else")
    foreign = Workspace(str(ws_path)).add_run(theirs.id, snapshot(), name="theirs")
    os.utime(ws_path / str(theirs.id) / "snapshots" / f"{foreign.id}.json", (now - 99 * DAY, now - 99 * DAY))

    p = plan(config, None, now=now)
    going = {i.target: i for i in p.items if i.kind == "snapshot"}
    expected = {str(ws_path / s.project_id / "snapshots" / f"{s.snapshot_id}.json"): (policy, age)
                for policy, runs in stored.items() for age, s in runs if (policy, age) in
                {("churn", 2), ("churn", 20), ("demand", 30)}}
    assert set(going) == set(expected)
    assert going[next(t for t, v in expected.items() if v == ("churn", 2))].reason == \
        "beyond the newest 2 workspace snapshots of churn"
    assert going[next(t for t, v in expected.items() if v == ("churn", 20))].reason.startswith("older than 14 days")

    run(config, None)  # applied (now): the same three go
    ws = Workspace(str(ws_path))
    kept = {str(i) for i in ws.list_runs(stored["churn"][0][1].project_id)}
    assert kept == {s.snapshot_id for age, s in stored["churn"] if age in (0, 1)}
    assert not list(ws.list_runs(stored["demand"][0][1].project_id))
    assert [str(i) for i in ws.list_runs(theirs.id)] == [str(foreign.id)]  # not Kaizen's: untouched
    assert ws.get_run(stored["churn"][0][1].project_id, stored["churn"][0][1].snapshot_id) is not None
