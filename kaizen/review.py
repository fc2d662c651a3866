"""A person's answer to a challenger that waits for approval (promotion mode "manual").

``approve`` and ``reject`` run through the one runner (:mod:`kaizen.runner`): they
take the policy's lock, are journalled, and append exactly one record that
``resolves`` the waiting one. An approval is refused when the champion changed
since the challenger was judged (:func:`kaizen.promotion.commit`).
"""

from __future__ import annotations

import getpass
from typing import Any

from kaizen.config import Config
from kaizen.errors import KaizenError
from kaizen.journal import Step
from kaizen.ledger import Ledger, Record
from kaizen.runner import RunContext, run

__all__ = ["approve", "pending", "reject"]


def pending(ledger: Ledger) -> list[Record]:
    """Records awaiting approval that nobody has answered yet."""
    records = ledger.records()
    answered = {r.resolves for r in records if r.resolves}
    return [r for r in records if r.decision == "awaiting_approval" and r.id not in answered]


def _waiting(ledger: Ledger, record_id: str) -> Record:
    rec = ledger.find(record_id)
    if rec is None:
        raise KaizenError(f"no record {record_id!r} in {ledger.path}")
    if rec.decision != "awaiting_approval":
        raise KaizenError(f"record {record_id} is {rec.decision!r}, not awaiting approval")
    done = ledger.resolution(record_id)
    if done is not None:
        raise KaizenError(f"record {record_id} was already answered: {done.decision} by {done.actor} ({done.id})")
    return rec


def approve(config: Config, record_id: str, *, actor: str | None = None, registry: Any = None,
            wait_seconds: float = 0.0) -> Record:
    """Promote the challenger of ``record_id``, if the champion is still the one it was judged against.

    Raises :class:`KaizenError` (nothing written) when the record is unknown, not waiting, already
    answered, or the champion changed since it was judged.
    """
    rec = _waiting(Ledger(config.ledger_path), record_id)
    actor = actor or getpass.getuser()
    judged = str(rec.champion.get("version"))
    version = str(rec.challenger.get("version"))
    if registry is None:
        from kaizen.registry import Registry

        registry = Registry.from_config(config)
    registry.version(rec.policy, version)  # raises if it is gone
    now = registry.champion(rec.policy)
    if now is None or now.version != judged:
        raise KaizenError(f"the champion of {rec.policy!r} changed since {record_id} was judged "
                          f"(then version {judged}, now {now.version if now else 'none'}); "
                          f"reject it and let a new cycle judge a challenger against the current champion")

    def body(ctx: RunContext) -> Record:
        from kaizen.promotion import commit

        _waiting(ctx.ledger, record_id)  # re-read under the lock: nobody answered in between
        draft = ctx.draft
        draft.sections["champion"] = {"version": judged}
        draft.sections["challenger"] = {"version": version}
        metric = rec.challenger.get("metric") or rec.champion.get("metric") or ""
        draft.step(Step.PROMOTING, version=version, replaced=judged)
        commit(ctx.registry, rec.policy, version, metric=metric, cycle_id=draft.id,
               reason=f"replaced by version {version}, approved by {actor}", judged_against=judged,
               holdout_metric=rec.challenger.get("holdout_metric"))
        draft.sections["champion"]["replaced"] = judged
        draft.step(Step.PROMOTED, version=version, replaced=judged)
        draft.reasons.append(f"{actor} approved {record_id}: version {version} promoted to champion (was {judged})")
        return draft.finish("promoted", resolves=record_id, actor=actor)

    out = run(config, rec.policy, body, kind="approval", registry=registry, wait_seconds=wait_seconds)
    if out.decision == "failed":
        raise KaizenError(f"approval of {record_id} failed ({out.id}): {out.error}")
    return out


def reject(config: Config, record_id: str, *, actor: str | None = None, reason: str = "",
           registry: Any = None, wait_seconds: float = 0.0) -> Record:
    """Turn down the challenger of ``record_id``; the champion stays."""
    rec = _waiting(Ledger(config.ledger_path), record_id)
    actor = actor or getpass.getuser()
    version = str(rec.challenger.get("version"))

    def body(ctx: RunContext) -> Record:
        _waiting(ctx.ledger, record_id)
        ctx.registry.tag(rec.policy, version, {"kaizen.status": "rejected", "kaizen.rejected_by": actor})
        draft = ctx.draft
        draft.sections["champion"] = {"version": rec.champion.get("version")}
        draft.sections["challenger"] = {"version": version}
        draft.reasons.append(f"{actor} rejected {record_id}: version {version} stays a challenger"
                             + (f" ({reason})" if reason else ""))
        return draft.finish("rejected", resolves=record_id, actor=actor)

    out = run(config, rec.policy, body, kind="rejection", registry=registry, wait_seconds=wait_seconds)
    if out.decision == "failed":
        raise KaizenError(f"rejection of {record_id} failed ({out.id}): {out.error}")
    return out
