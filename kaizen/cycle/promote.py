"""The cycle's last word: promote, wait for a person, shadow, or reject; a shadow's verdict; an automatic rollback.

Every function returns a value (an :class:`Outcome`: the decision, its sentence, the champion
section's new keys); the registry writes they make (tags, aliases, the commit) are the step's job,
the record is the orchestrator's (:mod:`kaizen.cycle`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from kaizen.data.window import Window
from kaizen.past import Past
from kaizen.policy import Policy
from kaizen.run.journal import Step

__all__ = ["Outcome", "ShadowVerdict", "auto_rollback_reason", "promote_shadow", "settle", "shadow_verdict"]

log = logging.getLogger("kaizen.cycle")


@dataclass(frozen=True)
class Outcome:
    """What the cycle decided at the end: ``decision``, its first reason, the champion section's new keys."""

    decision: str
    reason: str
    champion: dict[str, Any] = field(default_factory=dict)
    also: tuple[str, ...] = ()   # further sentences, after the decision's own


def auto_rollback_reason(policy: Policy, champion: Any, mon: Any, cur_p: Any, window: Window, past: Past,
                         seed: int | None) -> str | None:
    """Why the champion is rolled back to the one it replaced (its realised metric worse beyond noise), or None."""
    from kaizen.metrics import standard_error
    from kaizen.monitor.rules.rollback import check_auto_rollback

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
                            pos_label=policy.model.positive_label, seed=seed)
        se = float(se) if np.isfinite(se) else None
    return check_auto_rollback(policy, list(past.records), mon.champion_metric, mon.labelled_rows, champion.version,
                               window_se=se)


@dataclass(frozen=True)
class ShadowVerdict:
    action: str                # "promote", "reject" or "wait"
    why: str
    scores: dict[str, Any]
    version: Any               # kaizen.registry.Version


def shadow_verdict(work: Any, policy: Policy, window: Window, mon: Any, past: Past) -> ShadowVerdict | None:
    """The verdict on a version in shadow after this window, or None; a rejected shadow is settled here."""
    from kaizen.cycle.shadow import score, verdict
    from kaizen.registry.champion import load_champion

    registry = work.registry
    shadow = registry.shadow(policy.name)
    if shadow is None:
        return None
    model, _ = load_champion(registry, shadow, policy, cache=work.runtime.models if work.runtime else None,
                             workdir=work.workdir)
    scores = score(policy, shadow, model, window, mon.champion_metric)
    action, why = verdict(policy, list(past.records), scores)
    if action == "reject":
        registry.tag(policy.name, shadow.version, {"kaizen.status": "rejected", "kaizen.rejected_by": work.cycle_id})
        registry.drop_shadow(policy.name)
    return ShadowVerdict(action, why, scores, shadow)


def promote_shadow(work: Any, policy: Policy, champion: Any, shadowed: ShadowVerdict) -> Outcome:
    from kaizen.registry.promotion import PromotionRefused, commit

    registry, shadow = work.registry, shadowed.version
    work.journal(Step.PROMOTING, version=shadow.version, replaced=champion.version)
    try:
        commit(registry, policy.name, shadow.version, metric=policy.model.metric, cycle_id=work.cycle_id,
               reason=f"replaced by shadow version {shadow.version} in cycle {work.cycle_id}",
               judged_against=shadow.tags.get("kaizen.shadow_of"))
    except PromotionRefused as exc:
        registry.tag(policy.name, shadow.version, {"kaizen.status": "rejected"})
        registry.drop_shadow(policy.name)
        return Outcome("rejected", str(exc), also=(shadowed.why,))
    registry.drop_shadow(policy.name)
    work.journal(Step.PROMOTED, version=shadow.version, replaced=champion.version)
    return Outcome("promoted", f"promoted shadow version {shadow.version} to champion (was {champion.version})",
                   {"promoted": shadow.version, "replaced": champion.version}, also=(shadowed.why,))


def settle(work: Any, policy: Policy, champion: str, version: str, gated: str, judged: Any,
           ask: Any = None) -> Outcome:
    """Promote ``version`` (the refit of ``gated``, or ``gated`` itself), or wait, shadow or reject it.

    ``ask`` (:func:`kaizen.monitor.rules.ambiguity`): the evidence is ambiguous; its verdict ``asks``
    waits for a person and ``blocks`` rejects, whatever ``promotion.mode`` says.
    """
    from kaizen.registry.promotion import PromotionRefused, commit

    registry, cid = work.registry, work.cycle_id
    of = f" (refit of version {gated})" if version != gated else ""
    answer = f"`kaizen approve {cid}` or `kaizen reject {cid}`"
    if ask is not None and ask.verdict == "asks":
        registry.tag(policy.name, version, {"kaizen.status": "awaiting_approval", "kaizen.ambiguous": "true"})
        return Outcome("awaiting_approval", f"{ask.message}: version {version}{of} awaits {answer}")
    if ask is not None:
        registry.tag(policy.name, version, {"kaizen.status": "rejected", "kaizen.rejected_by": cid})
        return Outcome("rejected", ask.message)
    if policy.promotion.mode == "shadow":
        registry.tag(policy.name, version, {"kaizen.status": "shadow", "kaizen.shadow_of": champion,
                                            "kaizen.shadow_since": cid})
        registry.set_shadow(policy.name, version)
        return Outcome("shadowing", f"promotion mode is shadow: version {version}{of} is scored beside champion "
                                    f"{champion} on the next {policy.promotion.shadow_windows} windows and promoted "
                                    f"if it wins at least {policy.promotion.shadow_min_wins} of them")
    if policy.promotion.mode == "manual":
        registry.tag(policy.name, version, {"kaizen.status": "awaiting_approval"})
        return Outcome("awaiting_approval", f"promotion mode is manual: version {version}{of} awaits {answer}")
    work.journal(Step.PROMOTING, version=version, replaced=champion)
    try:
        commit(registry, policy.name, version, metric=policy.model.metric,
               reason=f"replaced by version {version} in cycle {cid}", cycle_id=cid,
               judged_against=champion, holdout_metric=judged.challenger["holdout_metric"])
    except PromotionRefused as exc:  # a stale champion, or (scale-out) a fenced epoch
        registry.tag(policy.name, version, {"kaizen.status": "rejected"})
        return Outcome("rejected", str(exc))
    work.journal(Step.PROMOTED, version=version, replaced=champion)
    return Outcome("promoted", f"promoted version {version}{of} to champion (was {champion})",
                   {"promoted": version, "replaced": champion})
