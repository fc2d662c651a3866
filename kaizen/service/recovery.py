"""Finish or abort the cycles a dead process left in the journal.

Run when the service starts (and before a policy's next cycle, for journals
an earlier recovery could not settle). For each journal file:

- its record is already in the promotion log → the process died after writing
  it; only the journal file goes.
- it reached ``decided`` → the record was built but not (fully) written: append
  it now. A torn half line from the dead writer stays behind, unread.
- it reached ``promoting`` or ``promoted`` and the registry's ``champion`` alias
  points to its challenger → the alias moved before the process died: finish
  the promotion's bookkeeping and write the ``promoted`` record.
- anything else → one ``failed`` record, ``aborted: process died during …``;
  a challenger it registered (and the gated version a refit replaced) is tagged
  ``kaizen.status = aborted``.

The record keeps the cycle's id, and nothing is written for an id the log
already holds, so recovering twice never duplicates a record.
"""

from __future__ import annotations

import logging
from typing import Any

from kaizen.config import Config
from kaizen.ledger import Ledger, Record
from kaizen.service.journal import Journal

__all__ = ["recover"]

log = logging.getLogger("kaizen.service.recovery")

#: what a cycle was doing after journalling each step
PHASE = {"started": "monitoring", "monitored": "the trigger decision", "building": "the challenger build",
         "built": "gating", "gated": "the promotion decision", "refitted": "the promotion decision",
         "promoting": "the promotion",
         "promoted": "recording", "decided": "recording"}


def _record(entry: dict[str, Any], decision: str, reasons: list[str], error: str | None = None) -> Record:
    s = entry.get("sections") or {}
    return Record(id=entry["id"], policy=entry["policy"], decision=decision, reasons=tuple(reasons),
                  window=s.get("window", {}), trigger=s.get("trigger", {}), champion=s.get("champion", {}),
                  challenger=s.get("challenger", {}), gates=tuple(s.get("gates", ())),
                  mlflow_run_id=entry.get("run_id"), error=error)


def _finish_promotion(registry: Any, entry: dict[str, Any]) -> None:
    """What ``cycle._commit`` does after the alias move, for a process that died right after it."""
    name, version, old = entry["policy"], str(entry["version"]), entry.get("replaced")
    registry.settle_promotion(name, version, str(old) if old else None, cycle_id=entry["id"],
                              reason=f"replaced by version {version} in cycle {entry['id']}",
                              when=entry["steps"][-1]["time"])
    chall = (entry.get("sections") or {}).get("challenger") or {}
    if chall.get("metric"):
        registry.raise_baseline(name, chall["metric"], chall.get("holdout_metric"))


def _settle(entry: dict[str, Any], ledger: Ledger, registry: Any) -> Record:
    step = entry.get("step", "started")
    if step == "decided" and entry.get("record"):
        return Record.from_dict(entry["record"])
    version = entry.get("version")
    if step in ("promoting", "promoted") and version:
        if registry is None:
            raise RuntimeError("the registry is needed to tell whether the champion alias moved")
        champ = registry.champion(entry["policy"])
        if champ is not None and champ.version == str(version):
            _finish_promotion(registry, entry)
            reasons = [*entry.get("reasons", []),
                       f"promoted version {version} to champion (was {entry.get('replaced')}); recorded at restart: "
                       f"the process died during {PHASE[step]}, after the champion alias moved"]
            return _record(entry, "promoted", reasons)
    why = f"aborted: process died during {PHASE.get(step, step)} (last step journalled: {step})"
    for v_id in dict.fromkeys(str(v) for v in (version, entry.get("gated_version")) if v):
        if registry is None:
            break
        try:
            v = registry.version(entry["policy"], v_id)
            if v.tags.get("kaizen.status") not in ("champion", "retired"):
                registry.tag(entry["policy"], v_id, {"kaizen.status": "aborted", "kaizen.aborted_by": entry["id"]})
        except Exception as exc:  # tagging is a courtesy; the record is what matters
            log.warning("could not tag aborted challenger v%s: %s", v_id, exc)
    return _record(entry, "failed", [why, *entry.get("reasons", [])], error=why)


def recover(config: Config, journal: Journal, *, policy: str | None = None, registry: Any = None) -> list[Record]:
    """Settle every unfinished cycle in ``journal`` (of ``policy``, or all); return the records written."""
    entries = journal.pending(policy)
    if not entries:
        return []
    ledger = Ledger(config.ledger_path)
    known = {r.id for r in ledger.records()}
    if registry is None and any(e["id"] not in known and (e.get("run_id") or e.get("version")) for e in entries):
        try:
            from kaizen.registry import Registry

            registry = Registry.from_config(config)
        except Exception as exc:
            log.error("registry unreachable during recovery: %s", exc)
    written = []
    for entry in entries:
        cid = entry["id"]
        if cid in known:
            journal.remove(cid)
            log.info("cycle %s was already recorded; removed its journal", cid)
            continue
        try:
            record = _settle(entry, ledger, registry)
        except Exception as exc:
            log.error("cannot settle interrupted cycle %s yet (%s); will retry", cid, exc)
            continue
        ledger.append(record)
        known.add(cid)
        written.append(record)
        if registry is not None and record.mlflow_run_id:
            from kaizen.cycle import _mirror

            _mirror(registry, record)
            try:
                run = registry.client.get_run(record.mlflow_run_id)
                if run.info.status == "RUNNING":
                    registry.client.set_terminated(record.mlflow_run_id, status="KILLED")
            except Exception as exc:
                log.warning("could not close MLflow run %s: %s", record.mlflow_run_id, exc)
        journal.remove(cid)
        log.warning("recovered interrupted cycle %s of %s: %s (%s)", cid, entry["policy"], record.decision,
                    record.reasons[0] if record.reasons else "")
    return written
