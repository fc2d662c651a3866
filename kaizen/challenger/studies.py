"""Where a build's Optuna study lives: resumable studies in a SQLite file under the state folder.

A cycle's search is kept in RDB storage (``<state>/studies/<policy>.db``, one file per policy) so that a cycle
killed during tuning resumes its study on the next run instead of starting over:

* **The name is the search's identity.** :func:`study_name` is ``<policy>/<rung>/<fingerprint>``, the
  fingerprint a hash of everything the search's trials depend on: the model input and target of the fit rows
  and of the validation slice, the search's settings (families, windows, task, metric, pruning), the seed and
  the configurations enqueued first. A re-run on the same rows finds the same study and carries on (trial
  numbers continue, finished trials count toward the trial budget, only the rest runs); a run on other rows
  starts a study of its own. The trial budget is not part of the name: a larger budget continues a study.
* **A trial a crash left RUNNING is failed by Optuna's heartbeat** (``heartbeat_interval``/``grace_period`` of
  :func:`kaizen.scale.tuning.open_storage`, the same storage the scale-out path uses): before the search goes
  on, :meth:`Studies.open` waits until such a trial's heartbeat is older than the grace period, fails it, and
  :class:`optuna.storages.RetryHeartbeatStaleTrialCallback` queues its configuration again (once), so the
  configuration is evaluated, and its FAIL (no ``error`` attribute) never counts toward the budget. The policy's
  lock means no other process searches the study; a RUNNING trial still there after ``grace + 2 x interval``
  (killed before its first heartbeat) is failed the same way.
* **Seeded as in memory; a resume seeded by where it resumes.** A new study samples with ``TPESampler(seed)``,
  as an in-memory study does, so a build that is never interrupted chooses what it chooses with ``build.resume``
  off. A sampler's running random state dies with its process, so a resumed search samples with
  ``TPESampler(resumed_seed(seed, k))``, ``k`` the study's finished trials: resuming the same partial study
  repeats exactly, and it never draws the opening trials again. It is not promised to draw what the
  uninterrupted run would have.
* **Old studies go.** When a build returns, :meth:`Studies.finish` stamps the study and deletes all but the
  ``keep`` most recently used studies of the file (``build.keep_studies``), so the file does not grow forever.

``optuna-dashboard sqlite:///<state>/studies/<policy>.db`` shows the searches (docs/policies.md).

With ``[coordination] optuna_storage`` the shared storage of :mod:`kaizen.scale.tuning` owns the study (one per
cycle and rung, joined by helpers) and this module is not used: such a study is not resumed.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
import warnings
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna

from kaizen.policy import PRUNING

__all__ = ["STUDIES_DIR", "Opened", "Studies", "fingerprint", "make_pruner", "resumed_seed", "study_name"]

log = logging.getLogger("kaizen.challenger.studies")

#: the state folder's sub-folder of the study files
STUDIES_DIR = "studies"
#: study user attrs: unix time of the study's last open and of its build's end
USED, FINISHED = "kaizen.used", "kaizen.finished"
#: successive halving halves the field at each rung (1/4 -> 1/2 -> all of a trial's window)
REDUCTION_FACTOR = 2


def fingerprint(inputs: Any, *, enqueue: Sequence[Mapping[str, Any]] = ()) -> str:
    """Hex SHA-256 of what a search on ``inputs`` (:class:`kaizen.challenger.search.SearchInputs`) depends on."""
    import numpy as np
    import pandas as pd

    h = hashlib.sha256()
    for x, y in ((inputs.x_fit, inputs.y_fit), (inputs.x_val, inputs.y_val)):
        h.update(json.dumps([[str(c), str(t)] for c, t in x.dtypes.items()]).encode())
        h.update(np.ascontiguousarray(pd.util.hash_pandas_object(x, index=False).to_numpy()).tobytes())
        h.update(np.ascontiguousarray(pd.util.hash_pandas_object(pd.Series(y), index=False).to_numpy()).tobytes())
    settings = {"names": inputs.names, "identity": inputs.identity, "categorical": inputs.categorical,
                "families": inputs.families, "windows": inputs.windows, "task": inputs.task,
                "metric": inputs.metric, "positive_label": inputs.positive_label,
                "higher_is_better": inputs.higher_is_better, "seed": inputs.seed,
                "pruning": getattr(inputs, "pruning", "none"), "enqueue": [dict(e) for e in enqueue]}
    if getattr(inputs, "folds", 1) != 1:  # one fold: the names studies had before folds existed
        settings["folds"] = inputs.folds
    h.update(json.dumps(settings, sort_keys=True, default=str).encode())
    return h.hexdigest()


def study_name(policy: str, rung: str, digest: str) -> str:
    """``<policy>/<rung>/<first 16 hex digits of the fingerprint>``: stable across a crash and a re-run."""
    return f"{policy}/{rung}/{digest[:16]}"


def make_pruner(pruning: str) -> Any:
    """The Optuna pruner of ``build.pruning``: successive halving over a trial's row rungs, or none.

    The objective reports at steps 1, 2 and 4 (a quarter, half and all of its window, in quarters), so
    ``min_resource=1`` and a reduction factor of 2 put a rung's promotion point exactly at each report; no
    bootstrap and no "auto" estimate, so the decisions depend only on the trials before (deterministic)."""
    if pruning == "none":
        return optuna.pruners.NopPruner()
    if pruning == "successive_halving":
        return optuna.pruners.SuccessiveHalvingPruner(min_resource=1, reduction_factor=REDUCTION_FACTOR,
                                                      min_early_stopping_rate=0, bootstrap_count=0)
    raise ValueError(f"build.pruning must be one of {', '.join(map(repr, PRUNING))}; got {pruning!r}")


def _counts(t: Any) -> bool:
    from kaizen.scale.tuning import counts_toward_budget

    return counts_toward_budget(t)


def resumed_seed(seed: int, finished: int) -> int:
    """The sampler's seed of a search resumed with ``finished`` finished trials (a 32-bit number)."""
    return zlib.crc32(f"{int(seed)}:resumed:{int(finished)}".encode())


def _sqlite_pragmas(connection: Any, _record: Any) -> None:
    """WAL and ``synchronous=NORMAL``: a trial's few writes without an fsync each (a study's commits cost most of
    a small trial's wall time otherwise). A killed process loses nothing (the WAL is in the OS's cache); a power
    cut may lose the last trials, never the file's consistency; a lost trial is run again."""
    import sqlite3

    cursor = connection.cursor()
    try:
        cursor.execute("PRAGMA journal_mode=WAL")  # kept in the file; switching needs the file to itself
    except sqlite3.OperationalError as exc:  # a reader (optuna-dashboard) holds it: the rollback journal, correct
        log.info("studies: SQLite stays in its journal mode for now (%s)", exc)
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


@dataclass(frozen=True)
class Opened:
    """A build's study as :meth:`Studies.open` left it: ``before`` finished trials came from an earlier run
    (``counted_before`` of them count toward the budget), ``failed_stale`` were failed by the heartbeat now."""

    study: Any
    name: str
    before: int
    counted_before: int
    failed_stale: int


@dataclass(frozen=True)
class Studies:
    """The SQLite files of a state folder's studies: ``folder/<policy>.db``.

    ``heartbeat_seconds``/``grace_seconds``: Optuna's heartbeat (one process per study, the policy's lock: a short
    interval is safe here, unlike among helpers, optuna#5470); ``max_retry``: how often a configuration whose
    trial the heartbeat failed is queued again; ``rung``: the build's name in the study's name (``full``,
    ``small``, ``pipeline``...).
    """

    folder: Path
    rung: str = "pipeline"
    heartbeat_seconds: int = 2
    grace_seconds: int = 6
    max_retry: int = 1

    def __post_init__(self) -> None:
        if self.heartbeat_seconds < 1 or self.grace_seconds <= self.heartbeat_seconds:
            raise ValueError(f"need heartbeat_seconds >= 1 and grace_seconds > heartbeat_seconds; got "
                             f"{self.heartbeat_seconds=}, {self.grace_seconds=}")

    def path(self, policy: str) -> Path:
        return Path(self.folder).resolve() / f"{policy}.db"

    def url(self, policy: str) -> str:
        return f"sqlite:///{self.path(policy)}"

    def storage(self, policy: str) -> Any:
        """Optuna's RDB storage of ``policy``'s file, with heartbeats (the file and its folder made if missing)."""
        import sqlalchemy

        from kaizen.scale.tuning import open_storage

        self.path(policy).parent.mkdir(parents=True, exist_ok=True)
        storage = open_storage(self.url(policy), heartbeat_seconds=self.heartbeat_seconds,
                               grace_seconds=self.grace_seconds, max_retry=self.max_retry)
        sqlalchemy.event.listen(storage.engine, "connect", _sqlite_pragmas)
        storage.engine.dispose()  # every connection from now on is made with the pragmas
        return storage

    def open(self, storage: Any, name: str, *, direction: str, sampler: Any, pruner: Any,
             stop: threading.Event | None = None) -> Opened:
        """Create or load study ``name``; fail (and queue again) the trials a dead process left RUNNING."""
        from optuna.trial import TrialState

        study = optuna.create_study(storage=storage, study_name=name, direction=direction, sampler=sampler,
                                    pruner=pruner, load_if_exists=True)
        study.set_user_attr(USED, time.time())
        failed = 0
        running = [t for t in study.get_trials(deepcopy=False) if t.state == TrialState.RUNNING]
        if running:
            log.info("study %s: %d trial(s) left RUNNING by an earlier run; failing them once their heartbeat "
                     "is %d s old", name, len(running), self.grace_seconds)
            end = time.monotonic() + self.grace_seconds + 2 * self.heartbeat_seconds
            while running and time.monotonic() < end:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                    optuna.storages.fail_stale_trials(study)
                running = [t for t in study.get_trials(deepcopy=False) if t.state == TrialState.RUNNING]
                if running:
                    (stop.wait if stop is not None else time.sleep)(0.25)
            for t in running:  # no heartbeat ever written (killed between ask and its first beat): fail it alike
                if storage.set_trial_state_values(t._trial_id, state=TrialState.FAIL):
                    cb = storage.get_heartbeat_stale_trial_callback()
                    if cb is not None:
                        cb(study, storage.get_trial(t._trial_id))
            failed = sum(1 for t in study.get_trials(deepcopy=False)
                         if t.state == TrialState.FAIL and "error" not in t.user_attrs)
        finished = [t for t in study.get_trials(deepcopy=False) if t.state.is_finished()]
        return Opened(study=study, name=name, before=len(finished), counted_before=sum(map(_counts, finished)),
                      failed_stale=failed)

    def finish(self, storage: Any, name: str, *, keep: int) -> list[str]:
        """Stamp study ``name`` finished and delete all but the ``keep`` most recently used studies of the
        file (``keep=0``: this one too); the names deleted."""
        optuna.load_study(study_name=name, storage=storage).set_user_attr(FINISHED, time.time())
        studies = sorted(storage.get_all_studies(), key=lambda s: float(s.user_attrs.get(USED) or 0), reverse=True)
        gone = [s.study_name for s in studies[keep:]]
        for old in gone:
            optuna.delete_study(study_name=old, storage=storage)
        if gone:
            log.info("studies: deleted %d old stud%s (%s)", len(gone), "y" if len(gone) == 1 else "ies",
                     ", ".join(gone))
        return gone
