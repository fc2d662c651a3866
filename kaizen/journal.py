"""The crash journal: where each running cycle has got to, on disk.

Every run that can change the registry (a cycle, a bootstrap, a retrain, an
approval), whoever started it (``kaizen run``, ``kaizen once``, ...), reports
its steps (:class:`Step`: ``started → monitored → building → built → gated →
refitted → promoting → promoted → decided → recorded``; ``refitted`` only with
``gates.refit_on_holdout``: from there on ``version`` is the version the cycle
will promote, the refit when it passed its checks, and ``gated_version`` the one
gated). Each step rewrites ``<state>/journal/<cycle id>.json`` atomically
(:func:`kaizen._io.write_atomic`) with the sections of the record assembled so
far and every model version the run registered (``registered``). ``decided``
holds the finished record; once the record is in the promotion log
(``recorded``) the file is removed.

A file still there when the next run of the policy starts (or the service
starts) belongs to a run whose process died; :mod:`kaizen.recovery` finishes or
aborts it.

Test hooks (never set them in production):

``KAIZEN_TEST_CRASH_AT=<step>``
    SIGKILL the process right after journalling ``<step>``;
    ``<step>+<seconds>`` kills it that long after (e.g. ``building+1`` lands inside the tuning);
    ``torn`` writes half of the record to the promotion log, then kills.
``KAIZEN_TEST_PAUSE_AT=<step>=<seconds>``
    sleep at ``<step>`` (a slow step, for the signal tests).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import threading
import time
from enum import StrEnum
from pathlib import Path
from typing import Any

from kaizen._io import fsync_dir, write_atomic
from kaizen.ledger import clean_floats, json_default, utcnow
from kaizen.redact import redact_obj

__all__ = ["Journal", "STEPS", "Step"]


class Step(StrEnum):
    """The steps a run journals, in order; the one definition the runner, the journal and recovery use."""

    STARTED = "started"
    MONITORED = "monitored"
    BUILDING = "building"
    BUILT = "built"
    GATED = "gated"
    REFITTED = "refitted"
    PROMOTING = "promoting"
    PROMOTED = "promoted"
    DECIDED = "decided"
    RECORDED = "recorded"


STEPS = tuple(Step)

log = logging.getLogger("kaizen.journal")


class Journal:
    """One JSON file per running cycle under ``<state>/journal``."""

    def __init__(self, state_dir: Path, ledger_path: Path) -> None:
        self.dir = Path(state_dir) / "journal"
        self.ledger_path = Path(ledger_path)
        self._lock = threading.Lock()
        self._entries: dict[str, dict[str, Any]] = {}

    def path(self, cycle_id: str) -> Path:
        return self.dir / f"{cycle_id}.json"

    # -- writing (the cycle's on_step callback) -------------------------------------------------
    def mark(self, step: str, draft: Any, data: dict[str, Any]) -> None:
        if step == Step.RECORDED:
            self.remove(draft.id)
            log.debug("cycle %s recorded: %s", draft.id, data["record"].decision)
            _test_hooks(step, None, self.ledger_path)
            return
        with self._lock:
            entry = self._entries.setdefault(draft.id, {"id": draft.id, "policy": draft.policy, "pid": os.getpid(),
                                                        "started": utcnow(), "steps": []})
            entry["step"] = step
            entry["steps"].append({"step": step, "time": utcnow()})
            entry["run_id"] = draft.run_id
            entry["kind"] = draft.kind
            entry["registered"] = list(draft.registered)
            for k, v in data.items():
                entry[k] = v.to_dict() if k == "record" else v
            entry["reasons"] = list(draft.reasons)
            entry["sections"] = clean_floats({k: v for k, v in draft.sections.items() if k != "cost"})
        try:
            payload = json.dumps(redact_obj(entry), default=json_default, allow_nan=False).encode()
            self.dir.mkdir(parents=True, exist_ok=True)
            write_atomic(self.path(draft.id), payload)
        except (OSError, TypeError, ValueError) as exc:  # the cycle goes on; only its crash recovery is weaker
            log.error("cannot write the journal of cycle %s at step %s: %s", draft.id, step, exc)
        log.debug("cycle %s reached %s", draft.id, step)
        _test_hooks(step, entry.get("record"), self.ledger_path)

    def remove(self, cycle_id: str) -> None:
        with self._lock:
            self._entries.pop(cycle_id, None)
        with contextlib.suppress(FileNotFoundError):
            self.path(cycle_id).unlink()
            fsync_dir(self.dir)

    # -- reading (recovery, status) -------------------------------------------------------------
    def pending(self, policy: str | None = None) -> list[dict[str, Any]]:
        """Journals of cycles that did not finish, oldest first; unreadable files are reported, then skipped."""
        if not self.dir.exists():
            return []
        out = []
        with self._lock:
            running = set(self._entries)
        for p in sorted(self.dir.glob("*.json")):
            try:
                entry = json.loads(p.read_bytes())
            except (OSError, ValueError) as exc:
                log.error("unreadable journal file %s (%s); moving it aside", p, exc)
                with contextlib.suppress(OSError):
                    p.rename(p.with_suffix(".unreadable"))
                continue
            if entry.get("id") in running or (policy is not None and entry.get("policy") != policy):
                continue
            out.append(entry)
        return out


def _test_hooks(step: str, record: dict[str, Any] | None, ledger_path: Path) -> None:
    pause = os.environ.get("KAIZEN_TEST_PAUSE_AT", "")
    if pause.partition("=")[0] == step:
        time.sleep(float(pause.partition("=")[2] or 1))
    crash = os.environ.get("KAIZEN_TEST_CRASH_AT", "")
    if not crash:
        return
    if crash == "torn" and step == Step.DECIDED and record is not None:
        line = json.dumps(record, default=json_default).encode()
        fd = os.open(ledger_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        os.write(fd, line[: len(line) // 2])
        os.fsync(fd)
        os.kill(os.getpid(), signal.SIGKILL)
    name, _, delay = crash.partition("+")
    if name != step:
        return
    if not delay:
        os.kill(os.getpid(), signal.SIGKILL)
    timer = threading.Timer(float(delay), os.kill, (os.getpid(), signal.SIGKILL))
    timer.daemon = True
    timer.start()
