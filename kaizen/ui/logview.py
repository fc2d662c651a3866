"""The promotion log as people read it: one light :class:`Row` per record, filtered, without parsing it all.

``kaizen log``, ``kaizen show`` and the review pages read the log through here. A realistic record is
2 to 10 kB, most of it the trigger's per-column drift; decoding 10,000 of them with :mod:`json` takes
well over half a second. A row needs only the head (id, policy, decision, first reason, kind, time), the
small sections (champion, challenger, gates, cost), the monitor's drift share and the tail (run id,
report, resolves, actor, error), so :func:`summarize` cuts those out of the line as the log writes it
(:meth:`kaizen.ledger.Record.to_json`: fixed key order, ``", "``/``": "`` separators) and decodes only
them. Inside a JSON string every ``"`` is escaped, so ``"key": `` with bare quotes only occurs as a key;
each cut is checked (the members from ``champion`` to the tail must follow one another exactly), and a
line that does not fit — another writer's layout, or a promotion whose "why" needs the trigger's
signals — is decoded whole. Either way the row is the same (``tests/test_log_cli.py`` checks both
paths agree on every kind of record). A line that does not decode into a :class:`Record` is skipped and
counted, as :meth:`kaizen.ledger.Ledger.records` does (a torn last line).

:class:`LogView` keeps the rows of one log file and re-reads only what was appended since (keyed by the
file's inode, size and modification time), so the review pages read the log once per change.

Imported by quick commands: the standard library and :mod:`kaizen.ledger` only.
"""

from __future__ import annotations

import json
import os
import re
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from kaizen.errors import KaizenError, LedgerError
from kaizen.ledger import DECISIONS, KINDS, Record

__all__ = ["LogView", "Query", "Row", "parse_when", "promoted_version", "summarize"]

_STR = rb'"((?:[^"\\]|\\.)*)"'
_HEAD = re.compile(rb'\{"id": ' + _STR + rb', "policy": ' + _STR + rb', "decision": "([a-z_]+)", "reasons": \[')
_KIND = re.compile(rb'\], "kind": "([a-z_]+)", "time": ' + _STR + rb', "window": ')
_DRIFT = re.compile(rb'"drift_share": (null|-?[0-9][0-9.eE+\-]*)')
_TAIL = b', "mlflow_run_id": '
_CHAMPION = b', "champion": {'
_TRIGGER = b', "trigger": {"monitor": {'
_DECODER = json.JSONDecoder()
_scanstring = json.decoder.scanstring  # type: ignore[attr-defined]


@dataclass(slots=True)
class Row:
    """What a list of decisions shows of one record, and where the record is in the file."""

    id: str
    policy: str
    decision: str
    kind: str
    time: str
    offset: int
    length: int
    reason: str = ""
    why: str = ""
    champion: dict[str, Any] = field(default_factory=dict)
    challenger: dict[str, Any] = field(default_factory=dict)
    failed_gates: tuple[str, ...] = ()
    drift_share: float | None = None
    mlflow_run_id: str | None = None
    report: str | None = None
    resolves: str | None = None
    actor: str | None = None
    error: str | None = None

    @property
    def window_metric(self) -> float | None:
        v = self.champion.get("window_metric")
        return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else None


def promoted_version(row: Row) -> str | None:
    """The version that became champion by ``row`` (None unless it promoted one)."""
    if row.decision != "promoted":
        return None
    ch, cl = row.champion, row.challenger
    if ch.get("promoted"):
        return str(ch["promoted"])
    if row.kind in ("bootstrap", "retrain") and ch.get("version"):
        return str(ch["version"])
    v = cl.get("version") or ch.get("version")
    return None if v is None else str(v)


def _why(decision: str, kind: str, reason: str, error: str | None, failed: tuple[str, ...],
         fired: list[str], gain: Any) -> str:
    """One line: why the record decided what it did (the WHY column of ``kaizen log``)."""
    if decision == "rejected" and failed:
        return "failed gate(s): " + ", ".join(failed)
    if decision in ("promoted", "awaiting_approval") and kind == "cycle" and fired and gain is not None:
        return f"triggered by {', '.join(fired)}; all gates passed (improvement {gain:+.4f})"
    if decision == "failed" and error:
        first = error.splitlines()
        return first[0][:90] if first else ""
    if reason:
        return reason[:90] + ("…" if len(reason) > 90 else "")
    return ""


def _needs_trigger(decision: str, kind: str) -> bool:
    return decision in ("promoted", "awaiting_approval") and kind == "cycle"


def _number(v: Any) -> float | None:
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else None


def _row(rec: Record, offset: int, length: int) -> Row:
    """The row of a decoded record (the reference the fast path must agree with)."""
    gates = [g for g in rec.gates if isinstance(g, dict)]
    failed = tuple(str(g.get("name")) for g in gates if not g.get("passed"))
    trigger = rec.trigger if isinstance(rec.trigger, dict) else {}
    fired = [str(s.get("rule")) for s in trigger.get("signals") or () if isinstance(s, dict) and s.get("fired")]
    gain = next(((g.get("numbers") or {}).get("improvement") for g in gates if g.get("name") == "improvement"), None)
    monitor = trigger.get("monitor") if isinstance(trigger.get("monitor"), dict) else {}
    reason = str(rec.reasons[0]) if rec.reasons else ""
    error = rec.error if isinstance(rec.error, str) else None
    return Row(id=str(rec.id), policy=str(rec.policy), decision=rec.decision, kind=rec.kind, time=str(rec.time),
               offset=offset, length=length, reason=reason,
               why=_why(rec.decision, rec.kind, reason, error, failed, fired, gain),
               champion=dict(rec.champion or {}), challenger=dict(rec.challenger or {}), failed_gates=failed,
               drift_share=_number(monitor.get("drift_share")) if trigger.get("monitor") is not None else None,
               mlflow_run_id=rec.mlflow_run_id, report=rec.report, resolves=rec.resolves, actor=rec.actor,
               error=error)


def _unquote(raw: bytes) -> str:
    return raw.decode() if b"\\" not in raw else json.loads(b'"' + raw + b'"')


def _members(text: str, start: int) -> dict[str, Any] | None:
    """Decode ``"key": value, "key": value ...`` from ``start`` to the end of ``text``; None unless exact."""
    out: dict[str, Any] = {}
    i, n = start, len(text)
    while i < n:
        if not text.startswith('"', i):
            return None
        key, i = _scanstring(text, i + 1)
        if not text.startswith(": ", i):
            return None
        value, i = _DECODER.raw_decode(text, i + 2)
        out[key] = value
        if i < n:
            if not text.startswith(", ", i):
                return None
            i += 2
    return out


def _fast(line: bytes, offset: int) -> Row | None:
    """The row of a line as :meth:`Record.to_json` writes it, decoding only what a row shows; None if unsure."""
    head = _HEAD.match(line)
    if head is None:
        return None
    decision = head.group(3).decode()
    kind_m = _KIND.search(line, head.end() - 1)
    if kind_m is None or decision not in DECISIONS:
        return None
    kind = kind_m.group(1).decode()
    if kind not in KINDS or _needs_trigger(decision, kind):
        return None
    tail_at = line.rfind(_TAIL)
    if tail_at < kind_m.end():
        return None
    try:
        tail = json.loads(b"{" + line[tail_at + 2:])
        reasons = line[head.end() - 1:kind_m.start() + 1].decode()
        reason = ""
        if reasons.startswith('["'):
            reason = _scanstring(reasons, 2)[0]
        middle: dict[str, Any] | None = None
        at = tail_at
        for _ in range(8):  # a nested "champion": {...} (in a later section) comes after the top-level one
            at = line.rfind(_CHAMPION, kind_m.end(), at)
            if at < 0:
                return None
            try:
                middle = _members(line[at + 2:tail_at].decode(), 0)
            except ValueError:
                middle = None
            if middle is not None:
                break
        if middle is None or not isinstance(tail, dict):
            return None
        drift = None
        trig = line.find(_TRIGGER, kind_m.end(), at)
        if trig >= 0:
            m = _DRIFT.search(line, trig, at)
            drift = None if m is None or m.group(1) == b"null" else float(m.group(1))
        _id, policy = _unquote(head.group(1)), _unquote(head.group(2))
        when = _unquote(kind_m.group(2))
    except (ValueError, UnicodeDecodeError, IndexError):
        return None
    champion, challenger, gates = middle.get("champion"), middle.get("challenger"), middle.get("gates")
    if not isinstance(champion, dict) or not isinstance(challenger, dict) or not isinstance(gates, list):
        return None
    failed = tuple(str(g.get("name")) for g in gates if isinstance(g, dict) and not g.get("passed"))
    error = tail.get("error") if isinstance(tail.get("error"), str) else None
    return Row(id=_id, policy=policy, decision=decision, kind=kind, time=when, offset=offset, length=len(line),
               reason=reason, why=_why(decision, kind, reason, error, failed, [], None), champion=champion,
               challenger=challenger, failed_gates=failed, drift_share=drift,
               mlflow_run_id=tail.get("mlflow_run_id"), report=tail.get("report"), resolves=tail.get("resolves"),
               actor=tail.get("actor"), error=error)


def summarize(line: bytes, offset: int = 0) -> Row | None:
    """The :class:`Row` of one log line (without its newline); None when it is not a readable record."""
    line = line.rstrip()
    if not line:
        return None
    row = _fast(line, offset)
    if row is not None:
        return row
    try:
        rec = Record.from_dict(json.loads(line))
    except (ValueError, TypeError, AttributeError):
        return None
    return _row(rec, offset, len(line))


# -- time filters ---------------------------------------------------------------------------------

def parse_when(text: str, *, end: bool = False, what: str = "time") -> str:
    """An ISO date or date-time as the log writes times (``2026-11-26T14:03:12Z``, UTC).

    A date alone is the start of that day, or its last second when ``end``. A time without an offset
    is UTC. Raises :class:`KaizenError` naming ``what`` and the value when it is neither.
    """
    raw = text.strip()
    try:
        if len(raw) == 10:
            day = datetime.strptime(raw, "%Y-%m-%d")
            return day.strftime("%Y-%m-%dT23:59:59Z" if end else "%Y-%m-%dT00:00:00Z")
        when = datetime.fromisoformat(raw.replace("z", "Z").replace("Z", "+00:00").replace(" ", "T", 1))
    except ValueError:
        raise KaizenError(f"{what} must be an ISO date or time such as 2026-11-26 or 2026-11-26T14:00Z; "
                          f"got {text!r}") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class Query:
    """Which rows to show: ``policy`` (None: all), ``decisions`` (empty: all), ``since``/``until``
    (inclusive, in :func:`parse_when`'s form), ``open_only`` (awaiting approval, not yet answered)."""

    policy: str | None = None
    decisions: tuple[str, ...] = ()
    since: str | None = None
    until: str | None = None
    open_only: bool = False

    def apply(self, rows: list[Row], answered: set[str] | None = None) -> list[Row]:
        out = rows
        if self.policy:
            out = [r for r in out if r.policy == self.policy]
        if self.decisions:
            want = set(self.decisions)
            out = [r for r in out if r.decision in want]
        if self.since:
            out = [r for r in out if r.time >= self.since]
        if self.until:
            out = [r for r in out if r.time[:20] <= self.until]
        if self.open_only:
            done = answered if answered is not None else set()
            out = [r for r in out if r.decision == "awaiting_approval" and r.id not in done]
        return out


# -- the file -------------------------------------------------------------------------------------

class LogView:
    """The rows of one promotion log, kept in memory and refreshed when the file changes (thread-safe).

    The log is append-only and every complete record ends with a newline, so a refresh reads only the
    bytes after the last complete line it has seen; a file that shrank or was replaced is read again.
    An unterminated last line (a write in progress, or torn by a crash) is read every time until it ends.
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._key: tuple[int, int, int] | None = None
        self._rows: list[Row] = []
        self._tail: list[Row] = []
        self._end = 0
        self._skipped = 0
        self._tail_skipped = 0
        self._by_id: dict[str, Row] = {}
        self._resolved: dict[str, Row] = {}
        self.reads = 0  # how many times the file was read (the tests check the cache)

    def _refresh(self) -> None:
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            self._key, self._rows, self._tail, self._end, self._skipped, self._tail_skipped = None, [], [], 0, 0, 0
            self._by_id, self._resolved = {}, {}
            return
        except OSError as exc:
            raise LedgerError(f"{self.path}: cannot read ({exc.strerror})") from exc
        key = (st.st_ino, st.st_size, st.st_mtime_ns)
        if key == self._key:
            return
        if self._key is None or st.st_ino != self._key[0] or st.st_size < self._end:
            self._rows, self._end, self._skipped, self._by_id, self._resolved = [], 0, 0, {}, {}
        try:
            with open(self.path, "rb") as fh:
                fh.seek(self._end)
                data = fh.read()
        except OSError as exc:
            raise LedgerError(f"{self.path}: cannot read ({exc.strerror})") from exc
        self.reads += 1
        complete = data.rfind(b"\n") + 1
        for line, at in _lines(data, 0, complete):
            self._add(summarize(line, self._end + at))
        self._tail, self._tail_skipped = [], 0
        for line, at in _lines(data, complete, len(data)):
            row = summarize(line, self._end + at)
            if row is None:
                self._tail_skipped += 1
            else:
                self._tail.append(row)
        self._end += complete
        self._key = key

    def _add(self, row: Row | None) -> None:
        if row is None:
            self._skipped += 1
            return
        self._rows.append(row)
        self._by_id.setdefault(row.id, row)
        if row.resolves:
            self._resolved.setdefault(row.resolves, row)

    def snapshot(self) -> Snapshot:
        """The rows as the file is now (read only if it changed since the last call)."""
        with self._lock:
            self._refresh()
            rows = self._rows + self._tail if self._tail else list(self._rows)
            resolved = dict(self._resolved)
            for r in self._tail:
                if r.resolves:
                    resolved.setdefault(r.resolves, r)
            return Snapshot(rows=rows, by_id={**{r.id: r for r in self._tail if r.id not in self._by_id},
                                              **self._by_id},
                            resolved=resolved, skipped=self._skipped + self._tail_skipped)

    def record(self, row: Row) -> Record | None:
        """The whole record of ``row``, decoded from its line (None if the file no longer holds it)."""
        try:
            with open(self.path, "rb") as fh:
                fh.seek(row.offset)
                line = fh.read(row.length)
            return Record.from_dict(json.loads(line))
        except (OSError, ValueError, TypeError):
            return None

    def raw(self, row: Row) -> bytes:
        """The line of ``row`` as written (no newline)."""
        with open(self.path, "rb") as fh:
            fh.seek(row.offset)
            return fh.read(row.length)


def _lines(data: bytes, start: int, stop: int) -> Any:
    """``(line, offset)`` for each line of ``data[start:stop]``."""
    at = start
    while at < stop:
        nl = data.find(b"\n", at, stop)
        nl = stop if nl < 0 else nl
        yield data[at:nl], at
        at = nl + 1


@dataclass(frozen=True)
class Snapshot:
    """The log at one moment: its rows in file order, each id's first row, what answered each approval."""

    rows: list[Row]
    by_id: dict[str, Row]
    resolved: dict[str, Row]
    skipped: int

    def waiting(self) -> list[Row]:
        """Rows awaiting approval that nobody answered."""
        return [r for r in self.rows if r.decision == "awaiting_approval" and r.id not in self.resolved]

    def policies(self) -> list[str]:
        return sorted({r.policy for r in self.rows})
