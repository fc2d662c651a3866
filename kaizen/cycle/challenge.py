"""The cycle's build: the time split into training pool and holdout, the ladder's climb, the refit on the holdout."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pandas as pd

from kaizen.data.frames import cast_target, labelled, model_frame, pool_columns
from kaizen.data.window import Window
from kaizen.journal import Step
from kaizen.ledger import Record
from kaizen.policy import Policy
from kaizen.runner import RunContext

__all__ = ["attempt_line", "climb_ladder", "log_metrics", "refit_on_holdout", "split_by_time"]

log = logging.getLogger("kaizen.cycle")


def split_by_time(window: Window, policy: Policy) -> tuple[pd.DataFrame, pd.DataFrame, str]:
    """(train, holdout, note): the holdout is the newest labelled rows, training rows strictly before them.

    The holdout is ``gates.holdout_fraction`` of the window's labelled rows; when that is fewer than
    ``gates.min_holdout_rows`` it grows back into the newest history batches (at most
    ``gates.max_holdout_batches`` batches in all) until it has them; ``note`` says so.
    """
    schema, task = window.schema, policy.model.task
    cols = pool_columns(schema)
    cur = labelled(window.current, schema)[cols]
    hist = labelled(window.history, schema)[cols]
    n_hold = int(round(len(cur) * policy.gates.holdout_fraction))
    note = ""
    if n_hold < policy.gates.min_holdout_rows:
        from kaizen.ladder import labelled_per_history_batch

        counts = labelled_per_history_batch(window)
        extra_batches = max(0, policy.gates.max_holdout_batches - len(window.batches))
        available = len(cur) + sum(counts[len(counts) - extra_batches:]) if extra_batches else len(cur)
        grown = min(policy.gates.min_holdout_rows, available)
        if grown > n_hold:
            note = (f"the holdout grew from {n_hold} to {grown} rows (the newest labelled rows, back into earlier "
                    f"batches: gates.min_holdout_rows = {policy.gates.min_holdout_rows})")
            n_hold = grown
    pool = pd.concat([p for p in (window.reference[cols], hist, cur) if len(p)], ignore_index=True)
    like = window.reference[schema.target]
    train = cast_target(pool.iloc[: len(pool) - n_hold], like, task)
    holdout = cast_target(pool.iloc[len(pool) - n_hold:].reset_index(drop=True), like, task)
    return train.reset_index(drop=True), holdout, note


def check_trust(ctx: RunContext, policy: Policy, window: Window, champ_model: Any, train: pd.DataFrame,
                holdout: pd.DataFrame, *, decisive_drop: bool = False) -> tuple[pd.DataFrame, pd.DataFrame, bool]:
    """(train, holdout, blocked): the data-trust checks on the new rows; their findings go in ``window.trust``.

    ``decisive_drop`` (the champion broke on this window) reads a relabelled-looking segment as a
    concept change (:func:`kaizen.trust.check_training_rows`, ``champion_broke``).
    """
    from kaizen.trust import apply_drops, check_training_rows, pool_new_rows

    draft = ctx.draft
    new = pool_new_rows(train, holdout, reference_rows=len(window.reference))
    if not len(new):
        return train, holdout, False
    trust = check_training_rows(
        policy, new_rows=new, reference=window.reference, schema=window.schema,
        champion_predictions_on_new=champ_model.predict(model_frame(new, window.schema)),
        champion_predictions_on_reference=champ_model.predict(model_frame(window.reference, window.schema)),
        seed=draft.seed, champion_broke=decisive_drop)
    draft.sections["window"]["trust"] = trust.to_dict()
    if trust.blocked:
        draft.reasons[:0] = list(trust.reasons)
        return train, holdout, True
    draft.reasons.extend(trust.reasons)
    train, holdout = apply_drops(train, holdout, trust.drop_index)
    return train, holdout, False


def climb_ladder(ctx: RunContext, policy: Policy, window: Window, champion: Any, champ_model: Any, train: pd.DataFrame,
           holdout: pd.DataFrame, decision: Any, history: list[Record], rungs: tuple[str, ...] | None = None) -> Any:
    from kaizen.challenger.recipe import load_recipe
    from kaizen.challenger.register import build_and_register, refit_recipe_and_register
    from kaizen.champion import CACHE_DIR
    from kaizen.gates.judge import judge
    from kaizen.ladder import PERFORMANCE, change_rows, climb
    from kaizen.models import load_model

    draft, registry, schema = ctx.draft, ctx.registry, window.schema
    recipe = load_recipe(champion, ctx.config.state_dir / CACHE_DIR / policy.name)
    fired = any(s.rule == PERFORMANCE and s.fired for s in decision.signals)
    cur_train = max(0, len(train) - len(window.reference) - len(labelled(window.history, schema)))
    recent, why = change_rows(policy, window, history, fired, train, cur_train)
    common = dict(workdir=ctx.workdir, seed=draft.seed, cycle_id=draft.id, on_registered=draft.note_registered)

    def build(rows: pd.DataFrame, *, policy: Policy, name: str, enqueue: tuple) -> Any:
        return build_and_register(registry, policy, schema, rows, stop=ctx.stop, name=name, enqueue=enqueue,
                                  tags={"kaizen.rung": name.removeprefix("rung_")}, **{**common,
                                  "workdir": ctx.workdir / name})

    def refit(recipe: Any, rows: pd.DataFrame, *, name: str) -> Any:
        return refit_recipe_and_register(registry, policy, schema, recipe, rows, name=name,
                                         tags={"kaizen.rung": "refit", "kaizen.recipe_of": champion.version},
                                         **{**common, "workdir": ctx.workdir / name})

    def judged(built: Any) -> Any:
        model = load_model(f"models:/{policy.name}/{built.version}", task=policy.model.task,
                           positive_label=policy.model.positive_label)
        j = judge(policy, schema, champ_model, model, holdout, window.golden, train)
        verdict = "passed" if not j.failed else "failed: " + ", ".join(g.name for g in j.failed)
        tags = {"kaizen.gate": verdict, "kaizen.holdout_metric": f"{j.challenger['holdout_metric']:.6f}"}
        registry.tag(policy.name, built.version, tags if not j.failed else {**tags, "kaizen.status": "rejected"})
        return j

    def on_attempt(rung: str, built: Any) -> None:
        registry.set_challenger(policy.name, built.version)
        draft.step(Step.BUILT, version=built.version, rung=rung)

    return climb(policy, train, recipe=recipe, champion_version=champion.version, recent=recent, recent_why=why,
                 build=build, refit=refit, judge=judged, on_attempt=on_attempt, rungs=rungs)


def attempt_line(a: dict[str, Any]) -> str:
    if a.get("skipped") or a.get("error"):
        return f"{a['rung']}: {a.get('skipped') or a.get('error')}"
    return f"{a['rung']} v{a.get('version')} failed {', '.join(a.get('failed_gates') or [])}"


def log_metrics(mlrun: Any, judged: Any) -> None:
    import mlflow

    mlflow.log_metrics({f"{who}_{k}": v for who, d in (("champion", judged.champion),
                                                       ("challenger", judged.challenger))
                        for k, v in d.items() if isinstance(v, float) and not np.isnan(v)})


def refit_on_holdout(ctx: RunContext, policy: Policy, window: Window, built: Any, train: pd.DataFrame,
           holdout: pd.DataFrame, champ_model: Any) -> str:
    """The version to promote: the gated recipe refit on train + holdout if it passes, else the gated one."""
    from kaizen.challenger.register import refit_and_register
    from kaizen.gates.judge import judge

    draft, schema = ctx.draft, window.schema
    rows = pd.concat([train, holdout], ignore_index=True)
    out = refit_and_register(
        ctx.registry, policy, schema, built.result, built.version, rows, workdir=ctx.workdir, seed=draft.seed,
        cycle_id=draft.id, on_registered=draft.note_registered,
        check=lambda model: judge(policy, schema, champ_model, model, holdout, window.golden, rows,
                                  only=("sanity", "golden")))
    chall = draft.sections["challenger"]
    chall.update(gated_version=built.version, refit=out.info)
    if out.passed:
        chall["version"] = out.version
    draft.add_cost(refit_cpu_seconds=out.cpu_seconds, build_cpu_seconds=out.cpu_seconds)
    draft.reasons.append(out.reason)
    draft.step(Step.REFITTED, version=out.version, gated_version=built.version)
    return out.version
