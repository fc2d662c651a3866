"""The promotion log in PostgreSQL: table ``kaizen.record``, one row per record (``[ledger] url``).

The same contract as the JSON Lines file (:class:`kaizen.ledger.PromotionLog`; one conformance suite,
``tests/scale/test_ledger.py``, runs against both), on a database every host reaches:

* a row holds the whole record as :func:`kaizen.ledger.prepare` makes it (credentials already ``***``),
  twice: ``record jsonb`` for SQL, and ``line``, the JSON line the file would hold — ``jsonb`` reorders
  an object's members, and readers give records back with their members in the order they were
  written (the review pages and ``kaizen show`` print sections in that order) — plus the columns
  readers filter on (``id`` unique, ``policy``, ``kind``, ``decision``, ``time``, ``day`` = the UTC
  date of ``time``, ``resolves``);
* ``seq`` is the append order. Appends take one transaction-scoped advisory lock (the ``flock`` of
  the file), so rows commit in ``seq`` order and a reader that has seen ``seq`` N has seen every
  row before it (:mod:`kaizen.scale.logview` reads only what was appended since);
* an append is one transaction: the row, and whatever the caller adds on the same connection
  (``also``: the webhooks' outbox rows, :mod:`kaizen.scale.outbox`), or nothing. ``ON CONFLICT (id)
  DO NOTHING`` makes it exactly once per id: a second append of an id returns the row already held;
* ``tail``/``since``/``find``/``resolution``/``last`` are indexed queries, not scans.

Errors are :class:`~kaizen.errors.LedgerError` in one line naming the table and the database
without its password. Quick to import: psycopg is imported when a method connects.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable
from typing import Any

from kaizen.errors import LedgerError
from kaizen.ledger import SINCE_PATIENCE, Record, check_day, prepare
from kaizen.redact import redact
from kaizen.scale.db import connect

__all__ = ["PgLedger", "ledger_error", "where"]

log = logging.getLogger("kaizen.ledger")

#: what an append does inside its transaction, after the row is inserted (and only then)
Also = Callable[[Any, Record], None]

_INSERT = """
INSERT INTO kaizen.record (id, policy, kind, decision, time, day, resolves, record, line)
VALUES (%(id)s, %(policy)s, %(kind)s, %(decision)s, %(time)s, %(day)s, %(resolves)s, %(doc)s::jsonb, %(line)s)
ON CONFLICT (id) DO NOTHING
RETURNING seq
"""
_WHERE = "(%(p)s::text IS NULL OR policy = %(p)s) AND (%(k)s::text[] IS NULL OR kind = ANY(%(k)s))"


def where(url: str) -> str:
    """How messages name the log at ``url``: the database without its password, and the table."""
    return f"{redact(url)} (table kaizen.record)"


def ledger_error(path: str, exc: Exception, what: str) -> LedgerError:
    """One line: the log, what failed, the database's reason (redacted), and the fix when the table is missing."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    hint = " (run `kaizen db upgrade`)" if "does not exist" in text else ""
    return LedgerError(f"promotion log {path}: {what}: {redact(text)}{hint}")


def _no_nul(o: Any) -> Any:
    """``o`` with NUL characters replaced (PostgreSQL's text and jsonb cannot hold ``\\u0000``)."""
    if isinstance(o, str):
        return o.replace("\x00", "\ufffd")
    if isinstance(o, dict):
        return {_no_nul(k): _no_nul(v) for k, v in o.items()}
    if isinstance(o, list):
        return [_no_nul(v) for v in o]
    return o


class PgLedger:
    """The promotion log as rows of ``kaizen.record`` in the database at ``url`` (module docstring)."""

    def __init__(self, url: str) -> None:
        if not url:
            raise ValueError(f"The 'url' parameter of PgLedger must be a PostgreSQL URL. Got {url!r} instead.")
        self.url = url
        #: names the log in messages (never with a password)
        self.path = where(url)
        self.skipped_lines = 0

    def __repr__(self) -> str:
        return f"PgLedger({self.path!r})"

    def _query(self, sql: str, args: Any = None) -> list[tuple[Any, ...]]:
        import psycopg

        try:
            with connect(self.url) as conn:
                return conn.execute(sql, args).fetchall()
        except psycopg.Error as exc:
            raise ledger_error(self.path, exc, "cannot read") from exc

    def _records(self, rows: Iterable[tuple[Any, ...]], *, count: bool = False) -> list[Record]:
        out = []
        skipped = 0
        for (line,) in rows:
            try:
                out.append(Record.from_dict(json.loads(line)))
            except (ValueError, TypeError, AttributeError):  # a row edited by hand into something else
                skipped += 1
        if count:
            self.skipped_lines = skipped
        return out

    # -- writing --------------------------------------------------------------------------------
    def append(self, record: Record, *, also: Also | None = None) -> Record:
        """Insert ``record`` (and run ``also(connection, record)`` in the same transaction); return it as written.

        All or nothing; exactly once per id (a held id returns the held record, and ``also`` does not run).
        Raises :class:`~kaizen.errors.LedgerError` when nothing was written.
        """
        import psycopg

        record, line = prepare(record)
        if "\\u0000" in line:  # what the table can hold, and so what is returned
            line = json.dumps(_no_nul(json.loads(line)))
            record = Record.from_dict(json.loads(line))
        # "doc" and "line" are the same text as two parameters: one parameter would be typed jsonb for both columns
        args = {"id": record.id, "policy": record.policy, "kind": record.kind, "decision": record.decision,
                "time": str(record.time), "day": str(record.time)[:10], "resolves": record.resolves, "doc": line,
                "line": line}
        try:
            with connect(self.url, autocommit=False) as conn:
                with conn.transaction():
                    conn.execute("SELECT pg_advisory_xact_lock(hashtext('kaizen.record'))")
                    if conn.execute(_INSERT, args).fetchone() is None:
                        held = conn.execute("SELECT line FROM kaizen.record WHERE id = %s",
                                            (record.id,)).fetchone()
                        log.info("record %s is already in the promotion log %s; not appended again", record.id,
                                 self.path)
                        return Record.from_dict(json.loads(held[0]))
                    if also is not None:
                        also(conn, record)
        except psycopg.Error as exc:
            raise ledger_error(self.path, exc, f"record {record.id} not written") from exc
        return record

    # -- reading --------------------------------------------------------------------------------
    def records(self) -> list[Record]:
        """Every record in append order (a row that is no record is counted in ``skipped_lines``)."""
        return self._records(self._query("SELECT line FROM kaizen.record ORDER BY seq"), count=True)

    def tail(self, policy: str | None, n: int, *, kinds: tuple[str, ...] | None = None) -> list[Record]:
        """The newest ``n`` records of ``policy`` (any if None) and ``kinds`` (any if None), in append order."""
        if n <= 0:
            return []
        rows = self._query(f"SELECT line FROM kaizen.record WHERE {_WHERE} ORDER BY seq DESC LIMIT %(n)s",
                           {"p": policy, "k": list(kinds) if kinds is not None else None, "n": int(n)})
        return self._records(rows)[::-1]

    def since(self, policy: str | None, day: str, *, kinds: tuple[str, ...] | None = None,
              patience: int = SINCE_PATIENCE) -> list[Record]:
        """Records of ``policy`` (any if None) whose ``time`` falls on UTC ``day`` or later, in append order.

        Exact (an indexed filter on the ``day`` column): ``patience`` is accepted for the interface's sake.
        """
        check_day(day, "PgLedger.since")
        rows = self._query(f"SELECT line FROM kaizen.record WHERE day >= %(d)s AND {_WHERE} ORDER BY seq",
                           {"d": day, "p": policy, "k": list(kinds) if kinds is not None else None})
        return self._records(rows)

    def find(self, record_id: str) -> Record | None:
        found = self._records(self._query("SELECT line FROM kaizen.record WHERE id = %s", (record_id,)))
        return found[0] if found else None

    def resolution(self, record_id: str) -> Record | None:
        """The approval or rejection that resolved ``record_id``, if any (the first one appended)."""
        found = self._records(self._query("SELECT line FROM kaizen.record WHERE resolves = %s ORDER BY seq "
                                          "LIMIT 1", (record_id,)))
        return found[0] if found else None

    def last(self, policy: str, *, kinds: tuple[str, ...] = ("cycle", "bootstrap")) -> Record | None:
        found = self.tail(policy, 1, kinds=kinds)
        return found[0] if found else None
