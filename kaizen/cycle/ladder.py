"""The escalation ladder: build the cheapest challenger that can pass the gates.

A triggered cycle does not start with a full search. It climbs, and stops at
the first rung whose challenger passes the gates:

1. ``refit`` — the champion's own recipe (features, family, hyperparameters)
   fit again on recent rows: the rows since the located change (the first
   window of the current run of performance alarms), extended back batch by
   batch to ``build.min_refit_rows``; without a located change, the recipe's
   own training-window fraction of everything. Seconds of CPU.
2. ``small`` — a small Optuna search (``build.ladder_trials`` trials) on raw
   features, warm-started with the champion's configuration
   (``study.enqueue_trial``), whose training-window choices include the rows
   since the change.
3. ``full`` — the policy's full search with featuretools feature engineering.

``build.strategy`` pins one rung (``refit``, ``small``, ``full``) or climbs
(``ladder``, the default). Every attempt — its rung, version, training rows,
verdict, CPU seconds — is kept for the record; a rung that cannot run (no
recipe for a hand-registered champion, a build error) is an attempt too.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from kaizen.data.frames import labelled
from kaizen.data.window import Window
from kaizen.past import Past
from kaizen.policy import Policy

__all__ = ["Climb", "RUNGS", "change_rows", "climb", "labelled_per_history_batch"]

log = logging.getLogger("kaizen.cycle.ladder")

RUNGS = ("refit", "small", "full")
PERFORMANCE = "performance_drop"


@dataclass
class Climb:
    """What the ladder did: the winner (if a rung passed), its judgement and rows, every attempt."""

    winner: Any = None                     # kaizen.challenger.register.Built
    judged: Any = None                     # kaizen.gates.judge.Judgement of the winner, else of the last attempt
    last: Any = None                       # the last Built (the winner, or the last one that failed)
    rung: str | None = None
    train: pd.DataFrame | None = None      # the rows the winner was built from (for the refit on the holdout)
    attempts: list[dict[str, Any]] = field(default_factory=list)

    @property
    def cpu_seconds(self) -> float:
        return round(sum(a.get("cpu_seconds") or 0.0 for a in self.attempts), 3)


def rungs_for(policy: Policy) -> tuple[str, ...]:
    return RUNGS if policy.build.strategy == "ladder" else (policy.build.strategy,)


def change_rows(policy: Policy, window: Window, past: Past, current_fired: bool,
                pool: pd.DataFrame, current_train: int) -> tuple[int | None, str]:
    """(rows, why): how many of the newest ``pool`` rows come after the located change.

    The change is the first batch of the oldest window in the current run of windows whose
    performance signal fired (:meth:`kaizen.past.Past.performance_run`, this one included). None when
    this cycle's performance signal did not fire (no change located). The count is extended back
    batch by batch (then into the reference) to at least ``build.min_refit_rows``.
    """
    if not current_fired:
        return None, "no performance drop located a change"
    first = window.batches[0] if window.batches else None
    for r in past.performance_run():
        batches = (r.window or {}).get("batches") or []
        if batches:
            first = batches[0]
    counts = labelled_per_history_batch(window)
    names = list(window.history_batches)
    rows = current_train
    start = len(names)
    if first in names:
        start = names.index(first)
        rows += sum(counts[start:])
    why = f"the rows since batch {first}, where the performance drop began"
    while rows < policy.build.min_refit_rows and start > 0:
        start -= 1
        rows += counts[start]
        why = (f"the rows since batch {names[start]} (the drop began at {first}; extended back to "
               f"build.min_refit_rows = {policy.build.min_refit_rows})")
    if rows < policy.build.min_refit_rows:
        rows = policy.build.min_refit_rows
        why = (f"the newest {rows} rows (the drop began at {first}; extended into the reference to "
               f"build.min_refit_rows)")
    return min(rows, len(pool)), why


def labelled_per_history_batch(window: Window) -> list[int]:
    sizes = list(getattr(window, "history_sizes", ()) or ())
    if len(sizes) != len(window.history_batches):
        return [0] * len(window.history_batches)
    out, at = [], 0
    for n in sizes:
        out.append(len(labelled(window.history.iloc[at:at + n], window.schema)))
        at += n
    return out


def climb(policy: Policy, pool: pd.DataFrame, *, recipe: Any, champion_version: str, recent: int | None,
          recent_why: str, build: Callable[..., Any], refit: Callable[..., Any],
          judge: Callable[[Any], Any], on_attempt: Callable[[str, Any], None] | None = None,
          rungs: tuple[str, ...] | None = None) -> Climb:
    """Climb the rungs of ``policy`` until a challenger passes ``judge``.

    ``build(train, policy=, name=, enqueue=)`` searches and registers; ``refit(recipe, rows, name=)``
    fits a recipe and registers; both return a :class:`~kaizen.challenger.register.Built`.
    ``judge(built)`` returns its :class:`~kaizen.gates.judge.Judgement`. ``recent`` is how many of
    the newest pool rows follow the located change (None: none located). ``rungs`` overrides the
    policy's (a scheduled refit climbs only ``("refit",)``).
    """
    out = Climb()
    for rung in rungs or rungs_for(policy):
        attempt: dict[str, Any] = {"rung": rung}
        out.attempts.append(attempt)
        try:
            if rung == "refit":
                if recipe is None:
                    attempt.update(passed=False, skipped=f"champion v{champion_version} has no Kaizen recipe "
                                                        "(registered by hand)")
                    continue
                rows = pool.iloc[len(pool) - recent:] if recent else pool
                fixed = recipe if not recent else dataclasses.replace(
                    recipe, params={**recipe.params, "window_fraction": 1.0})
                attempt["rows"] = recent_why if recent else (
                    f"the recipe's window fraction {recipe.params.get('window_fraction')} of all rows")
                built, train = refit(fixed, rows, name="rung_refit"), rows
            elif rung == "small":
                from kaizen.challenger.search import trial_params

                fractions = set(policy.build.window_fractions)
                enqueue: list[dict[str, Any]] = []
                n_fit = len(pool) - max(1, round(len(pool) * policy.build.validation_fraction))
                if recent and n_fit > 0:
                    fractions.add(round(min(1.0, max(recent - (len(pool) - n_fit), 1) / n_fit), 4))
                if recipe is not None:
                    base = trial_params(recipe.family, {**recipe.params, "engineered": False})
                    enqueue.append(base)
                    if recent:
                        enqueue.append({**base, "window_fraction": min(fractions)})
                small = dataclasses.replace(policy, build=dataclasses.replace(
                    policy.build, trials=policy.build.ladder_trials, trans_primitives=(), agg_primitives=(),
                    window_fractions=tuple(sorted(fractions, reverse=True))))
                attempt["trials"] = policy.build.ladder_trials
                built, train = build(pool, policy=small, name="rung_small", enqueue=tuple(enqueue)), pool
            else:
                built, train = build(pool, policy=policy, name="rung_full", enqueue=()), pool
        except Exception as exc:  # one rung that cannot build must not stop the next
            msg = f"{type(exc).__name__}: {exc}"
            log.warning("ladder rung %s failed: %s", rung, msg)
            attempt.update(passed=False, error=msg)
            continue
        if recipe is not None:  # how this challenger's inputs differ from the champion's (the record says)
            mine, theirs = list(built.result.feature_names), list(recipe.feature_names)
            built.section["features_vs_champion"] = {"added": [n for n in mine if n not in theirs],
                                                     "removed": [n for n in theirs if n not in mine],
                                                     "same": mine == theirs}
        judged = judge(built)
        attempt.update(version=built.version, family=built.result.family, train_rows=built.result.train_rows,
                       cpu_seconds=round(built.result.cpu_seconds, 3), passed=not judged.failed,
                       failed_gates=[g.name for g in judged.failed],
                       holdout_metric=judged.challenger.get("holdout_metric"))
        out.last, out.judged = built, judged
        if on_attempt is not None:
            on_attempt(rung, built)
        if not judged.failed:
            out.winner, out.rung, out.train = built, rung, train
            return out
    return out
