"""Distributed tuning: a cycle's Optuna study in RDB storage, joined by ``kaizen worker --tune`` processes.

Optuna's storage lives in a database of its own (``[coordination] optuna_storage``), apart from
MLflow's: both use an ``alembic_version`` table (mlflow#2923). ``kaizen db upgrade`` creates its
schema once (:func:`create_storage`), before any worker starts. Several processes opening a fresh
database at once race ("table … already exists", the revision stamped twice); :func:`rdb_storage`, which every
opener here goes through, opens again when it lost that race (tests/scale/test_storage_race.py).

Who does what:

* **The cycle** (:class:`SharedSearch`, passed to :func:`kaizen.challenger.search.build_challenger`
  for the ``small`` and ``full`` rungs) creates one study per cycle and rung (a unique name),
  publishes its :class:`~kaizen.challenger.search.SearchInputs` as artifacts of the cycle's MLflow
  run (every host reads them through the MLflow server), writes the study's user attrs (its
  policy, deadline, trial budget, where its inputs are), opens it, runs ``study.optimize`` itself,
  and closes it when its budget, timeout or stop ends the search. Only the cycle refits the best
  trial; a helper never writes to the registry.
* **A helper** (:func:`run_tuner`) finds open studies, downloads a study's inputs once (kept in
  memory while the study is open, dropped when it closes), rebuilds the same objective
  (:func:`~kaizen.challenger.search.make_objective`) and runs ``study.optimize`` until the study
  closes, its budget is spent or its deadline passes; then it looks for the next one.

**Pruning** (``build.pruning``) works here too: the inputs carry the setting, every process's objective fits a
trial on rungs of rows and reports them, and each process opens the study with the same pruner
(:func:`kaizen.challenger.studies.make_pruner`); successive halving is asynchronous, so a rung's competitors are
the trials that reached it so far, whichever process ran them. A PRUNED trial counts toward the budget like a
COMPLETE one. Such a study is never resumed: its name is unique per cycle (a crash of the cycle ends it).

Every process runs trials through ``study.optimize`` (RDB heartbeats work only there, not with
ask/tell) on a storage with ``heartbeat_interval``/``grace_period`` and
``RetryHeartbeatStaleTrialCallback`` (Optuna 5's names; ``failed_trial_callback`` is deprecated):
a trial whose process died (SIGKILL, a lost host) is failed by the next process that starts a
trial after the grace period, and re-run once more as a new trial with the same parameters.
The interval and the grace are ``[coordination] heartbeat_seconds`` and ``stalled_seconds``
(whole seconds, at least 1 and 2): a very short interval fails live trials under load
(optuna#5470); a process whose own trial was failed that way logs it and goes on.

**One budget for every process** (:class:`Budget`): a trial counts when it is COMPLETE, PRUNED, or
FAIL because the objective raised (as in a search of one process); a trial failed by the
heartbeat does not (its retry does). Before its work, a trial waits until the counted trials plus
the running ones with a lower number leave it a slot; when none is left it is pruned and marked
``kaizen.surplus`` (never counted, never the best); retries go first: they
count as ahead of every new trial, and a new trial gives way (pruned as surplus) when a retry waits for
the last slots, so a retried trial is run, not left waiting or pruned. So the budget is never
overrun, and the first running trial (retries first, then by number) never waits. Trial order,
and so the result, depends on timing when helpers join: a seeded build repeats exactly only
without them.
"""

from __future__ import annotations

import gc
import logging
import math
import os
import signal
import socket
import tempfile
import threading
import time
import uuid
import warnings
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

__all__ = ["Budget", "SharedSearch", "counted", "counts_toward_budget", "create_storage", "open_storage",
           "process_id", "run_tuner", "storage_url"]

log = logging.getLogger("kaizen.scale.tuning")

# study user attrs
OPEN = "kaizen.open"              # True while the cycle searches; helpers join only open studies
DEADLINE = "kaizen.deadline"      # unix time after which no process starts a trial
TRIALS = "kaizen.trials"          # the trial budget across every process (None: the deadline alone)
INPUTS = "kaizen.inputs"          # {"run_id", "path"}: the search inputs, artifacts of the cycle's run
FORMAT = "kaizen.inputs_format"   # SearchInputs layout version
POLICY = "kaizen.policy"
# trial user attrs
PROCESS = "kaizen.process"        # host:pid of the process that ran the trial
SURPLUS = "kaizen.surplus"        # pruned unrun: the budget was spent (or the study closed) before it began
#: the cycle run's artifact folder of a rung's search inputs
TUNING_DIR = "tuning"


def storage_url(url: str) -> str:
    """A SQLAlchemy URL: plain ``postgresql://`` means psycopg 3 (the driver Kaizen installs), not psycopg2."""
    for plain in ("postgresql://", "postgres://"):
        if url.startswith(plain):
            return "postgresql+psycopg://" + url[len(plain):]
    return url


#: What another process creating Optuna's schema at the same moment makes a constructor raise: a table or type
#: created in between ("already exists", "duplicate"), the revision stamped twice ("UNIQUE constraint failed:
#: alembic_version"), SQLite's file lock held by the other writer.
_SCHEMA_RACE = ("already exists", "duplicate", "unique constraint", "database is locked")
_SCHEMA_ATTEMPTS = 6


def rdb_storage(url: str, **kwargs: Any) -> Any:
    """``optuna.storages.RDBStorage(url, **kwargs)``, surviving another process creating the schema at once.

    The constructor creates any missing table, then stamps the schema's revision; two processes opening a fresh
    database together (a build and optuna-dashboard on a new studies file, helpers on a new shared database) can
    both try, and the loser raises although the schema is then complete. Such an error is retried (0.1, 0.2, ...,
    1.6 s apart); every other error (a wrong password, an unreachable server) is raised at once.
    """
    import optuna
    import sqlalchemy.exc

    for attempt in range(_SCHEMA_ATTEMPTS):
        try:
            return optuna.storages.RDBStorage(url, **kwargs)
        except sqlalchemy.exc.DBAPIError as exc:
            text = str(exc.orig if exc.orig is not None else exc).lower()
            if attempt == _SCHEMA_ATTEMPTS - 1 or not any(race in text for race in _SCHEMA_RACE):
                raise
            log.info("optuna storage: another process is creating the schema (%s); opening again",
                     type(exc).__name__)
            time.sleep(0.1 * 2 ** attempt)
    raise AssertionError("unreachable")


def create_storage(url: str) -> None:
    """Create or migrate Optuna's RDB schema at ``url`` (a SQLAlchemy URL)."""
    storage = rdb_storage(storage_url(url))
    storage.engine.dispose()


def heartbeats(coordination: Any) -> tuple[int, int]:
    """(interval, grace) in whole seconds from ``[coordination]``: Optuna takes positive integers."""
    interval = max(1, math.ceil(coordination.heartbeat_seconds))
    return interval, max(interval + 1, math.ceil(coordination.stalled_seconds))


def open_storage(url: str, *, heartbeat_seconds: int, grace_seconds: int, max_retry: int = 2) -> Any:
    """Optuna's RDB storage at ``url`` with heartbeats; a trial failed by them is retried ``max_retry`` times."""
    import optuna
    from optuna.storages import RetryHeartbeatStaleTrialCallback

    with warnings.catch_warnings():  # the heartbeat arguments are "experimental" in Optuna 5
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return rdb_storage(
            storage_url(url), engine_kwargs={"pool_pre_ping": True}, heartbeat_interval=int(heartbeat_seconds),
            grace_period=int(grace_seconds),
            heartbeat_stale_trial_callback=RetryHeartbeatStaleTrialCallback(max_retry=max_retry))


def process_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def counts_toward_budget(t: Any) -> bool:
    """Does finished trial ``t`` use the budget? (COMPLETE, PRUNED, or FAIL because the objective raised)."""
    from optuna.trial import TrialState

    if t.user_attrs.get(SURPLUS):
        return False
    return t.state in (TrialState.COMPLETE, TrialState.PRUNED) or (
        t.state == TrialState.FAIL and "error" in t.user_attrs)


def counted(study: Any) -> list[Any]:
    """The study's finished trials that are not surplus, by number (the search's record of trials)."""
    return [t for t in study.get_trials(deepcopy=False) if t.state.is_finished() and not t.user_attrs.get(SURPLUS)]


def _order(t: Any) -> tuple[int, int]:
    """Who goes first for the budget's last slots: retries of trials the heartbeat failed, then by number."""
    return (0 if "failed_trial" in t.system_attrs else 1, t.number)


def _fail_stale(study: Any) -> None:
    import optuna

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        optuna.storages.fail_stale_trials(study)


class Budget:
    """One trial budget for every process of a shared study: :meth:`before` runs first in each trial's
    objective, :meth:`after` after each trial (an ``optimize`` callback). Not shared between threads.

    ``trials``: the budget (None: unlimited, the deadline ends it); ``deadline``: unix time; ``stop``: set to
    end after the running trial; ``watch_close``: also end when the study's owner closes it (helpers).
    """

    def __init__(self, trials: int | None, *, who: str, deadline: float | None = None,
                 stop: threading.Event | None = None, watch_close: bool = False, poll_seconds: float = 0.5) -> None:
        if trials is not None and trials < 1:
            raise ValueError(f"trials must be None or a positive integer; got {trials=}")
        if poll_seconds <= 0:
            raise ValueError(f"poll_seconds must be positive; got {poll_seconds=}")
        self.trials, self.who, self.deadline, self.stop = trials, who, deadline, stop
        self.watch_close, self.poll_seconds = watch_close, poll_seconds
        self.ran = 0   # trials this process evaluated (not surplus)

    def halted(self, study: Any) -> bool:
        """Stopped, past the deadline, or closed by its owner."""
        if self.stop is not None and self.stop.is_set():
            return True
        if self.deadline is not None and time.time() >= self.deadline:
            return True
        return self.watch_close and study.user_attrs.get(OPEN) is not True

    def spent(self, study: Any) -> bool:
        if self.trials is None:
            return False
        return sum(map(counts_toward_budget, study.get_trials(deepcopy=False))) >= self.trials

    def done(self, study: Any) -> bool:
        return self.halted(study) or self.spent(study)

    def before(self, trial: Any) -> None:
        """Wait for a slot in the budget; prune ``trial`` as surplus when none is left."""
        from optuna.trial import TrialState

        trial.set_user_attr(PROCESS, self.who)
        study = trial.study
        while True:
            if self.halted(study):
                self._surplus(trial)
            if self.trials is None:
                break
            trials = study.get_trials(deepcopy=False)
            used = sum(map(counts_toward_budget, trials))
            if used >= self.trials:
                self._surplus(trial)
            mine = _order(next(t for t in trials if t.number == trial.number))
            ahead = sum(1 for t in trials if t.state == TrialState.RUNNING and _order(t) < mine)
            waiting = sum(1 for t in trials if t.state == TrialState.WAITING)
            if waiting and mine[0] and used + ahead + waiting >= self.trials:
                # the retry of a trial the heartbeat failed waits for the last slots: give way to it (this
                # process's next trial is the retry: Optuna runs waiting trials first)
                self._surplus(trial)
            if used + ahead < self.trials:
                break
            _fail_stale(study)  # a dead process's trial ahead of this one frees its slot after the grace period
            if self.stop is not None:
                self.stop.wait(self.poll_seconds)
            else:
                time.sleep(self.poll_seconds)
        self.ran += 1

    def after(self, study: Any, _trial: Any) -> None:
        if self.done(study):
            study.stop()

    @staticmethod
    def _surplus(trial: Any) -> None:
        import optuna

        trial.set_user_attr(SURPLUS, True)
        raise optuna.TrialPruned("the shared trial budget is spent, or the search ended")


def _optimize(study: Any, objective: Callable[[Any], float], budget: Budget, timeout: float | None) -> None:
    """``study.optimize`` until ``budget`` is done or ``timeout`` seconds pass; survives its own trial being failed
    by another process's heartbeat check (Optuna raises "Cannot tell a FAIL trial": optuna#5470)."""
    end = None if timeout is None else time.monotonic() + timeout
    while not budget.done(study):
        left = None if end is None else end - time.monotonic()
        if left is not None and left <= 0:
            return
        try:
            study.optimize(objective, n_trials=None, timeout=left, n_jobs=1, catch=(Exception,),
                           callbacks=[budget.after], gc_after_trial=False)
            return
        except ValueError as exc:
            if "Cannot tell" not in str(exc):
                raise
            log.warning("study %s: a trial of this process was failed by the heartbeat check (%s); going on",
                        study.study_name, exc)


# --------------------------------------------------------------------------- the cycle's side

@dataclass(frozen=True)
class SharedSearch:
    """A cycle's search in RDB storage that helpers may join (see the module docstring).

    ``publish(folder)`` uploads the search inputs written into ``folder`` where every host can read them and
    returns where (``{"run_id", "path"}``, what :func:`run_tuner` downloads). ``deadline_seconds`` bounds the
    helpers when the policy sets no ``build.timeout_seconds``.
    """

    url: str
    name: str
    publish: Callable[[Path], dict[str, str]]
    heartbeat_seconds: int = 10
    grace_seconds: int = 30
    deadline_seconds: float = 3600.0
    policy: str = ""
    poll_seconds: float = 0.5

    @cached_property
    def storage(self) -> Any:
        """This search's Optuna storage (one connection pool, disposed when :meth:`optimize` ends)."""
        return open_storage(self.url, heartbeat_seconds=self.heartbeat_seconds, grace_seconds=self.grace_seconds)

    @classmethod
    def for_cycle(cls, config: Any, runlog: Any, *, policy: str, cycle_id: str, rung: str) -> SharedSearch:
        """The shared search of ``rung`` of cycle ``cycle_id``: inputs published in the cycle's run (``runlog``)."""
        coordination = config.coordination
        path = f"{TUNING_DIR}/{rung}"

        def publish(folder: Path) -> dict[str, str]:
            runlog.log_artifacts(folder, path)
            return {"run_id": runlog.run_id, "path": path}

        interval, grace = heartbeats(coordination)
        return cls(url=coordination.optuna_storage, name=f"{policy}/{cycle_id}/{rung}/{uuid.uuid4().hex[:8]}",
                   publish=publish, heartbeat_seconds=interval, grace_seconds=grace,
                   deadline_seconds=coordination.cycle_deadline_seconds, policy=policy)

    def create(self, inputs: Any, *, sampler: Any, trials: int | None, timeout: float | None,
               pruner: Any = None) -> Any:
        """Publish ``inputs``, create the study (closed to helpers until :meth:`optimize` opens it). ``pruner``:
        the cycle's (:func:`kaizen.challenger.studies.make_pruner`; a helper makes the same from the inputs)."""
        import optuna

        from kaizen.challenger.search import INPUTS_FORMAT

        with tempfile.TemporaryDirectory(prefix="kaizen-search-") as tmp:
            inputs.save(Path(tmp))
            where = self.publish(Path(tmp))
        study = optuna.create_study(storage=self.storage, study_name=self.name, direction=inputs.direction,
                                    sampler=sampler, pruner=pruner)
        deadline = time.time() + (timeout if timeout is not None else self.deadline_seconds)
        for key, value in {POLICY: self.policy, TRIALS: trials, DEADLINE: deadline, INPUTS: where,
                           FORMAT: INPUTS_FORMAT, OPEN: False}.items():
            study.set_user_attr(key, value)
        log.info("study %s: created (budget %s trials, deadline in %.0f s)", self.name, trials,
                 deadline - time.time())
        return study

    def optimize(self, study: Any, inputs: Any, *, trials: int | None, timeout: float | None,
                 stop: threading.Event | None = None) -> list[Any]:
        """Open the study, search with the helpers until the budget, ``timeout`` or ``stop`` ends it, close it;
        the trials that count (finished, not surplus)."""
        from kaizen.challenger.search import make_objective

        budget = Budget(trials, who=process_id(), stop=stop, poll_seconds=self.poll_seconds)
        study.set_user_attr(OPEN, True)
        try:
            _optimize(study, make_objective(inputs, before=budget.before), budget, timeout)
            out = counted(study)
        finally:
            study.set_user_attr(OPEN, False)
            self.storage.engine.dispose()
        log.info("study %s: closed after %d trials (%d by this process)", self.name, len(out), budget.ran)
        return out


# --------------------------------------------------------------------------- the helper's side

def run_tuner(config: Any, wait: bool = True, *, stop: threading.Event | None = None,
              poll_seconds: float = 2.0) -> int:
    """``kaizen worker --tune``: join open studies of ``[coordination] optuna_storage`` one after another.

    ``wait=False`` returns when no open study is left to join (``--once``). SIGTERM or SIGINT (or ``stop``)
    ends it after the running trial, or at the latest ``max(30, 10 x stalled_seconds)`` seconds later (a main
    thread blocked in a database call once kept a helper alive past its supervisor's patience). Returns the
    exit code (0).
    """
    from kaizen.errors import ConfigError
    from kaizen.redact import redact

    coordination = config.coordination
    if not coordination.optuna_storage:
        raise ConfigError(f"{config.path or 'config.toml'}: `kaizen worker --tune` needs [coordination] "
                          "optuna_storage: the Optuna RDB storage the cycles' searches live in (docs/scale-out.md)")
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)  # this process's own setting: no INFO line per trial
    stop = stop or threading.Event()
    interval, grace = heartbeats(coordination)
    restore = _on_signals(stop, force_after=max(30.0, 10.0 * grace))
    storage = open_storage(coordination.optuna_storage, heartbeat_seconds=interval, grace_seconds=grace)
    _preload()
    tuner = _Tuner(config, storage, stop)
    tuner.warm()
    log.info("tuner %s: joining searches in %s", tuner.who, redact(coordination.optuna_storage))
    import sqlalchemy.exc

    try:
        while not stop.is_set():
            try:
                joined = tuner.scan()
            except (sqlalchemy.exc.OperationalError, optuna.exceptions.StorageInternalError) as exc:
                if not wait:
                    raise
                # the database went away for a moment: a trial cut short is failed and retried by the heartbeat
                log.warning("tuner %s: storage unavailable (%s: %s); trying again in %g s", tuner.who,
                            type(exc).__name__, redact(str(exc).splitlines()[0] if str(exc) else ""), poll_seconds)
                joined = False
            if not joined:
                if not wait:
                    break
                stop.wait(poll_seconds)
    finally:
        restore()
        storage.engine.dispose()
    log.info("tuner %s: stopped after %d trials in %d studies", tuner.who, tuner.trials, tuner.studies)
    return 0


def _preload() -> None:
    """Import what a trial needs while idle, so that joining a study costs its download only."""
    from kaizen._env import prepare

    prepare()
    import mlflow  # noqa: F401
    import pyarrow.parquet  # noqa: F401
    import sklearn.ensemble  # noqa: F401
    import sklearn.linear_model  # noqa: F401

    import kaizen.challenger.search  # noqa: F401
    import kaizen.registry  # noqa: F401


def _on_signals(stop: threading.Event, force_after: float | None = None) -> Callable[[], None]:
    """SIGTERM/SIGINT set ``stop`` (main thread only); returns what puts the old handlers back.

    ``force_after``: seconds after the signal at which the process exits even if its main thread has not
    come back (blocked in a database call): its running trial is then failed by the heartbeat check and
    retried by a live process, as for a helper that died.
    """
    if threading.current_thread() is not threading.main_thread():
        return lambda: None

    def force() -> None:
        log.warning("tuner %s: still running %.0f s after the stop signal; exiting now (its running trial, if "
                    "any, is failed by the heartbeat check and retried elsewhere)", process_id(), force_after)
        logging.shutdown()
        os._exit(0)

    def handle(*_: Any) -> None:
        if force_after is not None and not stop.is_set():
            timer = threading.Timer(force_after, force)
            timer.daemon = True
            timer.start()
        stop.set()

    old = {s: signal.signal(s, handle) for s in (signal.SIGTERM, signal.SIGINT)}

    def restore() -> None:
        for sig, handler in old.items():
            signal.signal(sig, handler)

    return restore


class _Tuner:
    """One helper process: its storage, its inputs cache (one entry per open study), what it has done."""

    def __init__(self, config: Any, storage: Any, stop: threading.Event) -> None:
        self.config, self.storage, self.stop = config, storage, stop
        self.who = process_id()
        self.inputs: dict[str, Any] = {}    # study name -> SearchInputs, while the study is open
        self.finished: set[str] = set()     # studies this process is done with (budget spent, or unreadable)
        self.registry: Any = None
        self.trials = self.studies = 0

    def warm(self) -> None:
        """Open the MLflow client's store now (its first call costs seconds), not when a study is waiting."""
        try:
            self._registry().client.search_experiments(max_results=1)
        except Exception as exc:  # unreachable now: the first download tries again, and says why
            log.warning("tuner %s: MLflow not reachable yet (%s: %s)", self.who, type(exc).__name__, exc)

    def _registry(self) -> Any:
        from kaizen.registry import Registry

        if self.registry is None:
            c = self.config
            self.registry = Registry(c.tracking_uri, c.registry_uri, c.artifact_location)
        return self.registry

    def _open(self) -> list[Any]:
        from kaizen.challenger.search import INPUTS_FORMAT

        now = time.time()
        return [s for s in self.storage.get_all_studies()
                if s.user_attrs.get(OPEN) is True and float(s.user_attrs.get(DEADLINE) or 0) > now
                and s.user_attrs.get(FORMAT) == INPUTS_FORMAT]

    def scan(self) -> bool:
        """Join the first open study not finished here; False when there is none."""
        studies = self._open()
        names = {s.study_name for s in studies}
        dropped = [n for n in self.inputs if n not in names]
        for name in dropped:    # closed: its inputs go, so the process stays small
            del self.inputs[name]
        if dropped:
            gc.collect()
        self.finished &= names
        for s in studies:
            if s.study_name not in self.finished and not self.stop.is_set():
                self.join(s)
                return True
        return False

    def join(self, frozen: Any) -> None:
        import optuna

        from kaizen.challenger.search import make_objective
        from kaizen.challenger.studies import make_pruner

        name, attrs = frozen.study_name, frozen.user_attrs
        inputs, t0 = self.inputs.get(name), time.perf_counter()
        if inputs is None:
            try:
                inputs = self.inputs[name] = self._download(attrs[INPUTS])
            except Exception as exc:  # a study we cannot read is left to its owner and the other helpers
                log.warning("study %s: cannot read its inputs %s (%s: %s); not joining it", name, attrs.get(INPUTS),
                            type(exc).__name__, exc)
                self.finished.add(name)
                return
        seed = zlib.crc32(f"{inputs.seed}:{self.who}".encode())  # the cycle's seed, apart per process
        study = optuna.load_study(study_name=name, storage=self.storage,
                                  sampler=optuna.samplers.TPESampler(seed=seed), pruner=make_pruner(inputs.pruning))
        budget = Budget(attrs.get(TRIALS), who=self.who, deadline=float(attrs[DEADLINE]), stop=self.stop,
                        watch_close=True)
        log.info("study %s: joined (inputs ready in %.1f s)", name, time.perf_counter() - t0)
        _optimize(study, make_objective(inputs, before=budget.before), budget,
                  max(0.0, float(attrs[DEADLINE]) - time.time()))
        self.trials += budget.ran
        self.studies += 1
        self.finished.add(name)
        log.info("study %s: left after %d trials of this process", name, budget.ran)

    def _download(self, where: dict[str, str]) -> Any:
        from kaizen.challenger.search import SearchInputs

        with tempfile.TemporaryDirectory(prefix="kaizen-tune-") as tmp:
            local = self._registry().download_artifact(where["run_id"], where["path"], Path(tmp))
            return SearchInputs.load(local)
