"""The crash journal: where each running cycle has got to, on disk.

Every run that can change the registry (a cycle, a bootstrap, a retrain, an
approval), whoever started it (``kaizen run``, ``kaizen once``, ...), reports
its steps (:class:`Step`: ``started → monitored → building → built → gated →
refitted → promoting → promoted → decided → recorded``; ``refitted`` only with
``gates.refit_on_holdout``: from there on ``version`` is the version the cycle
will promote, the refit when it passed its checks, and ``gated_version`` the one
gated). Each step rewrites ``<state>/journal/<cycle id>.json`` atomically
(:func:`kaizen._io.write_atomic`) with the sections of the record assembled so
far, every model version the run registered (``registered``), the cost so far
(``cost``: CPU and wall seconds since the start, the day, the ``add_cost``
values; :meth:`kaizen.run.runner.Draft.spent`), the seed and the report. ``decided``
holds the finished record; once the record is in the promotion log
(``recorded``) the file is removed.

A file still there when the next run of the policy starts (or the service
starts) belongs to a run whose process died; :mod:`kaizen.run.recovery` finishes or
aborts it.

A full disk. The atomic rewrite needs new blocks for the temporary file, so on
a full disk every step's write fails. The step that matters most is
``decided``: it holds the finished record, which the runner then appends to
the promotion log — and on a full disk that append fails too, so the journal
is the only place the decision survives. So at ``started`` the journal sets
aside :data:`RESERVE_BYTES` in ``<state>/journal/.<cycle id>.reserve``
(``posix_fallocate``: real blocks on ext4, XFS and tmpfs, no data written).
When the ``decided`` write fails with ``ENOSPC``/``EDQUOT``, the record is
written *into* the reserve (its blocks are already allocated, so overwriting
them needs no new ones; on ext4 the conversion of its unwritten extents draws
on the space ext4 keeps back for exactly that), the file is cut to the record's
length (freeing blocks needs no space), fsync'd, and renamed over
``<cycle id>.json`` (a rename within one folder replaces a directory entry; it
allocates nothing). The rename is atomic, so the journal holds the previous
step or the decision, never half of it; the rest of the reserve is given
back, usually room enough for the promotion log's append that follows. On a
copy-on-write file system (btrfs, ZFS) an overwrite needs new blocks too;
there the reserve is deleted instead, which gives its space back, and the
atomic write is tried once more. The reserve goes with the journal file. Earlier steps never use the reserve: if
they cannot be written, the cycle goes on with weaker crash recovery (one
ERROR line). If even the reserve cannot hold the decision, :meth:`Journal.holds`
tells the runner, which keeps the decision in memory (:mod:`kaizen.run.runner`).

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
import errno
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
from kaizen.ledger import clean_floats, describe_os_error, json_default, utcnow
from kaizen.redact import redact_obj

__all__ = ["Journal", "RESERVE_BYTES", "STEPS", "Step"]


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

#: space set aside per running cycle (at ``started``) so its ``decided`` entry can be written on a full disk;
#: a decided entry (the record twice: whole, and its sections) is a few kB to a few tens of kB
RESERVE_BYTES = 256 * 1024
_FULL = (errno.ENOSPC, errno.EDQUOT)

log = logging.getLogger("kaizen.run.journal")


class Journal:
    """One JSON file per running cycle under ``<state>/journal``."""

    def __init__(self, state_dir: Path, ledger_path: Path) -> None:
        self.dir = Path(state_dir) / "journal"
        self.ledger_path = Path(ledger_path)
        self._lock = threading.Lock()
        self._entries: dict[str, dict[str, Any]] = {}
        self._written: dict[str, str] = {}  # cycle id -> the last step that reached the disk
        self._failed: set[str] = set()  # cycles whose journal write failed once (logged at ERROR once)

    def path(self, cycle_id: str) -> Path:
        return self.dir / f"{cycle_id}.json"

    def reserve_path(self, cycle_id: str) -> Path:
        return self.dir / f".{cycle_id}.reserve"

    def holds(self, cycle_id: str) -> str | None:
        """The last step of ``cycle_id`` this journal wrote to disk (None if none was)."""
        with self._lock:
            return self._written.get(cycle_id)

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
            # what a recovered record needs to be as complete as a live one (kaizen/run/recovery.py)
            entry["cost"] = clean_floats(draft.spent()) if hasattr(draft, "spent") else {}
            entry["seed"] = getattr(draft, "seed", None)
            entry["report"] = getattr(draft, "report", None)
        try:
            payload = json.dumps(redact_obj(entry), default=json_default, allow_nan=False).encode()
            self._write(draft.id, payload, step)
            with self._lock:
                self._written[draft.id] = step
        except (OSError, TypeError, ValueError) as exc:  # the cycle goes on; only its crash recovery is weaker
            self._write_failed(draft.id, step, exc)
        if step == Step.STARTED:
            self._reserve(draft.id, quiet=draft.id in self._failed)
        log.debug("cycle %s reached %s", draft.id, step)
        _test_hooks(step, entry.get("record"), self.ledger_path)

    def _write(self, cycle_id: str, payload: bytes, step: str) -> None:
        """Write the entry atomically; on a full disk, ``decided`` goes through the reserve (module docstring).

        The storage hooks (``_write``, ``_reserve``, ``remove``, ``pending``, ``path``) are what another backend
        replaces (:class:`kaizen.scale.journal.PgJournal`); building the entry is :meth:`mark`'s alone."""
        self.dir.mkdir(parents=True, exist_ok=True)
        path = self.path(cycle_id)
        try:
            write_atomic(path, payload)
            return
        except OSError as exc:
            reserve = self.reserve_path(cycle_id)
            if exc.errno not in _FULL or step != Step.DECIDED or not reserve.exists():
                raise
        try:
            if reserve.stat().st_size < len(payload):
                raise OSError(errno.ENOSPC, f"the entry ({len(payload)} bytes) is larger than the reserve")
            fd = os.open(reserve, os.O_WRONLY)
            try:
                done = 0
                while done < len(payload):
                    done += os.pwrite(fd, payload[done:], done)
                os.ftruncate(fd, len(payload))
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(reserve, path)
            fsync_dir(self.dir)
        except OSError as exc:  # copy-on-write, or too small: give the reserved space back, try once more
            log.debug("cycle %s: the journal reserve could not be overwritten (%s)", cycle_id, exc)
            reserve.unlink(missing_ok=True)
            write_atomic(path, payload)
        log.warning("cycle %s: the disk is full; its decision went into the journal space reserved at its start "
                    "(%s)", cycle_id, path)

    def _reserve(self, cycle_id: str, *, quiet: bool) -> None:
        """Set :data:`RESERVE_BYTES` aside for the cycle's decision (``quiet``: its failure was already logged)."""
        reserve = self.reserve_path(cycle_id)
        try:
            fd = os.open(reserve, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            try:
                os.posix_fallocate(fd, 0, RESERVE_BYTES)
            finally:
                os.close(fd)
        except OSError as exc:
            with contextlib.suppress(OSError):
                reserve.unlink()
            log.log(logging.DEBUG if quiet else logging.WARNING, "cycle %s: cannot reserve %d bytes for its "
                    "journal under %s (%s); on a full disk its decision may only be kept in memory", cycle_id,
                    RESERVE_BYTES, self.dir, describe_os_error(exc))

    def _write_failed(self, cycle_id: str, step: str, exc: Exception) -> None:
        why = describe_os_error(exc) if isinstance(exc, OSError) else f"{type(exc).__name__}: {exc}"
        with self._lock:
            first = cycle_id not in self._failed
            self._failed.add(cycle_id)
        # one ERROR line per cycle: on a full disk every later step fails the same way
        log.log(logging.ERROR if first else logging.DEBUG, "cannot write the journal %s of cycle %s at step %s: %s; "
                "its crash recovery is weaker until this succeeds", self.path(cycle_id), cycle_id, step, why)

    def remove(self, cycle_id: str) -> None:
        with self._lock:
            self._entries.pop(cycle_id, None)
            self._written.pop(cycle_id, None)
            self._failed.discard(cycle_id)
        with contextlib.suppress(FileNotFoundError):
            self.reserve_path(cycle_id).unlink()
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
