"""Runs that make a champion without a trigger: the first one (``bootstrap``) and the yardsticks
``retrain`` (a full search after every batch) and ``refit_every_batch`` (a cron job's refit).

All go through the one runner (:mod:`kaizen.run.runner`): the policy's lock, the
journal, exactly one record, even when the build fails.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from kaizen.config import Config
from kaizen.data.frames import cast_target, labelled, pool_columns
from kaizen.errors import RegistryError
from kaizen.ledger import Record
from kaizen.policy import Policy
from kaizen.run.journal import Step
from kaizen.run.runner import RunContext, run

__all__ = ["bootstrap", "refit_every_batch", "retrain"]


def _seed(policy: Policy, seed: int | None) -> int:
    return policy.build.seed if seed is None else int(seed)


def bootstrap(config: Config, policy: Policy, *, seed: int | None = None, force: bool = False,
              registry: Any = None, wait_seconds: float = 0.0) -> Record:
    """Build the first champion from the reference set, by the same build path as challengers.

    The newest ``build.validation_fraction`` of the reference rows are held out to measure the
    performance baseline and to run the sanity and golden gates; the rest train the model.
    A model that already has a champion fails the run unless ``force``.
    """
    return run(config, policy.name, lambda ctx: _bootstrap(ctx, policy, force), kind="bootstrap",
               seed=_seed(policy, seed), registry=registry, wait_seconds=wait_seconds)


def _bootstrap(ctx: RunContext, policy: Policy, force: bool) -> Record:
    from kaizen.challenger.register import build_and_register
    from kaizen.data.window import load_reference
    from kaizen.gates.judge import judge
    from kaizen.registry.models import load_model
    from kaizen.registry.promotion import commit

    draft, registry = ctx.draft, ctx.registry
    current = registry.champion(policy.name)
    if current is not None and not force:
        raise RegistryError(f"model {policy.name!r} already has a champion (version {current.version}); "
                            "pass --force to replace it")
    schema, reference, golden = load_reference(policy)
    cols = pool_columns(schema)
    n_hold = max(1, int(round(len(reference) * policy.build.validation_fraction)))
    train, holdout = reference.iloc[:-n_hold][cols], reference.iloc[-n_hold:][cols].reset_index(drop=True)
    draft.sections["window"] = {"batches": [], "reference_rows": len(reference), "train_rows": len(train),
                                "holdout_rows": len(holdout)}
    draft.sections["champion"] = {"version": current.version if current else None}
    with ctx.mlflow_run() as runlog:
        draft.step(Step.BUILDING)
        built = build_and_register(registry, runlog, policy, schema, train, workdir=ctx.workdir, seed=draft.seed,
                                   cycle_id=draft.id, on_registered=draft.note_registered,
                                   state_dir=ctx.config.state_dir)
        draft.sections["challenger"] = dict(built.section)
        draft.add_cost(build_cpu_seconds=built.result.cpu_seconds)
        draft.step(Step.BUILT, version=built.version)
        model = load_model(registry, policy.name, built.version, task=policy.model.task,
                           positive_label=policy.model.positive_label, workdir=ctx.workdir)
        judged = judge(policy, schema, None, model, holdout, golden, train, only=("sanity", "golden"))
        draft.sections["gates"] = [g.to_dict() for g in judged.gates]
        draft.sections["challenger"].update(judged.challenger)
        if judged.failed:
            draft.reasons.extend(f"gate {g.name} failed: {g.message}" for g in judged.failed)
            registry.tag(policy.name, built.version, {"kaizen.status": "rejected", "kaizen.gate": "failed"})
            return draft.finish("rejected")
        registry.tag(policy.name, built.version, {"kaizen.gate": "passed"})
        draft.step(Step.PROMOTING, version=built.version, replaced=current.version if current else None)
        metric = judged.challenger["holdout_metric"]
        commit(registry, policy.name, built.version, metric=policy.model.metric,
               reason=f"replaced by bootstrap {draft.id}", cycle_id=draft.id,
               judged_against=current.version if current else None)
        if metric is not None and not pd.isna(metric):
            registry.set_baseline(policy.name, metric)  # a bootstrap starts the baseline afresh
        draft.step(Step.PROMOTED, version=built.version, replaced=current.version if current else None)
    draft.sections["champion"] = {"version": built.version, "replaced": current.version if current else None}
    draft.reasons.append(f"bootstrapped version {built.version} as champion: {policy.model.metric} "
                         f"{metric:.4f} on the newest {len(holdout)} reference rows")
    return draft.finish("promoted")


def retrain(config: Config, policy: Policy, *, seed: int | None = None, registry: Any = None,
            day: str | None = None) -> Record:
    """Build on every labelled row so far and promote it with no trigger and no gates.

    The ``retrain_every_batch`` baseline of ``kaizen backtest``: the same build step and budget as
    a cycle's challenger (reference + labelled history + the whole current window, oldest first),
    run whatever the monitor would say, and the new version always becomes champion. It is a
    yardstick, not a way to run production. Appends one record; never raises for a failed build.
    """
    return run(config, policy.name, lambda ctx: _retrain(ctx, policy), kind="retrain", seed=_seed(policy, seed),
               registry=registry, day=day)


def _retrain(ctx: RunContext, policy: Policy) -> Record:
    from kaizen.challenger.register import build_and_register

    champion = _champion(ctx, policy)
    rows, schema = _every_labelled_row(ctx, policy)

    def build(runlog: Any) -> Any:
        return build_and_register(ctx.registry, runlog, policy, schema, rows, workdir=ctx.workdir,
                                  seed=ctx.draft.seed, cycle_id=ctx.draft.id, on_registered=ctx.draft.note_registered)

    built = _build_and_promote(ctx, policy, champion, build, what="retrain")
    ctx.draft.reasons.append(f"retrained on {len(rows)} labelled rows and promoted version {built.version} "
                             "with no trigger and no gates (retrain_every_batch baseline)")
    return ctx.draft.finish("promoted")


def _champion(ctx: RunContext, policy: Policy) -> Any:
    from kaizen.registry.champion import serving_champion

    champion = serving_champion(ctx.registry, policy)
    ctx.draft.sections["champion"] = {"version": champion.version}
    return champion


def _every_labelled_row(ctx: RunContext, policy: Policy) -> tuple[pd.DataFrame, Any]:
    """(rows, schema): every labelled row so far, oldest first (reference + labelled history + the labelled
    current window), as the yardsticks learn from them."""
    from kaizen.data.window import load_window

    window = load_window(policy)
    ctx.draft.sections["window"] = window.summary()
    schema = window.schema
    cols = pool_columns(schema)
    parts = [window.reference[cols], labelled(window.history, schema)[cols], labelled(window.current, schema)[cols]]
    rows = cast_target(pd.concat([p for p in parts if len(p)], ignore_index=True),
                       window.reference[schema.target], policy.model.task)
    return rows, schema


def _build_and_promote(ctx: RunContext, policy: Policy, champion: Any, build: Any, *, what: str) -> Any:
    """Run ``build()`` in the run's MLflow run and make what it registered the champion: no trigger, no gates."""
    from kaizen.registry.promotion import commit

    draft, registry = ctx.draft, ctx.registry
    with ctx.mlflow_run() as runlog:
        draft.step(Step.BUILDING)
        built = build(runlog)
        draft.sections["challenger"] = {**dict(built.section), **draft.sections.get("challenger", {})}
        draft.add_cost(build_cpu_seconds=built.result.cpu_seconds)
        draft.step(Step.PROMOTING, version=built.version, replaced=champion.version)
        commit(registry, policy.name, built.version, metric=policy.model.metric,
               reason=f"replaced by version {built.version} in {what} {draft.id}", cycle_id=draft.id,
               judged_against=champion.version)
        draft.sections["champion"]["replaced"] = champion.version
        draft.step(Step.PROMOTED, version=built.version, replaced=champion.version)
    return built


def refit_every_batch(config: Config, policy: Policy, *, recipe_version: str, seed: int | None = None,
                      registry: Any = None, day: str | None = None) -> Record:
    """Refit the recipe of version ``recipe_version`` on the newest labelled rows and promote it.

    The ``refit_every_batch`` baseline of ``kaizen backtest``: what a cron job refitting the same
    pipeline does. The recipe (features, family, hyperparameters, training-window fraction) of
    ``recipe_version`` (the bootstrap champion) is fit again, with no search, on every labelled row
    so far (reference + labelled history + the labelled current window, oldest first; the recipe
    keeps the newest ``window_fraction`` of them), and the new version always becomes champion: no
    trigger, no gates. Appends one record (kind ``retrain``); never raises for a failed refit.
    """
    return run(config, policy.name, lambda ctx: _refit_every_batch(ctx, policy, str(recipe_version)), kind="retrain",
               seed=_seed(policy, seed), registry=registry, day=day)


def _refit_every_batch(ctx: RunContext, policy: Policy, recipe_version: str) -> Record:
    from kaizen.challenger.recipe import load_recipe
    from kaizen.challenger.register import refit_recipe_and_register
    from kaizen.registry.champion import CACHE_DIR

    draft, registry = ctx.draft, ctx.registry
    champion = _champion(ctx, policy)
    recipe = load_recipe(registry, registry.version(policy.name, recipe_version),
                         ctx.config.state_dir / CACHE_DIR / policy.name)
    if recipe is None:
        raise RegistryError(f"version {recipe_version} of model {policy.name!r} has no Kaizen recipe to refit "
                            "(registered by hand, or its model artifacts are gone)")
    rows, schema = _every_labelled_row(ctx, policy)
    draft.sections["challenger"] = {"recipe_of": recipe_version}

    def build(runlog: Any) -> Any:
        return refit_recipe_and_register(registry, runlog, policy, schema, recipe, rows, workdir=ctx.workdir,
                                         seed=draft.seed, cycle_id=draft.id, on_registered=draft.note_registered,
                                         name="refit", tags={"kaizen.recipe_of": recipe_version})

    built = _build_and_promote(ctx, policy, champion, build, what="refit")
    draft.reasons.append(f"refit the recipe of version {recipe_version} ({recipe.family}, window fraction "
                         f"{recipe.params.get('window_fraction', 1.0)}) on the newest {built.result.train_rows} of "
                         f"{len(rows)} labelled rows and promoted version {built.version} with no trigger, no search "
                         "and no gates (refit_every_batch baseline)")
    return draft.finish("promoted")
