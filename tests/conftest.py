"""Shared fixtures: a temp Kaizen home (config + policy + SQLite MLflow) on small seeded data.

Everything is real: MLflow on SQLite in a temp folder, Evidently, featuretools, Optuna.

What is made once per session and copied (tests/test_copied_homes.py checks the copies):

* a freshly migrated, empty MLflow database (creating one takes seconds): every home made by
  :func:`make_home` starts with a copy of it and the ``registry.marker`` Kaizen writes next to it;
* a real bootstrap per policy text (:func:`restore_bootstrap`), for tests that need a champion and
  do not test bootstrapping itself. A copied state folder gets its absolute paths rewritten (MLflow's
  rows, the promotion log, every text file) from the template's home to the test's.

Under pytest-xdist the templates live next to the workers' temp folders and are built once, by
whichever worker needs them first (an ``flock`` serialises the builders).
"""

from __future__ import annotations

import os

from kaizen._env import prepare  # noqa: E402  (imports nothing heavy)

prepare()
os.environ.pop("KAIZEN_CONFIG", None)
os.environ.pop("MLFLOW_TRACKING_URI", None)

import contextlib  # noqa: E402
import fcntl  # noqa: E402
import hashlib  # noqa: E402
import io  # noqa: E402
import logging  # noqa: E402
import shutil  # noqa: E402
import sqlite3  # noqa: E402
import threading  # noqa: E402
from collections.abc import Callable, Iterator  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import pytest  # noqa: E402

from kaizen.logs import configure  # noqa: E402

configure()

BASE_POLICY: dict[str, dict[str, Any]] = {
    "model": {"name": "churn", "task": "binary_classification", "target": "churned", "metric": "roc_auc"},
    "data": {"reference": "../data/reference.parquet", "production": "../data/production",
             "golden": "../data/golden.parquet", "timestamp_column": "ts"},
    # act on the first window that fires (the hysteresis, cooldown and drift-alone defaults have their own tests;
    # so do the accumulated signals, the sequential test and the standing challenger: tests/test_prequential.py,
    # tests/monitor/test_sequential.py, and the demo's test, which runs the shipped policy with every default)
    "trigger": {"drift_share": 0.3, "drift_threshold": 0.1, "performance_drop": 0.03,
                "min_rows": 100, "min_labelled_rows": 100, "consecutive": 1, "cooldown_batches": 0,
                "data_drift_alone": True, "sequential": False},
    "prequential": {"enabled": False},
    "build": {"trials": 4, "timeout_seconds": 120, "families": ["hist_gradient_boosting", "logistic_regression"],
              "trans_primitives": ["divide_numeric"], "max_features": 20, "seed": 3},
    "gates": {"min_improvement": 0.01, "golden_tolerance": 0.05, "holdout_fraction": 0.5,
              "min_holdout_rows": 50},
    "promotion": {"mode": "auto"},
    # no Evidently snapshot per triggering cycle (seconds each): the tests of the report and of the workspace ask
    # for the product's default, "on_trigger" (tests/test_monitoring_run.py, tests/ui/); the demo runs it as shipped
    "monitor": {"report": "never"},
}


def toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    raise TypeError(type(v))


def to_toml(doc: dict[str, dict[str, Any]]) -> str:
    out = []
    for section, values in doc.items():
        out.append(f"[{section}]")
        out += [f"{k} = {toml_value(v)}" for k, v in values.items() if v is not None]
        out.append("")
    return "\n".join(out)


def policy_toml(overrides: dict[str, dict[str, Any]] | None = None) -> str:
    """The base policy with ``overrides`` per section, as TOML text."""
    doc = {k: dict(v) for k, v in BASE_POLICY.items()}
    for section, values in (overrides or {}).items():
        doc.setdefault(section, {}).update(values)
    return to_toml(doc)


@dataclass
class Home:
    """A Kaizen home in a temp folder: config.toml, policies/, data/ and state."""

    root: Path
    scenario: Any

    @property
    def production(self) -> Path:
        return self.root / "data" / "production"

    @property
    def incoming(self) -> Path:
        return self.root / "data" / "incoming"

    def write_policy(self, overrides: dict[str, dict[str, Any]] | None = None, name: str = "churn") -> Path:
        path = self.root / "policies" / f"{name}.toml"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(policy_toml(overrides))
        return path

    def config(self) -> Any:
        from kaizen.config import load_config

        return load_config(self.root / "config.toml")

    def policy(self, name: str = "churn") -> Any:
        from kaizen.policy import load_policy

        return load_policy(self.root / "policies" / f"{name}.toml")

    def arrive(self, index: int) -> Path:
        """Move batch ``index`` of the scenario into the production folder."""
        src = sorted(self.incoming.iterdir())[index]
        self.production.mkdir(parents=True, exist_ok=True)
        dst = self.production / src.name
        shutil.copy(src, dst)
        return dst


#: the scenario of ``churn_data`` (a module-level constant so a template built by another xdist worker is the same)
CHURN_SCENARIO = dict(seed=5, reference_rows=1500, golden_rows=400, batch_rows=500, n_batches=6, covariate_at=2,
                      concept_at=3)


@pytest.fixture(scope="session")
def churn_data() -> Path:
    """A small seeded churn scenario written once per session (once per run under xdist)."""
    return _templates().churn_data()


def make_home(root: Path, data: Path, overrides: dict[str, dict[str, Any]] | None = None, *,
              registry: bool = True) -> Home:
    """A Kaizen home at ``root`` with the scenario files of ``data`` and the base policy (+ overrides).

    ``registry``: start with an empty migrated MLflow database (a copy of the session's) and its marker, as
    after Kaizen's first command; False leaves the state folder to be made by whatever runs first."""
    (root / "data").mkdir(parents=True)
    for name in ("reference.parquet", "golden.parquet"):
        shutil.copy(data / name, root / "data" / name)
    shutil.copytree(data / "incoming", root / "data" / "incoming")
    (root / "config.toml").write_text('[state]\ndir = "state"\n')
    h = Home(root=root, scenario=None)
    h.write_policy(overrides)
    if registry:
        seed_registry(root)
    return h


@pytest.fixture
def home(tmp_path: Path, churn_data: Path) -> Home:
    return make_home(tmp_path / "home", churn_data)


#: a promoting cycle on batch 3 (concept drift); one window fraction, so the row counts are exact
PROMOTE: dict[str, dict[str, Any]] = {
    "trigger": {"drift_share": 0.05}, "gates": {"min_improvement": 0.0, "golden_tolerance": 1.0},
    "build": {"window_fractions": [1.0]}}


@pytest.fixture
def promoting(home: Home) -> Home:
    """A bootstrapped home whose production folder holds batch 3: the concept drift, a promoting cycle.

    The bootstrap is the session's real one under ``PROMOTE``, copied (:func:`restore_bootstrap`)."""
    assert restore_bootstrap(home, PROMOTE).decision == "promoted"
    home.arrive(3)
    return home


#: ``PROMOTE`` in promotion mode manual, the challenger the champion's recipe refit (no search): it awaits approval
MANUAL: dict[str, dict[str, Any]] = {**PROMOTE, "promotion": {"mode": "manual"},
                                     "gates": {**PROMOTE["gates"], "refit_on_holdout": False},
                                     "build": {**PROMOTE["build"], "strategy": "refit"}}


def two_waiting(root: Path) -> Home:
    """A home at ``root`` whose cycles on batches 3 and 4 (``MANUAL``) left two challengers awaiting approval, none
    answered or closed: what a process that died before closing the older one as superseded leaves (cycles run by
    ``run_cycle``, not ``tick``). Built once per session, copied (tests/test_review.py, tests/ui/test_browser.py)."""
    def build(at: Path) -> None:
        from kaizen.cycle import run_cycle

        h = make_home(at, _templates().churn_data())
        assert restore_bootstrap(h, PROMOTE).decision == "promoted"  # the bootstrap ``promoting`` copies too
        h.write_policy(MANUAL)
        for batch in (3, 4):
            h.arrive(batch)
            rec = run_cycle(h.config(), h.policy())
            assert rec.decision == "awaiting_approval", rec.reasons

    return Home(root=copy_template("two-waiting", build, root), scenario=None)


@contextlib.contextmanager
def by_hand(registry: Any) -> Any:
    """What a person registering a model by hand does: MLflow's fluent API pointed at ``registry``'s URIs.

    Kaizen itself never sets process-wide MLflow state; a test that plays the person sets it here and
    puts it back (MLflow's default) afterwards. ``set_*_uri`` also export ``MLFLOW_TRACKING_URI`` and
    ``MLFLOW_REGISTRY_URI`` to the environment and ``set_*_uri(None)`` leaves them there: a later client of this
    process built without a registry URI would read the leftover one, so they are put back too."""
    import mlflow

    names = ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")
    before = {k: os.environ.get(k) for k in names}
    mlflow.set_tracking_uri(registry.tracking_uri)
    mlflow.set_registry_uri(registry.registry_uri)
    try:
        yield
    finally:
        mlflow.set_tracking_uri(None)
        mlflow.set_registry_uri(None)
        for k, v in before.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


# -- copying state folders --------------------------------------------------------------------------------

def _is_sqlite(path: Path) -> bool:
    with path.open("rb") as fh:
        return fh.read(16) == b"SQLite format 3\x00"


def _rewrite_sqlite(db: Path, old: str, new: str) -> None:
    """Every text value of every column of every table that contains ``old`` gets ``new`` instead."""
    con = sqlite3.connect(db)
    try:
        tables = [r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table' "
                                            "AND name NOT LIKE 'sqlite_%'")]
        for table in tables:
            for col in [r[1] for r in con.execute(f'PRAGMA table_info("{table}")')]:
                con.execute(f'UPDATE "{table}" SET "{col}" = replace("{col}", ?, ?) '
                            f'WHERE typeof("{col}") = \'text\' AND instr("{col}", ?) > 0', (old, new, old))
                left = con.execute(f'SELECT count(*) FROM "{table}" WHERE instr(CAST("{col}" AS BLOB), ?) > 0',
                                   (old.encode(),)).fetchone()[0]
                if left:
                    raise AssertionError(f"{db}: {table}.{col} holds {old} in {left} non-text value(s)")
        con.commit()
    finally:
        con.close()


def copy_state(src: Path, dst: Path, old_root: Path, new_root: Path) -> None:
    """Copy the state folder ``src`` to ``dst`` (replacing what it held), the absolute paths under ``old_root``
    rewritten to ``new_root``: in SQLite databases (every text column of every table), in the promotion log and in
    every other text file. A binary file holding the old path is an error, never a silently stale copy."""
    old, new = str(old_root), str(new_root)
    for child in (list(dst.iterdir()) if dst.exists() else []):  # emptied, not removed: it may be a mount point
        shutil.rmtree(child) if child.is_dir() and not child.is_symlink() else child.unlink()
    shutil.copytree(src, dst, symlinks=True, dirs_exist_ok=True)
    for path in sorted(dst.rglob("*")):
        if not path.is_file() or path.is_symlink():
            continue
        if _is_sqlite(path):
            _rewrite_sqlite(path, old, new)
            continue
        data = path.read_bytes()
        if old.encode() not in data:
            continue
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            raise AssertionError(f"{path}: a binary file holds the template's path {old}") from None
        st = path.stat()
        path.write_bytes(text.replace(old, new).encode("utf-8"))
        os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))  # a copy keeps the file's age (retention reads it)


# -- the session's templates ------------------------------------------------------------------------------

class Templates:
    """What the session builds once: the churn scenario's files, an empty migrated MLflow database, bootstraps.

    ``base`` is shared by the xdist workers of one run (``tmp_path_factory``'s root); each template is built
    under an ``flock`` by the first worker that needs it and marked done, then only read."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.base.mkdir(parents=True, exist_ok=True)
        self._local: dict[str, Any] = {}
        self._lock = threading.RLock()

    @contextlib.contextmanager
    def _building(self, name: str) -> Iterator[tuple[Path, bool]]:
        """(folder of template ``name``, whether it still has to be built), under an exclusive lock."""
        folder = self.base / name
        with self._lock, open(self.base / f"{name}.lock", "w") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            done = folder / ".done"
            todo = not done.exists()
            if todo and folder.exists():
                shutil.rmtree(folder)  # a builder that failed half-way
            yield folder, todo
            if todo:
                done.write_text("")

    def churn_data(self) -> Path:
        with self._building("churn-data") as (folder, todo):
            if todo:
                from experiments.scenarios import churn

                churn(**CHURN_SCENARIO).write(folder)
        return folder

    def registry(self) -> Path:
        """A home root whose ``state`` holds a freshly migrated empty MLflow database and its marker."""
        with self._building("registry") as (folder, todo):
            if todo:
                from kaizen.config import load_config
                from kaizen.registry import Registry

                root = folder / "home"
                root.mkdir(parents=True)
                (root / "config.toml").write_text('[state]\ndir = "state"\n')
                # MLflow puts its "Default" experiment under the working folder: the home's, as in a subprocess
                with contextlib.chdir(root):
                    Registry.from_config(load_config(root / "config.toml")).client.search_experiments()
        return folder / "home"

    def home(self, key: str, build: Callable[[Path], Any]) -> Path:
        """The root of a home ``build(root)`` made once per session (per run under xdist) for ``key``."""
        with self._building("home-" + hashlib.sha256(key.encode()).hexdigest()[:12]) as (folder, todo):
            if todo:
                build(folder / "home")
        return folder / "home"

    def bootstrapped(self, policy_text: str) -> Path:
        """The root of a home on the churn scenario with this policy (``policies/churn.toml``), really bootstrapped."""
        key = hashlib.sha256(policy_text.encode()).hexdigest()[:12]
        with self._building(f"bootstrap-{key}") as (folder, todo):
            root = folder / "home"
            if todo:
                from kaizen.commands.bootstrap import bootstrap

                h = make_home(root, self.churn_data())
                (root / "policies" / "churn.toml").write_text(policy_text)
                rec = bootstrap(h.config(), h.policy())
                assert rec.decision == "promoted", rec.reasons
        return root


_TEMPLATES: list[Templates] = []


def _templates() -> Templates:
    assert _TEMPLATES, "the session's templates are made by the autouse fixture _kaizen_templates"
    return _TEMPLATES[-1]


@pytest.fixture(scope="session", autouse=True)
def _kaizen_templates(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Templates]:
    base = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        base = base.parent  # shared by the workers of this run
    _TEMPLATES.append(Templates(base / "kaizen-templates"))
    yield _TEMPLATES[-1]
    _TEMPLATES.pop()


def seed_registry(root: Path) -> None:
    """Give the home at ``root`` (state folder ``state``) the session's empty migrated MLflow database."""
    template = _templates().registry()
    copy_state(template / "state", root / "state", template, root)


def copy_template(key: str, build: Callable[[Path], Any], root: Path) -> Path:
    """Make the home at ``root`` (which must not exist) a copy of the one ``build(root)`` makes, built once per
    session for ``key`` (the same key must always build the same home) and copied with its paths rewritten."""
    template = _templates().home(key, build)
    copy_state(template, root, template, root)
    return root


def restore_bootstrap(home: Home, overrides: dict[str, dict[str, Any]] | None = None) -> Any:
    """Write the base policy + ``overrides`` into ``home`` and give it the state of a real bootstrap under exactly
    that policy (built once per session, copied here); returns the bootstrap's record."""
    from kaizen.ledger import Ledger

    home.write_policy(overrides)
    template = _templates().bootstrapped((home.root / "policies" / "churn.toml").read_text())
    copy_state(template / "state", home.root / "state", template, home.root)
    [rec] = Ledger(home.root / "state" / "promotion-log.jsonl").records()
    return rec


# -- process-wide logging state ---------------------------------------------------------------------------

@contextlib.contextmanager
def _logging_kept() -> Iterator[None]:
    """Put back what ``kaizen.logs.configure`` (called by ``kaizen.cli.main``) changes process-wide: the levels and
    handlers of Kaizen's and the root logger (and the libraries' it quiets), captured warnings, the threads'
    excepthook."""
    kaizen, root = logging.getLogger("kaizen"), logging.getLogger()
    levels = {name: logging.getLogger(name).level for name in ("kaizen", "", *_noisy())}
    handlers, top, propagate = list(kaizen.handlers), list(root.handlers), kaizen.propagate
    hook, captured = threading.excepthook, logging._warnings_showwarning is not None  # type: ignore[attr-defined]
    try:
        yield
    finally:
        kaizen.handlers[:], kaizen.propagate = handlers, propagate
        for h in [h for h in root.handlers if getattr(h, "_kaizen", False) and h not in top]:
            root.removeHandler(h)  # pytest's own handlers on the root logger change per test phase: leave them
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)
        threading.excepthook = hook
        logging.captureWarnings(captured)


@pytest.fixture(autouse=True)
def _no_logging_leaks() -> Iterator[None]:
    """A test that calls ``kaizen.cli.main`` (which configures logging) leaves no trace for the next one."""
    with _logging_kept():
        yield


def _noisy() -> tuple[str, ...]:
    from kaizen.logs import _NOISY

    return _NOISY


# -- the CLI in this process ------------------------------------------------------------------------------

@dataclass
class Ran:
    """What ``subprocess.run(..., capture_output=True, text=True)`` returns, for an in-process ``kaizen`` call."""

    args: list[str]
    returncode: int
    stdout: str
    stderr: str


def _stream() -> io.TextIOWrapper:
    return io.TextIOWrapper(io.BytesIO(), encoding="utf-8", write_through=True)


def _text(stream: io.TextIOWrapper) -> str:
    stream.flush()
    return stream.buffer.getvalue().decode("utf-8", errors="replace")  # type: ignore[attr-defined]


def kaizen_main(*args: str, cwd: Path, env: dict[str, str] | None = None) -> Ran:
    """``kaizen ARGS`` run by ``kaizen.cli.main`` in this process, from folder ``cwd`` with ``env`` added.

    For tests of output and exit codes only: signals, crashes and a fresh process's imports need a real
    subprocess. What ``main`` changes process-wide (the log handlers' streams and levels, captured warnings,
    the threads' excepthook, the working folder, the environment) is put back afterwards."""
    from kaizen.cli import main

    out, err = _stream(), _stream()
    kaizen, root = logging.getLogger("kaizen"), logging.getLogger()
    ours = [h for h in (*kaizen.handlers, *root.handlers) if isinstance(h, logging.StreamHandler)
            and (h in kaizen.handlers or getattr(h, "_kaizen", False))]
    saved_streams = [h.stream for h in ours]
    saved_env = {k: os.environ.get(k) for k in (env or {})}
    os.environ.update(env or {})
    for h in ours:
        h.stream = err  # not setStream: it flushes the old stream, which pytest may have closed
    try:
        with (_logging_kept(), contextlib.chdir(cwd), contextlib.redirect_stdout(out),
              contextlib.redirect_stderr(err)):
            try:
                code = main(list(args))
            except SystemExit as exc:  # argparse: --help, bad usage
                code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    finally:
        for h, stream in zip(ours, saved_streams, strict=True):
            h.stream = stream
        for k, v in saved_env.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    return Ran(["kaizen", *args], code, _text(out), _text(err))



# -- collection: the fast subset, the guard ---------------------------------------------------

#: ``make test-fast`` (``pytest -m fast``): the unit tests of the rules, gates, checks, trust, ledger and policy, the
#: quick tests of every other package, and a few real cycles on real MLflow. Node-id prefixes: a folder (``/``), a file,
#: or a test (all its parameters). ``NOT_FAST`` takes slow tests out of a folder or file named in ``FAST``.
FAST = (
    # the rules, gates, checks, trust, ledger, policy
    "tests/monitor/", "tests/gates/", "tests/data/", "tests/trust/", "tests/test_ledger.py", "tests/test_policy.py",
    "tests/test_policy_check.py", "tests/test_config.py", "tests/test_fields.py", "tests/test_policy_related.py",
    "tests/test_metrics.py", "tests/test_policy_multiclass.py",
    # the quick tests of the other packages: challenger, run, cli, ui, service, notify, cost, backtest (its CLI)
    "tests/challenger/test_features.py", "tests/challenger/test_related.py", "tests/challenger/test_families.py",
    "tests/test_runner.py",
    "tests/challenger/test_pruning.py::test_rungs_are_the_newest_quarter_half_and_all",
    "tests/challenger/test_pruning.py::test_pruning_is_validated_with_file_field_and_value",
    "tests/challenger/test_resume.py::test_the_study_name_follows_the_inputs",
    "tests/test_cli.py", "tests/test_exit_codes.py", "tests/test_log_cli.py", "tests/test_notify.py",
    "tests/test_redact.py", "tests/test_cost.py", "tests/service/test_settings.py", "tests/service/test_deploy.py",
    "tests/test_health.py::test_nothing_recorded_is_unknown",
    "tests/test_health.py::test_a_drop_past_half_the_threshold_is_degraded_and_the_bound_is_a_setting",
    "tests/test_health.py::test_the_chart_gives_every_cycle_the_same_room_and_the_overview_zooms",
    "tests/service/test_disk.py::test_min_free_bytes_default_and_errors",
    "tests/service/test_daemon.py::test_a_scheduler_whose_loop_fails_stops_visibly_and_readyz_answers_503",
    "tests/ui/test_server.py",
    "tests/test_docs_byo.py::test_the_page_marks_what_runs",
    "tests/test_review.py::test_the_detail_page_leads_with_the_best_rung_trust_as_a_table_and_links_to_mlflow",
    # slow change: the holdout refill and re-baselining rules, the standing challenger's arithmetic, the benchmark's
    # target logic, the real-world stream, the policy tuner's space and file edit, the river peers
    "tests/test_slow_change.py",
    "tests/test_prequential.py::test_accumulate_weights_windows_by_rows_and_keeps_to_the_serving_champion",
    "tests/experiments/test_bench_slow_change.py", "tests/experiments/test_real_stream.py",
    "tests/experiments/test_bench_build.py",  # the build benchmark's targets and clock (issue 19); its run is NOT_FAST
    "tests/test_policy_tune.py::test_the_search_space_follows_the_policys_settings",
    "tests/test_policy_tune.py::test_the_file_edit_keeps_the_original_and_moves_relative_paths",
    "tests/test_policy_tune.py::test_tuning_refuses_bad_input", "tests/test_backtest_peers.py",
    # real cycles and commands on real MLflow: a copied bootstrap, a quiet and a promoting cycle, rollback, history,
    # retention, the registry's guard, the scale-out coordination on PostgreSQL (skipped without a server)
    "tests/test_copied_homes.py", "tests/test_cycle.py::test_no_drift_is_skipped_with_reasons",
    "tests/test_guarantees.py::test_a_vanished_registry_database_is_not_silently_recreated",
    "tests/test_rollback.py::test_manual_rollback_leaves_one_consistent_record",
    "tests/test_history.py::test_restore_moves_the_alias_back_and_alerts",
    "tests/test_retention.py::test_dry_run_lists_exactly_what_goes_and_deletes_nothing",
    "tests/scale/test_coordination.py::test_one_leader_at_a_time_and_the_epoch_grows_at_each_takeover",
)
NOT_FAST = (
    "tests/experiments/test_bench_build.py::test_every_arm_scores_every_split_within_its_cpu_budget_on_tiny_data",
    "tests/gates/test_judge_cycle.py", "tests/monitor/test_fast_drift.py",
    "tests/monitor/test_estimate.py::test_a_cycle_records_estimated_and_realised_side_by_side",
    "tests/test_backtest_peers.py::test_backtest_peers_are_arms_scored_on_every_batch",
    "tests/data/test_late_labels.py::test_a_backtest_reveals_label_files_on_time_and_cycles_use_them",
    "tests/test_exit_codes.py::test_a_second_daemon_on_a_held_state_folder_exits_75",
    "tests/test_cost.py::test_cycles_record_energy_and_stop_improving_when_the_budget_is_spent",
    "tests/ui/test_server.py::test_the_daemon_serves_the_pages_when_enabled_and_health_still_works",
    "tests/ui/test_server.py::test_kaizen_ui_says_where_and_whether_review_is_on_and_never_shows_the_token",
)

#: ``make test`` (``--dist loadfile --no-loadscope-reorder``) hands whole files to the xdist workers in collection
#: order; these, the longest (``pytest --durations``), are collected first, so the run does not end on one long
#: file while the other workers idle. A file here that no longer exists fails a ``make test-fast`` run, as above.
LONGEST_FIRST = (
    # the first three start at once, one per worker: two long CPU-bound files and one that mostly waits on processes
    "tests/test_backtest.py", "tests/test_policy_tune.py", "tests/scale/test_worker.py",
    # the two users of the session's MLflow server, next to each other (a worker that takes both starts it once)
    "tests/scale/test_replicas.py", "tests/scale/test_parity.py", "tests/scale/test_tuning.py",
    # the guides followed as a reader would (docs/*.md): servers and real commands, minutes, mostly waiting
    "tests/test_docs_mlflow_server.py", "tests/test_docs_byo.py",
    "tests/test_guarantees.py", "tests/test_cycle.py", "tests/data/test_late_labels.py", "tests/service/test_crash.py",
    "tests/experiments/test_demo.py", "tests/test_backtest_peers.py", "tests/service/test_daemon.py",
    "tests/test_ladder.py", "tests/test_refit.py", "tests/test_prequential.py", "tests/test_unattended.py",
    "tests/test_rollback.py", "tests/ui/test_browser.py", "tests/test_review.py", "tests/scale/test_sql_cycle.py",
    "tests/service/test_disk.py", "tests/test_health.py", "tests/test_monitoring_run.py",
)

_ALL_FILES = pytest.StashKey[set]()
_STALE = pytest.StashKey[list]()


def _names(nodeid: str, prefix: str) -> bool:
    """Whether node-id ``prefix`` (a folder ending in ``/``, a file, or a test) names the item ``nodeid``."""
    if prefix.endswith("/"):
        return nodeid.startswith(prefix)
    return nodeid == prefix or nodeid.startswith((prefix + "::", prefix + "["))


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list[pytest.Item]) -> None:
    """Before any deselection (``-m``, ``-k``): remember which files were collected (for the guard below),
    mark the ``FAST`` tests ``fast`` and put the ``LONGEST_FIRST`` files first."""
    root = Path(__file__).resolve().parent
    config.stash[_ALL_FILES] = {Path(str(item.path)).resolve() for item in items}
    used = set()
    for item in items:
        fast = [p for p in FAST if _names(item.nodeid, p)]
        slow = [p for p in NOT_FAST if _names(item.nodeid, p)]
        used.update(fast + slow)
        if fast and not slow:
            item.add_marker(pytest.mark.fast)
    config.stash[_STALE] = [p for p in FAST + NOT_FAST if p not in used] + [
        p for p in LONGEST_FIRST if not (root.parent / p).is_file()]
    rank = {p: i for i, p in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.nodeid.split("::")[0], len(rank)))  # stable: else as collected



@pytest.hookimpl(tryfirst=True)  # before xdist's worker reports its collection to the controller
def pytest_collection_finish(session: pytest.Session) -> None:
    """Fail a run over the whole ``tests`` folder when a ``tests/**/test_*.py`` file was not collected.

    pytest silently skips folders it treats as output (``norecursedirs``: ``build``, ``dist``, ...);
    a test file there would never run. The check compares the files on disk with those collected before
    any ``-m``/``-k`` selection, so a marker-selected run (``make test-fast``) is checked too and never
    fails for the files it deselected; under xdist each worker collects everything and checks. A run of
    named files or folders inside ``tests`` is not checked.
    """
    root = Path(__file__).resolve().parent
    args = [Path(a.split("::")[0]).resolve() for a in session.config.args] or [root]
    opt = session.config.option
    if not any(a == root or a == root.parent for a in args):
        return
    stale = session.config.stash.get(_STALE, [])
    if stale and "fast" in (opt.markexpr or ""):  # the fast subset names a test that no longer exists
        report = pytest.CollectReport(nodeid=root.name, outcome="failed", result=[], longrepr=(
            "tests/conftest.py FAST/NOT_FAST/LONGEST_FIRST name no collected test (renamed or deleted?): "
            + ", ".join(stale)))
        session.config.hook.pytest_collectreport(report=report)
    ignored = [Path(p).resolve() for p in (opt.ignore or []) + (opt.ignore_glob or [])]
    on_disk = {p.resolve() for p in root.rglob("test_*.py") if "__pycache__" not in p.parts
               and not any(p.resolve() == i or i in p.resolve().parents for i in ignored)}
    collected = session.config.stash.get(_ALL_FILES, None)
    if collected is None:  # nothing was collected at all (modifyitems is not called then)
        collected = {Path(str(item.path)).resolve() for item in session.items}
    missing = sorted(str(p.relative_to(root.parent)) for p in on_disk - collected)
    if missing:  # reported as a collection error, not raised: under xdist the workers report it this way
        why = "test files that pytest did not collect (rename their folders or fix norecursedirs): "
        report = pytest.CollectReport(nodeid=root.name, outcome="failed", result=[], longrepr=why + ", ".join(missing))
        session.config.hook.pytest_collectreport(report=report)
