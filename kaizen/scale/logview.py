"""The promotion log's rows as people read them, from table ``kaizen.record`` (``[ledger] url``).

The same interface and the same rows as :class:`kaizen.ui.logview.LogView` reads from the file
(``snapshot()``, ``record(row)``, ``raw_lines(rows)``, ``path``), so ``kaizen log``, ``kaizen show`` and
the review pages do not change. A row needs only a record's head and its small sections; SQL
selects those (the columns, ``champion``, ``challenger``, ``gates``, the drift share, the trigger's
signals only where a row shows them) and leaves the per-column drift in the database, then
:func:`kaizen.ui.logview.row_of` builds the row exactly as it does for a decoded line. ``Row.offset``
holds the row's ``seq``.

``record(row)`` and ``raw_lines(rows)`` read column ``line``, the record exactly as written.

A view keeps its rows and, on each :meth:`PgLogView.snapshot`, reads only the rows after the last
``seq`` it has (appends are serialised, so ``seq`` order is commit order:
:mod:`kaizen.scale.ledger`), in one read-only snapshot with the table's row count; a count that does
not add up (rows deleted or inserted by hand) makes it read everything again.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from typing import Any

from kaizen.ledger import Record
from kaizen.scale.db import connect
from kaizen.scale.ledger import ledger_error, where
from kaizen.ui.logview import Row, RowIndex, Snapshot, row_of

__all__ = ["PgLogView"]

#: a row's head as columns, and the parts it shows as one JSON array (decoded with the other rows' in one call:
#: a value per cell would cost a decode each, ten per row)
_ROWS = """
SELECT seq, id, policy, decision, kind, time, resolves, jsonb_build_array(
       record -> 'reasons' -> 0, record -> 'champion', record -> 'challenger', record -> 'gates',
       jsonb_typeof(record #> '{trigger,monitor}') = 'object', record #> '{trigger,monitor,drift_share}',
       CASE WHEN decision IN ('promoted', 'awaiting_approval') AND kind = 'cycle'
            THEN record #> '{trigger,signals}' END,
       record -> 'mlflow_run_id', record -> 'report', record -> 'actor', record -> 'error', record -> 'comment')::text
FROM kaizen.record WHERE seq > %s ORDER BY seq
"""


def _row(head: tuple[Any, ...], parts: list[Any]) -> Row | None:
    """The row of one result of ``_ROWS`` (``parts``: its decoded array); None when it is not a readable record."""
    seq, rid, policy, decision, kind, time, resolves, _ = head
    reason, champion, challenger, gates, monitored, drift, signals, run_id, report, actor, error, comment = parts
    trigger: dict[str, Any] = {}
    if monitored:
        trigger["monitor"] = {"drift_share": drift}
    if signals is not None:
        trigger["signals"] = signals
    try:
        rec = Record(id=rid, policy=policy, decision=decision, kind=kind, time=time,
                     reasons=() if reason is None else (reason,), trigger=trigger, champion=champion or {},
                     challenger=challenger or {}, gates=tuple(gates) if isinstance(gates, list) else (),
                     mlflow_run_id=run_id, report=report, resolves=resolves, actor=actor, error=error,
                     comment=comment)
        return row_of(rec, int(seq), 0)
    except (ValueError, TypeError, AttributeError):
        return None


class PgLogView(RowIndex):
    """The rows of the promotion log at ``url`` (table ``kaizen.record``), kept in memory; thread-safe."""

    def __init__(self, url: str) -> None:
        self.url = url
        #: names the log in messages (never with a password)
        self.path = where(url)
        self._lock = threading.Lock()
        self._rows: list[Row] = []
        self._seen = 0  # rows read, readable or not (checked against the table's count)
        self._seq = 0
        self._skipped = 0
        self._by_id: dict[str, Row] = {}
        self._resolved: dict[str, Row] = {}
        self.reads = 0  # how many times rows were read (the tests check the view reads only what is new)

    def _reset(self) -> None:
        self._rows, self._seen, self._seq, self._skipped, self._by_id, self._resolved = [], 0, 0, 0, {}, {}

    def _refresh(self) -> None:
        import psycopg

        try:
            with connect(self.url, autocommit=False) as conn:
                conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
                count = int(conn.execute("SELECT count(*) FROM kaizen.record").fetchone()[0])
                new = conn.execute(_ROWS, (self._seq,)).fetchall()
                if self._seen + len(new) != count:  # rows went or came outside the append order: read it all again
                    self._reset()
                    new = conn.execute(_ROWS, (0,)).fetchall()
                conn.rollback()
        except psycopg.Error as exc:
            raise ledger_error(self.path, exc, "cannot read") from exc
        if new:
            self.reads += 1
        parts = json.loads("[" + ",".join(t[-1] for t in new) + "]") if new else []
        for t, p in zip(new, parts, strict=True):
            self._seen += 1
            self._seq = max(self._seq, int(t[0]))
            self._add(_row(t, p))

    def snapshot(self) -> Snapshot:
        """The rows as the table holds them now (reading only the rows appended since the last call)."""
        with self._lock:
            self._refresh()
            return Snapshot(rows=list(self._rows), by_id=dict(self._by_id), resolved=dict(self._resolved),
                            skipped=self._skipped)

    def _lines(self, seqs: list[int]) -> dict[int, str]:
        import psycopg

        try:
            with connect(self.url) as conn:
                return dict(conn.execute("SELECT seq, line FROM kaizen.record WHERE seq = ANY(%s)",
                                         (seqs,)).fetchall())
        except psycopg.Error as exc:
            raise ledger_error(self.path, exc, "cannot read") from exc

    def record(self, row: Row) -> Record | None:
        """The whole record of ``row`` (None if the table no longer holds it)."""
        line = self._lines([row.offset]).get(row.offset)
        try:
            return None if line is None else Record.from_dict(json.loads(line))
        except (ValueError, TypeError, AttributeError):
            return None

    def raw_lines(self, rows: list[Row]) -> Iterator[bytes]:
        """The line of each of ``rows`` as written (one query)."""
        if not rows:
            return
        lines = self._lines([r.offset for r in rows])
        for r in rows:
            if r.offset in lines:
                yield lines[r.offset].encode()
