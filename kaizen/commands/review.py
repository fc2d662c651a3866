"""A person's answer to a challenger that waits for approval (promotion mode "manual").

``approve`` and ``reject`` run through the one runner (:mod:`kaizen.run.runner`): they
take the policy's lock, are journalled, and append exactly one record that
``resolves`` the waiting one. An approval is refused when the champion changed
since the challenger was judged (:func:`kaizen.registry.promotion.commit`).

Approvals expire: a waiting record may be approved for ``[promotion]
approval_expires`` of its policy (default 7 days; ``false``: no limit) after it
was decided. Past that, ``approve`` refuses it, ``kaizen log`` shows it as
``(expired)``, and :func:`expire_pending` (called before each cycle) records a
``rejected`` resolution for it (kind ``rejection``, actor ``kaizen``). The limit is
read from the policy file whose model is the record's policy; a policy that is
not in the policies folder gets the default.

Approvals are superseded: an open approval is stale once a newer challenger of the same policy
awaits approval, or once the champion changed after it was judged (a promotion, an approval of
another challenger, a rollback, a bootstrap, or a later cycle that found another champion, e.g. one
moved by hand). Which approvals are stale is a function of the log alone (:func:`superseding`), so
``approve`` refuses a stale one naming the record that superseded it, and the log, ``show`` and
the review pages show it as superseded, from the moment the newer record is written.
:func:`supersede_stale` then closes each with a record of its own (decision ``superseded``, kind
``rejection``, actor ``kaizen``, its first reason naming the newer record), through the runner like
any other answer. It runs after every run that can make approvals stale (``kaizen once``, the
daemon's and the worker's cycles through :func:`kaizen.commands.tick.tick`, ``approve``,
``rollback``) and again before every cycle: a process that dies between the newer record and the
closing ones leaves nothing open that the next cycle does not close.

``approve`` and ``reject`` take a ``comment`` (``--comment``, the pages' comment field), kept in the
answer's record (:attr:`kaizen.ledger.Record.comment`, credentials redacted) and shown by ``kaizen
log``/``show`` and the pages. Ids may be given as a unique prefix (:func:`kaizen.ui.logview.match_id`).
"""

from __future__ import annotations

import getpass
import logging
from datetime import UTC, datetime
from typing import Any

from kaizen.config import Config
from kaizen.errors import KaizenError
from kaizen.ledger import PromotionLog, Record
from kaizen.run.backend import ledger_for
from kaizen.run.journal import Step
from kaizen.run.runner import RunContext, run
from kaizen.ui.logview import Stale, superseding

log = logging.getLogger("kaizen.commands.review")

__all__ = ["Stale", "approve", "expire_pending", "expired", "expires_at", "pending", "reject", "resolve_id",
           "supersede_stale", "superseding"]


def pending(ledger: PromotionLog) -> list[Record]:
    """Records awaiting approval that nobody has answered yet."""
    records = ledger.records()
    answered = {r.resolves for r in records if r.resolves}
    return [r for r in records if r.decision == "awaiting_approval" and r.id not in answered]


def resolve_id(ledger: PromotionLog, ref: str) -> str:
    """The id of the record ``ref`` names in ``ledger``: the id, or a unique prefix of one."""
    from kaizen.ui.logview import match_id

    return match_id({r.id for r in ledger.records()}, ref, where=ledger.path)


def _waiting(ledger: PromotionLog, record_id: str, *, approving: bool = False) -> Record:
    records = ledger.records()
    rec = next((r for r in records if r.id == record_id), None)
    if rec is None:
        raise KaizenError(f"no record {record_id!r} in {ledger.path}")
    if rec.decision != "awaiting_approval":
        raise KaizenError(f"record {record_id} is {rec.decision!r}, not awaiting approval")
    done = next((r for r in records if r.resolves == record_id), None)
    if done is not None and done.decision == "superseded":
        raise KaizenError(f"record {record_id} was superseded ({done.id}): {done.reasons[0] if done.reasons else ''}")
    if done is not None:
        raise KaizenError(f"record {record_id} was already answered: {done.decision} by {done.actor} ({done.id})")
    stale = superseding(records).get(record_id) if approving else None
    if stale is not None:
        then = f"answer {stale.by.id} instead" if stale.by.decision == "awaiting_approval" else \
            "a new cycle judges a challenger against the current champion"
        raise KaizenError(f"record {record_id} is superseded by {stale.by.id}: {stale.why}; it can no longer be "
                          f"approved ({then})")
    return rec


def expires_at(record: Record, seconds: float | None) -> datetime | None:
    """When ``record`` (awaiting approval) stops being approvable after ``seconds``; None: never."""
    if seconds is None:
        return None
    from datetime import timedelta

    return datetime.fromisoformat(record.time.replace("Z", "+00:00")) + timedelta(seconds=seconds)


def _expiry(config: Config, policy: str, given: Any = None) -> tuple[float | None, str]:
    """(seconds, what says so) of ``policy``'s ``[promotion] approval_expires``."""
    from kaizen.policy import PromotionSpec, format_duration, load_policies, policy_files

    pol = given
    if pol is None:
        good, _ = load_policies(policy_files(config.policies_dir)) if config.policies_dir.is_dir() else ([], [])
        pol = next((p for p in good if p.name == policy), None)
    seconds = pol.promotion.approval_expires_seconds if pol is not None else PromotionSpec.approval_expires_seconds
    shown = "false" if seconds is None else f'"{format_duration(seconds)}"'
    where = f"in {pol.path}" if pol is not None else f"the default: no valid policy for {policy!r} in " \
                                                        f"{config.policies_dir}"
    return seconds, f"promotion.approval_expires = {shown} ({where})"


def expired(config: Config, records: list[Record], now: datetime | None = None) -> set[str]:
    """The ids of ``records`` (awaiting approval, unanswered) whose approval has expired at ``now``."""
    now = now or datetime.now(UTC)
    limits: dict[str, float | None] = {}
    out = set()
    for r in records:
        if r.policy not in limits:
            limits[r.policy] = _expiry(config, r.policy)[0]
        end = expires_at(r, limits[r.policy])
        if end is not None and now >= end:
            out.add(r.id)
    return out


def _refuse_expired(config: Config, rec: Record, now: datetime | None) -> None:
    seconds, setting = _expiry(config, rec.policy)
    end = expires_at(rec, seconds)
    if end is not None and (now or datetime.now(UTC)) >= end:
        raise KaizenError(f"record {rec.id} expired at {end.isoformat().replace('+00:00', 'Z')} ({setting}): it can "
                          "no longer be approved; the next cycle records it as rejected (expired) and judges a "
                          "fresh challenger")


def approve(config: Config, record_id: str, *, actor: str | None = None, registry: Any = None,
            wait_seconds: float = 0.0, now: datetime | None = None, comment: str = "") -> Record:
    """Promote the challenger of ``record_id`` (or a unique prefix of it), if the champion is still the one it
    was judged against; ``comment`` goes into the record. The other open approvals of the policy are then
    superseded (:func:`supersede_stale`).

    Raises :class:`KaizenError` (nothing written) when the record is unknown, not waiting, already
    answered, superseded, expired (at ``now``, default the current time), or the champion changed since it
    was judged.
    """
    ledger = ledger_for(config)
    record_id = resolve_id(ledger, record_id)
    rec = _waiting(ledger, record_id, approving=True)
    comment = _comment(comment)
    _refuse_expired(config, rec, now)
    actor = actor or getpass.getuser()
    judged = str(rec.champion.get("version"))
    version = str(rec.challenger.get("version"))
    from kaizen.registry import reaching

    with reaching(config.tracking_uri, config.registry_uri):  # an unreachable registry is one line, not a traceback
        if registry is None:
            from kaizen.registry import Registry

            registry = Registry.from_config(config)
        registry.version(rec.policy, version)  # raises if it is gone
        serving = registry.champion(rec.policy)
    if serving is None or serving.version != judged:
        raise KaizenError(f"the champion of {rec.policy!r} changed since {record_id} was judged "
                          f"(then version {judged}, now {serving.version if serving else 'none'}); "
                          f"reject it and let a new cycle judge a challenger against the current champion")

    def body(ctx: RunContext) -> Record:
        from kaizen.registry.promotion import commit

        _waiting(ctx.ledger, record_id, approving=True)  # re-read under the lock: nobody answered in between
        _refuse_expired(config, rec, now)  # nor did it expire while this waited for the lock
        draft = ctx.draft
        draft.sections["champion"] = {"version": judged}
        draft.sections["challenger"] = {"version": version}
        metric = rec.challenger.get("metric") or rec.champion.get("metric") or ""
        draft.step(Step.PROMOTING, version=version, replaced=judged, resolves=record_id, actor=actor,
                   comment=comment)
        commit(ctx.registry, rec.policy, version, metric=metric, cycle_id=draft.id,
               reason=f"replaced by version {version}, approved by {actor}", judged_against=judged,
               holdout_metric=rec.challenger.get("holdout_metric"))
        draft.sections["champion"]["replaced"] = judged
        draft.step(Step.PROMOTED, version=version, replaced=judged)
        draft.reasons.append(f"{actor} approved {record_id}: version {version} promoted to champion (was {judged})")
        return draft.finish("promoted", resolves=record_id, actor=actor, comment=comment)

    out = run(config, rec.policy, body, kind="approval", registry=registry, wait_seconds=wait_seconds)
    if out.decision == "failed":
        raise KaizenError(f"approval of {record_id} failed ({out.id}): {out.error}")
    _supersede_after(config, rec.policy, registry=registry, wait_seconds=wait_seconds)
    return out


#: the longest comment kept in a record (the pages' field allows as much)
MAX_COMMENT = 500


def _comment(text: str | None) -> str | None:
    """A comment as recorded: whitespace runs made one space; None when empty. Raises when too long."""
    said = " ".join(str(text or "").split())
    if len(said) > MAX_COMMENT:
        raise KaizenError(f"the comment is {len(said)} characters long; at most {MAX_COMMENT} are kept")
    return said or None


def reject(config: Config, record_id: str, *, actor: str | None = None, reason: str = "",
           registry: Any = None, wait_seconds: float = 0.0, comment: str = "") -> Record:
    """Turn down the challenger of ``record_id`` (or a unique prefix of it); the champion stays.

    ``comment`` (``reason`` is its earlier name) goes into the record and its first reason.
    """
    ledger = ledger_for(config)
    record_id = resolve_id(ledger, record_id)
    rec = _waiting(ledger, record_id)
    actor = actor or getpass.getuser()
    said = _comment(comment or reason)
    why = f"{actor} rejected {record_id}: version {rec.challenger.get('version')} stays a challenger" + (
        f" ({said})" if said else "")
    return _reject(config, rec, actor, why, registry=registry, wait_seconds=wait_seconds, comment=said)


def _reject(config: Config, rec: Record, actor: str, why: str, *, registry: Any, wait_seconds: float,
            tagged_by: str | None = None, comment: str | None = None, stale: Stale | None = None) -> Record:
    """Close ``rec`` through the runner: ``rejected`` (a person, or expired), or ``superseded`` when ``stale``."""
    version = str(rec.challenger.get("version"))
    tags = {"kaizen.status": "rejected", "kaizen.rejected_by": tagged_by or actor} if stale is None else {
        "kaizen.status": "superseded", "kaizen.superseded_by": stale.by.id}

    def body(ctx: RunContext) -> Record:
        from kaizen.registry import reaching

        _waiting(ctx.ledger, rec.id)
        draft = ctx.draft
        try:
            with reaching(config.tracking_uri, config.registry_uri):  # the failed record's reason: one line
                ctx.registry.tag(rec.policy, version, tags)
        except Exception as exc:  # MLflow raises many types for a version that is gone
            if stale is None:
                raise
            # closing a stale approval must not fail on every cycle for a version that is gone: the log says so
            draft.reasons.append(f"version {version} could not be tagged superseded in the registry: {exc}")
        draft.sections["champion"] = {"version": rec.champion.get("version")}
        draft.sections["challenger"] = {"version": version}
        if stale is not None:
            draft.sections["challenger"]["superseded_by"] = stale.by.id
        draft.reasons.insert(0, why)
        return draft.finish("rejected" if stale is None else "superseded", resolves=rec.id, actor=actor,
                            comment=comment)

    out = run(config, rec.policy, body, kind="rejection", registry=registry, wait_seconds=wait_seconds)
    if out.decision == "failed":  # one line: the runner's text of a registry it could not open may hold two
        raise KaizenError(f"rejection of {rec.id} failed ({out.id}): {' '.join(str(out.error).split())}")
    return out


def expire_pending(config: Config, policy_name: str, now: datetime | None = None, *, policy: Any = None,
                   history: list[Record] | None = None, registry: Any = None,
                   wait_seconds: float = 0.0) -> list[Record]:
    """Reject (expired) each of ``policy_name``'s waiting records whose approval expired at ``now``; return them.

    Each goes through the runner (the policy's lock, the journal, one ``rejection`` record by actor
    ``kaizen`` whose first reason starts ``expired:``): call it before a cycle's run, never inside one.
    ``policy``: the loaded policy (else read from the policies folder). ``history``: the records to look
    in, oldest first (a bounded read of the log; a record's answer is always newer than it); None: the
    whole log. Raises :class:`~kaizen.errors.BusyError` when the policy stays busy for ``wait_seconds``.
    """
    from kaizen.errors import BusyError

    now = now or datetime.now(UTC)
    records = ledger_for(config).records() if history is None else history
    answered = {r.resolves for r in records if r.resolves}
    waiting = [r for r in records if r.policy == policy_name and r.decision == "awaiting_approval"
               and r.id not in answered]
    if not waiting:
        return []
    seconds, setting = _expiry(config, policy_name, policy)
    out = []
    for rec in waiting:
        end = expires_at(rec, seconds)
        if end is None or now < end:
            continue
        why = (f"expired: {rec.id} was not approved by {end.isoformat().replace('+00:00', 'Z')} ({setting}); version "
               f"{rec.challenger.get('version')} stays a challenger")
        try:
            out.append(_reject(config, rec, "kaizen", why, registry=registry, wait_seconds=wait_seconds,
                               tagged_by="kaizen (expired)"))
        except BusyError:
            raise
        except KaizenError as exc:  # answered meanwhile: its failed record says so; the cycle goes on
            log.warning("could not expire %s: %s", rec.id, exc)
    return out


def supersede_stale(config: Config, policy_name: str, *, history: list[Record] | None = None, registry: Any = None,
                    wait_seconds: float = 0.0) -> list[Record]:
    """Close each of ``policy_name``'s stale open approvals (:func:`superseding`) with a ``superseded`` record.

    Each goes through the runner (the policy's lock, the journal, one ``rejection`` record by actor
    ``kaizen`` that ``resolves`` it; its first reason names the newer record and why; the version is
    tagged ``kaizen.status = superseded``, which retention may delete). ``history``: the records to look in,
    oldest first (None: the whole log). Call it outside a run of the policy (it takes the lock). Raises
    :class:`~kaizen.errors.BusyError` when the policy stays busy for ``wait_seconds``.
    """
    from kaizen.errors import BusyError

    records = ledger_for(config).records() if history is None else history
    stale = [s for s in superseding(records).values() if s.waiting.policy == policy_name]
    out = []
    for s in stale:
        rec = s.waiting
        why = (f"superseded by {s.by.id}: {s.why}; {rec.id} (version {rec.challenger.get('version')}, judged "
               f"against champion version {rec.champion.get('version')}) can no longer be approved")
        try:
            out.append(_reject(config, rec, "kaizen", why, registry=registry, wait_seconds=wait_seconds,
                               stale=s))
        except BusyError:
            raise
        except KaizenError as exc:  # answered meanwhile: its failed record says so
            log.warning("could not close superseded approval %s: %s", rec.id, exc)
    return out


def _supersede_after(config: Config, policy_name: str, *, registry: Any = None, wait_seconds: float = 0.0) -> None:
    """:func:`supersede_stale` after a run that may have made approvals stale; never fails that run's command
    (what stays open is closed before the next cycle)."""
    try:
        supersede_stale(config, policy_name, registry=registry, wait_seconds=wait_seconds)
    except KaizenError as exc:
        log.warning("superseded approvals of %s not closed yet (the next cycle closes them): %s", policy_name, exc)
