"""The crash journal: where each running cycle has got to, on disk.

A cycle reports its steps (``started → monitored → building → built → gated →
refitted → promoting → promoted → decided → recorded``, see :func:`kaizen.cycle.run_cycle`;
``refitted`` only with ``gates.refit_on_holdout``: from there on ``version`` is the version the
cycle will promote, the refit when it passed its checks, and ``gated_version`` the one gated).
Each step rewrites ``<state>/journal/<cycle id>.json`` atomically (write a
temporary file, fsync, rename, fsync the folder), with the sections of the
record assembled so far. ``decided`` holds the finished record; once the
record is in the promotion log (``recorded``) the file is removed.

A file still there when the service starts belongs to a cycle whose process
died; :mod:`kaizen.service.recovery` finishes or aborts it.

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
from pathlib import Path
from typing import Any

from kaizen.ledger import _default, clean_floats, utcnow
from kaizen.service import logs

__all__ = ["Journal", "STEPS"]

STEPS = ("started", "monitored", "building", "built", "gated", "refitted", "promoting", "promoted", "decided",
         "recorded")

log = logging.getLogger("kaizen.service.journal")


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    _fsync_dir(path.parent)


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


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
        logs.update(cycle_id=draft.id, step=step)
        if step == "recorded":
            self.remove(draft.id)
            log.info("cycle %s recorded: %s", draft.id, data["record"].decision)
            _test_hooks(step, None, self.ledger_path)
            return
        with self._lock:
            entry = self._entries.setdefault(draft.id, {"id": draft.id, "policy": draft.policy, "pid": os.getpid(),
                                                        "started": utcnow(), "steps": []})
            entry["step"] = step
            entry["steps"].append({"step": step, "time": utcnow()})
            entry["run_id"] = draft.run_id
            for k, v in data.items():
                entry[k] = v.to_dict() if k == "record" else v
            entry["reasons"] = list(draft.reasons)
            entry["sections"] = clean_floats({k: v for k, v in draft.sections.items() if k != "cost"})
        try:
            payload = json.dumps(entry, default=_default, allow_nan=False).encode()
            self.dir.mkdir(parents=True, exist_ok=True)
            _write_atomic(self.path(draft.id), payload)
        except (OSError, TypeError, ValueError) as exc:  # the cycle goes on; only its crash recovery is weaker
            log.error("cannot write the journal of cycle %s at step %s: %s", draft.id, step, exc)
        log.info("cycle %s reached %s", draft.id, step)
        _test_hooks(step, entry.get("record"), self.ledger_path)

    def remove(self, cycle_id: str) -> None:
        with self._lock:
            self._entries.pop(cycle_id, None)
        with contextlib.suppress(FileNotFoundError):
            self.path(cycle_id).unlink()
            _fsync_dir(self.dir)

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
    if crash == "torn" and step == "decided" and record is not None:
        line = json.dumps(record, default=_default).encode()
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
