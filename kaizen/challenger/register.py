"""Build (or refit) a challenger and register it: the build step's side of the registry.

Every function logs into the run its :class:`~kaizen.registry.runlog.RunLog` names (the runner's run,
through the policy's registry client: no process-wide MLflow state), registers the
packaged model as a new version of the policy's model, store the rows it was fit on
as the version's drift reference (:data:`kaizen.registry.champion.REFERENCE_TAG`), and report each
registered version through ``on_registered`` at once, so crash recovery knows about it.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from kaizen.data.schema import Schema
from kaizen.policy import Policy
from kaizen.registry.champion import REFERENCE_TAG

__all__ = ["Built", "Refitted", "build_and_register", "refit_and_register", "refit_recipe_and_register"]

log = logging.getLogger("kaizen.challenger")

REFERENCE_DIR = "reference"
REFERENCE_FILE = "reference.parquet"
REFIT_MODEL = "refit_model"
REFIT_REFERENCE_DIR = "reference_refit"


@dataclass(frozen=True)
class Built:
    result: Any  # BuildResult
    version: str
    section: dict[str, Any]


@dataclass(frozen=True)
class Refitted:
    """The refit's outcome: ``version`` is the version to promote (the refit, or the gated one)."""

    version: str
    passed: bool
    info: dict[str, Any]
    reason: str
    cpu_seconds: float = 0.0
    gates: tuple[Any, ...] = field(default_factory=tuple)


def onnx_dir(model_name: str) -> str:
    """The run's artifact folder of the ONNX export of the model logged as ``model_name`` (``onnx`` for the
    cycle's ``pipeline``, ``onnx_<name>`` for the others, as the reference rows' folders)."""
    return "onnx" if model_name == "pipeline" else f"onnx_{model_name}"


def _portable(res: Any, rows: pd.DataFrame, runlog: Any, policy: Policy, workdir: Path,
              model_name: str) -> tuple[Any, dict[str, str]]:
    """The ONNX export of ``res`` with its parity check (:mod:`kaizen.challenger.portable`), logged in the run's
    :func:`onnx_dir` (``model.onnx`` when it passed, ``parity.json`` always), and the version tag naming that folder
    once something is in it (retention deletes it with the model). Never raises: ONNX is a second form of the
    model, never a reason to fail the cycle; what went wrong is the export's reason."""
    from kaizen.challenger.portable import ARTIFACT_TAG, ONNX_FILE, PARITY_FILE, Export, export_build

    if not policy.build.onnx:
        return Export(False, reason="build.onnx is false"), {}
    folder, into = workdir / onnx_dir(model_name), onnx_dir(model_name)
    logged: dict[str, str] = {}
    try:
        out = export_build(res, rows, folder, validation_fraction=policy.build.validation_fraction)
        runlog.log_artifact(folder / PARITY_FILE, into)
        logged[ARTIFACT_TAG] = into
        if out.exported:
            runlog.log_artifact(folder / ONNX_FILE, into)
            out = dataclasses.replace(out, path=f"{into}/{ONNX_FILE}")
        return out, logged
    except Exception as exc:
        log.warning("ONNX export of %s failed: %s: %s", model_name, type(exc).__name__, exc)
        return Export(False, reason=f"export failed: {type(exc).__name__}: {exc}"), logged


def _log_and_register(res: Any, rows: pd.DataFrame, registry: Any, runlog: Any, policy: Policy, workdir: Path, *,
                      model_name: str, reference_dir: str, tags: dict[str, str],
                      on_registered: Callable[[str], None]) -> tuple[str, dict[str, Any]]:
    """Log the model, its training rows and its ONNX export in ``runlog``'s run, then register it in one call (tags,
    description); (the version, the export's record)."""
    from kaizen.challenger.model import save_pipeline

    info = runlog.log_model(lambda path: save_pipeline(res, path, sample=rows), model_name)
    portable, logged = _portable(res, rows, runlog, policy, workdir, model_name)
    fitted = workdir / REFERENCE_FILE
    fitted.parent.mkdir(parents=True, exist_ok=True)
    rows.iloc[len(rows) - res.train_rows:].to_parquet(fitted, index=False)
    runlog.log_artifact(fitted, reference_dir)
    how = {"pipeline": "searched", "rung_full": "full search", "rung_small": "small warm-started search",
           "rung_refit": f"refit of champion v{tags.get('kaizen.recipe_of')}'s recipe, no search",
           REFIT_MODEL: f"version {tags.get('kaizen.refit_of')}'s recipe refit on its training + holdout rows"}
    metric = policy.model.metric
    if res.trials:  # its own search measured it on its own validation slice
        own = {"kaizen.validation_metric": f"{res.validation_metric:.6f}"}
        validated = f"validation {metric} {res.validation_metric:.4f}"
    else:  # a refit: no search, no validation slice; the number is the recipe's, said so (never passed as its own)
        own = {"kaizen.recipe_validation_metric": f"{res.validation_metric:.6f}"}
        validated = (f"no validation slice of its own (the recipe's search measured validation {metric} "
                     f"{res.validation_metric:.4f}); judged by the gates on the holdout")
    version = registry.register(
        policy.name, info,
        tags={"kaizen.family": res.family, **own, REFERENCE_TAG: f"{reference_dir}/{REFERENCE_FILE}",
              "kaizen.onnx": portable.tag, **logged, **tags},
        description=(f"Candidate of cycle {tags.get('kaizen.cycle_id')} ({how.get(model_name, model_name)}): "
                     f"{res.family} on {res.train_rows} rows, {validated}."))
    on_registered(version)
    return version, portable.to_dict()


def build_and_register(registry: Any, runlog: Any, policy: Policy, schema: Schema, train: pd.DataFrame, *,
                       workdir: Path,
                       seed: int, cycle_id: str, on_registered: Callable[[str], None],
                       stop: threading.Event | None = None, name: str = "pipeline",
                       enqueue: tuple[dict[str, Any], ...] = (), tags: dict[str, str] | None = None,
                       shared: Any = None, state_dir: Path | None = None) -> Built:
    """Search a challenger on ``train`` (oldest first), log it in ``runlog``'s run as ``name``, register it.
    ``shared``: a :class:`kaizen.scale.tuning.SharedSearch` (helpers may join the search); else, with
    ``state_dir``, the study is kept in ``state_dir/studies/<policy>.db`` and resumed by a re-run on the same rows
    (``build.resume``; :mod:`kaizen.challenger.studies`)."""
    from kaizen.challenger import build_challenger

    studies = None
    if shared is None and state_dir is not None and policy.build.resume:
        from kaizen.challenger.studies import STUDIES_DIR, Studies

        studies = Studies(Path(state_dir) / STUDIES_DIR, rung=name.removeprefix("rung_"))
    result = build_challenger(train, schema=schema, policy=policy, workdir=workdir, seed=seed, stop=stop,
                              enqueue=enqueue, shared=shared, studies=studies)
    version, portable = _log_and_register(result, train, registry, runlog, policy, workdir, model_name=name,
                                          reference_dir=REFERENCE_DIR if name == "pipeline" else f"reference_{name}",
                                          tags={"kaizen.cycle_id": cycle_id, **(tags or {})},
                                          on_registered=on_registered)
    return Built(result, version, {"version": version, **result.to_dict(), "onnx": portable})


def refit_recipe_and_register(registry: Any, runlog: Any, policy: Policy, schema: Schema, recipe: Any,
                              rows: pd.DataFrame, *, workdir: Path, seed: int, cycle_id: str,
                              on_registered: Callable[[str], None], name: str,
                              tags: dict[str, str] | None = None) -> Built:
    """Fit ``recipe`` (a :class:`BuildResult`, e.g. the champion's) on ``rows`` without a search; register it."""
    from kaizen.challenger import refit

    result = refit(recipe, rows, schema=schema, policy=policy, workdir=workdir, seed=seed)
    version, portable = _log_and_register(result, rows, registry, runlog, policy, workdir, model_name=name,
                                          reference_dir=f"reference_{name}",
                                          tags={"kaizen.cycle_id": cycle_id, **(tags or {})},
                                          on_registered=on_registered)
    return Built(result, version, {"version": version, **result.to_dict(), "onnx": portable})


def refit_and_register(registry: Any, runlog: Any, policy: Policy, schema: Schema, result: Any, gated: str,
                       rows: pd.DataFrame, *, workdir: Path, seed: int, cycle_id: str,
                       on_registered: Callable[[str], None], check: Callable[[Any], Any]) -> Refitted:
    """Fit the gated recipe again on ``rows`` (train + holdout), register it and ``check`` it.

    ``check(model)`` returns the :class:`~kaizen.gates.judge.Judgement` of the loaded refit (the
    cycle passes the sanity and golden gates against the champion). The refit replaces the gated
    version as the candidate (its ``challenger`` alias; the gated version is tagged ``superseded``)
    only if every check passes; otherwise, or if it cannot be built, the gated version goes on.
    """
    from kaizen.challenger import refit
    from kaizen.registry.models import load_model

    info: dict[str, Any] = {"of": gated, "version": None, "rows": len(rows)}
    version = None
    cpu = 0.0
    try:
        res = refit(result, rows, schema=schema, policy=policy, workdir=workdir / "refit", seed=seed)
        cpu = res.cpu_seconds
        info.update(train_rows=res.train_rows, cpu_seconds=round(res.cpu_seconds, 3))
        version, info["onnx"] = _log_and_register(res, rows, registry, runlog, policy, workdir / "refit",
                                                  model_name=REFIT_MODEL, reference_dir=REFIT_REFERENCE_DIR,
                                                  tags={"kaizen.cycle_id": cycle_id, "kaizen.refit_of": gated},
                                                  on_registered=on_registered)
        info["version"] = version
        model = load_model(registry, policy.name, version, task=policy.model.task,
                           positive_label=policy.model.positive_label, workdir=workdir)
        judged = check(model)
    except Exception as exc:
        msg = f"{type(exc).__name__}: {exc}"
        log.warning("cycle %s: refit of version %s failed: %s", cycle_id, gated, msg)
        info.update(passed=False, error=msg)
        if version is not None:
            registry.tag(policy.name, version, {"kaizen.gate": "failed: refit", "kaizen.status": "rejected"})
        return Refitted(gated, False, info, f"refit of version {gated} on training + holdout rows failed ({msg}); "
                        f"version {gated} goes on as judged by the gates", cpu)
    info["gates"] = [g.to_dict() for g in judged.gates]
    if judged.failed:
        info["passed"] = False
        registry.tag(policy.name, version, {"kaizen.gate": "failed: " + ", ".join(g.name for g in judged.failed),
                                            "kaizen.status": "rejected"})
        return Refitted(gated, False, info, f"refit version {version} failed "
                        + "; ".join(f"gate {g.name}: {g.message}" for g in judged.failed)
                        + f"; version {gated} goes on as judged by the gates", cpu, judged.gates)
    info["passed"] = True
    registry.tag(policy.name, version, {"kaizen.gate": "passed"})
    registry.tag(policy.name, gated, {"kaizen.status": "superseded", "kaizen.refit_version": version})
    registry.set_challenger(policy.name, version)
    return Refitted(version, True, info, f"refit version {version}: the recipe of version {gated} fit on "
                    f"{res.train_rows} rows (version {gated}: {result.train_rows}; the holdout's rows added) "
                    f"passed {judged.messages()}", cpu, judged.gates)
