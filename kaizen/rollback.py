"""Undo a promotion: ``kaizen rollback`` and the automatic rollback of a champion that disappoints.

A rollback moves ``@champion`` back to a version that served before, through the
one runner (:mod:`kaizen.runner`: the policy's lock, the journal, exactly one
record of kind ``rollback``) and the one commit point
(:func:`kaizen.promotion.commit`). It is logged like a promotion: decision
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

Automatic rollback (``[promotion] auto_rollback_windows = M``, 0 = off): for the
first M labelled windows after a gated promotion (a cycle's, or an approval's),
:func:`check_auto_rollback` compares the new champion's realised metric with the
holdout metric of the champion it retired (the promoting record's
``champion.holdout_metric``). A window counts when it has at least
``trigger.min_labelled_rows`` labelled rows. With ``drop`` read as the policy reads
it (a difference for scores, relative for errors), ``tol`` =
``auto_rollback_tolerance`` and ``z`` = ``auto_rollback_se``, it fires when

- the mean drop over the k windows seen so far exceeds ``max(tol, z × SE_mean)``,
  ``SE_mean = sqrt(Σ SE_i²) / k``, or
- this window's drop exceeds ``max(2 tol, z × SE)``,

where SE is the window metric's standard error (:func:`kaizen.metrics.standard_error`);
a window whose SE is unknown is judged on the tolerance alone. One window's metric
moves by 1–2 points at 400–1,000 rows: the SE term keeps noise from undoing a
promotion the gates approved.
"""

from __future__ import annotations

import getpass
import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from kaizen.config import Config
from kaizen.errors import KaizenError, RegistryError
from kaizen.history import RETIRED_TAGS, new_champion
from kaizen.journal import Step
from kaizen.ledger import Ledger, Record
from kaizen.runner import RunContext, run

__all__ = ["BASELINE_AT_RETIREMENT", "RollbackPlan", "RollbackRefused", "check_auto_rollback", "plan_rollback",
           "rollback", "rollback_body"]

log = logging.getLogger("kaizen.rollback")

#: version tag: the performance baseline when a rollback took the version off (restored with it)
BASELINE_AT_RETIREMENT = "kaizen.baseline_at_retirement"
ARTIFACTS_TAG = "kaizen.artifacts"  # kaizen.retention.ARTIFACTS_TAG (not imported: retention pulls in more)
#: kinds of promotion whose record holds the retired champion's holdout metric (gated promotions)
GATED_KINDS = ("cycle", "approval")


class RollbackRefused(KaizenError):
    """A rollback that cannot be done (no such version, files gone, never served, already champion); nothing moved."""


@dataclass(frozen=True)
class RollbackPlan:
    current: str  # the champion now
    target: str  # the version to restore
    chosen: str  # how the target was chosen
    baseline: float | None  # the baseline it last served with, if known
    baseline_source: str


def rollback(config: Config, policy_name: str, *, to: str | None = None, reason: str = "", actor: str | None = None,
             registry: Any = None, automatic: bool = False, force: bool = False, wait_seconds: float = 0.0,
             metric: str = "") -> Record:
    """Restore a previous champion of ``policy_name`` (the model name); return the ``rollback`` record.

    Raises :class:`RollbackRefused` before anything is written when the plan is refused (module
    docstring), and :class:`KaizenError` naming the failed record when the run failed under the lock
    (e.g. the model cannot be loaded). ``metric``: the policy's metric (read from the log if empty).
    """
    from kaizen.registry import reaching

    actor = actor or ("kaizen" if automatic else getpass.getuser())
    records = Ledger(config.ledger_path).records()
    with reaching(config.tracking_uri, config.registry_uri):  # an unreachable registry is one line, not a traceback
        if registry is None:
            from kaizen.registry import Registry

            registry = Registry.from_config(config)
        plan_rollback(registry, policy_name, records, to=to, force=force)

    def body(ctx: RunContext) -> Record:
        return rollback_body(ctx, policy_name, to, reason, actor, force=force, automatic=automatic, metric=metric)

    out = run(config, policy_name, body, kind="rollback", registry=registry, wait_seconds=wait_seconds)
    if out.decision == "failed":
        raise KaizenError(f"rollback of {policy_name!r} failed ({out.id}): {out.error}")
    return out


def rollback_body(ctx: RunContext, policy_name: str, to: str | None, reason: str, actor: str, *,
                  force: bool = False, automatic: bool = False, metric: str = "") -> Record:
    """The rollback inside a running :class:`~kaizen.runner.RunContext` (its lock held); ends the draft.

    Usable from a cycle's body: the draft becomes kind ``rollback`` (once the plan is accepted) and
    keeps the sections already written. Raises :class:`RollbackRefused` before anything is moved.
    """
    from kaizen.promotion import commit

    draft, reg, name = ctx.draft, ctx.registry, policy_name
    records = ctx.ledger.records()
    metric = metric or _metric(records, name)
    plan = plan_rollback(reg, name, records, to=to, force=force, metric=metric)
    _loadable(name, plan.target)
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


def _loadable(name: str, version: str) -> None:
    """Refuse a version whose model cannot be loaded (files gone, unreadable, its flavour missing)."""
    try:
        import mlflow.pyfunc

        mlflow.pyfunc.load_model(f"models:/{name}/{version}")
    except Exception as exc:
        text = " ".join(str(exc).split())[:300]
        raise RollbackRefused(f"cannot roll back {name!r} to version {version}: its model cannot be loaded "
                              f"({type(exc).__name__}: {text})") from exc


def _finite(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


# -- automatic rollback -------------------------------------------------------------------------------

def check_auto_rollback(policy: Any, history: list[Record], window_metric: float | None, labelled_rows: int,
                        champion_version: str, *, window_se: float | None = None) -> str | None:
    """Why ``champion_version`` should be rolled back after this window (module docstring), or None.

    ``history``: the policy's records, oldest first, not yet including this cycle's (a cycle's bounded
    read; a promotion older than it is not checked). ``window_metric``, ``labelled_rows``: the
    champion's metric on this window's labelled rows and their number. ``window_se``: that metric's
    standard error in metric units (:func:`kaizen.metrics.standard_error`); None: unknown (for
    accuracy it is then computed from the metric and the rows).
    """
    from kaizen.metrics import drop

    spec, metric = policy.promotion, policy.model.metric
    need = policy.trigger.min_labelled_rows
    if spec.auto_rollback_windows <= 0 or not _finite(window_metric) or labelled_rows < need:
        return None
    mine = [r for r in history if r.policy == policy.name]
    at = next((i for i in range(len(mine) - 1, -1, -1) if new_champion(mine[i]) == str(champion_version)), None)
    if at is None or mine[at].kind not in GATED_KINDS:
        return None  # not promoted in the history read, or not by the gates (bootstrap, retrain, a rollback)
    promo = mine[at]
    judged = next((r for r in mine[:at] if r.id == promo.resolves), promo) if promo.resolves else promo
    ref, old = (judged.champion or {}).get("holdout_metric"), (promo.champion or {}).get("replaced")
    if not _finite(ref) or old is None:
        return None
    seen: dict[Any, tuple[float, float | None]] = {}  # window -> (drop, SE of the drop)
    for r in mine[at + 1:]:
        ch, tr = r.champion or {}, r.trigger or {}
        m, n = ch.get("window_metric"), (tr.get("monitor") or {}).get("labelled_rows") or 0
        if r.kind != "cycle" or str(ch.get("version")) != str(champion_version) or not _finite(m) or n < need:
            continue
        seen[tuple((r.window or {}).get("batches") or ()) or r.id] = (drop(metric, m, ref), _se_of(r, metric, ref))
    if window_se is None and metric == "accuracy":
        window_se = math.sqrt(max(window_metric * (1 - window_metric), 0.0) / labelled_rows)
    d_now = drop(metric, window_metric, ref)
    se_now = _to_drop_units(metric, window_se, ref)
    windows = [*seen.values(), (d_now, se_now)]
    k = len(windows)
    if k > spec.auto_rollback_windows:
        return None
    tol, z = spec.auto_rollback_tolerance, spec.auto_rollback_se or 0.0
    mean = sum(d for d, _ in windows) / k
    ses = [s for _, s in windows]
    se_mean = math.sqrt(sum(s * s for s in ses)) / k if all(_finite(s) for s in ses) else None
    thr_mean = max(tol, z * se_mean) if se_mean is not None else tol
    thr_one = max(2 * tol, z * se_now) if _finite(se_now) else 2 * tol
    head = (f"automatic rollback: champion v{champion_version} (promoted by {promo.kind} {promo.id}) realised "
            f"{metric} {window_metric:.4f} on {labelled_rows} labelled rows of this window, against {ref:.4f} of "
            f"the champion it retired (v{old}) on the holdout")
    rules = (f"(promotion.auto_rollback_tolerance = {tol:g}, auto_rollback_se = {spec.auto_rollback_se}, window "
             f"{k} of auto_rollback_windows = {spec.auto_rollback_windows})")
    if mean > thr_mean:
        se_txt = f" = max({tol:g}, {z:g} × SE {se_mean:.4f})" if se_mean is not None else " = the tolerance"
        return (f"{head}: the mean drop over {k} window(s) since the promotion is {mean:+.4f}, more than "
                f"{thr_mean:.4f}{se_txt} {rules}")
    if d_now > thr_one:
        se_txt = f" = max(2 × {tol:g}, {z:g} × SE {se_now:.4f})" if _finite(se_now) else " = 2 × the tolerance"
        return f"{head}: this window's drop is {d_now:+.4f}, more than {thr_one:.4f}{se_txt} {rules}"
    return None


def _to_drop_units(metric: str, se: float | None, ref: float) -> float | None:
    """A standard error in metric units, read as the policy reads a drop (relative to ``ref`` for errors)."""
    from kaizen.policy import HIGHER_IS_BETTER

    if not _finite(se):
        return None
    if HIGHER_IS_BETTER[metric]:
        return float(se)
    return float(se) / abs(ref) if ref else None


def _se_of(r: Record, metric: str, ref: float) -> float | None:
    """The standard error of a past window's metric, from its performance signal (stored in drop units)."""
    from kaizen.policy import HIGHER_IS_BETTER

    for s in (r.trigger or {}).get("signals") or ():
        if s.get("rule") == "performance_drop":
            d = s.get("details") or {}
            se, base = d.get("se"), d.get("baseline")
            if not _finite(se):
                return None
            if not HIGHER_IS_BETTER[metric]:  # relative to that cycle's baseline: back to metric units first
                se = se * abs(base) if _finite(base) else None
            return _to_drop_units(metric, se, ref)
    return None
