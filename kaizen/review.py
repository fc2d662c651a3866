"""A person's answer to a challenger that waits for approval (promotion mode "manual")."""

from __future__ import annotations

import getpass

from kaizen.config import Config
from kaizen.errors import KaizenError
from kaizen.ledger import Ledger, Record, new_cycle_id

__all__ = ["approve", "reject", "pending"]


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


def approve(config: Config, record_id: str, *, actor: str | None = None, registry: object = None) -> Record:
    """Promote the challenger of ``record_id``, if the champion is still the one it was judged against."""
    from kaizen.cycle import _commit, _Draft
    from kaizen.registry import Registry

    ledger = Ledger(config.ledger_path)
    rec = _waiting(ledger, record_id)
    registry = registry or Registry.from_config(config)
    version = str(rec.challenger.get("version"))
    registry.version(rec.policy, version)  # raises if it is gone
    judged = str(rec.champion.get("version"))
    now = registry.champion(rec.policy)
    if now is None or now.version != judged:
        raise KaizenError(f"the champion of {rec.policy!r} changed since {record_id} was judged "
                          f"(then version {judged}, now {now.version if now else 'none'}); "
                          f"reject it and let a new cycle judge a challenger against the current champion")
    actor = actor or getpass.getuser()
    draft = _Draft(id=new_cycle_id(rec.policy), policy=rec.policy, kind="approval")
    draft.sections["champion"] = {"version": judged}
    draft.sections["challenger"] = {"version": version}
    metric = rec.challenger.get("metric") or rec.champion.get("metric") or ""
    _commit(registry, rec.policy, metric, version, draft, f"replaced by version {version}, approved by {actor}",
            rec.challenger.get("holdout_metric"))
    draft.reasons.append(f"{actor} approved {record_id}: version {version} promoted to champion (was {judged})")
    return ledger.append(draft.finish("promoted", resolves=record_id, actor=actor))


def reject(config: Config, record_id: str, *, actor: str | None = None, reason: str = "",
           registry: object = None) -> Record:
    """Turn down the challenger of ``record_id``; the champion stays."""
    from kaizen.cycle import _Draft
    from kaizen.registry import Registry

    ledger = Ledger(config.ledger_path)
    rec = _waiting(ledger, record_id)
    registry = registry or Registry.from_config(config)
    version = str(rec.challenger.get("version"))
    actor = actor or getpass.getuser()
    registry.tag(rec.policy, version, {"kaizen.status": "rejected", "kaizen.rejected_by": actor})
    draft = _Draft(id=new_cycle_id(rec.policy), policy=rec.policy, kind="rejection")
    draft.sections["champion"] = {"version": rec.champion.get("version")}
    draft.sections["challenger"] = {"version": version}
    draft.reasons.append(f"{actor} rejected {record_id}: version {version} stays a challenger"
                         + (f" ({reason})" if reason else ""))
    return ledger.append(draft.finish("rejected", resolves=record_id, actor=actor))
