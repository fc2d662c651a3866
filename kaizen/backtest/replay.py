"""Replay historical batches through a policy, prequentially, in an isolated temporary state.

For each batch, in time order:

1. every arm's serving champion predicts the batch with its labels removed, and is scored
   on the batch's labelled rows (the *prequential* score: predicted before it was seen);
2. only then is the batch copied into the temporary production folder;
3. the arms act: ``kaizen`` runs one real cycle of the policy (which may promote a new
   champion for the next batch); ``retrain_every_batch`` rebuilds on every labelled row with
   the same build step and budget and always promotes (:func:`kaizen.commands.bootstrap.retrain`);
   ``refit_every_batch`` refits the bootstrap champion's recipe on the newest rows, no search,
   and always promotes, as a cron job would (:func:`kaizen.commands.bootstrap.refit_every_batch`);
   ``static`` keeps the bootstrapped champion.

Labels that arrive late (``data.labels = "separate"``): the label files of the batches folder's
``labels/`` subfolder are named ``arrives_<NNN>...`` and copied into the temporary labels folder
right after the batch at replay index NNN is revealed (step 2), so cycles see only the labels
that have arrived; the prequential score of step 1 uses every label a batch ever gets.

Streaming peers (``peers=``, :mod:`kaizen.backtest.peers`) follow the same protocol in a pass of their
own after the arms': they need no registry, and see the same batches and label arrivals.

The temporary state has its own SQLite MLflow, artifact folder, promotion log (a JSON Lines file,
whatever the live ``[ledger]`` says) and production folder. The live config is only read (threads,
cost factors); its MLflow URIs, registry, log, coordination database and webhooks are never used.
The reference and golden files the policy names are read, never written.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import re
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Collection, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from kaizen.backtest.peers import PEERS, peer_names, require_river, require_tasks, run_peers
from kaizen.config import Config
from kaizen.cost import CostModel
from kaizen.data.files import SUFFIXES, read_table
from kaizen.errors import DataError, KaizenError
from kaizen.policy import Policy

__all__ = ["ARMS", "EVERY_BATCH_SUFFIX", "REFIT_SUFFIX", "batch_order", "run_backtest"]

log = logging.getLogger("kaizen.backtest")

ARMS = ("kaizen", "static", "retrain_every_batch", "refit_every_batch")
EVERY_BATCH_SUFFIX = ".retrain_every_batch"
REFIT_SUFFIX = ".refit_every_batch"
FORMAT = 1


def _isolated_config(live: Config | None, root: Path) -> Config:
    """A config whose every location is inside ``root``; only threads and cost factors come from ``live``.

    Its promotion log is always a JSON Lines file inside ``root``, even when the live log is table
    ``kaizen.record`` (``[ledger] url``); it takes no lock and writes no journal in the live coordination
    database, and announces nothing (no webhooks, no outbox rows).
    """
    from kaizen.config import CoordinationSettings, NotifySettings

    state = root / "state"
    uri = f"sqlite:///{state / 'mlflow.db'}"
    fields = dict(path=None, state_dir=state, policies_dir=root / "policies", tracking_uri=uri, registry_uri=uri,
                  artifact_location=(state / "artifacts").as_uri(), ledger_path=state / "promotion-log.jsonl",
                  ledger_url=None, coordination=CoordinationSettings(), notify=NotifySettings())
    if live is None:
        return Config(**fields)
    return dataclasses.replace(live, **fields)


def _replayable(policy: Policy, production: Path, *, name: str | None = None) -> Policy:
    """The policy pointed at the temporary production folder, with a trial budget and no timeout, and no
    resumable study.

    A timeout makes the number of trials depend on the machine's speed; with a trial budget the
    same seed repeats exactly, so the backtest drops the timeout when the policy has a budget.
    A replay is not resumed after a crash (it starts over in a new temporary folder), so its searches keep their
    studies in memory: a study file would add its writes to every replayed build's CPU (``build.resume``).
    """
    build = dataclasses.replace(policy.build, resume=False)
    if build.trials is not None and build.timeout_seconds is not None:
        build = dataclasses.replace(build, timeout_seconds=None)
    model = policy.model if name is None else dataclasses.replace(policy.model, name=name)
    labels = {"labels_path": production.parent / LABELS_FOLDER} if policy.data.labels == "separate" else {}
    return dataclasses.replace(policy, model=model, build=build,
                               data=dataclasses.replace(policy.data, production=production, **labels))


def _batch_files(folder: Path, timestamp: str | None) -> list[tuple[Path, pd.DataFrame | None, str | None]]:
    """``(path, frame or None, problem)`` for each data file, oldest first (timestamp, then name)."""
    if not folder.is_dir():
        raise DataError(f"{folder}: batches folder not found")
    files = sorted(p for p in folder.iterdir()
                   if p.is_file() and p.suffix.lower() in SUFFIXES and not p.name.startswith("."))
    if not files:
        raise DataError(f"{folder}: no batch files (.parquet or .csv)")
    out: list[tuple[Path, pd.DataFrame | None, str | None]] = []
    for f in files:
        try:
            out.append((f, read_table(f), None))
        except DataError as exc:
            out.append((f, None, str(exc)))
    if timestamp:
        def key(item: tuple[Path, pd.DataFrame | None, str | None]) -> tuple[Any, str]:
            df = item[1]
            if df is not None and timestamp in df.columns and len(df):
                return (pd.to_datetime(df[timestamp], utc=True).min(), item[0].name)
            return (pd.Timestamp.max.tz_localize("UTC"), item[0].name)

        out.sort(key=key)
    return out


def batch_order(folder: Path, timestamp: str | None) -> list[Path]:
    """The batch files of ``folder`` in the order :func:`run_backtest` replays them (timestamp, then name)."""
    return [path for path, _frame, _problem in _batch_files(Path(folder), timestamp)]


#: the subfolder of a batches folder holding label files that arrive late (``data.labels = "separate"``)
LABELS_FOLDER = "labels"
_ARRIVES = re.compile(r"(?:^|_)arrives_(\d+)(?:_|$)")
_Files = list[tuple[Path, pd.DataFrame | None, str | None]]


def label_files(folder: Path) -> list[tuple[re.Match[str], Path]]:
    """The label files of a batches folder's ``labels/``, in name order, each with the match of its
    ``arrives_<NNN>`` part (group 1: the replay index of the batch it arrives with); a name without
    one is a :class:`~kaizen.errors.DataError`."""
    out = []
    for p in sorted(folder.iterdir()):
        if not p.is_file() or p.suffix.lower() not in SUFFIXES or p.name.startswith("."):
            continue
        m = _ARRIVES.search(p.stem)  # its span is the same in p.name, which starts with the stem
        if m is None:
            raise DataError(f"{p}: a label file's name must hold arrives_<batch index>, e.g. "
                            "arrives_005_batch_003.parquet")
        out.append((m, p))
    return out


def _late_labels(files: _Files, batches: Path, policy: Policy) -> tuple[_Files, dict[int, list[Path]]]:
    """The label files of ``batches/labels`` by the replay index of the batch they arrive with, and
    ``files`` with every label those files will ever hold joined on (the prequential score's truth).

    Only for ``data.labels = "separate"``; creates the temporary labels folder the policy reads.
    """
    folder = batches / LABELS_FOLDER
    if policy.data.labels != "separate":
        if folder.is_dir():
            log.warning("%s: label files not replayed: the policy's data.labels is %r", folder, policy.data.labels)
        return files, {}
    if not folder.is_dir():
        raise DataError(f"{folder}: label files folder not found (the policy's data.labels is 'separate'; "
                        "see docs/backtest.md)")
    policy.data.labels_path.mkdir(parents=True, exist_ok=True)
    arrivals: dict[int, list[Path]] = {}
    frames = []
    idc, target = policy.data.id_column, policy.model.target
    for m, p in label_files(folder):
        arrivals.setdefault(int(m.group(1)), []).append(p)
        df = read_table(p)
        if idc not in df.columns or target not in df.columns:
            raise DataError(f"{p}: a label file needs columns {idc!r} and {target!r}; got {list(df.columns)}")
        frames.append(df[[idc, target]])
    from kaizen.data.labels import Labels, id_keys

    every = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=[idc, target])
    every = every[every[target].notna()]
    keys = id_keys(every[idc])
    every = every.assign(_key=keys.to_numpy())[keys.notna().to_numpy()].drop_duplicates("_key", keep="last")
    truth = Labels(idc, target, pd.Series(every[target].to_numpy(), index=pd.Index(every["_key"], dtype="string")))
    joined = [(path, truth.join(df) if df is not None and idc in df.columns else df, problem)
              for path, df, problem in files]
    return joined, arrivals


def _reveal_labels(arrivals: dict[int, list[Path]], index: int, policy: Policy) -> None:
    """Copy the label files that arrive with the batch at replay ``index`` into the temporary labels folder."""
    for p in arrivals.get(index, []):
        shutil.copy(p, policy.data.labels_path / p.name)


def _day(frame: pd.DataFrame | None, timestamp: str | None, index: int) -> str:
    """The day a batch's cycle books its CPU on: the batch's first timestamp, else one day per batch."""
    if frame is not None and timestamp and timestamp in frame.columns and frame[timestamp].notna().any():
        return pd.to_datetime(frame[timestamp], utc=True).min().strftime("%Y-%m-%d")
    return f"batch-{index:03d}"


class _Scorer:
    """Loads each champion version once and scores a batch it has not seen (labels removed first)."""

    def __init__(self, policy: Policy, schema: Any, registry: Any, workdir: Path) -> None:
        self.policy = policy
        self.schema = schema
        self.registry = registry
        self.workdir = workdir
        self._models: dict[tuple[str, str], Any] = {}

    def __call__(self, name: str, version: str, frame: pd.DataFrame) -> tuple[float | None, int]:
        from kaizen.metrics import score
        from kaizen.registry.models import load_model

        spec = self.policy.model
        key = (name, str(version))
        if key not in self._models:
            self._models[key] = load_model(self.registry, name, version, task=spec.task,
                                           positive_label=spec.positive_label, workdir=self.workdir)
        target = self.schema.target
        hidden = frame.drop(columns=[target], errors="ignore")  # the model never sees the labels it is scored on
        missing = [c for c in self.schema.features if c not in hidden.columns]
        if missing or target not in frame.columns:
            return None, 0
        pred = self._models[key].predict(hidden[list(self.schema.features)].reset_index(drop=True))
        known = frame[target].notna().to_numpy()
        if not known.any():
            return None, 0
        y = frame[target].to_numpy()[known]
        if spec.task == "regression":
            y = y.astype(float)
        value = score(spec.metric, y, pred.labels[known], None if pred.scores is None else pred.scores[known],
                      pos_label=spec.positive_label)
        return (None if math.isnan(value) else round(float(value), 6)), int(known.sum())


def _cost(rec: Any) -> tuple[float, float]:
    c = rec.cost or {}
    return float(c.get("cpu_seconds") or 0.0), float(c.get("build_cpu_seconds") or 0.0)


def _recipe(rec: Any) -> tuple[Any, ...]:
    """What makes two bootstrapped champions the same: family, hyperparameters, features, rows, holdout metric."""
    c = rec.challenger or {}
    return (c.get("family"), c.get("params"), c.get("feature_names"), c.get("train_rows"), c.get("holdout_metric"))


def _drift_share(rec: Any) -> float | None:
    mon = (rec.trigger or {}).get("monitor") or {}
    v = mon.get("drift_share")
    return None if v is None else round(float(v), 6)


def run_backtest(policy: Policy, batches: Path, *, config: Config | None = None, seed: int | None = None,
                 progress: bool = True, state_dir: Path | None = None,
                 on_batch: Callable[[dict[str, Any]], None] | None = None,
                 approve_after: int | None = 1, arms: Collection[str] | None = None,
                 peers: Sequence[str] = ()) -> dict[str, Any]:
    """Replay ``batches`` through ``policy`` and the three baselines; return the JSON-ready result.

    ``config`` is the live config (read for threads and the cost factors only). ``state_dir``
    keeps the temporary state there (it must not exist yet) instead of a deleted temp folder.
    ``seed`` overrides ``build.seed``; with a trial budget a seeded backtest repeats exactly.
    ``approve_after``: how the replay answers a challenger left ``awaiting_approval`` (ambiguous
    evidence, ``promotion.mode = "manual"``): a simulated person approves it once this many more
    batches have been scored by the old champion (1: it serves one batch later than an automatic
    promotion would have; 0: at once); None: nobody ever answers.
    ``arms``: which of :data:`ARMS` to replay (None: all); ``kaizen`` always runs. An arm left out is
    neither bootstrapped nor run, and is absent from ``bootstrap``, the batches' ``baselines`` and
    ``summary`` (``kaizen policy tune`` replays ``kaizen`` alone).
    ``peers``: streaming learners to replay as extra arms (:mod:`kaizen.backtest.peers`: ``river_arf``,
    ``river_logreg``, or ``river`` for both; the ``kaizen[river]`` extra). They run in a pass of their own
    after the arms' (they never touch the registry), so ``on_batch`` sees the entries without them.
    """
    if approve_after is not None and (isinstance(approve_after, bool) or approve_after < 0):
        raise ValueError(f"The 'approve_after' parameter of run_backtest must be an integer >= 0 or None. Got "
                         f"{approve_after!r} instead.")
    wanted = _arms(arms)
    peer_list = peer_names(peers)
    if peer_list:
        require_tasks(policy)
        require_river()  # before the bootstraps, not after the whole replay

    from kaizen.commands.bootstrap import bootstrap, refit_every_batch, retrain
    from kaizen.commands.review import approve
    from kaizen.commands.tick import tick
    from kaizen.data.window import load_reference
    from kaizen.registry import Registry
    from kaizen.run.runtime import Runtime

    wall0 = time.perf_counter()
    batches = Path(batches).resolve()
    if state_dir is not None:
        root = Path(state_dir).resolve()
        if root.exists():
            raise KaizenError(f"{root}: backtest state folder already exists; give a new one")
        root.mkdir(parents=True)
    else:
        root = Path(tempfile.mkdtemp(prefix="kaizen-backtest-"))
    production = root / "production"
    production.mkdir()
    cfg = _isolated_config(config, root)
    cost_model = CostModel.from_config(cfg)
    kz = _replayable(policy, production)
    every = _replayable(policy, production, name=policy.name + EVERY_BATCH_SUFFIX)
    refit = _replayable(policy, production, name=policy.name + REFIT_SUFFIX)
    seed = kz.build.seed if seed is None else int(seed)
    schema, reference, _golden = load_reference(kz)
    arrived = _batch_files(batches, schema.timestamp)  # the batches as they arrive: late labels not joined yet
    files, arrivals = _late_labels(arrived, batches, kz)
    from kaizen.policy_check import batch_size_problems

    size_warnings = batch_size_problems(kz, [len(f) for _p, f, _e in files if f is not None])
    for w in size_warnings:
        log.warning("backtest of %s: %s", policy.name, w)

    _warm_up()
    runtime = Runtime()  # the replay's own loaded champions and caches, as a daemon would keep them
    try:
        registry = Registry.from_config(cfg, runtime=runtime)
        boot = {}
        recipes = {}
        for arm, pol in (("kaizen", kz), ("retrain_every_batch", every), ("refit_every_batch", refit)):
            if arm not in wanted:
                continue
            rec = bootstrap(cfg, pol, seed=seed, registry=registry)
            if rec.decision != "promoted":
                raise KaizenError(f"backtest: bootstrap of {pol.name!r} was {rec.decision}: " + "; ".join(rec.reasons))
            boot[arm] = {"version": rec.champion["version"], "cpu_seconds": _cost(rec)[0],
                         "build_cpu_seconds": _cost(rec)[1], "holdout_metric": rec.challenger.get("holdout_metric")}
            recipes[arm] = _recipe(rec)
        # the refit arm refits its own bootstrap's recipe: the same search on the same rows and seed as kaizen's
        same = recipes.get("refit_every_batch") == recipes["kaizen"]
        if "refit_every_batch" in boot:
            boot["refit_every_batch"].update(recipe_version=boot["refit_every_batch"]["version"],
                                             same_champion_as_kaizen=same)
        if "refit_every_batch" in boot and not same:
            log.warning("backtest: the refit_every_batch bootstrap differs from kaizen's (%s vs %s); a search with a "
                        "timeout and no trial budget does not repeat", recipes["refit_every_batch"], recipes["kaizen"])
        scorer = _Scorer(kz, schema, registry, root / "scoring")
        rows_out: list[dict[str, Any]] = []
        pending: dict[str, int] = {}  # record id -> the batch before whose cycle a simulated person approves it
        bar = _progress(len(files), kz.name, progress)
        try:
            for i, (path, frame, problem) in enumerate(files):
                # 1. score every arm's current champion on the batch before anything learns from it
                champs = {arm: registry.champion(pol.name) for arm, pol in (
                    ("kaizen", kz), ("retrain_every_batch", every), ("refit_every_batch", refit)) if arm in wanted}
                entry: dict[str, Any] = {"index": i, "name": path.name,
                                         "rows": 0 if frame is None else int(len(frame))}
                scored: dict[str, tuple[float | None, int]] = {}
                served = {arm: c.version for arm, c in champs.items()}
                for arm, name, version in (
                        ("kaizen", kz.name, served["kaizen"]),
                        ("static", kz.name, boot["kaizen"]["version"]),
                        ("retrain_every_batch", every.name, served.get("retrain_every_batch")),
                        ("refit_every_batch", refit.name, served.get("refit_every_batch"))):
                    if arm not in wanted:
                        continue
                    scored[arm] = (None, 0) if frame is None else scorer(name, version, frame)
                    entry.setdefault("_versions", {})[arm] = version
                versions = entry.pop("_versions")
                entry.update(champion_version=versions["kaizen"], metric=scored["kaizen"][0],
                             labelled_rows=scored["kaizen"][1])
                # 2. the labels are revealed: the batch joins the production window
                shutil.copy(path, production / path.name)
                _reveal_labels(arrivals, i, kz)
                day = _day(frame, schema.timestamp, i)
                # 3. the arms act; what they promote serves from the next batch on (approvals first)
                for rid in [r for r, due in pending.items() if due <= i]:
                    del pending[rid]
                    try:
                        answer = approve(cfg, rid, actor="backtest (a person approving after "
                                         f"{approve_after} batch(es))", registry=registry)
                        entry.setdefault("approved", []).append({"record": rid, "decision": answer.decision})
                    except KaizenError as exc:  # the champion changed meanwhile, or the approval expired
                        entry.setdefault("approved", []).append({"record": rid, "refused": str(exc)})
                rec = tick(cfg, kz, seed=seed, registry=registry, day=day, runtime=runtime)
                if rec.decision == "awaiting_approval" and approve_after is not None:
                    pending[rec.id] = i + approve_after
                cpu, build_cpu = _cost(rec)
                entry.update(drift_share=_drift_share(rec), decision=rec.decision, cpu_seconds=cpu,
                             build_cpu_seconds=build_cpu, challenger_version=rec.challenger.get("version"),
                             promoted_version=rec.challenger.get("version") if rec.decision == "promoted" else None,
                             reason=_main_reason(rec), **cost_model.estimate(cpu), day=day)
                if problem:
                    entry["problem"] = problem
                entry["baselines"] = {}
                if "static" in wanted:
                    entry["baselines"]["static"] = {"champion_version": versions["static"],
                                                    "metric": scored["static"][0]}
                for arm in ("retrain_every_batch", "refit_every_batch"):
                    if arm not in wanted:
                        continue
                    if arm == "retrain_every_batch":
                        r = retrain(cfg, every, seed=seed, registry=registry, day=day)
                    else:
                        r = refit_every_batch(cfg, refit, recipe_version=boot[arm]["recipe_version"], seed=seed,
                                              registry=registry, day=day)
                    acpu, abuild = _cost(r)
                    entry["baselines"][arm] = {"champion_version": versions[arm], "metric": scored[arm][0],
                                               "decision": r.decision, "cpu_seconds": acpu,
                                               "build_cpu_seconds": abuild, **cost_model.estimate(acpu)}
                    if r.decision != "promoted":
                        entry["baselines"][arm]["reason"] = _main_reason(r)
                rows_out.append(entry)
                if on_batch is not None:
                    on_batch(entry)
                bar.set_postfix_str(f"{kz.model.metric} {_f(entry['metric'])} {rec.decision}")
                bar.update(1)
        finally:
            bar.close()
    finally:
        if state_dir is None:
            shutil.rmtree(root, ignore_errors=True)

    if peer_list:  # the streaming peers: the same batches and label arrivals, no registry, a pass of their own
        runs = run_peers(kz, schema, reference, files, arrivals, peer_list, seed=seed,
                         arrived=[frame for _p, frame, _e in arrived])
        for name, run in runs.items():
            boot[name] = {"learner": run.learner, "rows": run.bootstrap_rows, "cpu_seconds": run.bootstrap_cpu_seconds}
            for entry, b in zip(rows_out, run.batches, strict=True):
                entry.setdefault("baselines", {})[name] = {**b.as_dict(), **cost_model.estimate(b.cpu_seconds)}

    return {
        "format": FORMAT,
        "policy": policy.name,
        "policy_path": str(policy.path),
        "batches_dir": str(batches),
        "seed": seed,
        "task": policy.model.task,
        "metric": policy.model.metric,
        "higher_is_better": policy.model.higher_is_better,
        "settings": {"trials": kz.build.trials, "timeout_seconds": kz.build.timeout_seconds,
                     "timeout_ignored": kz.build.timeout_seconds != policy.build.timeout_seconds,
                     "daily_cpu_seconds": kz.budget.daily_cpu_seconds,
                     "watts_per_core": cost_model.watts_per_core,
                     "grid_gco2_per_kwh": cost_model.grid_gco2_per_kwh},
        "warnings": size_warnings,
        "approve_after": approve_after,
        "arms": [a for a in ARMS if a in wanted],
        "peers": list(peer_list),
        "bootstrap": boot,
        "batches": rows_out,
        "summary": summarize(rows_out, cost_model, arms=wanted),
        "wall_seconds": round(time.perf_counter() - wall0, 3),
    }


def _arms(arms: Collection[str] | None) -> frozenset[str]:
    """The arms to replay: all of :data:`ARMS` for None, else ``arms`` and ``kaizen``."""
    if arms is None:
        return frozenset(ARMS)
    if isinstance(arms, str) or not all(isinstance(a, str) and a in ARMS for a in arms):
        raise ValueError(f"The 'arms' parameter of run_backtest must be a collection of {', '.join(ARMS)} or None. "
                         f"Got {arms!r} instead.")
    return frozenset({"kaizen", *arms})


def _warm_up() -> None:
    """Import the monitor's libraries now, so the first cycle's CPU seconds are not an import's."""
    import evidently  # noqa: F401
    import evidently.core.report  # noqa: F401
    import evidently.metrics  # noqa: F401


def _main_reason(rec: Any) -> str:
    if rec.decision == "failed" and rec.error:
        return str(rec.error).splitlines()[0]
    reasons = list(rec.reasons)
    if rec.decision in ("promoted", "rejected") or not reasons:
        return reasons[-1] if reasons else ""
    return reasons[-1] if any("budget" in r for r in reasons[-1:]) else reasons[0]


def _mean(values: list[float | None]) -> float | None:
    vals = [v for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))]
    return round(float(np.mean(vals)), 6) if vals else None


def summarize(rows: list[dict[str, Any]], cost_model: CostModel,
              arms: Collection[str] | None = None) -> dict[str, dict[str, Any]]:
    """One entry per arm: mean prequential metric, how often it built and promoted, and what it spent.

    ``arms``: the arms replayed (None: ``kaizen`` and the baselines the rows hold); the others are left out.
    """
    if arms is None:
        arms = {"kaizen", *(a for r in rows for a in r.get("baselines", {}))} if rows else set(ARMS)
    def arm(metrics: list[float | None], cpus: list[float], builds: list[float], retrains: int,
            promotions: int, **extra: Any) -> dict[str, Any]:
        total = round(sum(cpus), 3)
        return {"mean_metric": _mean(metrics), "scored_batches": sum(m is not None for m in metrics),
                "retrains": retrains, "promotions": promotions, "build_cpu_seconds": round(sum(builds), 3),
                "total_cpu_seconds": total, **cost_model.estimate(total), **extra}

    decisions: dict[str, int] = {}
    for r in rows:
        decisions[r["decision"]] = decisions.get(r["decision"], 0) + 1
    def every_batch(name: str) -> dict[str, Any]:
        ev = [r["baselines"][name] for r in rows]
        return arm([e["metric"] for e in ev], [e["cpu_seconds"] for e in ev], [e["build_cpu_seconds"] for e in ev],
                   sum(1 for e in ev if e["build_cpu_seconds"] > 0), sum(1 for e in ev if e["decision"] == "promoted"))

    out = {
        "kaizen": arm([r["metric"] for r in rows], [r["cpu_seconds"] for r in rows],
                      [r["build_cpu_seconds"] for r in rows],
                      sum(1 for r in rows if r["challenger_version"] is not None),
                      sum(1 for r in rows if r["decision"] == "promoted")
                      + sum(1 for r in rows for a in r.get("approved", ()) if a.get("decision") == "promoted"),
                      decisions=decisions,
                      approvals=sum(1 for r in rows for a in r.get("approved", ()) if a.get("decision") == "promoted"),
                      budget_skips=sum(1 for r in rows if "daily compute budget" in (r.get("reason") or ""))),
    }
    if "static" in arms:
        out["static"] = arm([r["baselines"]["static"]["metric"] for r in rows], [0.0] * len(rows),
                            [0.0] * len(rows), 0, 0)
    for name in ("retrain_every_batch", "refit_every_batch"):
        if name in arms:
            out[name] = every_batch(name)
    for name in PEERS:  # the streaming peers the rows hold: all their CPU is learning; they never build or promote
        ev = [r["baselines"][name] for r in rows if name in r.get("baselines", {})]
        if ev:
            cpus = [e["cpu_seconds"] for e in ev]
            out[name] = arm([e["metric"] for e in ev], cpus, cpus, 0, 0,
                            learned_rows=sum(e["learned_rows"] for e in ev))
    return out


def _f(v: float | None) -> str:
    return "-" if v is None else f"{v:.4f}"


class _NoBar:
    def set_postfix_str(self, _s: str) -> None: ...
    def update(self, _n: int) -> None: ...
    def close(self) -> None: ...


def _progress(total: int, name: str, enabled: bool, *, what: str = "backtest", unit: str = "batch") -> Any:
    """A progress bar on stderr (``what name``, counting ``unit``s), or one that shows nothing."""
    if not enabled:
        return _NoBar()
    try:
        from tqdm import tqdm
    except ImportError:  # pragma: no cover - tqdm comes with MLflow
        return _NoBar()
    return tqdm(total=total, desc=f"{what} {name}", unit=unit, file=sys.stderr, dynamic_ncols=True)
