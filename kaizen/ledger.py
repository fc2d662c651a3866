"""The promotion log: one JSON line per decision, appended and fsync'd.

Every cycle writes exactly one :class:`Record`; a person's approval or
rejection of a waiting challenger writes one more that ``resolves`` it.
Nothing is ever rewritten, and an id is written once. This file is the
embedded default; with ``[ledger] url`` the log is table ``kaizen.record``
(:mod:`kaizen.scale.ledger`), with the same contract (:class:`PromotionLog`).
A reader skips (and counts) a torn last line, so a crash in the middle of a
write never breaks ``kaizen log``; a write that fails (a full disk) removes
its own partial line before it raises.

This module is imported by quick commands (``kaizen log``): it must not
import pandas, MLflow or anything heavy.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import logging
import mmap
import os
import secrets
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from kaizen.errors import LedgerError

__all__ = ["DECISIONS", "KINDS", "Ledger", "PromotionLog", "Record", "SCHEMA_VERSION", "check_day", "clean_floats",
           "describe_os_error", "json_default", "new_cycle_id", "prepare", "utcnow"]

log = logging.getLogger("kaizen.ledger")

SCHEMA_VERSION = 1
#: ``held``: the cycle held back on suspicious data (a data incident, or a drop only flagged rows carry), the
#: champion untouched; ``rebaselined``: the performance baseline was reset by a recorded decision;
#: ``superseded``: an open approval closed by Kaizen because a newer challenger awaits approval or the champion
#: changed since it was judged (kaizen/commands/review.py)
DECISIONS = ("skipped", "promoted", "rejected", "awaiting_approval", "shadowing", "held", "rebaselined", "failed",
             "superseded")
KINDS = ("cycle", "bootstrap", "retrain", "approval", "rejection", "rollback")
#: :meth:`Ledger.tail` and :meth:`Ledger.since` read the file backwards this many bytes at a time
READ_BLOCK = 64 * 1024
#: :meth:`Ledger.since` stops after this many records older than its day in a row (see there)
SINCE_PATIENCE = 64


def utcnow() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def iso_utc(t: float | None) -> str | None:
    """A Unix time as ``2026-11-26T14:03:12Z`` (None stays None)."""
    if t is None:
        return None
    return datetime.fromtimestamp(float(t), UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


_ISSUED_LOCK = threading.Lock()
#: (second, policy) -> the ids this process issued in that second (only the newest second is kept)
_ISSUED: dict[tuple[str, str], set[str]] = {}


def new_cycle_id(policy: str, when: datetime | None = None, *, taken: Callable[[str], bool] | None = None) -> str:
    """``20261126T140312Z-churn-1f3a``: sortable, readable, unique enough to type.

    Never the same id twice in one process (two runs of a policy in one second drew the same four hex digits
    once in a test: the log's exactly-once append would then have taken the second decision for the first and
    dropped it). ``taken(id)``, if given, says whether an id is already used elsewhere (the runner asks the
    promotion log, under the policy's lock, so another process's id of the same second is not reused either).
    """
    stamp = (when or datetime.now(UTC)).strftime('%Y%m%dT%H%M%SZ')
    with _ISSUED_LOCK:
        for key in [k for k in _ISSUED if k[0] != stamp]:
            del _ISSUED[key]
        issued = _ISSUED.setdefault((stamp, policy), set())
        while True:
            rid = f"{stamp}-{policy}-{secrets.token_hex(2)}"
            if rid not in issued and not (taken is not None and taken(rid)):
                issued.add(rid)
                return rid


@dataclass(frozen=True)
class Record:
    """One decision and everything behind it.

    ``reasons`` are sentences a person reads; the sections hold the numbers:
    ``window`` (batches, rows, rejected batches), ``trigger`` (each rule with
    value and threshold, drift share, drifted columns), ``champion`` and
    ``challenger`` (versions and metrics), ``gates`` (each gate's verdict and
    numbers), ``cost`` (CPU and wall seconds). Empty sections mean the cycle
    did not get that far.
    """

    id: str
    policy: str
    decision: str
    reasons: tuple[str, ...] = ()
    kind: str = "cycle"
    time: str = field(default_factory=utcnow)
    window: Mapping[str, Any] = field(default_factory=dict)
    trigger: Mapping[str, Any] = field(default_factory=dict)
    champion: Mapping[str, Any] = field(default_factory=dict)
    challenger: Mapping[str, Any] = field(default_factory=dict)
    gates: tuple[Mapping[str, Any], ...] = ()
    cost: Mapping[str, Any] = field(default_factory=dict)
    mlflow_run_id: str | None = None
    report: str | None = None
    resolves: str | None = None
    actor: str | None = None
    seed: int | None = None
    error: str | None = None
    #: what the person who approved or rejected typed for the log (``--comment``, the pages' comment field)
    comment: str | None = None
    schema_version: int = SCHEMA_VERSION

    def __post_init__(self) -> None:
        if self.decision not in DECISIONS:
            raise ValueError(f"Record.decision must be one of {DECISIONS}; got {self.decision!r}")
        if self.kind not in KINDS:
            raise ValueError(f"Record.kind must be one of {KINDS}; got {self.kind!r}")

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["reasons"] = list(self.reasons)
        d["gates"] = [dict(g) for g in self.gates]
        return d

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=False, default=json_default, allow_nan=False)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Record:
        known = {f for f in cls.__dataclass_fields__}
        kw = {k: v for k, v in d.items() if k in known}
        kw["reasons"] = tuple(kw.get("reasons", ()))
        kw["gates"] = tuple(kw.get("gates", ()))
        return cls(**kw)


def describe_os_error(exc: OSError) -> str:
    """``disk full (ENOSPC)``, ``disk quota exceeded (EDQUOT)``, else the system's text and errno name."""
    if exc.errno == errno.ENOSPC:
        return "disk full (ENOSPC)"
    if exc.errno == errno.EDQUOT:
        return "disk quota exceeded (EDQUOT)"
    name = errno.errorcode.get(exc.errno or 0)
    return f"{exc.strerror or exc}" + (f" ({name})" if name else "")


def _truncate(fd: int, size: int) -> bool:
    """Cut the file open on ``fd`` back to ``size`` bytes (freeing blocks never needs space); False if it failed."""
    try:
        os.ftruncate(fd, size)
    except OSError:
        return False
    with contextlib.suppress(OSError):
        os.fsync(fd)
    return True


def json_default(o: Any) -> Any:
    if isinstance(o, Path):
        return str(o)
    if hasattr(o, "item"):  # numpy scalar
        return o.item()
    if isinstance(o, (set, frozenset, tuple)):
        return list(o)
    raise TypeError(f"not JSON serializable: {type(o).__name__}")


def clean_floats(o: Any) -> Any:
    """NaN and infinities become None (JSON has no NaN)."""
    if isinstance(o, float):
        return o if o == o and o not in (float("inf"), float("-inf")) else None
    if isinstance(o, Mapping):
        return {k: clean_floats(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return [clean_floats(v) for v in o]
    if hasattr(o, "item") and not isinstance(o, (str, bytes)):
        return clean_floats(o.item())
    return o


def prepare(record: Record) -> tuple[Record, str]:
    """``record`` as every promotion log writes it (credentials in its texts become ``***``), and its JSON line.

    The one place a record is made ready for writing: :class:`Ledger` and
    :class:`kaizen.scale.ledger.PgLedger` both append what this returns.
    """
    from dataclasses import fields, replace

    from kaizen.redact import redact_obj

    record = replace(record, **{f.name: redact_obj(getattr(record, f.name)) for f in fields(record)
                                if f.init and f.name != "schema_version"})
    return record, record.to_json()


def check_day(day: Any, where: str = "Ledger.since") -> None:
    """Raise ValueError unless ``day`` is a UTC date ``YYYY-MM-DD``."""
    try:
        datetime.strptime(day, "%Y-%m-%d")
    except (TypeError, ValueError):
        raise ValueError(f"{where}: day must be a UTC date YYYY-MM-DD; got {day!r}") from None


class PromotionLog(Protocol):
    """What every promotion log offers (:class:`Ledger`, the embedded JSON Lines file; and
    :class:`kaizen.scale.ledger.PgLedger`, table ``kaizen.record``); ``kaizen.run.backend.ledger_for`` picks one.

    The contract, checked for both by one suite (``tests/scale/test_ledger.py``):

    * :meth:`append` is all or nothing, and exactly once per record id: a record whose id the log
      already holds is not written again (the held record is returned). It returns the record as
      written, credentials in its texts replaced by ``***`` (:func:`prepare`); it raises
      :class:`~kaizen.errors.LedgerError` (one line, no credentials) when nothing could be written.
    * Records come back in append order, as equal :class:`Record` values; nothing is ever rewritten.
    * ``tail``, ``since``, ``find``, ``resolution`` and ``last`` answer as the same filters over
      :meth:`records` would (``tail`` and ``since`` at a cost that follows what they return).
    * ``path`` names the log in messages (never with a password); ``skipped_lines`` counts the
      unreadable entries the last full read skipped.

    Several processes may append at once; an instance may be shared by threads.
    """

    path: Any
    skipped_lines: int

    def append(self, record: Record) -> Record: ...

    def records(self) -> list[Record]: ...

    def tail(self, policy: str | None, n: int, *, kinds: tuple[str, ...] | None = None) -> list[Record]: ...

    def since(self, policy: str | None, day: str, *, kinds: tuple[str, ...] | None = None,
              patience: int = SINCE_PATIENCE) -> list[Record]: ...

    def find(self, record_id: str) -> Record | None: ...

    def resolution(self, record_id: str) -> Record | None: ...

    def last(self, policy: str, *, kinds: tuple[str, ...] = ("cycle", "bootstrap")) -> Record | None: ...


class Ledger:
    """Append-only JSON Lines file. Safe for several writers (flock) and crashes (fsync)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.skipped_lines = 0

    @contextlib.contextmanager
    def _locked(self, record_id: str) -> Iterator[int]:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        except OSError as exc:
            raise LedgerError(f"promotion log {self.path}: cannot open for appending: {describe_os_error(exc)}; "
                              f"record {record_id} not written") from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield fd
        finally:
            os.close(fd)

    def append(self, record: Record) -> Record:
        """Write ``record`` as one line and return it as written: credentials in its texts become ``***``.

        All or nothing: when the line cannot be written whole (a full disk, a short write, a failed
        fsync) the file is cut back to its size before the write (under the lock, so no other writer
        is harmed) and :class:`~kaizen.errors.LedgerError` says so in one line, e.g. ``promotion log
        <path>: disk full (ENOSPC) after 2130 of 2200 bytes of record <id>; the partial line was removed``.

        Exactly once: when the file already holds a whole line of ``record.id`` (looked up under the
        lock, so two writers of one id cannot both miss it) nothing is written and that record is returned.
        """
        record, line = prepare(record)
        if "\n" in line:
            raise LedgerError(f"{self.path}: record {record.id} serialised to more than one line")
        data = (line + "\n").encode()
        with self._locked(record.id) as fd:
            # A torn line from a crashed writer must not glue onto ours.
            size = os.fstat(fd).st_size
            held = self._held(record.id, size)
            if held is not None:
                log.info("record %s is already in the promotion log %s; not appended again", record.id, self.path)
                return held
            if size:
                with open(self.path, "rb") as fh:
                    fh.seek(size - 1)
                    if fh.read(1) != b"\n":
                        data = b"\n" + data
            written = 0
            try:
                while written < len(data):  # a short write is followed by the error that explains it
                    written += os.write(fd, data[written:])
                os.fsync(fd)
            except OSError as exc:
                # We hold the lock: cut the file back so no torn line stays behind for anyone.
                kept = _truncate(fd, size)
                raise LedgerError(f"promotion log {self.path}: {describe_os_error(exc)} after {written} of "
                                  f"{len(data)} bytes of record {record.id}; "
                                  + ("the partial line was removed" if kept else
                                     "a partial line could not be removed (readers skip it)")) from exc
        return record

    def _held(self, record_id: str, size: int) -> Record | None:
        """The record ``record_id`` if one of the file's first ``size`` bytes' whole lines holds it.

        A line as :meth:`Record.to_json` writes it starts with ``{"id": "<id>", ``; inside a JSON string every
        quote is escaped, and a record always starts a line, so the search is for that head at the start
        of the file or after a newline (a memory-mapped search: milliseconds for tens of MB). A torn line
        with the head (a writer that died) does not count.
        """
        if size <= 0:
            return None
        head = b'{"id": ' + json.dumps(record_id).encode() + b", "
        try:
            with open(self.path, "rb") as fh, mmap.mmap(fh.fileno(), size, access=mmap.ACCESS_READ) as mm:
                def after(pos: int) -> int:  # the start of the next line that begins with the head, or -1
                    found = mm.find(b"\n" + head, pos)
                    return found + 1 if found >= 0 else -1

                at = 0 if mm[:len(head)] == head else after(0)
                while at >= 0:
                    end = mm.find(b"\n", at)
                    if end >= 0:  # an unterminated last line is torn: we hold the lock, so nobody is writing it
                        try:
                            rec = Record.from_dict(json.loads(mm[at:end]))
                        except (ValueError, TypeError):
                            rec = None
                        if rec is not None and rec.id == record_id:
                            return rec
                    at = after(at)
                return None
        except (OSError, ValueError) as exc:
            raise LedgerError(f"promotion log {self.path}: cannot read to check for record {record_id}: "
                              f"{describe_os_error(exc) if isinstance(exc, OSError) else exc}; not written") from exc

    def records(self) -> list[Record]:
        """Every readable record in file order; unreadable lines are counted in ``skipped_lines``."""
        self.skipped_lines = 0
        if not self.path.exists():
            return []
        out: list[Record] = []
        try:
            raw = self.path.read_bytes()
        except OSError as exc:
            raise LedgerError(f"{self.path}: cannot read ({exc.strerror})") from exc
        for line in raw.split(b"\n"):
            self._read_line(line, out)
        return out

    # -- bounded reads: newest first, in blocks, stopping early ------------------------------------
    def _read_line(self, line: bytes, out: list[Record]) -> None:
        """Append the record on ``line`` to ``out``; count it in ``skipped_lines`` if it is unreadable."""
        if not line.strip():
            return
        try:
            out.append(Record.from_dict(json.loads(line)))
        except (ValueError, TypeError):
            self.skipped_lines += 1

    def _backwards(self) -> Iterator[Record]:
        """Records newest first, reading ``READ_BLOCK`` bytes at a time from the end of the file.

        The file's size is taken once, so a record appended meanwhile is not seen (as with
        :meth:`records`). Unreadable lines (a torn last line) are skipped and counted.
        """
        self.skipped_lines = 0
        try:
            fh = open(self.path, "rb")
        except FileNotFoundError:
            return
        except OSError as exc:
            raise LedgerError(f"{self.path}: cannot read ({exc.strerror})") from exc
        with fh:
            pos = os.fstat(fh.fileno()).st_size
            carry = b""  # the start of a line whose beginning lies in an earlier block
            while pos > 0:
                size = min(READ_BLOCK, pos)
                pos -= size
                fh.seek(pos)
                lines = (fh.read(size) + carry).split(b"\n")
                carry = lines[0]
                for line in reversed(lines[1:]):
                    found: list[Record] = []
                    self._read_line(line, found)
                    yield from found
            found = []
            self._read_line(carry, found)
            yield from found

    def tail(self, policy: str | None, n: int, *, kinds: tuple[str, ...] | None = None) -> list[Record]:
        """The newest ``n`` records of ``policy`` (any policy if None) and of ``kinds`` (any if None), in file order.

        Equal to the last ``n`` of ``records()`` filtered the same way, but it reads the file
        backwards and stops once it has ``n``: its cost follows ``n``, not the length of the log.
        """
        if n <= 0:
            return []
        out: list[Record] = []
        for r in self._backwards():
            if (policy is None or r.policy == policy) and (kinds is None or r.kind in kinds):
                out.append(r)
                if len(out) == n:
                    break
        return out[::-1]

    def since(self, policy: str | None, day: str, *, kinds: tuple[str, ...] | None = None,
              patience: int = SINCE_PATIENCE) -> list[Record]:
        """Records of ``policy`` (any if None) whose ``time`` falls on UTC ``day`` (``YYYY-MM-DD``) or later.

        In file order, read backwards. The log is in append order, and a record's ``time`` is when
        it was decided, which is *nearly* append order: crash recovery appends the finished record of
        a dead run with the time it was decided (possibly days earlier, after newer records), and two
        runs of different policies may append a few seconds apart in the other order. So the read does
        not stop at the first older record; it stops after ``patience`` older records in a row (a
        recovery appends at most one record per run the dead process had going). Older records met
        before that are left out, as the filter of :meth:`records` would.
        """
        check_day(day)
        out: list[Record] = []
        older = 0
        for r in self._backwards():
            if str(r.time)[:10] < day:
                older += 1
                if older >= patience:
                    break
                continue
            older = 0
            if (policy is None or r.policy == policy) and (kinds is None or r.kind in kinds):
                out.append(r)
        return out[::-1]

    def find(self, record_id: str) -> Record | None:
        for r in self.records():
            if r.id == record_id:
                return r
        return None

    def resolution(self, record_id: str) -> Record | None:
        """The approval or rejection that resolved ``record_id``, if any."""
        for r in self.records():
            if r.resolves == record_id:
                return r
        return None

    def last(self, policy: str, *, kinds: tuple[str, ...] = ("cycle", "bootstrap")) -> Record | None:
        return last_of(self.records(), policy, kinds=kinds)


def last_of(records: list[Record], policy: str, *, kinds: tuple[str, ...] = ("cycle", "bootstrap")) -> Record | None:
    """The newest of ``records`` that belongs to ``policy`` and is of one of ``kinds``."""
    return next((r for r in reversed(records) if r.policy == policy and r.kind in kinds), None)
