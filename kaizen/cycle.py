"""One improvement cycle for one policy: load → monitor → decide → build → gate → promote → record.

Each step takes the previous step's result and adds its section to the
cycle's record. Whatever happens, exactly one record is appended to the
promotion log. The ``champion`` alias moves only as the last registry write
of a promoting cycle, so a cycle that dies anywhere leaves the registry as
it was or fully promoted.
"""

from __future__ import annotations

import logging
import shutil
import threading
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from kaizen.config import Config
from kaizen.cost import CostModel, budget_problem, spent_on, today
from kaizen.data.schema import Schema
from kaizen.data.window import Window, load_reference, load_window
from kaizen.errors import KaizenError, RegistryError
from kaizen.ledger import Ledger, Record, clean_floats, last_of, new_cycle_id
from kaizen.policy import Policy

__all__ = ["bootstrap", "retrain", "run_cycle"]

log = logging.getLogger("kaizen.cycle")

REFERENCE_DIR = "reference"
REFERENCE_FILE = "reference.parquet"
REFERENCE_TAG = "kaizen.reference_artifact"
REFIT_MODEL = "refit_model"
REFIT_REFERENCE_DIR = "reference_refit"
#: ``<state_dir>/cache/<model>/v<version>-<key>.npz``: the champion's predictions on its monitoring reference
CACHE_DIR = "cache"


@dataclass
class _Draft:
    """The record being assembled; each step fills its section."""

    id: str
    policy: str
    kind: str = "cycle"
    seed: int | None = None
    reasons: list[str] = field(default_factory=list)
    sections: dict[str, Any] = field(default_factory=dict)
    run_id: str | None = None
    setup_error: str = ""  # why the cycle could not even start (the registry did not open)
    report: str | None = None
    cpu0: float = field(default_factory=time.process_time)
    wall0: float = field(default_factory=time.perf_counter)
    day: str = field(default_factory=today)  # the UTC day the cycle's spend counts towards (kaizen.cost)
    cost_model: CostModel | None = None
    #: progress callback ``(step, draft, data)``: the service's crash journal (kaizen.service.journal)
    on_step: Any = field(default=None, repr=False)

    def step(self, name: str, **data: Any) -> None:
        """Report that the cycle reached ``name``; a no-op unless a journal listens (``kaizen run``)."""
        if self.on_step is not None:
            self.on_step(name, self, data)

    def finish(self, decision: str, *, error: str | None = None, **extra: Any) -> Record:
        cost = dict(self.sections.pop("cost", {}))
        cpu = time.process_time() - self.cpu0
        cost.update(cpu_seconds=round(cpu, 3), wall_seconds=round(time.perf_counter() - self.wall0, 3),
                    day=self.day)
        if self.cost_model is not None:
            cost.update(self.cost_model.estimate(cpu))
        sections = clean_floats(self.sections)
        return Record(id=self.id, policy=self.policy, decision=decision, reasons=tuple(self.reasons),
                      kind=self.kind, window=sections.get("window", {}), trigger=sections.get("trigger", {}),
                      champion=sections.get("champion", {}), challenger=sections.get("challenger", {}),
                      gates=tuple(sections.get("gates", ())), cost=cost, mlflow_run_id=self.run_id,
                      report=self.report, seed=self.seed, error=error, **extra)


def _seed(policy: Policy, seed: int | None) -> int:
    return policy.build.seed if seed is None else int(seed)


def _model_frame(df: pd.DataFrame, schema: Schema) -> pd.DataFrame:
    return df[list(schema.features)].reset_index(drop=True)


def _y(df: pd.DataFrame, schema: Schema, policy: Policy) -> np.ndarray:
    y = df[schema.target]
    if policy.model.task == "regression":
        return y.astype(float).to_numpy()
    return y.to_numpy()


def _labelled(df: pd.DataFrame, schema: Schema) -> pd.DataFrame:
    return df[df[schema.target].notna()].reset_index(drop=True)


def _pool_columns(schema: Schema) -> list[str]:
    return [*schema.features, schema.target] + ([schema.timestamp] if schema.timestamp else [])


def _cast_target(df: pd.DataFrame, like: pd.Series, policy: Policy) -> pd.DataFrame:
    """Labels read from a partly-labelled batch come back as float; give them the reference's dtype."""
    if policy.model.task == "regression":
        return df.assign(**{like.name: df[like.name].astype(float)})
    try:
        return df.assign(**{like.name: df[like.name].astype(like.dtype)})
    except (TypeError, ValueError):
        return df


# -- steps ----------------------------------------------------------------------------------------

def _evaluate(model: Any, frame: pd.DataFrame, schema: Schema) -> Any:
    return model.predict(_model_frame(frame, schema))


def _monitor_reference(champion: Any, window: Window, config: Config, policy: Policy,
                       draft: _Draft) -> tuple[pd.DataFrame, str]:
    """What the champion was trained on: its logged training rows, or the policy's reference file.

    Drift is measured against the data the serving model learned from; after a promotion that
    is the new champion's training window, so a shift the new model has already absorbed stops
    firing the trigger. Also returns a string naming where the rows came from (the key of the
    prediction cache, :func:`_reference_predictions`).
    """
    path = champion.tags.get(REFERENCE_TAG)
    if path and champion.run_id:
        import mlflow

        try:
            local = mlflow.artifacts.download_artifacts(run_id=champion.run_id, artifact_path=path,
                                                        dst_path=str(config.work_dir / draft.id))
            frame = pd.read_parquet(local)
            draft.sections["window"]["monitor_reference"] = f"training rows of champion v{champion.version}"
            draft.sections["window"]["monitor_reference_rows"] = len(frame)
            return frame, f"run:{champion.run_id}/{path}"
        except Exception as exc:  # a missing artifact must not stop monitoring
            log.warning("champion v%s: cannot read its reference rows (%s); using %s", champion.version, exc,
                        "the policy's reference file")
    draft.sections["window"]["monitor_reference"] = "policy reference file"
    draft.sections["window"]["monitor_reference_rows"] = len(window.reference)
    ref = Path(policy.data.reference)
    try:
        st = ref.stat()
        ident = f"file:{ref.resolve()}:{st.st_size}:{st.st_mtime_ns}"
    except OSError:
        ident = f"file:{ref}"
    return window.reference, ident


def _reference_predictions(champion: Any, model: Any, reference: pd.DataFrame, ident: str, schema: Schema,
                           policy: Policy, config: Config, draft: _Draft) -> Any:
    """The champion's predictions on its monitoring reference, computed once per champion version.

    Cached in ``<state_dir>/cache/<model>/`` under the champion version, the registry and the
    reference's identity (``ident``), used only when the row count matches; a cache that cannot
    be read or written is only a warning. Writing a version's file removes the model's others.
    """
    import hashlib

    from kaizen.models import Predictions

    key = hashlib.sha256(f"{config.tracking_uri}|{champion.run_id}|{ident}".encode()).hexdigest()[:16]
    folder = config.state_dir / CACHE_DIR / policy.name
    path = folder / f"v{champion.version}-{key}.npz"
    if path.exists():
        try:
            with np.load(path, allow_pickle=False) as z:
                labels = z["labels"].astype(object) if str(z["labels_kind"]) == "object" else z["labels"]
                scores = z["scores"] if bool(z["has_scores"]) else None
                if str(z["ident"]) == ident and len(labels) == len(reference):
                    draft.sections["window"]["monitor_reference_predictions"] = "cached"
                    return Predictions(labels, scores)
        except Exception as exc:  # a bad cache file is recomputed and rewritten
            log.warning("ignoring the prediction cache %s: %s", path, exc)
    p = _evaluate(model, reference, schema)
    draft.sections["window"]["monitor_reference_predictions"] = "computed"
    labels, kind = np.asarray(p.labels), "array"
    if labels.dtype == object:
        if not all(isinstance(x, str) for x in labels):
            return p  # mixed-type labels need pickling: not cached
        labels, kind = labels.astype(str), "object"
    try:
        import os

        folder.mkdir(parents=True, exist_ok=True)
        tmp = folder / f".{path.name}.{os.getpid()}.tmp"
        with open(tmp, "wb") as f:
            np.savez(f, labels=labels, labels_kind=np.array(kind), ident=np.array(ident),
                     has_scores=np.array(p.scores is not None),
                     scores=np.asarray(p.scores if p.scores is not None else [], dtype=float))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        for old in folder.glob("*.npz"):
            if old != path:
                old.unlink(missing_ok=True)
    except OSError as exc:
        log.warning("cannot write the prediction cache %s: %s", path, exc)
    return p


def _baseline(registry: Any, policy: Policy, champion_model: Any, schema: Schema,
              reference: pd.DataFrame, draft: _Draft) -> float | None:
    """The pre-drift performance level; measured once for a champion registered by hand.

    Kaizen's own champions get it at bootstrap. A champion registered by hand is measured once
    on the newest ``build.validation_fraction`` of the reference rows: the same world the
    production rows are compared with (the golden set is curated, so its scores run higher).
    """
    from kaizen.metrics import score

    value = registry.baseline(policy.name)
    if value is not None:
        return value
    n = max(1, int(round(len(reference) * policy.build.validation_fraction)))
    base = reference.iloc[len(reference) - n:]
    p = _evaluate(champion_model, base, schema)
    value = score(policy.model.metric, _y(base, schema, policy), p.labels, p.scores,
                  pos_label=policy.model.positive_label)
    if np.isnan(value):
        return None
    registry.set_baseline(policy.name, value)
    draft.reasons.append(f"performance baseline set to {value:.4f} ({policy.model.metric} of the champion "
                         f"on the newest {n} reference rows; it had none)")
    return value


def _build_and_register(registry: Any, policy: Policy, schema: Schema, train: pd.DataFrame,
                        config: Config, draft: _Draft, seed: int, stop: threading.Event | None) -> Any:
    import mlflow

    from kaizen.build import build_challenger
    from kaizen.build.model import log_pipeline

    workdir = config.work_dir / draft.id
    result = build_challenger(train, schema=schema, policy=policy, workdir=workdir, seed=seed, stop=stop)
    info = log_pipeline(result, registered_model_name=policy.name)
    version = str(info.registered_model_version)
    # The rows the model was fit on become its drift reference once it serves (see _monitor_reference).
    fitted = workdir / REFERENCE_FILE
    train.iloc[len(train) - result.train_rows:].to_parquet(fitted, index=False)
    mlflow.log_artifact(str(fitted), artifact_path=REFERENCE_DIR)
    registry.tag(policy.name, version, {"kaizen.cycle_id": draft.id, "kaizen.family": result.family,
                                        "kaizen.validation_metric": f"{result.validation_metric:.6f}",
                                        REFERENCE_TAG: f"{REFERENCE_DIR}/{REFERENCE_FILE}"})
    draft.sections["challenger"] = {"version": version, **result.to_dict()}
    draft.sections.setdefault("cost", {})["build_cpu_seconds"] = round(result.cpu_seconds, 3)
    return result, version


def _gate(policy: Policy, schema: Schema, champion_model: Any, challenger_model: Any,
          holdout: pd.DataFrame, golden: pd.DataFrame | None, train: pd.DataFrame,
          only: tuple[str, ...] | None = None) -> tuple[Any, dict, dict]:
    """Run the gates (``only`` these, by name, when given); (results, champion numbers, challenger numbers)."""
    from kaizen.gates import DEFAULT_GATES, Evidence, Labelled, run_gates
    from kaizen.metrics import score

    metric = policy.model.metric
    h_y = _y(holdout, schema, policy)
    h = Labelled("holdout", h_y, _evaluate(champion_model, holdout, schema) if champion_model else None,
                 _evaluate(challenger_model, holdout, schema))
    g = None
    if golden is not None and len(golden):
        g = Labelled("golden", _y(golden, schema, policy),
                     _evaluate(champion_model, golden, schema) if champion_model else None,
                     _evaluate(challenger_model, golden, schema))
    ty = _y(train, schema, policy)
    ev = Evidence(policy=policy, holdout=h, golden=g,
                  classes=tuple(sorted(set(ty.tolist()), key=str)) if policy.model.task != "regression" else (),
                  target_range=(float(np.min(ty)), float(np.max(ty))) if policy.model.task == "regression"
                  else None)
    results = run_gates(ev, DEFAULT_GATES if only is None else tuple(g for g in DEFAULT_GATES if g.name in only))

    def m(s: Labelled | None, who: str) -> float | None:
        if s is None or getattr(s, who) is None:
            return None
        p = getattr(s, who)
        return score(metric, s.y, p.labels, p.scores, pos_label=policy.model.positive_label)

    champ = {"metric": metric, "holdout_metric": m(h, "champion"), "golden_metric": m(g, "champion")}
    chall = {"metric": metric, "holdout_metric": m(h, "challenger"), "golden_metric": m(g, "challenger"),
             "holdout_rows": len(h_y)}
    return results, champ, chall


def _split(window: Window, reference: pd.DataFrame, policy: Policy) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Training rows strictly before the holdout; holdout = newest labelled rows of the window."""
    schema = window.schema
    cols = _pool_columns(schema)
    cur = _labelled(window.current, schema)
    n_hold = int(round(len(cur) * policy.gates.holdout_fraction))
    holdout = cur.iloc[len(cur) - n_hold:]
    parts = [reference[cols], _labelled(window.history, schema)[cols], cur.iloc[: len(cur) - n_hold][cols]]
    train = pd.concat([p for p in parts if len(p)], ignore_index=True)
    train = _cast_target(train, reference[schema.target], policy)
    holdout = _cast_target(holdout[cols].reset_index(drop=True), reference[schema.target], policy)
    return train, holdout


def _commit(registry: Any, name: str, metric: str, version: str, draft: _Draft, reason: str,
            holdout_metric: float | None) -> None:
    """Move the champion alias (the commit point) and raise the baseline if the new level is higher."""
    old = registry.promote(name, version, reason=reason, cycle_id=draft.id)
    registry.raise_baseline(name, metric, holdout_metric)
    draft.sections.setdefault("champion", {})["replaced"] = old.version if old else None


def _serving_champion(registry: Any, policy: Policy, draft: _Draft) -> Any:
    """The version behind the ``champion`` alias, noted on the draft; RegistryError when there is none."""
    champion = registry.champion(policy.name)
    if champion is None:
        raise RegistryError(f"model {policy.name!r} has no champion: run `kaizen bootstrap {policy.path}` first")
    draft.sections["champion"] = {"version": champion.version}
    return champion


def _cycle(config: Config, policy: Policy, draft: _Draft, seed: int, stop: threading.Event | None,
           registry: Any, ledger: Ledger) -> Record:
    import mlflow

    from kaizen.models import load_model

    champion = _serving_champion(registry, policy, draft)

    window = load_window(policy)
    draft.sections["window"] = window.summary()
    history = ledger.records()  # read once: the last cycle's window and the day's spend
    last = last_of(history, policy.name, kinds=("cycle",))
    known = {b["batch"] for b in (last.window.get("rejected_batches", []) if last else [])}
    for name, problems in window.rejected:
        if name not in known:
            draft.reasons.append(f"batch {name} rejected: " + "; ".join(problems))
    if window.current.empty:
        if not window.rejected:
            draft.reasons.append(f"no production batches in {policy.data.production}")
        elif not draft.reasons:
            draft.reasons.append(f"no valid production batches in {policy.data.production} "
                                 f"({len(window.rejected)} rejected earlier)")
        return draft.finish("skipped")
    if last is not None and last.decision != "failed" and list(last.window.get("batches", [])) == list(
            window.batches):
        draft.reasons.append(f"no new valid batches since cycle {last.id} (window {', '.join(window.batches)})")
        return draft.finish("skipped")

    schema = window.schema
    with mlflow.start_run(experiment_id=registry.experiment_id(policy.name), run_name=draft.id,
                          tags={"kaizen.cycle_id": draft.id, "kaizen.policy": policy.name}) as run:
        draft.run_id = run.info.run_id
        champ_model = load_model(champion.uri, task=policy.model.task, positive_label=policy.model.positive_label)

        # monitor
        from kaizen.monitor import run_monitor

        reference, ref_ident = _monitor_reference(champion, window, config, policy, draft)
        ref_p = _reference_predictions(champion, champ_model, reference, ref_ident, schema, policy, config, draft)
        cur_p = _evaluate(champ_model, window.current, schema)
        report = config.reports_dir / f"{draft.id}.html"
        mon = run_monitor(reference, window.current, schema=schema, policy=policy,
                          reference_predictions=ref_p, current_predictions=cur_p, report_path=report, seed=seed)
        if mon.report_path is not None and Path(mon.report_path).exists():
            mlflow.log_artifact(str(mon.report_path), artifact_path="monitor")
            draft.report = str(mon.report_path)
        mlflow.log_metrics({k: v for k, v in {"drift_share": mon.drift_share,
                                              "champion_window_metric": mon.champion_metric}.items()
                            if v is not None and not np.isnan(v)})

        draft.step("monitored")

        # decide
        from kaizen.monitor.rules import decide

        baseline = _baseline(registry, policy, champ_model, schema, window.reference, draft)
        decision = decide(policy, mon, baseline)
        draft.sections["trigger"] = {"monitor": mon.to_dict(), "baseline": baseline, **decision.to_dict()}
        draft.sections["champion"]["window_metric"] = mon.champion_metric
        if mon.labelled_rows == 0:
            draft.reasons.append(f"no labels have arrived for the window (0 of {mon.rows} rows labelled): "
                                 "the champion's performance is unknown and no challenger can be judged")
        draft.reasons.extend(decision.reasons)
        if not decision.improve:
            return draft.finish("skipped")
        if policy.budget.daily_cpu_seconds is not None:
            spent = spent_on(history, policy.name, draft.day)
            draft.sections["trigger"]["budget"] = {"day": draft.day, "spent_cpu_seconds": round(spent, 3),
                                                   "daily_cpu_seconds": policy.budget.daily_cpu_seconds}
            over = budget_problem(policy.budget.daily_cpu_seconds, spent, draft.day)
            if over:
                draft.reasons.append(over)
                return draft.finish("skipped")

        # build
        train, holdout = _split(window, window.reference, policy)
        if len(holdout) < policy.gates.min_holdout_rows:
            draft.reasons.append(f"cannot judge a challenger: {len(holdout)} holdout rows "
                                 f"(gates.min_holdout_rows = {policy.gates.min_holdout_rows})")
            return draft.finish("skipped")
        draft.step("building")
        result, version = _build_and_register(registry, policy, schema, train, config, draft, seed, stop)
        registry.set_challenger(policy.name, version)
        draft.step("built", version=version)

        # gate
        chall_model = load_model(f"models:/{policy.name}/{version}", task=policy.model.task,
                                 positive_label=policy.model.positive_label)
        gates, champ_m, chall_m = _gate(policy, schema, champ_model, chall_model, holdout, window.golden, train)
        draft.sections["gates"] = [g.to_dict() for g in gates]
        draft.sections["champion"].update(champ_m)
        draft.sections["challenger"].update(chall_m)
        mlflow.log_metrics({f"{who}_{k}": v for who, d in (("champion", champ_m), ("challenger", chall_m))
                            for k, v in d.items() if isinstance(v, float) and not np.isnan(v)})
        failed = [g for g in gates if not g.passed]
        verdict = "passed" if not failed else "failed: " + ", ".join(g.name for g in failed)
        registry.tag(policy.name, version, {"kaizen.gate": verdict,
                                            "kaizen.holdout_metric": f"{chall_m['holdout_metric']:.6f}"})
        draft.step("gated", version=version, verdict=verdict)
        if failed:
            draft.reasons.extend(f"gate {g.name} failed: {g.message}" for g in failed)
            registry.tag(policy.name, version, {"kaizen.status": "rejected"})
            return draft.finish("rejected")
        draft.reasons.append("all gates passed: " + "; ".join(f"{g.name}: {g.message}" for g in gates))
        gated = version
        if policy.gates.refit_on_holdout:
            version = _refit(registry, policy, schema, config, draft, seed, result, gated, train, holdout,
                             window.golden, champ_model)
            draft.step("refitted", version=version, gated_version=gated)
        of = f" (refit of version {gated})" if version != gated else ""
        if policy.promotion.mode == "manual":
            registry.tag(policy.name, version, {"kaizen.status": "awaiting_approval"})
            draft.reasons.append(f"promotion mode is manual: version {version}{of} awaits "
                                 f"`kaizen approve {draft.id}` or `kaizen reject {draft.id}`")
            return draft.finish("awaiting_approval")
        draft.step("promoting", version=version, replaced=champion.version)
        _commit(registry, policy.name, policy.model.metric, version, draft,
                f"replaced by version {version} in cycle {draft.id}",
                chall_m["holdout_metric"])
        draft.sections["champion"]["promoted"] = version
        draft.step("promoted", version=version, replaced=champion.version)
        draft.reasons.append(f"promoted version {version}{of} to champion (was {champion.version})")
        return draft.finish("promoted")


def _refit(registry: Any, policy: Policy, schema: Schema, config: Config, draft: _Draft, seed: int, result: Any,
           gated: str, train: pd.DataFrame, holdout: pd.DataFrame, golden: pd.DataFrame | None,
           champion_model: Any) -> str:
    """Fit the gated recipe again on train + holdout, register it, check it; the version to promote.

    The refit is logged in the cycle's run (model ``refit_model``, its training rows under
    ``reference_refit/``), registered with ``kaizen.refit_of = <gated>`` and judged by the sanity
    and golden gates against the champion. It replaces the gated version as the cycle's candidate
    (``challenger.version``, the ``challenger`` alias) only if both pass; otherwise, or if the refit
    cannot be built, the gated version goes on and the reasons say why.
    """
    import mlflow

    from kaizen.build import refit
    from kaizen.build.model import log_pipeline
    from kaizen.models import load_model

    rows = pd.concat([train, holdout], ignore_index=True)
    info: dict[str, Any] = {"of": gated, "version": None, "rows": len(rows)}
    chall = draft.sections["challenger"]
    chall["gated_version"] = gated
    chall["refit"] = info
    version = None
    try:
        workdir = config.work_dir / draft.id / "refit"
        res = refit(result, rows, schema=schema, policy=policy, workdir=workdir, seed=seed)
        info.update(train_rows=res.train_rows, cpu_seconds=round(res.cpu_seconds, 3))
        cost = draft.sections.setdefault("cost", {})
        cost["refit_cpu_seconds"] = round(res.cpu_seconds, 3)
        cost["build_cpu_seconds"] = round(cost.get("build_cpu_seconds", 0.0) + res.cpu_seconds, 3)
        version = str(log_pipeline(res, registered_model_name=policy.name, name=REFIT_MODEL).registered_model_version)
        info["version"] = version
        fitted = workdir / REFERENCE_FILE
        rows.iloc[len(rows) - res.train_rows:].to_parquet(fitted, index=False)
        mlflow.log_artifact(str(fitted), artifact_path=REFIT_REFERENCE_DIR)
        registry.tag(policy.name, version, {"kaizen.cycle_id": draft.id, "kaizen.family": res.family,
                                            "kaizen.validation_metric": f"{res.validation_metric:.6f}",
                                            "kaizen.refit_of": gated,
                                            REFERENCE_TAG: f"{REFIT_REFERENCE_DIR}/{REFERENCE_FILE}"})
        model = load_model(f"models:/{policy.name}/{version}", task=policy.model.task,
                           positive_label=policy.model.positive_label)
        gates, _champ, _chall = _gate(policy, schema, champion_model, model, holdout, golden, rows,
                                      only=("sanity", "golden"))
    except Exception as exc:
        msg = f"{type(exc).__name__}: {exc}"
        log.warning("cycle %s: refit of version %s failed: %s", draft.id, gated, msg)
        info.update(passed=False, error=msg)
        if version is not None:
            registry.tag(policy.name, version, {"kaizen.gate": "failed: refit", "kaizen.status": "rejected"})
        draft.reasons.append(f"refit of version {gated} on training + holdout rows failed ({msg}); "
                             f"version {gated} goes on as judged by the gates")
        return gated
    info["gates"] = [g.to_dict() for g in gates]
    failed = [g for g in gates if not g.passed]
    if failed:
        info["passed"] = False
        registry.tag(policy.name, version, {"kaizen.gate": "failed: " + ", ".join(g.name for g in failed),
                                            "kaizen.status": "rejected"})
        draft.reasons.append(f"refit version {version} failed " + "; ".join(f"gate {g.name}: {g.message}"
                                                                             for g in failed)
                             + f"; version {gated} goes on as judged by the gates")
        return gated
    info["passed"] = True
    registry.tag(policy.name, version, {"kaizen.gate": "passed"})
    registry.tag(policy.name, gated, {"kaizen.status": "superseded", "kaizen.refit_version": version})
    registry.set_challenger(policy.name, version)
    chall["version"] = version
    draft.reasons.append(f"refit version {version}: the recipe of version {gated} fit on {res.train_rows} rows "
                         f"(version {gated}: {result.train_rows}; the holdout's {len(holdout)} rows added) passed "
                         + "; ".join(f"{g.name}: {g.message}" for g in gates))
    return version


def _mirror(registry: Any, record: Record) -> None:
    """Copy the decision onto the cycle's MLflow run as tags (best effort: the log is the record)."""
    if not record.mlflow_run_id:
        return
    try:
        c = registry.client
        c.set_tag(record.mlflow_run_id, "kaizen.decision", record.decision)
        c.set_tag(record.mlflow_run_id, "kaizen.reasons", "\n".join(record.reasons)[:4900])
        for g in record.gates:
            c.set_tag(record.mlflow_run_id, f"kaizen.gate.{g['name']}", "passed" if g["passed"] else "failed")
    except Exception as exc:  # pragma: no cover - registry went away after the record was written
        log.warning("could not tag MLflow run %s: %s", record.mlflow_run_id, exc)


def _registry_or_none(config: Config, draft: _Draft) -> Any:
    """The registry, or None with the reason kept on the draft (an unreachable MLflow is a failed cycle)."""
    from kaizen.registry import Registry

    try:
        return Registry.from_config(config)
    except Exception as exc:  # MLflow raises many types for a store it cannot open
        draft.setup_error = f"MLflow registry unreachable: {type(exc).__name__}: {exc}"
        return None


def _guarded(config: Config, draft: _Draft, what: str, body: Any) -> Record:
    """Run ``body``; any error becomes a ``failed`` record with the message. The work folder always goes."""
    try:
        return body()
    except KaizenError as exc:
        draft.reasons.append(str(exc))
        return draft.finish("failed", error=str(exc))
    except Exception as exc:
        log.error("%s %s failed:\n%s", what, draft.id, traceback.format_exc())
        msg = f"{type(exc).__name__}: {exc}"
        draft.reasons.append(f"{what} failed: {msg}")
        return draft.finish("failed", error=msg)
    finally:
        shutil.rmtree(config.work_dir / draft.id, ignore_errors=True)


def run_cycle(config: Config, policy: Policy, *, seed: int | None = None,
              stop: threading.Event | None = None, registry: Any = None, day: str | None = None,
              on_step: Any = None) -> Record:
    """Run one cycle now and append its record to the promotion log; never raises for a failed cycle.

    ``day`` (``YYYY-MM-DD``, default today in UTC) is the day the cycle's CPU time is booked on for
    the policy's daily budget; a backtest passes the replayed batch's day. ``on_step`` receives the
    cycle's progress (``kaizen run`` journals it to recover from a crash; see kaizen/service/journal.py).
    """

    ledger = Ledger(config.ledger_path)
    draft = _Draft(id=new_cycle_id(policy.name), policy=policy.name, seed=_seed(policy, seed),
                   day=day or today(), cost_model=CostModel.from_config(config), on_step=on_step)
    draft.step("started")
    registry = registry or _registry_or_none(config, draft)

    def body() -> Record:
        if registry is None:
            raise RegistryError(draft.setup_error)
        return _cycle(config, policy, draft, draft.seed, stop, registry, ledger)

    record = _guarded(config, draft, "cycle", body)
    draft.step("decided", record=record)
    ledger.append(record)
    draft.step("recorded", record=record)
    if registry is not None:
        _mirror(registry, record)
    return record


def retrain(config: Config, policy: Policy, *, seed: int | None = None, registry: Any = None,
            day: str | None = None) -> Record:
    """Build on every labelled row so far and promote it with no trigger and no gates.

    The ``retrain_every_batch`` baseline of ``kaizen backtest``: the same build step and budget as
    a cycle's challenger (reference + labelled history + the whole current window, oldest first),
    run whatever the monitor would say, and the new version always becomes champion. It is a
    yardstick, not a way to run production. Appends one record; never raises for a failed build.
    """
    import mlflow


    ledger = Ledger(config.ledger_path)
    draft = _Draft(id=new_cycle_id(policy.name), policy=policy.name, seed=_seed(policy, seed),
                   day=day or today(), cost_model=CostModel.from_config(config))
    registry = registry or _registry_or_none(config, draft)

    def body() -> Record:
        if registry is None:
            raise RegistryError(draft.setup_error)
        _serving_champion(registry, policy, draft)
        window = load_window(policy)
        draft.sections["window"] = window.summary()
        schema = window.schema
        cols = _pool_columns(schema)
        parts = [window.reference[cols], _labelled(window.history, schema)[cols],
                 _labelled(window.current, schema)[cols]]
        train = _cast_target(pd.concat([p for p in parts if len(p)], ignore_index=True),
                             window.reference[schema.target], policy)
        with mlflow.start_run(experiment_id=registry.experiment_id(policy.name), run_name=draft.id,
                              tags={"kaizen.cycle_id": draft.id, "kaizen.policy": policy.name}) as run:
            draft.run_id = run.info.run_id
            _r, version = _build_and_register(registry, policy, schema, train, config, draft, draft.seed, None)
            _commit(registry, policy.name, policy.model.metric, version, draft,
                    f"replaced by version {version} in retrain {draft.id}", None)
        draft.reasons.append(f"retrained on {len(train)} labelled rows and promoted version {version} "
                             "with no trigger and no gates (retrain_every_batch baseline)")
        return draft.finish("promoted")

    return ledger.append(_guarded(config, draft, "retrain", body))


def bootstrap(config: Config, policy: Policy, *, seed: int | None = None, force: bool = False,
              registry: Any = None) -> Record:
    """Build the first champion from the reference set, by the same build path as challengers.

    The newest ``build.validation_fraction`` of the reference rows are held out to measure the
    performance baseline and to run the sanity and golden gates; the rest train the model.
    """
    import mlflow

    from kaizen.registry import Registry

    registry = registry or Registry.from_config(config)
    current = registry.champion(policy.name)
    if current is not None and not force:
        raise RegistryError(f"model {policy.name!r} already has a champion (version {current.version}); "
                            "pass --force to replace it")
    draft = _Draft(id=new_cycle_id(policy.name), policy=policy.name, kind="bootstrap", seed=_seed(policy, seed),
                   cost_model=CostModel.from_config(config))
    schema, reference, golden = load_reference(policy)
    cols = _pool_columns(schema)
    n_hold = max(1, int(round(len(reference) * policy.build.validation_fraction)))
    train, holdout = reference.iloc[:-n_hold][cols], reference.iloc[-n_hold:][cols].reset_index(drop=True)
    draft.sections["window"] = {"batches": [], "reference_rows": len(reference), "train_rows": len(train),
                                "holdout_rows": len(holdout)}
    with mlflow.start_run(experiment_id=registry.experiment_id(policy.name), run_name=draft.id,
                          tags={"kaizen.cycle_id": draft.id, "kaizen.policy": policy.name}) as run:
        draft.run_id = run.info.run_id
        try:
            record = _bootstrap_run(config, policy, registry, draft, schema, train, holdout, golden, current)
        finally:
            shutil.rmtree(config.work_dir / draft.id, ignore_errors=True)
    record = Ledger(config.ledger_path).append(record)
    _mirror(registry, record)
    return record


def _bootstrap_run(config: Config, policy: Policy, registry: Any, draft: _Draft, schema: Schema,
                   train: pd.DataFrame, holdout: pd.DataFrame, golden: pd.DataFrame | None,
                   current: Any) -> Record:
    from kaizen.models import load_model

    _r, version = _build_and_register(registry, policy, schema, train, config, draft, draft.seed, None)
    model = load_model(f"models:/{policy.name}/{version}", task=policy.model.task,
                       positive_label=policy.model.positive_label)
    gates, _champ, chall = _gate(policy, schema, None, model, holdout, golden, train)
    gates = tuple(g for g in gates if g.name in ("sanity", "golden"))
    draft.sections["gates"] = [g.to_dict() for g in gates]
    draft.sections["challenger"].update(chall)
    failed = [g for g in gates if not g.passed]
    if failed:
        draft.reasons.extend(f"gate {g.name} failed: {g.message}" for g in failed)
        registry.tag(policy.name, version, {"kaizen.status": "rejected", "kaizen.gate": "failed"})
        return draft.finish("rejected")
    registry.tag(policy.name, version, {"kaizen.gate": "passed"})
    _commit(registry, policy.name, policy.model.metric, version, draft, f"replaced by bootstrap {draft.id}", None)
    if chall["holdout_metric"] is not None and not np.isnan(chall["holdout_metric"]):
        registry.set_baseline(policy.name, chall["holdout_metric"])
    draft.sections["champion"] = {"version": version, "replaced": current.version if current else None}
    draft.reasons.append(f"bootstrapped version {version} as champion: {policy.model.metric} "
                         f"{chall['holdout_metric']:.4f} on the newest {len(holdout)} reference rows")
    return draft.finish("promoted")
