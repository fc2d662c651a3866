"""Undo a promotion: ``kaizen rollback`` and the automatic rollback of a champion that disappoints.

A rollback moves ``@champion`` back to a version that served before, through the
one runner (:mod:`kaizen.run.runner`: the policy's lock, the journal, exactly one
record of kind ``rollback``) and the one commit point
(:func:`kaizen.registry.promotion.commit`). It is logged like a promotion: decision
``promoted``, ``champion.replaced`` the version taken off, ``challenger.version``
(and ``champion.promoted``) the version restored, ``challenger.rollback`` the
details (who, why, automatic, how the version was chosen, the baseline restored),
``actor`` who asked. The version taken off is tagged ``retired`` with the reason,
the restored one ``champion`` (its old ``kaizen.retired_*`` tags removed).

Refused (:class:`RollbackRefused`, nothing moved) for the current champion, a
version whose model files retention deleted (``kaizen.artifacts`` tag) or that
cannot be loaded, and — unless ``force`` — one that never served (no
``kaizen.promoted_at`` tag and no record of it as champion). Without ``to`` the
version is the one that served before the current champion: the version its
promoting record replaced, else the registry's most recently retired version.

The restored version's performance baseline is the one it last served with: the
``kaizen.baseline_at_retirement`` tag a rollback leaves on the version it takes off,
else the promotion log (the baseline its last cycle as champion read, or the one
its promotion set); if none is known the baseline is left as it is.

The automatic rollback's rule (when a new champion disappoints) is in the trigger family:
:mod:`kaizen.monitor.rules.rollback`.
"""
from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kaizen.errors import KaizenError, RegistryError
from kaizen.ledger import Record
from kaizen.registry.history import RETIRED_TAGS, new_champion
from kaizen.run.journal import Step
from kaizen.run.runner import RunContext

__all__ = ["BASELINE_AT_RETIREMENT", "RollbackPlan", "RollbackRefused", "plan_rollback",
           "rollback_body"]

log = logging.getLogger("kaizen.cycle.rollback")

#: version tag: the performance baseline when a rollback took the version off (restored with it)
BASELINE_AT_RETIREMENT = "kaizen.baseline_at_retirement"
ARTIFACTS_TAG = "kaizen.artifacts"  # kaizen.commands.retention.ARTIFACTS_TAG (not imported: retention pulls in more)


class RollbackRefused(KaizenError):
    """A rollback that cannot be done (no such version, files gone, never served, already champion); nothing moved."""


@dataclass(frozen=True)
class RollbackPlan:
    current: str  # the champion now
    target: str  # the version to restore
    chosen: str  # how the target was chosen
    baseline: float | None  # the baseline it last served with, if known
    baseline_source: str


def rollback_body(ctx: RunContext, policy_name: str, to: str | None, reason: str, actor: str, *,
                  force: bool = False, automatic: bool = False, metric: str = "") -> Record:
    """The rollback inside a running :class:`~kaizen.run.runner.RunContext` (its lock held); ends the draft.

    Usable from a cycle's body: the draft becomes kind ``rollback`` (once the plan is accepted) and
    keeps the sections already written. Raises :class:`RollbackRefused` before anything is moved.
    """
    from kaizen.registry.promotion import commit

    draft, reg, name = ctx.draft, ctx.registry, policy_name
    records = ctx.ledger.records()
    metric = metric or _metric(records, name)
    plan = plan_rollback(reg, name, records, to=to, force=force, metric=metric)
    _loadable(reg, name, plan.target, ctx.workdir)
    before = reg.baseline(name)
    why = reason.strip() or "no reason given"
    draft.kind = "rollback"
    draft.sections["champion"] = {**draft.sections.get("champion", {}), "version": plan.current, "baseline": before}
    draft.sections["challenger"] = {"version": plan.target, "rollback": {
        "automatic": automatic, "actor": actor, "reason": why, "chosen": plan.chosen, "forced": force,
        "baseline": plan.baseline, "baseline_source": plan.baseline_source}}
    who = "automatic rollback" if automatic else f"rollback by {actor}"
    draft.reasons.insert(0, f"{who}: version {plan.target} restored as champion (was {plan.current}): {why}")
    retire = f"rolled back to version {plan.target} by {actor} in {draft.id}: {why}"
    draft.step(Step.PROMOTING, version=plan.target, replaced=plan.current, retire_reason=retire,
               restore_baseline=plan.baseline)
    if before is not None:
        reg.tag(name, plan.current, {BASELINE_AT_RETIREMENT: repr(float(before))})
    try:
        commit(reg, name, plan.target, metric=metric, reason=retire, cycle_id=draft.id, judged_against=plan.current)
    except KaizenError:
        raise
    except Exception as exc:  # the alias may have moved before the bookkeeping failed: the record must say so
        now = reg.champion(name)
        if now is None or now.version != plan.target:
            raise
        draft.reasons.append(f"the champion alias moved, but its bookkeeping failed: {type(exc).__name__}: {exc}")
    draft.sections["champion"].update(replaced=plan.current, promoted=plan.target)
    draft.step(Step.PROMOTED, version=plan.target, replaced=plan.current)
    draft.reasons.extend(_after(reg, name, plan, before))
    return draft.finish("promoted", actor=actor)


def _after(reg: Any, name: str, plan: RollbackPlan, before: float | None) -> list[str]:
    """The bookkeeping after the alias moved (best effort: the record says what did not happen)."""
    out = []
    try:
        reg.untag(name, plan.target, RETIRED_TAGS)
    except Exception as exc:
        log.warning("could not remove the retirement tags of %s v%s: %s", name, plan.target, exc)
    if plan.baseline is None:
        shown = "none" if before is None else f"{before:.4f}"
        return [f"performance baseline left at {shown}: none is known for version {plan.target} when it last served"]
    try:
        reg.set_baseline(name, plan.baseline)
    except Exception as exc:
        return [f"performance baseline NOT restored to {plan.baseline:.4f} ({type(exc).__name__}: {exc})"]
    shown = "none" if before is None else f"{before:.4f}"
    out.append(f"performance baseline restored to {plan.baseline:.4f} (was {shown}): {plan.baseline_source}")
    return out


# -- the plan: which version, and may it serve ------------------------------------------------------

def plan_rollback(registry: Any, name: str, records: list[Record], *, to: str | None = None, force: bool = False,
                  metric: str = "") -> RollbackPlan:
    """Which version a rollback of ``name`` restores, and the baseline it restores; :class:`RollbackRefused` if none.

    Cheap checks only (registry tags, the log); :func:`rollback_body` also loads the model.
    """
    cur = registry.champion(name)
    if cur is None:
        raise RollbackRefused(f"model {name!r} has no champion: there is nothing to roll back")
    target, chosen = (str(to), "named with --to") if to is not None else _previous(registry, name, records,
                                                                                   cur.version)
    if target == cur.version:
        raise RollbackRefused(f"version {target} is already the champion of {name!r}: nothing to roll back")
    try:
        v = registry.version(name, target)
    except RegistryError as exc:
        raise RollbackRefused(f"cannot roll back {name!r} to version {target}: {exc}") from exc
    gone = v.tags.get(ARTIFACTS_TAG)
    if gone:
        at = v.tags.get("kaizen.artifacts_deleted_at")
        raise RollbackRefused(f"cannot roll back {name!r} to version {target}: its model files were deleted by "
                              f"retention (kaizen.artifacts = {gone}{' at ' + at if at else ''}); it cannot serve "
                              "again")
    if not force and not _served(records, name, v):
        raise RollbackRefused(f"cannot roll back {name!r} to version {target}: it never served (no kaizen.promoted_at "
                              "tag, no record of it as champion); pass --force to make it champion without gates")
    base, source = _baseline_when_served(records, name, v, metric or _metric(records, name))
    return RollbackPlan(current=cur.version, target=target, chosen=chosen, baseline=base, baseline_source=source)


def _previous(registry: Any, name: str, records: list[Record], current: str) -> tuple[str, str]:
    """The version that served before ``current``: from its promoting record, else the registry's retired tags."""
    for r in reversed(records):
        if r.policy != name:
            continue
        ch = r.champion or {}
        if new_champion(r) == current:
            if ch.get("replaced") is None:
                raise RollbackRefused(f"version {current} is the first champion of {name!r} ({r.kind} {r.id}): "
                                      "there is no earlier one to roll back to")
            return str(ch["replaced"]), f"the version it replaced ({r.kind} {r.id})"
        if str(ch.get("adopted")) == current and (ch.get("foreign") or {}).get("expected") is not None:
            return str(ch["foreign"]["expected"]), f"the version it displaced outside Kaizen (noticed by {r.id})"
    retired = sorted((v for v in registry.versions(name) if v.tags.get("kaizen.status") == "retired"
                      and v.version != current),
                     key=lambda v: (v.tags.get("kaizen.retired_at", ""), int(v.version)), reverse=True)
    if retired:
        return retired[0].version, "the most recently retired version (registry tags; no promotion of the " \
                                   f"champion v{current} in the log)"
    raise RollbackRefused(f"no earlier champion of {name!r} is known (promotion log, registry tags): name one "
                          "with --to")


def _served(records: list[Record], name: str, v: Any) -> bool:
    if v.tags.get("kaizen.promoted_at"):
        return True
    for r in records:
        ch = r.champion or {}
        if r.policy == name and (new_champion(r) == v.version or str(ch.get("adopted")) == v.version
                                 or (r.kind == "cycle" and str(ch.get("version")) == v.version)):
            return True
    return False


def _baseline_when_served(records: list[Record], name: str, v: Any, metric: str) -> tuple[float | None, str]:
    """The performance baseline ``v`` last served with, and where that number comes from."""
    tag = v.tags.get(BASELINE_AT_RETIREMENT)
    if tag:
        try:
            return float(tag), f"tag {BASELINE_AT_RETIREMENT} of version {v.version}, set when it was rolled back"
        except ValueError:
            log.warning("%s v%s: tag %s is not a number: %r", name, v.version, BASELINE_AT_RETIREMENT, tag)
    by_id = {r.id: r for r in records}
    value, source = None, ""
    for r in records:
        if r.policy != name:
            continue
        ch, tr = r.champion or {}, r.trigger or {}
        if new_champion(r) == v.version:
            judged = by_id.get(r.resolves or "", r)
            if r.kind == "bootstrap":
                got = (r.challenger or {}).get("holdout_metric")
            elif r.kind == "rollback":
                got = ((r.challenger or {}).get("rollback") or {}).get("baseline")
            else:
                got = _better(metric, _read_baseline(judged.trigger or {}),
                              (judged.challenger or {}).get("holdout_metric"))
            if _finite(got):
                value, source = float(got), f"set when it was promoted ({r.kind} {r.id})"
        elif r.kind == "cycle" and str(ch.get("version")) == v.version and _finite(_read_baseline(tr)):
            value, source = float(_read_baseline(tr)), f"the baseline of its last cycle as champion ({r.id})"
    return value, source


def _read_baseline(trigger: Mapping[str, Any]) -> float | None:
    """The baseline a cycle left behind: its re-baselining if it reset it, else the one it read."""
    return trigger.get("rebaseline") if trigger.get("rebaseline") is not None else trigger.get("baseline")


def _better(metric: str, a: float | None, b: float | None) -> float | None:
    """The better level of ``metric`` of two (either may be missing): what ``raise_baseline`` leaves."""
    if not _finite(a):
        return b if _finite(b) else None
    if not _finite(b):
        return a
    if not metric:
        return b
    from kaizen.metrics import improvement

    return b if improvement(metric, float(b), float(a)) > 0 else a


def _metric(records: list[Record], name: str) -> str:
    from kaizen.policy import HIGHER_IS_BETTER

    for r in reversed(records):
        if r.policy == name:
            for section in (r.challenger or {}, r.champion or {}):
                if section.get("metric") in HIGHER_IS_BETTER:
                    return str(section["metric"])
    return ""


def _loadable(registry: Any, name: str, version: str, workdir: Path) -> None:
    """Refuse a version whose model cannot be loaded (files gone, unreadable, its flavour missing)."""
    try:
        from kaizen.registry.models import load_model

        load_model(registry, name, version, task="regression", workdir=workdir)
    except Exception as exc:
        text = " ".join(str(exc).split())[:300]
        raise RollbackRefused(f"cannot roll back {name!r} to version {version}: its model cannot be loaded "
                              f"({type(exc).__name__}: {text})") from exc


def _finite(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


# -- automatic rollback -------------------------------------------------------------------------------

