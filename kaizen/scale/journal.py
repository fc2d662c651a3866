"""The crash journal in ``kaizen.journal``: a run that dies on one host is recovered from any other.

The entry of each step is exactly what :class:`kaizen.run.journal.Journal` builds (this class only
replaces where it is stored): one row per unfinished run, upserted at every step and deleted when
the run's record is written. A worker killed mid-cycle leaves its row; the next run of that policy,
on whatever host, settles it (:mod:`kaizen.run.recovery`) before it starts. There is no space
reserve to keep: the database, not the host's disk, holds the decision.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from kaizen.redact import redact
from kaizen.run.journal import Journal
from kaizen.scale.db import connect

__all__ = ["PgJournal"]

log = logging.getLogger("kaizen.run.journal")


class PgJournal(Journal):
    """:class:`~kaizen.run.journal.Journal` whose entries are rows of ``kaizen.journal`` at ``url``."""

    def __init__(self, url: str, ledger_path: Path | str | None = None) -> None:
        super().__init__(Path("."), Path(ledger_path or "."))
        self.url = url
        self.dir = f"{redact(url)} (table kaizen.journal)"  # type: ignore[assignment]  # named in messages only

    def path(self, cycle_id: str) -> Any:  # type: ignore[override]
        return f"kaizen.journal/{cycle_id}"

    def _write(self, cycle_id: str, payload: bytes, step: str) -> None:
        entry = json.loads(payload)
        with connect(self.url) as conn:
            conn.execute("INSERT INTO kaizen.journal (id, policy, step, entry, updated_at) "
                         "VALUES (%s, %s, %s, %s::jsonb, now()) ON CONFLICT (id) DO UPDATE SET "
                         "step = EXCLUDED.step, entry = EXCLUDED.entry, updated_at = now()",
                         (cycle_id, entry.get("policy", ""), step, payload.decode()))

    def _reserve(self, cycle_id: str, *, quiet: bool) -> None:
        """Nothing to set aside: the database holds the decision, not this host's disk."""

    def remove(self, cycle_id: str) -> None:
        with self._lock:
            self._entries.pop(cycle_id, None)
            self._written.pop(cycle_id, None)
            self._failed.discard(cycle_id)
        with connect(self.url) as conn:
            conn.execute("DELETE FROM kaizen.journal WHERE id = %s", (cycle_id,))

    def pending(self, policy: str | None = None) -> list[dict[str, Any]]:
        with self._lock:
            running = set(self._entries)
        with connect(self.url) as conn:
            rows = conn.execute("SELECT id, entry FROM kaizen.journal WHERE (%(p)s::text IS NULL OR policy = %(p)s) "
                                "ORDER BY updated_at, id", {"p": policy}).fetchall()
        return [dict(entry) for cid, entry in rows if cid not in running]
