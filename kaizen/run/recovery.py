"""Finish or abort the runs a dead process left in the journal.

Run by every run of a policy before it starts (:mod:`kaizen.run.runner`, under the
policy's lock), and by the service when it starts. For each journal file:

- its record is already in the promotion log → the process died after writing
  it; only the journal file goes.
- it reached ``decided`` → the record was built but not (fully) written: append
  it now. A torn half line from the dead writer stays behind, unread.
- it reached ``promoting`` or ``promoted`` and the registry's ``champion`` alias
  points to its challenger → the alias moved before the process died: finish
  the promotion's bookkeeping and write the ``promoted`` record as the live
  path would (a ``rollback`` retires with its journalled reason and restores its
  journalled baseline): ``champion.promoted`` and ``champion.replaced`` set, the
  first reason ``promoted version N to champion (was M)`` (a rollback keeps its
  own first reason), then one saying it was recorded at restart.
- anything else → one ``failed`` record, ``aborted: process died during …``;
  every version it registered (``registered``, plus ``version`` and
  ``gated_version``) that does not serve is tagged ``kaizen.status = aborted``,
  and the ``challenger`` alias is dropped if it points at one of them.

Every record carries the cost the run journalled at its last step (CPU and
wall seconds up to then, the day, the energy estimate), its seed and report. In
every case the run's MLflow run is ended, if it was still running, as
``KILLED`` for an aborted run, else as a live run ends (``FINISHED`` for the
promotion), named and tagged with the decision; its work folder is removed.

The record keeps the cycle's id, and nothing is written for an id the log
already holds, so recovering twice never duplicates a record.

On the scale-out path (``[coordination] url``) a recovered record's webhooks are queued in the outbox
with it (:mod:`kaizen.scale.outbox`), and so are those of a record already in the log whose journal
entry was left behind (its process died, or the outbox refused, between the append and ``recorded``):
queuing is idempotent, so a webhook already queued is not queued twice. (On the embedded path a
recovered record is not announced.)
"""

from __future__ import annotations

import logging
import shutil
from typing import Any

from kaizen.config import Config
from kaizen.ledger import PromotionLog, Record
from kaizen.run.journal import Journal, Step

__all__ = ["recover", "recover_all"]

log = logging.getLogger("kaizen.service.recovery")

#: what a cycle was doing after journalling each step
PHASE = {Step.STARTED: "monitoring", Step.MONITORED: "the trigger decision", Step.BUILDING: "the challenger build",
         Step.BUILT: "gating", Step.GATED: "the promotion decision", Step.REFITTED: "the promotion decision",
         Step.PROMOTING: "the promotion", Step.PROMOTED: "recording", Step.DECIDED: "recording"}


def _record(entry: dict[str, Any], decision: str, reasons: list[str], cost: dict[str, Any], *,
            error: str | None = None, champion: dict[str, Any] | None = None, actor: str | None = None,
            resolves: str | None = None, comment: str | None = None) -> Record:
    s = entry.get("sections") or {}
    return Record(id=entry["id"], policy=entry["policy"], decision=decision, reasons=tuple(reasons),
                  kind=entry.get("kind") or "cycle",
                  window=s.get("window", {}), trigger=s.get("trigger", {}),
                  champion=s.get("champion", {}) if champion is None else champion,
                  challenger=s.get("challenger", {}), gates=tuple(s.get("gates", ())), cost=cost,
                  mlflow_run_id=entry.get("run_id"), report=entry.get("report"), seed=entry.get("seed"),
                  actor=actor, error=error, resolves=resolves, comment=comment)


def _cost(config: Config, entry: dict[str, Any]) -> dict[str, Any]:
    """The cost the run journalled at its last step (CPU and wall seconds, the day, ``add_cost`` values), with the
    energy estimate a live record adds (:meth:`kaizen.run.runner.Draft.finish`); ``{}`` for a journal without one."""
    from kaizen.cost import CostModel

    cost = dict(entry.get("cost") or {})
    cpu = cost.get("cpu_seconds")
    if isinstance(cpu, (int, float)):
        cost.update(CostModel.from_config(config).estimate(cpu))
    return cost


def _promoted(entry: dict[str, Any], step: str, cost: dict[str, Any]) -> Record:
    """The ``promoted`` record of a run that died after moving the alias, as :mod:`kaizen.cycle.promote` writes it."""
    version, old = str(entry["version"]), entry.get("replaced")
    old = None if old is None else str(old)
    s = entry.get("sections") or {}
    champion = {**s.get("champion", {}), "promoted": version, "replaced": old}
    note = (f"recorded at restart from the journal: the process died during {PHASE[step]}, after the champion "
            "alias moved")
    journalled = list(entry.get("reasons", []))
    rollback = (s.get("challenger") or {}).get("rollback") if entry.get("kind") == "rollback" else None
    if rollback is not None and journalled:  # its first reason already says which version it restored, and why
        reasons = [journalled[0], note, *journalled[1:]]
    else:
        gated = entry.get("gated_version")
        of = f" (refit of version {gated})" if gated is not None and str(gated) != version else ""
        reasons = [f"promoted version {version}{of} to champion (was {old or 'none'})", note, *journalled]
    # an approval journals whom it answers and who answered (kaizen/commands/review.py): its waiting record is
    # then answered
    return _record(entry, "promoted", reasons, cost, champion=champion,
                   actor=(rollback or {}).get("actor") or entry.get("actor"), resolves=entry.get("resolves"),
                   comment=entry.get("comment"))


def _finish_promotion(registry: Any, entry: dict[str, Any]) -> None:
    """What :func:`kaizen.registry.promotion.commit` does after the alias move, for a process that died just after."""
    name, version, old = entry["policy"], str(entry["version"]), entry.get("replaced")
    registry.settle_promotion(name, version, str(old) if old else None, cycle_id=entry["id"],
                              reason=entry.get("retire_reason") or f"replaced by version {version} in cycle "
                                                                    f"{entry['id']}",
                              when=entry["steps"][-1]["time"])
    if entry.get("kind") == "rollback":  # kaizen/cycle/rollback.py: the baseline it restores, not a raise
        if entry.get("restore_baseline") is not None:
            registry.set_baseline(name, float(entry["restore_baseline"]))
        return
    chall = (entry.get("sections") or {}).get("challenger") or {}
    if chall.get("metric"):
        registry.raise_baseline(name, chall["metric"], chall.get("holdout_metric"))


def _settle(entry: dict[str, Any], ledger: PromotionLog, registry: Any, cost: dict[str, Any]) -> Record:
    step = entry.get("step", Step.STARTED)
    if step == Step.DECIDED and entry.get("record"):
        return Record.from_dict(entry["record"])
    version = entry.get("version")
    if step in (Step.PROMOTING, Step.PROMOTED) and version:
        if registry is None:
            raise RuntimeError("the registry is needed to tell whether the champion alias moved")
        champ = registry.champion(entry["policy"])
        if champ is not None and champ.version == str(version):
            _finish_promotion(registry, entry)
            return _promoted(entry, step, cost)
    why = f"aborted: process died during {PHASE.get(step, step)} (last step journalled: {step})"
    left = [*entry.get("registered", []), version, entry.get("gated_version")]
    if entry.get("kind") == "rollback":  # it registers nothing: its version is an old one, left as it was
        left = list(entry.get("registered", []))
    for v_id in dict.fromkeys(str(v) for v in left if v):
        if registry is None:
            break
        try:
            v = registry.version(entry["policy"], v_id)
            if v.tags.get("kaizen.status") not in ("champion", "retired"):
                registry.tag(entry["policy"], v_id, {"kaizen.status": "aborted", "kaizen.aborted_by": entry["id"]})
            chall = registry.challenger(entry["policy"])
            if chall is not None and chall.version == v_id:
                registry.drop_challenger(entry["policy"])
        except Exception as exc:  # tagging is a courtesy; the record is what matters
            log.warning("could not tag aborted challenger v%s: %s", v_id, exc)
    return _record(entry, "failed", [why, *entry.get("reasons", [])], cost, error=why)


def recover_all(config: Config, journal: Journal, *, registry: Any = None,
                alive: set[str] | frozenset[str] = frozenset()) -> list[Record]:
    """Settle the unfinished runs of every policy whose lock is free (a busy policy's run is alive)."""
    from kaizen.run.backend import lock_for

    written: list[Record] = []
    for name in dict.fromkeys(e["policy"] for e in journal.pending()):
        lock = lock_for(config, name)
        if not lock.try_acquire():
            log.info("%s: a run is in progress in another process; its journal is left to it", name)
            continue
        try:
            written += recover(config, journal, policy=name, registry=registry, alive=alive)
        finally:
            lock.release()
    return written


def recover(config: Config, journal: Journal, *, policy: str, registry: Any = None,
            alive: set[str] | frozenset[str] = frozenset()) -> list[Record]:
    """Settle every unfinished run of ``policy`` in ``journal``; return the records written.

    The caller holds the policy's lock (:class:`kaizen.run.locks.PolicyLock`). ``alive``: ids of runs whose
    decision the calling process keeps in memory (a full disk, :class:`kaizen.run.runtime.Kept`): they are not
    dead, and their journal is left alone.
    """
    from kaizen.run.backend import ledger_for, outbox_for

    entries = [e for e in journal.pending(policy) if e.get("id") not in alive]
    if not entries:
        return []
    ledger, outbox = ledger_for(config), outbox_for(config)
    known = {r.id for r in ledger.records()}
    if registry is None and any(e["id"] not in known and (e.get("run_id") or e.get("version") or e.get("registered"))
                                for e in entries):
        try:
            from kaizen.registry import Registry

            registry = Registry.from_config(config)
        except Exception as exc:
            log.error("registry unreachable during recovery: %s", exc)
    written = []
    for entry in entries:
        cid = entry["id"]
        if cid in known:
            held = ledger.find(cid) if outbox is not None else None
            if held is not None and not outbox.add(held):
                continue  # the journal stays: the next recovery queues its webhooks
            journal.remove(cid)
            log.info("cycle %s was already recorded; removed its journal", cid)
            continue
        try:
            record = _settle(entry, ledger, registry, _cost(config, entry))
        except Exception as exc:
            log.error("cannot settle interrupted cycle %s yet (%s); will retry", cid, exc)
            continue
        queued = True
        if outbox is None:
            ledger.append(record)
        else:
            record, queued = outbox.append(ledger, record)
        known.add(cid)
        written.append(record)
        if registry is not None and record.mlflow_run_id:
            from kaizen.run.runner import mirror

            # a decision that was reached (promoted: the alias moved; or decided) ends its run as a live one
            # would (FINISHED, FAILED for a failed decision); an aborted run was killed
            mirror(registry, record, status="KILLED" if record.error and record.error.startswith("aborted:")
                   else None)
        shutil.rmtree(config.work_dir / cid, ignore_errors=True)
        if queued:  # else the entry stays and the next recovery queues the webhooks of the record it finds
            journal.remove(cid)
        log.warning("recovered interrupted cycle %s of %s: %s (%s)", cid, entry["policy"], record.decision,
                    record.reasons[0] if record.reasons else "")
    return written
