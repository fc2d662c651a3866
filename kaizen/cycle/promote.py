"""The cycle's last word: promote (or shadow, or wait for a person), a shadow's verdict, an automatic rollback."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from kaizen.data.window import Window
from kaizen.journal import Step
from kaizen.ledger import Record
from kaizen.policy import Policy
from kaizen.runner import RunContext

__all__ = ["auto_rollback", "promote_or_wait", "promote_shadow", "shadow_verdict"]

log = logging.getLogger("kaizen.cycle")


def auto_rollback(ctx: RunContext, policy: Policy, champion: Any, mon: Any, cur_p: Any, window: Window,
                   history: list[Record]) -> Record | None:
    """Roll back to the retired champion when the new one's realised metric is worse beyond noise."""
    from kaizen.metrics import standard_error
    from kaizen.rollback import RollbackRefused, check_auto_rollback, rollback_body

    if policy.promotion.auto_rollback_windows <= 0 or not mon.labelled_rows:
        return None
    se = None
    target = window.schema.target
    if target in window.current.columns and mon.champion_metric is not None:
        mask = window.current[target].notna().to_numpy()
        y = window.current[target].to_numpy()[mask]
        y = y.astype(float) if policy.model.task == "regression" else y
        se = standard_error(policy.model.metric, y, np.asarray(cur_p.labels)[mask],
                            None if cur_p.scores is None else np.asarray(cur_p.scores)[mask],
                            pos_label=policy.model.positive_label, seed=ctx.draft.seed)
        se = float(se) if np.isfinite(se) else None
    why = check_auto_rollback(policy, history, mon.champion_metric, mon.labelled_rows, champion.version,
                              window_se=se)
    if not why:
        return None
    ctx.draft.sections["trigger"] = {"monitor": mon.to_dict()}
    try:
        return rollback_body(ctx, policy.name, None, why, "kaizen", automatic=True, metric=policy.model.metric)
    except RollbackRefused as exc:
        ctx.draft.reasons.append(f"automatic rollback not done: {exc}")
        return None


def shadow_verdict(ctx: RunContext, policy: Policy, window: Window, mon: Any,
            history: list[Record]) -> tuple[str, str, dict[str, Any], Any] | None:
    """(action, why, scores, version) for a version in shadow, or None; a rejected shadow is settled here."""
    from kaizen.champion import load_champion
    from kaizen.shadow import score, verdict

    registry = ctx.registry
    shadow = registry.shadow(policy.name)
    if shadow is None:
        return None
    model, _ = load_champion(shadow, policy, ctx.config.registry_uri)
    scores = score(policy, shadow, model, window, mon.champion_metric)
    action, why = verdict(policy, history, scores)
    if action == "reject":
        registry.tag(policy.name, shadow.version, {"kaizen.status": "rejected", "kaizen.rejected_by": ctx.draft.id})
        registry.drop_shadow(policy.name)
    return action, why, scores, shadow


def promote_shadow(ctx: RunContext, policy: Policy, champion: Any, shadowed: tuple, mon: Any) -> Record:
    from kaizen.promotion import StaleChampion, commit

    draft, registry = ctx.draft, ctx.registry
    _action, why, scores, shadow = shadowed
    draft.sections["trigger"] = {"monitor": mon.to_dict(), "shadow": scores}
    draft.sections["challenger"] = {"version": shadow.version, "metric": policy.model.metric,
                                    "window_metric": scores.get("window_metric")}
    draft.step(Step.PROMOTING, version=shadow.version, replaced=champion.version)
    try:
        commit(registry, policy.name, shadow.version, metric=policy.model.metric, cycle_id=draft.id,
               reason=f"replaced by shadow version {shadow.version} in cycle {draft.id}",
               judged_against=shadow.tags.get("kaizen.shadow_of"))
    except StaleChampion as exc:
        registry.tag(policy.name, shadow.version, {"kaizen.status": "rejected"})
        registry.drop_shadow(policy.name)
        draft.reasons[:0] = [str(exc), why]
        return draft.finish("rejected")
    registry.drop_shadow(policy.name)
    draft.sections["champion"].update(promoted=shadow.version, replaced=champion.version)
    draft.step(Step.PROMOTED, version=shadow.version, replaced=champion.version)
    draft.reasons[:0] = [f"promoted shadow version {shadow.version} to champion (was {champion.version})", why]
    return draft.finish("promoted")


def promote_or_wait(ctx: RunContext, policy: Policy, champion: str, version: str, gated: str, judged: Any) -> Record:
    from kaizen.promotion import StaleChampion, commit

    draft, registry = ctx.draft, ctx.registry
    of = f" (refit of version {gated})" if version != gated else ""
    if policy.promotion.mode == "shadow":
        registry.tag(policy.name, version, {"kaizen.status": "shadow", "kaizen.shadow_of": champion,
                                            "kaizen.shadow_since": draft.id})
        registry.set_shadow(policy.name, version)
        draft.reasons.insert(0, f"promotion mode is shadow: version {version}{of} is scored beside champion "
                                f"{champion} on the next {policy.promotion.shadow_windows} windows and promoted if it "
                                f"wins at least {policy.promotion.shadow_min_wins} of them")
        return draft.finish("shadowing")
    if policy.promotion.mode == "manual":
        registry.tag(policy.name, version, {"kaizen.status": "awaiting_approval"})
        draft.reasons.insert(0, f"promotion mode is manual: version {version}{of} awaits "
                                f"`kaizen approve {draft.id}` or `kaizen reject {draft.id}`")
        return draft.finish("awaiting_approval")
    draft.step(Step.PROMOTING, version=version, replaced=champion)
    try:
        commit(registry, policy.name, version, metric=policy.model.metric,
               reason=f"replaced by version {version} in cycle {draft.id}", cycle_id=draft.id,
               judged_against=champion, holdout_metric=judged.challenger["holdout_metric"])
    except StaleChampion as exc:
        registry.tag(policy.name, version, {"kaizen.status": "rejected"})
        draft.reasons.insert(0, str(exc))
        return draft.finish("rejected")
    draft.sections["champion"].update(promoted=version, replaced=champion)
    draft.step(Step.PROMOTED, version=version, replaced=champion)
    draft.reasons.insert(0, f"promoted version {version}{of} to champion (was {champion})")
    return draft.finish("promoted")
