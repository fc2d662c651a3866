"""The standing cheap challenger: the champion's recipe refit before each new batch, scored on it (prequential).

Each cycle with new labelled rows (``[prequential]``):

1. the **new batches** are the window's batches that the serving champion cannot have learned
   from and that no earlier window scored for it: batches named by no record up to the one that
   made it champion (:meth:`kaizen.past.Past.champion_seen_batches`), and none already scored
   (:meth:`kaizen.past.Past.prequential_scores`);
2. the **shadow** is the champion's recipe (features, family, hyperparameters;
   :func:`kaizen.challenger.search.refit`) fit on as many of the newest labelled rows as the champion
   was fit on (:func:`sliding_rows`), taken strictly *before* the oldest new batch — from the
   reference, the history and older window batches — so it never scores a batch it was trained on.
   It is not registered; it is kept under the state folder's model cache (``standing/``: its files and
   the batches it learned from) and fit again once it has scored ``prequential.refit_every`` windows,
   when the champion changes, or when its copy is missing (a worker on another machine) — a kept one is
   never used on a batch it learned from. Between refits a cycle only predicts;
3. both models predict the new batches' labelled rows; the window's **gain** is the shadow's
   metric minus the champion's (a relative change for rmse and mae, :func:`kaizen.metrics.improvement`)
   with its standard error from a seeded paired bootstrap;
4. :func:`accumulate` adds this window's gain to the earlier windows' with the same champion
   (at most ``prequential.windows``), weighting each by its rows, and computes the lower bound again
   with each window left out in turn (``lower_without``: the smallest): the ``prequential`` signal
   (:mod:`kaizen.monitor.rules.prequential`) reads the result and needs both bounds above the bar, so
   no single batch — one an attacker relabelled — carries the evidence alone.

The refit's CPU is the cycle's (it runs in the cycle's thread) and is recorded in the window's
score (``cpu_seconds``). Every function returns a value; the orchestrator writes the record
(``trigger.prequential``).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from statistics import NormalDist
from typing import Any

import numpy as np
import pandas as pd

from kaizen.data.frames import cast_target, labelled, model_frame, pool_columns, target_values
from kaizen.monitor.rules._base import finite as _finite
from kaizen.past import Past
from kaizen.policy import Policy

__all__ = ["Shadow", "accumulate", "score", "shadow_window", "sliding_rows"]

log = logging.getLogger("kaizen.cycle.prequential")


@dataclass(frozen=True)
class Shadow:
    """The standing challenger's predictions beside the champion's on the new batches' labelled rows."""

    champion: str
    batches: tuple[str, ...]         # the new batches scored
    row_batches: np.ndarray          # the batch of each scored row
    y: np.ndarray
    champion_pred: Any               # kaizen.data.predictions.Predictions
    shadow_pred: Any
    train_rows: int                  # labelled rows before the oldest new batch (before the window fraction)
    fit_rows: int                    # rows the recipe kept (its window fraction)
    train_until: str | None          # the newest batch it learned from (None: the reference only)
    cpu_seconds: float
    refitted: bool = True            # fit in this cycle (else kept from an earlier one)
    age: int = 0                     # windows it had scored before this one since it was fit


class _Unscored(Exception):
    pass


def shadow_window(work: Any, policy: Policy, window: Any, champion: Any, champ_model: Any, past: Past,
                  full: Callable[[], Any], known: tuple[np.ndarray, Any] | None = None) -> Shadow | str | None:
    """The standing challenger scored on this window's new batches; a sentence when it cannot be; None when off.

    ``window`` holds the new batches (the window-only read is enough to score); ``full()`` reads the window
    with its history, called only when the standing challenger must be fit again. ``known``: (the batch of
    each of the window's labelled rows, the champion's predictions on them), which spares predicting again.
    """
    if not policy.prequential.enabled:
        return None
    try:
        return _shadow(work, policy, window, champion, champ_model, past, full, known)
    except _Unscored as exc:
        return str(exc)


#: bootstrap resamples for one window's standard error (an SE, not a percentile interval: 200 estimate it to ~5 %)
SE_RESAMPLES = 200
#: the standing challenger kept between cycles, under the state folder's model cache (one per policy)
STANDING_DIR = "standing"


def _shadow(work: Any, policy: Policy, window: Any, champion: Any, champ_model: Any, past: Past,
            full: Callable[[], Any], known: tuple[np.ndarray, Any] | None) -> Shadow:
    from kaizen.challenger.recipe import load_recipe
    from kaizen.registry.champion import CACHE_DIR

    cpu0 = time.thread_time()
    schema, version = window.schema, str(champion.version)
    frames = window.batch_frames()
    if not frames:
        raise _Unscored("the window's batches cannot be told apart")
    seen = past.champion_seen_batches(version)
    scored = {b for s in past.prequential_scores(version) for b in s.get("batches") or ()}
    new = [name for name in window.batches if name not in seen and name not in scored]
    if not new:
        raise _Unscored(f"no batch of the window is new to version {version}")
    target = [(n, labelled(f, schema)) for n, f in frames if n in new]
    test = pd.concat([f for _, f in target], ignore_index=True)
    if len(test) < policy.prequential.min_rows:
        raise _Unscored(f"{len(test)} labelled row(s) in the new batch(es) {', '.join(new)}, fewer than "
                        f"prequential.min_rows = {policy.prequential.min_rows}")
    cache = work.config.state_dir / CACHE_DIR / policy.name
    recipe = load_recipe(work.registry, champion, cache)
    if recipe is None:
        raise _Unscored(f"version {version} has no Kaizen recipe to refit (registered by hand)")
    kept = _Kept(cache / STANDING_DIR)
    meta = kept.usable(version, set(new), policy.prequential.refit_every)
    refitted = meta is None
    if meta is None:
        meta = _fit(work, policy, full(), recipe, version, new, kept)
    shadow = kept.model(policy)
    x = model_frame(test, schema)
    champ_pred = None
    if known is not None and known[0] is not None:
        from kaizen.data.predictions import Predictions

        rows = np.isin(np.asarray(known[0], dtype=object), np.array(new, dtype=object))
        if int(rows.sum()) == len(test):  # the window's labelled rows of the new batches, in the same order
            p = known[1]
            champ_pred = Predictions(np.asarray(p.labels)[rows], None if p.scores is None else
                                     np.asarray(p.scores)[rows])
    out = Shadow(champion=version, batches=tuple(new),
                 row_batches=np.concatenate([np.full(len(f), n, dtype=object) for n, f in target]),
                 y=target_values(test, schema, policy.model.task),
                 champion_pred=champ_pred if champ_pred is not None else champ_model.predict(x),
                 shadow_pred=shadow.predict(x), train_rows=int(meta["train_rows"]), fit_rows=int(meta["fit_rows"]),
                 train_until=meta["train_until"], cpu_seconds=round(time.thread_time() - cpu0, 3),
                 refitted=refitted, age=int(meta["uses"]))
    kept.used(meta)
    return out


def _fit(work: Any, policy: Policy, full: Any, recipe: Any, version: str, new: list[str], kept: _Kept
         ) -> dict[str, Any]:
    """Fit the standing challenger on the labelled rows before the oldest new batch and keep it."""
    from kaizen.challenger.search import refit

    schema = full.schema
    frames = full.batch_frames()
    names = [n for n, _ in frames]
    if not frames or not all(n in names for n in new):
        raise _Unscored("the window's batches cannot be told apart in its history")
    first = min(names.index(n) for n in new)
    cols = pool_columns(schema)
    before = [full.reference[cols]] + [labelled(f, schema)[cols] for _, f in frames[:first]]
    train = cast_target(pd.concat([p for p in before if len(p)], ignore_index=True),
                        full.reference[schema.target], policy.model.task)
    fixed, keep = sliding_rows(recipe, len(train))
    fitted = refit(fixed, train.iloc[len(train) - keep:], schema=schema, policy=policy,
                   workdir=work.workdir / "prequential", seed=work.seed)
    return kept.store(fitted.artifacts_dir, {"champion": version, "trained_on": names[:first],
                                             "train_until": names[first - 1] if first > 0 else None,
                                             "train_rows": len(train), "fit_rows": int(fitted.train_rows),
                                             "uses": 0})


class _Kept:
    """The fitted standing challenger between cycles: its artifacts and a small JSON of what it learned from.

    A missing or unreadable copy (a new machine, a worker elsewhere) only means it is fit again.
    """

    def __init__(self, folder: Any) -> None:
        self.folder = folder
        self.meta_path = folder / "standing.json"

    def usable(self, version: str, new: set[str], refit_every: int) -> dict[str, Any] | None:
        import json

        try:
            meta = json.loads(self.meta_path.read_text())
        except (OSError, ValueError):
            return None
        if (str(meta.get("champion")) != version or int(meta.get("uses", 0)) >= refit_every
                or new & set(meta.get("trained_on") or ()) or not (self.folder / "model").is_dir()):
            return None
        return meta

    def store(self, artifacts: Any, meta: dict[str, Any]) -> dict[str, Any]:
        import shutil

        shutil.rmtree(self.folder, ignore_errors=True)
        self.folder.mkdir(parents=True, exist_ok=True)
        shutil.copytree(artifacts, self.folder / "model")
        self._write(meta)
        return meta

    def used(self, meta: dict[str, Any]) -> None:
        self._write({**meta, "uses": int(meta.get("uses", 0)) + 1})

    def model(self, policy: Policy) -> Any:
        from kaizen.challenger.model import Predictor
        from kaizen.registry.models import LoadedModel

        return LoadedModel(Predictor.from_dir(self.folder / "model"), uri="prequential shadow",
                           task=policy.model.task, positive_label=policy.model.positive_label)

    def _write(self, meta: dict[str, Any]) -> None:
        import json
        import os

        tmp = self.meta_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(meta))
        os.replace(tmp, self.meta_path)


def sliding_rows(recipe: Any, available: int) -> tuple[Any, int]:
    """(the recipe to fit, how many of the newest rows): as many rows as the champion learned from, slid forward.

    A recipe records the rows its model was fit on (``train_rows``); the standing challenger fits the same
    number of the newest rows (a sliding window; all of them when fewer are there), with the recipe's
    window fraction set to 1. A recipe that does not record it keeps its window fraction of every row.
    """
    import dataclasses

    n = int(getattr(recipe, "train_rows", 0) or 0)
    if n <= 0:
        return recipe, available
    return dataclasses.replace(recipe, params={**recipe.params, "window_fraction": 1.0}), min(n, available)


def score(policy: Policy, shadow: Shadow, *, seed: int, keep: np.ndarray | None = None) -> dict[str, Any]:
    """This window's gain of the shadow over the champion (``keep``: only these rows), JSON-ready."""
    from kaizen.data.predictions import Predictions
    from kaizen.metrics import improvement, improvements, paired_bootstrap
    from kaizen.metrics import score as metric_score

    metric, pos = policy.model.metric, policy.model.positive_label
    mask = np.ones(len(shadow.y), bool) if keep is None else np.asarray(keep, bool)

    def take(p: Any) -> Any:
        return Predictions(np.asarray(p.labels)[mask], None if p.scores is None else np.asarray(p.scores)[mask])

    y, c, s = shadow.y[mask], take(shadow.champion_pred), take(shadow.shadow_pred)
    out: dict[str, Any] = {"champion": shadow.champion, "batches": list(shadow.batches), "rows": int(mask.sum()),
                           "train_rows": shadow.train_rows, "fit_rows": shadow.fit_rows,
                           "train_until": shadow.train_until, "cpu_seconds": shadow.cpu_seconds,
                           "refitted": shadow.refitted, "age": shadow.age}
    cm = metric_score(metric, y, c.labels, c.scores, pos_label=pos) if len(y) else float("nan")
    sm = metric_score(metric, y, s.labels, s.scores, pos_label=pos) if len(y) else float("nan")
    gain = improvement(metric, sm, cm) if _finite(cm) and _finite(sm) else float("nan")
    se = float("nan")
    if len(y) >= 2 and _finite(gain):
        old, new = paired_bootstrap(metric, y, (c.labels, c.scores), (s.labels, s.scores), pos_label=pos, seed=seed,
                                    resamples=min(policy.gates.bootstrap_resamples, SE_RESAMPLES))
        g = improvements(metric, new, old)
        g = g[np.isfinite(g)]
        if len(g) >= 2:
            se = float(np.std(g, ddof=1))
    out.update(champion_metric=_num(cm), shadow_metric=_num(sm), gain=_num(gain), se=_num(se))
    if keep is not None:
        out["excluded_rows"] = int((~mask).sum())
    return out


def accumulate(policy: Policy, past: Past, this: dict[str, Any] | None, *,
               raw: dict[str, Any] | None = None) -> dict[str, Any]:
    """The accumulated gain over this window and the earlier scored windows of the same champion.

    Each window weighs by its rows: gain = Σ nᵢ gᵢ / Σ nᵢ, its standard error √(Σ nᵢ² seᵢ²) / Σ nᵢ (the
    windows' rows are disjoint, so their errors are independent); the interval is normal at
    ``prequential.confidence``. ``raw``: this window's score with the flagged rows, when it was computed
    without them (the signal then says whether only they carried the gain).
    """
    spec = policy.prequential
    if this is None:
        return {}
    earlier = [s for s in past.prequential_scores(this["champion"]) if _measured(s)]
    out = _combine(spec, ([this] if _measured(this) else []) +
                   list(reversed(earlier)))
    out["this"] = {k: this.get(k) for k in ("batches", "rows", "gain", "se", "champion_metric", "shadow_metric")}
    if raw is not None:
        r = _combine(spec, ([raw] if _measured(raw) else []) +
                     list(reversed(earlier)))
        r["fired"] = bool(r.get("windows", 0) >= spec.min_windows and r.get("lower", -math.inf) > spec.min_improvement
                          and (r.get("lower_without") or -math.inf) > spec.min_improvement)
        out.update(raw=r, excluded_rows=this.get("excluded_rows", 0))
    return out


def _combine(spec: Any, newest_first: list[dict[str, Any]]) -> dict[str, Any]:
    used = newest_first[:spec.windows]
    if not used:
        return {"unscored": "no window with a measurable gain yet", "windows": 0}
    n = np.array([float(s["rows"]) for s in used])
    g = np.array([float(s["gain"]) for s in used])
    se = np.array([float(s["se"]) for s in used])
    total = float(n.sum())
    gain = float((n * g).sum() / total)
    err = float(math.sqrt(float((n ** 2 * se ** 2).sum())) / total)
    z = NormalDist().inv_cdf((1 + spec.confidence) / 2)
    # no single window may carry the evidence alone: the lower bound with each window left out in turn
    without = []
    for j in range(len(used)):
        k = np.arange(len(used)) != j
        if k.any():
            t = float(n[k].sum())
            without.append(float((n[k] * g[k]).sum() / t) - z * math.sqrt(float((n[k] ** 2 * se[k] ** 2).sum())) / t)
    return {"windows": len(used), "rows": int(total), "gain": gain, "se": err, "lower": gain - z * err,
            "upper": gain + z * err, "z": z, "lower_without": min(without) if without else None,
            "per_window": [{"batches": s.get("batches"), "rows": s["rows"], "gain": s["gain"], "se": s["se"]}
                           for s in used]}


def _measured(s: Mapping[str, Any]) -> bool:
    """Whether a window's score has a gain and a standard error to combine."""
    return _finite(s.get("gain")) and _finite(s.get("se"))


def _num(x: Any) -> float | None:
    return float(x) if _finite(x) else None
