"""The promotion log as people read it: one light :class:`Row` per record, filtered, without parsing it all.

``kaizen log``, ``kaizen show`` and the review pages read the log through here. A realistic record is
2 to 10 kB, most of it the trigger's per-column drift; decoding 10,000 of them with :mod:`json` takes
well over half a second. A row needs only the head (id, policy, decision, first reason, kind, time), the
members from ``champion`` to the end (champion, challenger, gates, cost, run id, report, resolves,
actor, error: small) and the monitor's drift share, so :func:`summarize` cuts those out of the line as
the log writes it (:meth:`kaizen.ledger.Record.to_json`: fixed key order, ``", "``/``": "`` separators)
and decodes only them. Inside a JSON string every ``"`` is escaped, so ``"key": `` with bare quotes
only occurs as a key; the cut from ``"champion": {`` to the end must decode as one JSON object, which
only the top-level one does (a nested ``"champion": {`` in a later section leaves unbalanced braces).
A line that does not fit — another writer's layout, or a promotion whose "why" needs the trigger's
signals — is decoded whole. Either way the row is the same (``tests/test_log_cli.py`` checks both
paths agree on every kind of record). A line that does not decode into a :class:`Record` is skipped and
counted, as :meth:`kaizen.ledger.Ledger.records` does (a torn last line).

:class:`LogView` keeps the rows of one log file and re-reads only what was appended since (keyed by the
file's inode, size and modification time), so the review pages read the log once per change; with a
``cache`` file it also keeps them between processes (``kaizen log`` is a new process every time).

Imported by quick commands: the standard library and :mod:`kaizen.ledger` only.
"""

from __future__ import annotations

import json
import logging
import marshal
import os
import re
import threading
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from functools import cached_property
from pathlib import Path
from typing import Any

from kaizen._io import write_atomic
from kaizen.errors import KaizenError, LedgerError
from kaizen.ledger import DECISIONS, KINDS, Record

__all__ = ["LogView", "Query", "Row", "Snapshot", "Stale", "cache_file", "match_id", "parse_when", "promoted_version",
           "row_of", "summarize", "superseding"]

log = logging.getLogger("kaizen.ui")

_CACHE_VERSION = 1

_STR = rb'"([^"\\]*(?:\\.[^"\\]*)*)"'
_HEAD = re.compile(rb'\{"id": ' + _STR + rb', "policy": ' + _STR + rb', "decision": "([a-z_]+)", "reasons": \[')
_KIND = re.compile(rb'\], "kind": "([a-z_]+)", "time": ' + _STR + rb', "window": ')
_DRIFT = re.compile(rb'"drift_share": (null|-?[0-9][0-9.eE+\-]*)')
_FIRST = re.compile(_STR)
_DECODER = json.JSONDecoder()
_CHAMPION = b', "champion": {'
_TRIGGER = b', "trigger": {"monitor": {'


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
    comment: str | None = None

    @property
    def window_metric(self) -> float | None:
        v = self.champion.get("window_metric")
        return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else None


_FIELDS = tuple(f.name for f in fields(Row))


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
         fired: list[str], gain: Any, comment: str | None = None) -> str:
    """One line: why the record decided what it did (the WHY column of ``kaizen log``); a person's comment follows."""
    if comment:
        said = " ".join(str(comment).split())
        return _why(decision, kind, reason, error, failed, fired, gain) + f' — "{said[:80]}' + (
            '…"' if len(said) > 80 else '"')
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


def row_of(rec: Record, offset: int, length: int) -> Row:
    """The row of a decoded record (the reference the fast path, and the PostgreSQL log's rows, must agree with)."""
    gates = [g for g in rec.gates if isinstance(g, dict)]
    failed = tuple(str(g.get("name")) for g in gates if not g.get("passed"))
    trigger = rec.trigger if isinstance(rec.trigger, dict) else {}
    fired = [str(s.get("rule")) for s in trigger.get("signals") or () if isinstance(s, dict) and s.get("fired")]
    gain = next(((g.get("numbers") or {}).get("improvement") for g in gates
                 if g.get("name") in ("improvement", "significance")), None)
    monitor = trigger.get("monitor") if isinstance(trigger.get("monitor"), dict) else {}
    reason = str(rec.reasons[0]) if rec.reasons else ""
    error = rec.error if isinstance(rec.error, str) else None
    return Row(id=str(rec.id), policy=str(rec.policy), decision=rec.decision, kind=rec.kind, time=str(rec.time),
               offset=offset, length=length, reason=reason,
               why=_why(rec.decision, rec.kind, reason, error, failed, fired, gain, _text(rec.comment)),
               champion=dict(rec.champion or {}), challenger=dict(rec.challenger or {}), failed_gates=failed,
               drift_share=_number(monitor.get("drift_share")) if trigger.get("monitor") is not None else None,
               mlflow_run_id=rec.mlflow_run_id, report=rec.report, resolves=rec.resolves, actor=rec.actor,
               error=error, comment=_text(rec.comment))


_row = row_of  # its earlier name (tests/test_log_cli.py)


def _text(v: Any) -> str | None:
    """A comment as a row keeps it: a non-empty string, else None."""
    return v if isinstance(v, str) and v else None


def _unquote(raw: bytes) -> str:
    return raw.decode() if b"\\" not in raw else json.loads(b'"' + raw + b'"')


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
    rest: Any = None
    at = len(line)
    for _ in range(8):  # a nested "champion": {...} (in a later section) comes after the top-level one
        at = line.rfind(_CHAMPION, kind_m.end(), at)
        if at < 0:
            return None
        try:  # the members from "champion" to the end, as one object: only the top-level ones parse so
            text = "{" + line[at + 2:].decode()
            rest, end = _DECODER.raw_decode(text)  # json.loads(bytes) spends longer guessing the encoding
            if end == len(text):
                break
        except (ValueError, UnicodeDecodeError):
            pass
        rest = None
    if not isinstance(rest, dict):
        return None
    champion, challenger, gates = rest.get("champion"), rest.get("challenger"), rest.get("gates")
    if not isinstance(champion, dict) or not isinstance(challenger, dict) or not isinstance(gates, list):
        return None
    try:
        first = _FIRST.match(line, head.end())
        reason = _unquote(first.group(1)) if first else ""
        drift = None
        trig = line.find(_TRIGGER, kind_m.end(), at)
        if trig >= 0:
            m = _DRIFT.search(line, trig, at)
            drift = None if m is None or m.group(1) == b"null" else float(m.group(1))
        _id, policy, when = _unquote(head.group(1)), _unquote(head.group(2)), _unquote(kind_m.group(2))
    except (ValueError, UnicodeDecodeError):
        return None
    failed = tuple(str(g.get("name")) for g in gates if isinstance(g, dict) and not g.get("passed"))
    error = rest.get("error") if isinstance(rest.get("error"), str) else None
    comment = _text(rest.get("comment"))
    return Row(id=_id, policy=policy, decision=decision, kind=kind, time=when, offset=offset, length=len(line),
               reason=reason, why=_why(decision, kind, reason, error, failed, [], None, comment), champion=champion,
               challenger=challenger, failed_gates=failed, drift_share=drift,
               mlflow_run_id=rest.get("mlflow_run_id"), report=rest.get("report"), resolves=rest.get("resolves"),
               actor=rest.get("actor"), error=error, comment=comment)


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
    return row_of(rec, offset, len(line))


# -- approvals made stale by newer records -------------------------------------------------------

@dataclass(frozen=True)
class Stale:
    """An open approval (``waiting``) made stale by the newer record ``by``; ``why``: one clause saying how."""

    waiting: Any
    by: Any
    why: str


def _version(r: Any, section: str) -> str | None:
    v = (getattr(r, section) or {}).get("version")
    return None if v is None else str(v)


def superseding(records: Iterable[Any]) -> dict[str, Stale]:
    """The open approvals that newer records made stale, by id: ``records`` in log order (records or rows).

    An approval nobody answered is stale once a later record of its policy awaits approval (a newer
    challenger), promotes a version (a promotion, an approval, a rollback, a bootstrap), or is a cycle
    that found another champion than the one the approval was judged against.
    """
    open_by_policy: dict[str, dict[str, Any]] = {}
    out: dict[str, Stale] = {}
    for r in records:
        if r.resolves:
            for waiting in open_by_policy.values():
                waiting.pop(r.resolves, None)
            out.pop(r.resolves, None)  # answered (approved, rejected, expired, closed as superseded)
        mine = open_by_policy.setdefault(r.policy, {})
        promoted = promoted_version(r)
        if r.decision == "awaiting_approval":
            for w in mine.values():
                out[w.id] = Stale(w, r, f"a newer challenger, version {_version(r, 'challenger')}, awaits approval "
                                        f"({r.id})")
            mine.clear()
            mine[r.id] = r
        elif promoted is not None:
            how = "rolled back to" if r.kind == "rollback" else "promoted"
            for w in mine.values():
                out[w.id] = Stale(w, r, f"the champion changed: {r.kind} {r.id} {how} version {promoted}")
            mine.clear()
        elif r.kind == "cycle" and _version(r, "champion") is not None:
            now = _version(r, "champion")
            for w in [w for w in mine.values() if _version(w, "champion") not in (None, now)]:
                out[w.id] = Stale(w, r, f"the champion changed: cycle {r.id} found version {now} serving, not "
                                        f"version {_version(w, 'champion')} it was judged against")
                del mine[w.id]
    return out


# -- ids as people type them ----------------------------------------------------------------------

#: how many candidates an ambiguous id prefix lists
CANDIDATES_SHOWN = 8


def match_id(ids: Any, ref: str, *, where: Any = "the promotion log") -> str:
    """The id among ``ids`` that ``ref`` names: the id itself, or the only one that starts with ``ref``.

    Raises :class:`KaizenError` when none matches (naming ``where``) or when several start with ``ref``
    (listing them: type more of the id).
    """
    ref = ref.strip()
    known = ids if isinstance(ids, (set, frozenset, dict)) else set(ids)
    if ref in known:
        return ref
    found = sorted(i for i in known if ref and i.startswith(ref))
    if len(found) == 1:
        return found[0]
    if not found:
        raise KaizenError(f"no record {ref!r} in {where}")
    shown = ", ".join(found[:CANDIDATES_SHOWN]) + (f", … ({len(found) - CANDIDATES_SHOWN} more)"
                                                   if len(found) > CANDIDATES_SHOWN else "")
    raise KaizenError(f"the id prefix {ref!r} matches {len(found)} records in {where}: {shown}; type more of the id")


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

def cache_file(config: Any) -> Path:
    """Where ``config``'s row cache lives: ``<state>/cache/promotion-log.rows`` (``[retention] cache_days`` applies)."""
    return Path(config.state_dir) / "cache" / "promotion-log.rows"


class RowIndex:
    """The rows read so far, by id and by the record each answers; a view's :meth:`_add` keeps them."""

    _rows: list[Row]
    _skipped: int
    _by_id: dict[str, Row]
    _resolved: dict[str, Row]

    def _add(self, row: Row | None) -> None:
        """Index ``row``; None (a line or record that could not be read) is counted as skipped."""
        if row is None:
            self._skipped += 1
            return
        self._rows.append(row)
        self._by_id.setdefault(row.id, row)
        if row.resolves:
            self._resolved.setdefault(row.resolves, row)


class LogView(RowIndex):
    """The rows of one promotion log, kept in memory and refreshed when the file changes (thread-safe).

    The log is append-only and every complete record ends with a newline, so a refresh reads only the
    bytes after the last complete line it has seen; a file that shrank or was replaced is read again.
    An unterminated last line (a write in progress, or torn by a crash) is read every time until it ends.
    """

    def __init__(self, path: Path, *, cache: Path | None = None) -> None:
        """``cache``: a file that keeps the rows between processes (``kaizen log`` is a new process each time)."""
        self.path = Path(path)
        self.cache = Path(cache) if cache is not None else None
        self._crc = 0  # CRC-32 of the first _end bytes (checks the cache against the file)
        self._lock = threading.Lock()
        self._key: tuple[int, int, int] | None = None
        self._rows: list[Row] = []
        self._tail: list[Row] = []
        self._end = 0
        self._skipped = 0
        self._tail_skipped = 0
        self._by_id: dict[str, Row] = {}
        self._resolved: dict[str, Row] = {}
        self.reads = 0  # how many times the file was read, and how many lines were decoded (the tests check)
        self.decoded = 0

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
            self._rows, self._end, self._skipped, self._by_id, self._resolved, self._crc = [], 0, 0, {}, {}, 0
            self._load_cache(st)
        try:
            with open(self.path, "rb") as fh:
                fh.seek(self._end)
                data = fh.read()
        except OSError as exc:
            raise LedgerError(f"{self.path}: cannot read ({exc.strerror})") from exc
        self.reads += 1
        complete = data.rfind(b"\n") + 1
        self.decoded += data.count(b"\n") + (complete < len(data))
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
        self._crc = zlib.crc32(memoryview(data)[:complete], self._crc)
        self._key = key
        if self.cache is not None and complete:  # new complete lines: the next process need not decode them
            self._save_cache(st)

    # -- the rows kept between processes ---------------------------------------------------------
    def _load_cache(self, st: os.stat_result) -> None:
        """Start from the cached rows if they describe this file: same path and inode, and the bytes up to
        the cached end unchanged (the file exactly as when the cache was written, or its first bytes with
        the same CRC-32: a hand edit anywhere is seen); else from the beginning."""
        if self.cache is None:
            return
        try:
            doc = marshal.loads(self.cache.read_bytes())
            version, path, names, ino, end, crc, seen, skipped, rows = doc
            if (version, path, names, ino) != (_CACHE_VERSION, str(self.path), _FIELDS, st.st_ino) or end > st.st_size:
                return
            if tuple(seen) != (st.st_size, st.st_mtime_ns) and self._crc32(end) != crc:
                return
            loaded = [Row(*t) for t in rows]
        except (OSError, ValueError, EOFError, TypeError):
            return
        for row in loaded:
            self._add(row)
        self._end, self._skipped, self._crc = end, skipped, crc

    def _crc32(self, end: int) -> int:
        """CRC-32 of the log's first ``end`` bytes (a few tens of ms for 24 MB; decoding them takes 20 times that)."""
        crc = 0
        with open(self.path, "rb") as fh:
            left = end
            while left > 0:
                chunk = fh.read(min(left, 1 << 20))
                if not chunk:
                    break
                crc = zlib.crc32(chunk, crc)
                left -= len(chunk)
        return crc

    def _save_cache(self, st: os.stat_result) -> None:
        assert self.cache is not None
        try:
            rows = [tuple(getattr(r, f) for f in _FIELDS) for r in self._rows]
            data = marshal.dumps((_CACHE_VERSION, str(self.path), _FIELDS, st.st_ino, self._end, self._crc,
                                  (st.st_size, st.st_mtime_ns), self._skipped, rows))
            self.cache.parent.mkdir(parents=True, exist_ok=True)
            write_atomic(self.cache, data)
        except (OSError, ValueError) as exc:  # a read-only or full state folder: only slower next time
            log.debug("promotion log row cache %s not written: %s", self.cache, exc)


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

    def raw_lines(self, rows: list[Row]) -> Iterator[bytes]:
        """The line of each of ``rows`` as written (without its newline), reading the file once."""
        if not rows:
            return
        try:
            with open(self.path, "rb") as fh:
                for row in rows:
                    fh.seek(row.offset)
                    yield fh.read(row.length)
        except OSError as exc:
            raise LedgerError(f"{self.path}: cannot read ({exc.strerror})") from exc


def _lines(data: bytes, start: int, stop: int) -> Iterator[tuple[bytes, int]]:
    """``(line, offset)`` for each non-blank line of ``data[start:stop]``."""
    at = start
    while at < stop:
        nl = data.find(b"\n", at, stop)
        nl = stop if nl < 0 else nl
        if nl > at and not data[at:nl].isspace():
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
        """Rows awaiting approval that nobody answered and no newer record superseded (:attr:`stale`)."""
        return [r for r in self.rows if r.decision == "awaiting_approval" and r.id not in self.resolved
                and r.id not in self.stale]

    @cached_property
    def stale(self) -> dict[str, Stale]:
        """The open approvals a newer record superseded, not closed by a record yet (:func:`superseding`)."""
        if not any(r.decision == "awaiting_approval" and r.id not in self.resolved for r in self.rows):
            return {}
        return superseding(self.rows)

    def policies(self) -> list[str]:
        return sorted({r.policy for r in self.rows})
