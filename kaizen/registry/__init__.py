"""Champion and challenger in the MLflow model registry.

The registered model is named after the policy's model. Two aliases carry
the state: ``champion`` (serving) and ``challenger`` (the newest candidate).
Moving ``champion`` is the single commit point of a promotion; the version
that held it is tagged with when and why it was retired. MLflow keeps no
alias history, so the promotion log (:mod:`kaizen.ledger`) is the record.

This is deliberately narrow: it knows aliases, version tags and experiment
ids, nothing else. MLflow is imported only when a Registry is created.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import re
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kaizen._env import prepare
from kaizen.errors import KaizenError, RegistryError
from kaizen.ledger import utcnow

__all__ = ["CHAMPION", "CHALLENGER", "Registry", "Version", "reaching", "unreachable"]

log = logging.getLogger("kaizen.registry")

CHAMPION = "champion"
CHALLENGER = "challenger"
SHADOW = "shadow"
BASELINE_TAG = "kaizen.baseline"
#: run tag of the policy's monitoring run (:meth:`Registry.monitoring_run`): :data:`MONITOR_POLICY`; an older
#: Kaizen's per-champion runs carry the version they watched
MONITOR_OF = "kaizen.monitor_of"
MONITOR_POLICY = "policy"
#: run tag of the monitoring run: the last step logged (the policy's monitored-cycle number)
MONITOR_STEP = "kaizen.monitor_step"
#: experiment tag MLflow 3's UI reads for the experiment's kind: Kaizen's are classic model development, not GenAI
#: (without it the UI opens the GenAI view: traces, evaluations). MLflow 3.17's UI lets its "GenAI / Model
#: training" switch (remembered per browser; ``?workflowType=machine_learning`` in a link) decide instead.
EXPERIMENT_KIND = ("mlflow.experimentKind", "custom_model_development")
#: ``<state>/registry.marker``: this state folder has a registry; a vanished SQLite file is an error, not a fresh start
MARKER = "registry.marker"
#: MLflow's HTTP retry settings when the user set none: fail within seconds, not ~2 minutes
FAIL_FAST_ENV = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "1", "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
                 "MLFLOW_HTTP_REQUEST_TIMEOUT": "10"}


def _fail_fast(tracking_uri: str) -> None:
    if tracking_uri.startswith(("http://", "https://")):
        for k, v in FAIL_FAST_ENV.items():
            os.environ.setdefault(k, v)


@dataclass(frozen=True)
class Version:
    name: str
    version: str
    run_id: str | None
    tags: dict[str, str]

    @property
    def uri(self) -> str:
        return f"models:/{self.name}/{self.version}"


class Registry:
    """MLflow tracking + registry for Kaizen's cycles, at the URIs from config."""

    def __init__(self, tracking_uri: str, registry_uri: str, artifact_location: str, *,
                 monitoring_runs: dict[tuple[str, str, str], str] | None = None) -> None:
        """Bound to its URIs through its own client: nothing process-wide is set (no ``mlflow.set_*_uri``, no active
        run), so registries of different policies on different servers work side by side in one process.
        ``monitoring_runs``: where monitoring run ids are remembered between registries (a
        :class:`~kaizen.run.runtime.Runtime`'s); a dict of its own when None."""
        prepare()
        _fail_fast(tracking_uri)
        from mlflow import MlflowClient

        if tracking_uri.startswith("sqlite:///"):
            os.makedirs(os.path.dirname(tracking_uri[len("sqlite:///"):]) or ".", exist_ok=True)
        self.tracking_uri = tracking_uri
        self.registry_uri = registry_uri
        self.artifact_location = artifact_location.rstrip("/")
        self.client = MlflowClient(tracking_uri=tracking_uri, registry_uri=registry_uri)
        self._monitoring = {} if monitoring_runs is None else monitoring_runs
        #: the scale-out path's promotion fence (kaizen.scale.fence.Fence); None on the embedded default
        self.fence: Any = None

    @classmethod
    def from_config(cls, config: Any, *, runtime: Any = None) -> Registry:
        """The registry of ``config``; refuses to create an empty one where the state folder had one."""
        marker = Path(config.state_dir) / MARKER
        had = marker.exists()
        for uri in dict.fromkeys((config.tracking_uri, config.registry_uri)):
            if uri.startswith("sqlite:///") and not Path(uri[len("sqlite:///"):]).exists() and had:
                raise RegistryError(f"the MLflow database {uri[len('sqlite:///'):]} is gone, but state folder "
                                    f"{config.state_dir} used one ({marker} exists): restore the database, or delete "
                                    f"{marker.name} to start a new, empty registry on purpose")
        registry = cls(config.tracking_uri, config.registry_uri, config.artifact_location,
                       monitoring_runs=None if runtime is None else runtime.monitoring_runs)
        url = getattr(getattr(config, "coordination", None), "url", None)
        if url:  # a promotion is fenced by the epoch the work was enqueued under (none: a person's command)
            from kaizen.scale.fence import Fence

            registry.fence = Fence(url, epoch=getattr(runtime, "epoch", None))
        if not marker.exists():
            try:
                from kaizen._io import write_atomic

                marker.parent.mkdir(parents=True, exist_ok=True)
                write_atomic(marker, f"registry created by kaizen at {utcnow()}\n".encode())
            except OSError:
                pass
        return registry

    # -- experiments ------------------------------------------------------
    def experiment_id(self, model_name: str) -> str:
        name = f"kaizen/{model_name}"
        exp = self.client.get_experiment_by_name(name)
        if exp is not None:
            if (exp.tags or {}).get(EXPERIMENT_KIND[0]) is None:  # made by an older Kaizen (or by hand)
                self.client.set_experiment_tag(exp.experiment_id, *EXPERIMENT_KIND)
            return exp.experiment_id
        return self.client.create_experiment(name, artifact_location=f"{self.artifact_location}/{model_name}",
                                             tags=dict([EXPERIMENT_KIND]))

    # -- versions ---------------------------------------------------------
    def _alias(self, name: str, alias: str) -> Version | None:
        from mlflow.exceptions import MlflowException

        try:
            mv = self.client.get_model_version_by_alias(name, alias)
        except MlflowException as exc:
            if _not_found(exc) or "INVALID_PARAMETER_VALUE" in str(exc.error_code):
                return None
            raise
        return Version(name, str(mv.version), mv.run_id, dict(mv.tags or {}))

    def champion(self, name: str) -> Version | None:
        return self._alias(name, CHAMPION)

    def challenger(self, name: str) -> Version | None:
        return self._alias(name, CHALLENGER)

    def version(self, name: str, version: str) -> Version:
        from mlflow.exceptions import MlflowException

        try:
            mv = self.client.get_model_version(name, str(version))
        except MlflowException as exc:
            raise RegistryError(f"model {name!r} has no version {version}") from exc
        return Version(name, str(mv.version), mv.run_id, dict(mv.tags or {}))

    def tag(self, name: str, version: str, tags: dict[str, Any]) -> None:
        for k, v in tags.items():
            self.client.set_model_version_tag(name, str(version), k, str(v))

    def set_challenger(self, name: str, version: str) -> None:
        self.client.set_registered_model_alias(name, CHALLENGER, str(version))

    # -- files of runs and versions, through this registry's client -------------------------------------
    def download_model(self, name: str, version: str, dst: Path) -> Path:
        """The files of model version ``version`` of ``name``, downloaded into ``dst``; their local folder.

        The version's source decides how: a run's folder (``runs:/<run>/<path>``, how Kaizen registers),
        an MLflow 3 logged model (``models:/m-…``, how ``mlflow.pyfunc.log_model`` registers, e.g. a champion
        registered by hand), or a storage URI. Every path goes through this registry's URIs, never the
        process-wide ones (MLflow's own ``models:/`` resolution reads those).
        """
        return self._download_version(name, version, dst, to_load=False)[0]

    def download_model_to_load(self, name: str, version: str, dst: Path) -> tuple[Path, int]:
        """:meth:`download_model` for loading into this process: the local folder, and the bytes left behind.

        A Kaizen model carries the ``kaizen`` package as its code (``code/kaizen``, about 200 files) so that a
        process without Kaizen can load it. This process has Kaizen imported already, and Python resolves
        ``kaizen.*`` through the imported package, never through the copy MLflow puts on ``sys.path``: so that
        folder is not downloaded here (each download copied every file of it again). Its size is listed instead
        and returned, so the size gate counts every file of the version. Any other code (a model registered by
        hand with its own ``code_paths``) is downloaded as always; so is a version whose source is not a run.
        """
        return self._download_version(name, version, dst, to_load=True)

    def _download_version(self, name: str, version: str, dst: Path, *, to_load: bool) -> tuple[Path, int]:
        from mlflow.artifacts import download_artifacts

        mv = self.client.get_model_version(name, str(version))
        src = str(mv.source or "")
        dst.mkdir(parents=True, exist_ok=True)
        if src.startswith("runs:/"):
            run_id, _, path = src[len("runs:/"):].partition("/")
            path = path.strip("/")
            repo = self._run_repo(run_id)
            code = f"{path}/code"
            if not (to_load and [Path(f.path).name for f in repo.list_artifacts(code)] == ["kaizen"]):
                return self._fetch(repo, path, dst), 0
            for entry in repo.list_artifacts(path):  # everything but Kaizen's copy of itself
                if entry.path.strip("/") != code:
                    self._fetch(repo, entry.path, dst)
            return dst / path, _tree_bytes(repo, code)
        if src.startswith("models:/m-"):
            where = self.client.get_logged_model(src[len("models:/"):].split("/")[0]).artifact_location
        else:
            where = self.client.get_model_version_download_uri(name, str(version))
        try:
            return Path(download_artifacts(artifact_uri=where, dst_path=str(dst), tracking_uri=self.tracking_uri,
                                           registry_uri=self.registry_uri)), 0
        except Exception as exc:
            _raise_if_no_room(exc, dst)
            raise

    def download_artifact(self, run_id: str, path: str, dst: Path) -> Path:
        """One file or folder of run ``run_id``, downloaded into ``dst``.

        Read from the run's own artifact store (through this registry's URIs), not through MLflow's
        ``runs:/`` resolution: that one swallows the real error (a full disk, a refused connection) and
        raises "Failed to download artifacts"; this one lets it through, so the cycle's reason names it.
        """
        dst.mkdir(parents=True, exist_ok=True)
        return self._fetch(self._run_repo(run_id), path, dst)

    def _run_repo(self, run_id: str) -> Any:
        """The artifact repository of run ``run_id``, through this registry's URIs."""
        from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository

        return get_artifact_repository(self.client.get_run(run_id).info.artifact_uri,
                                       tracking_uri=self.tracking_uri, registry_uri=self.registry_uri)

    @staticmethod
    def _fetch(repo: Any, path: str, dst: Path) -> Path:
        try:
            return Path(repo.download_artifacts(path, str(dst)))
        except Exception as exc:
            _raise_if_no_room(exc, dst)
            raise

    def register(self, name: str, info: Any, *, tags: dict[str, Any], description: str = "") -> str:
        """Register a logged model (``ModelInfo``) as a new version of ``name`` with its tags, in one call."""
        from mlflow.exceptions import MlflowException

        try:
            self.client.get_registered_model(name)
        except MlflowException as exc:
            if not _not_found(exc):
                raise
            self.client.create_registered_model(name)
        mv = self.client.create_model_version(name, source=info.model_uri, run_id=info.run_id,
                                              tags={k: str(v) for k, v in tags.items()},
                                              description=description[:4000] or None,
                                              model_id=getattr(info, "model_id", None))
        return str(mv.version)

    def describe(self, name: str, version: str, text: str, *, append: bool = False) -> None:
        """Set (or extend) the version's description: one line on why it exists, then why it serves."""
        if append:
            old = self.client.get_model_version(name, str(version)).description or ""
            text = f"{old}\n{text}".strip() if text not in old else old
        self.client.update_model_version(name, str(version), description=text[:4000])

    def shadow(self, name: str) -> Version | None:
        """The version being scored beside the champion (``promotion.mode = "shadow"``), if any."""
        return self._alias(name, SHADOW)

    def set_shadow(self, name: str, version: str) -> None:
        self.client.set_registered_model_alias(name, SHADOW, str(version))

    def drop_shadow(self, name: str) -> None:
        self.client.delete_registered_model_alias(name, SHADOW)

    def drop_challenger(self, name: str) -> None:
        self.client.delete_registered_model_alias(name, CHALLENGER)

    def promote(self, name: str, version: str, *, reason: str, cycle_id: str) -> Version | None:
        """Make ``version`` the champion; return the version it replaced (tagged as retired).

        The only method that moves ``@champion``. On the scale-out path (``fence`` set) the move is
        fenced: a durable intent written with the scheduler-epoch check (:mod:`kaizen.scale.fence`).
        """
        old = self.champion(name)
        now = utcnow()
        self.tag(name, version, {"kaizen.promoted_at": now, "kaizen.promoted_by": cycle_id,
                                 "kaizen.status": "champion"})
        with (self.fence.promotion(name, str(version), old.version if old else None, cycle_id=cycle_id,
                                   reason=reason) if self.fence is not None else contextlib.nullcontext()):
            self.client.set_registered_model_alias(name, CHAMPION, str(version))  # the commit point
        try:
            self.describe(name, version, f"Serving since {now}: {reason.replace('replaced by', 'promoted as')}.",
                          append=True)
        except Exception:  # a description is a courtesy; the alias has moved
            pass
        self.settle_promotion(name, version, old.version if old else None, reason=reason, cycle_id=cycle_id,
                              when=now)
        return old

    def settle_promotion(self, name: str, version: str, old: str | None, *, reason: str, cycle_id: str,
                         when: str | None = None) -> None:
        """The bookkeeping after ``champion`` moved to ``version``: retire ``old``, drop a stale challenger alias.

        Safe to repeat: crash recovery calls it for a process that died right after the alias move.
        """
        if old is not None and str(old) != str(version):
            self.tag(name, str(old), {"kaizen.retired_at": when or utcnow(), "kaizen.retired_reason": reason,
                                      "kaizen.retired_by": cycle_id, "kaizen.status": "retired"})
        cur = self.challenger(name)
        if cur is not None and cur.version == str(version):
            self.client.delete_registered_model_alias(name, CHALLENGER)
        try:  # a monitoring run an older Kaizen left RUNNING for the retired champion is done
            exp = self.client.get_experiment_by_name(f"kaizen/{name}")
            if exp is not None:
                self._finish_monitoring(name, exp.experiment_id, cycle_id)
        except Exception as exc:  # a run's status is a courtesy to MLflow's UI; the alias has moved
            log.warning("%s: could not finish an old monitoring run: %s", name, exc)

    # -- registered-model tags (the performance baseline) -------------------
    def baseline(self, name: str) -> float | None:
        """The stored performance baseline; None only when the model or its tag does not exist.

        Any other failure (the registry is unreachable, a timeout) raises :class:`RegistryError`:
        taking it for "never set" would measure and store a new baseline over the real one.
        """
        from mlflow.exceptions import MlflowException

        try:
            rm = self.client.get_registered_model(name)
        except MlflowException as exc:
            if _not_found(exc):
                return None
            raise RegistryError(f"cannot read the performance baseline of {name!r}: {exc}") from exc
        except Exception as exc:
            raise RegistryError(f"cannot read the performance baseline of {name!r}: "
                                f"{type(exc).__name__}: {exc}") from exc
        v = (rm.tags or {}).get(BASELINE_TAG)
        if v in (None, ""):
            return None
        try:
            return float(v)
        except ValueError as exc:
            raise RegistryError(f"model {name!r}: tag {BASELINE_TAG} must be a number; got {v!r}") from exc

    def set_baseline(self, name: str, value: float) -> None:
        self.client.set_registered_model_tag(name, BASELINE_TAG, repr(float(value)))

    def raise_baseline(self, name: str, metric: str, value: float | None) -> None:
        """Move the baseline to ``value`` if that is a better level of ``metric``; it is never lowered."""
        import math

        from kaizen.metrics import improvement

        if value is None or math.isnan(value):
            return
        base = self.baseline(name)
        if base is None or improvement(metric, value, base) > 0:
            self.set_baseline(name, value)

    # -- runs ---------------------------------------------------------------
    def monitoring_run(self, model_name: str) -> str:
        """The policy's one monitoring run: every monitored cycle's figures are one step of it (MLflow charts them
        over cycles, across champions). Created once, found again by its tags in a fresh process.

        A monitoring run still RUNNING from an older Kaizen (one run per champion, never ended) is finished here.
        """
        key = (self.tracking_uri, model_name, MONITOR_POLICY)
        if key in self._monitoring:
            return self._monitoring[key]
        exp = self.experiment_id(model_name)
        self._finish_monitoring(model_name, exp, None)
        runs = self.client.search_runs([exp], filter_string=f"tags.`{MONITOR_OF}` = '{MONITOR_POLICY}' and "
                                       "tags.`kaizen.kind` = 'monitoring'", order_by=["attributes.start_time ASC"],
                                       max_results=1)
        if runs:
            found = runs[0].info.run_id
        else:
            found = self.client.create_run(exp, run_name=f"{model_name} · monitoring",
                                           tags={MONITOR_OF: MONITOR_POLICY, "kaizen.policy": model_name,
                                                 "kaizen.kind": "monitoring"}).info.run_id
            self.client.set_terminated(found, status="FINISHED")
        self._monitoring[key] = found
        return found

    def log_monitoring(self, model_name: str, metrics: dict[str, float], *, champion: str,
                       cycle_id: str) -> tuple[str, int]:
        """Log ``metrics`` as the next step of the policy's monitoring run; return (run id, step).

        The step is the policy's monitored-cycle number (1, 2, ...; kept in the run's tag
        :data:`MONITOR_STEP`); the serving champion's version is a metric of the step (``champion_version``),
        so a promotion shows on the chart. The run is reopened for the cycle and ended (FINISHED) after it: it
        is never left RUNNING between cycles. One policy's cycles never overlap (its lock), so the step is
        read and written without a race.
        """
        from mlflow.entities import Metric, RunTag

        run_id = self.monitoring_run(model_name)
        run = self.client.get_run(run_id)
        step = int(run.data.tags.get(MONITOR_STEP, "0") or 0) + 1
        if run.info.status != "RUNNING":
            self.client.update_run(run_id, status="RUNNING")
        now = int(time.time() * 1000)
        values = {**metrics, "champion_version": float(champion)} if str(champion).isdigit() else dict(metrics)
        try:
            self.client.log_batch(run_id, metrics=[Metric(k, float(v), now, step) for k, v in values.items()],
                                  tags=[RunTag(MONITOR_STEP, str(step)), RunTag("kaizen.champion", str(champion)),
                                        RunTag("kaizen.last_cycle", cycle_id)])
        finally:
            self.client.set_terminated(run_id, status="FINISHED")
        return run_id, step

    def _finish_monitoring(self, model_name: str, experiment_id: str, cycle_id: str | None) -> None:
        """Finish the per-champion monitoring runs an older Kaizen left RUNNING (the policy's run is never left so).

        Each finished run is tagged ``kaizen.retired_by``: ``cycle_id``, else the cycle its version's
        ``kaizen.retired_by`` tag names (``unknown`` for the version that served).
        """
        runs = self.client.search_runs([experiment_id], filter_string="tags.`kaizen.kind` = 'monitoring' and "
                                       "attributes.status = 'RUNNING'", max_results=1000)
        for run in runs:
            of = run.data.tags.get(MONITOR_OF)
            if of == MONITOR_POLICY:
                self.client.set_terminated(run.info.run_id, status="FINISHED")  # a cycle died while logging
                continue
            by = cycle_id
            if by is None and of:
                try:
                    by = self.version(model_name, of).tags.get("kaizen.retired_by")
                except RegistryError:  # the version was deleted: the run is done all the same
                    pass
            self.client.set_tag(run.info.run_id, "kaizen.retired_by", by or "unknown")
            self.client.set_terminated(run.info.run_id, status="FINISHED")

    def log_metrics(self, run_id: str, metrics: dict[str, float], *, step: int = 0) -> None:
        """Log ``metrics`` to ``run_id`` at ``step``."""
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        self.client.log_batch(run_id, metrics=[Metric(k, float(v), now, step) for k, v in metrics.items()])

    def start_run(self, model_name: str, *, run_name: str, tags: dict[str, str]) -> Any:
        """Create a run in the model's experiment (through this registry's client, not process-wide state)."""
        return self.client.create_run(self.experiment_id(model_name), run_name=run_name, tags=tags)

    def finish_run(self, run_id: str, *, name: str | None = None, tags: dict[str, str] | None = None,
                   status: str = "FINISHED") -> None:
        """Name and tag a run and end it (a run that is still RUNNING gets ``status``)."""
        for k, v in (tags or {}).items():
            self.client.set_tag(run_id, k, v)
        run = self.client.get_run(run_id)
        if name:
            self.client.update_run(run_id, name=name)
        if run.info.status == "RUNNING":
            self.client.set_terminated(run_id, status=status)

    # -- retention (kaizen/commands/retention.py): what exists, where its files are, run tags --------------
    def models(self) -> list[str]:
        """The models Kaizen keeps runs for (experiments named ``kaizen/<model>``), sorted."""
        out: list[str] = []
        token = None
        while True:
            page = self.client.search_experiments(filter_string="name LIKE 'kaizen/%'", max_results=1000,
                                                  page_token=token)
            out += [e.name[len("kaizen/"):] for e in page]
            token = page.token
            if not token:
                return sorted(out)

    def versions(self, name: str) -> list[StoredVersion]:
        """Every version of model ``name``, newest first; ``[]`` when the model does not exist."""
        out: list[StoredVersion] = []
        token = None
        quoted = name.replace("'", "\\'")
        while True:
            page = self.client.search_model_versions(f"name='{quoted}'", max_results=1000, page_token=token)
            out += [StoredVersion(name, str(mv.version), mv.run_id, dict(mv.tags or {}), source=mv.source,
                                  created=(mv.creation_timestamp or 0) / 1000.0) for mv in page]
            token = page.token
            if not token:
                return sorted(out, key=lambda v: int(v.version), reverse=True)

    def aliases(self, name: str) -> dict[str, str]:
        """Alias → version of model ``name``; ``{}`` when the model does not exist."""
        from mlflow.exceptions import MlflowException

        try:
            rm = self.client.get_registered_model(name)
        except MlflowException as exc:
            if _not_found(exc):
                return {}
            raise
        return {str(k): str(v) for k, v in (rm.aliases or {}).items()}

    def model_files(self, version: StoredVersion) -> str | None:
        """The artifact URI of ``version``'s model files, or None when MLflow does not own them.

        MLflow 3 logs a model as a logged model (source ``models:/m-…``) with its own folder;
        an older version's source is a folder of its run (``runs:/<run id>/<path>``). Any other
        source is a location someone chose, which Kaizen never deletes.
        """
        src = version.source or ""
        if src.startswith("models:/m-"):
            return self.client.get_logged_model(src[len("models:/"):].split("/")[0]).artifact_location
        run_id, _, path = src[len("runs:/"):].partition("/") if src.startswith("runs:/") else ("", "", "")
        if run_id and path.strip("/"):
            return f"{self.run_files(run_id).rstrip('/')}/{path.strip('/')}"
        return None

    def run_files(self, run_id: str) -> str:
        """The artifact root URI of run ``run_id``."""
        return self.client.get_run(run_id).info.artifact_uri

    def runs_without(self, name: str, tag: str) -> Iterator[StoredRun]:
        """The runs of model ``name``'s experiment that lack tag ``tag``, newest first, a page at a time."""
        exp = self.client.get_experiment_by_name(f"kaizen/{name}")
        if exp is None:
            return
        token = None
        while True:
            page = self.client.search_runs([exp.experiment_id], filter_string=f"tags.`{tag}` IS NULL",
                                           order_by=["attributes.start_time DESC"], max_results=200,
                                           page_token=token)
            for run in page:
                yield StoredRun(run.info.run_id, run.info.run_name, run.info.status,
                                (run.info.start_time or 0) / 1000.0, run.info.artifact_uri)
            token = page.token
            if not token:
                return

    def tag_run(self, run_id: str, tags: dict[str, Any]) -> None:
        for k, v in tags.items():
            self.client.set_tag(run_id, k, str(v))

    # -- rollback and the champion guard (kaizen/cycle/rollback.py, kaizen/registry/history.py) ---------------
    def untag(self, name: str, version: str, keys: tuple[str, ...]) -> None:
        """Remove the version tags ``keys`` that are set (a restored champion's ``kaizen.retired_*``)."""
        have = self.version(name, version).tags
        for k in keys:
            if k in have:
                self.client.delete_model_version_tag(name, str(version), k)

    def clear_baseline(self, name: str) -> None:
        """Forget the performance baseline: the next cycle measures the champion's anew (an adopted champion)."""
        if self.baseline(name) is not None:
            self.client.delete_registered_model_tag(name, BASELINE_TAG)




def _tree_bytes(repo: Any, path: str) -> int:
    """The bytes of every file under ``path`` in artifact repository ``repo``, from its listings."""
    total = 0
    for f in repo.list_artifacts(path):
        total += _tree_bytes(repo, f.path) if f.is_dir else int(f.file_size or 0)
    return total


def _raise_if_no_room(exc: BaseException, dst: Path) -> None:
    """Raise ``OSError(ENOSPC)`` naming ``dst`` (from ``exc``) if a download into ``dst`` failed for want of room.

    MLflow downloads files on threads and folds their errors into one ``MlflowException`` message, so the
    ``OSError`` is gone: a full disk is recognised by its errno in that message or by no room left at ``dst``.
    """
    try:
        free = shutil.disk_usage(dst).free
    except OSError:
        free = None
    text = str(exc)
    if f"[Errno {errno.ENOSPC}]" in text or f"[Errno {errno.EDQUOT}]" in text or (free is not None and free < 1 << 20):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(dst)) from exc


def _not_found(exc: Any) -> bool:
    return "RESOURCE_DOES_NOT_EXIST" in str(getattr(exc, "error_code", "")) or "not found" in str(exc).lower()


#: MLflow error codes of an answer that did not come from a usable MLflow server (not an MLflow
#: endpoint, wrong credentials, overloaded)
_UNUSABLE_CODES = ("ENDPOINT_NOT_FOUND", "UNAUTHENTICATED", "PERMISSION_DENIED", "TEMPORARILY_UNAVAILABLE")
_ANSWERED = re.compile(r"RESOURCE_DOES_NOT_EXIST|RESOURCE_ALREADY_EXISTS|INVALID_PARAMETER_VALUE|BAD_REQUEST|"
                       r"INVALID_STATE")


def unreachable(exc: BaseException, *uris: str) -> RegistryError | None:
    """A one-line :class:`RegistryError` naming ``uris`` (redacted) if ``exc`` means the registry cannot be reached.

    "Cannot be reached": a connection, DNS, TLS or timeout failure (requests/urllib3), an MLflow answer
    that is not from a usable server (:data:`_UNUSABLE_CODES`), a database that cannot be opened
    (SQLAlchemy/sqlite3 ``OperationalError``), or an ``OSError`` (a SQLite folder that cannot be
    created). ``exc`` or any exception behind it counts; a :class:`RegistryError` Kaizen raised over one
    (e.g. ``model has no version``) is re-read for what it is. None for anything else: a missing model,
    a bad argument and a bug keep their own error.
    """
    from kaizen.redact import redact

    if isinstance(exc, KaizenError) and not isinstance(exc, RegistryError):
        return None
    cause = None
    seen: set[int] = set()
    e: BaseException | None = exc
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        if _ANSWERED.search(str(getattr(e, "error_code", ""))):
            return None  # a server that answered "no such model", "bad argument", ... was reached
        top = type(e).__module__.split(".")[0]
        if isinstance(e, OSError) or top in ("requests", "urllib3", "sqlite3") or (
                top == "sqlalchemy" and type(e).__name__ in ("OperationalError", "InterfaceError")) or (
                str(getattr(e, "error_code", "")) in _UNUSABLE_CODES):
            cause = e  # keep walking: the innermost says it best ("Connection refused")
        e = e.__cause__ or e.__context__
    if cause is None:
        return None
    if isinstance(cause, OSError) and cause.strerror:
        why = cause.strerror + (f": {cause.filename}" if cause.filename else "")
    else:
        why = str(getattr(cause, "orig", None) or cause).split(". Response body:")[0]
        why = " ".join(why.split())
        why = why if len(why) <= 200 else why[:199] + "…"
    named = list(dict.fromkeys(u for u in uris if u)) or ["the configured URI"]
    where = named[0] + (f" (registry {named[1]})" if len(named) > 1 else "")
    return RegistryError(redact(f"cannot reach the MLflow registry at {where}: {why}"))


@contextlib.contextmanager
def reaching(*uris: str) -> Iterator[None]:
    """Turn an error that means "the registry at ``uris`` cannot be reached" into one-line :class:`RegistryError`.

    For the places a command opens or first touches the registry (``kaizen gc``, ``rollback``,
    ``history``, ``approve``, ``reject``); any other error passes unchanged (:func:`unreachable`).
    """
    try:
        yield
    except Exception as exc:
        err = unreachable(exc, *uris)
        if err is None:
            raise
        raise err from exc


# -- what kaizen/commands/retention.py reads: a version with its files, a run with its report -----------------
@dataclass(frozen=True)
class StoredVersion(Version):
    """A version as listed for retention: where its model came from and when it was registered."""

    source: str | None = None
    created: float = 0.0  # Unix time


@dataclass(frozen=True)
class StoredRun:
    run_id: str
    name: str | None
    status: str
    started: float  # Unix time
    artifact_uri: str
