"""A promotion on the scale-out path is fenced: a durable intent, written with the epoch check.

Moving ``@champion`` is the one commit point of Kaizen, and on the scale-out path many processes on
many hosts could try it. Every alias move goes through :meth:`Fence.promotion` (called by
:meth:`kaizen.registry.Registry.promote`, the only method that moves the alias):

1. in one transaction on a connection of its own, read the scheduler's lease row ``FOR SHARE`` and
   check that its epoch is the epoch the work was enqueued under (``epoch`` None: a person's
   ``kaizen approve`` or ``rollback``, not enqueued by a leader, is not epoch-checked);
2. on a second connection, insert the intent row (``state = intent``), committed: it survives a
   crash of the mover;
3. move the alias (the caller's block), mark the intent ``done``, commit the first transaction.

The ``FOR SHARE`` row lock is held across the alias move, so a takeover (which updates the lease
row) waits until the move is over: either the move happens under the old epoch before the new
leader leads, or the new epoch is already there and the move is refused (:class:`Fenced`). A
deposed leader that wakes up, or a worker still running a job of an older epoch, cannot promote.

An intent left ``intent`` (the mover died between 2 and 3) is settled by :meth:`Fence.reconcile`:
``done`` when the alias points to its version (and the promotion's bookkeeping is finished), else
``undone``.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from typing import Any

from kaizen.registry.promotion import PromotionRefused
from kaizen.scale.db import connect

__all__ = ["Fence", "Fenced"]

log = logging.getLogger("kaizen.scale.fence")


class Fenced(PromotionRefused):
    """A promotion refused because the scheduler's epoch moved on since the work was enqueued."""


class Fence:
    """Promotions fenced by lease ``lease`` at ``url``; ``epoch`` is the enqueuing leader's (None: not checked)."""

    def __init__(self, url: str, *, epoch: int | None = None, lease: str = "scheduler") -> None:
        self.url, self.epoch, self.lease = url, epoch, lease

    @contextlib.contextmanager
    def promotion(self, policy: str, version: str, replaced: str | None, *, cycle_id: str,
                  reason: str = "") -> Iterator[int]:
        """Around the alias move of ``policy`` to ``version``; yields the intent's id. Raises :class:`Fenced`."""
        guard = connect(self.url, autocommit=False)
        try:
            if self.epoch is not None:
                row = guard.execute("SELECT epoch, expires_at > now() FROM kaizen.lease WHERE name = %s FOR SHARE",
                                    (self.lease,)).fetchone()
                if row is None or int(row[0]) != int(self.epoch):
                    now = "none" if row is None else row[0]
                    raise Fenced(f"not promoting version {version} of {policy!r}: the work was enqueued under "
                                 f"scheduler epoch {self.epoch}, but the epoch is now {now} (a newer leader took "
                                 "over): a deposed leader's or a late worker's promotion is refused")
            with connect(self.url) as conn:
                intent = conn.execute("INSERT INTO kaizen.promotion (policy, version, replaced, cycle_id, epoch, "
                                      "state, reason) VALUES (%s, %s, %s, %s, %s, 'intent', %s) RETURNING id",
                                      (policy, str(version), None if replaced is None else str(replaced), cycle_id,
                                       self.epoch, reason[:2000])).fetchone()[0]
            # the mover holds its intent row: a reconciler skips it (FOR UPDATE SKIP LOCKED) until the move is over
            guard.execute("SELECT 1 FROM kaizen.promotion WHERE id = %s FOR UPDATE", (intent,))
            yield int(intent)
            guard.execute("UPDATE kaizen.promotion SET state = 'done', settled_at = now() WHERE id = %s", (intent,))
            guard.commit()
        except BaseException:
            guard.rollback()
            raise
        finally:
            guard.close()

    def open_intents(self, policy: str | None = None) -> list[dict[str, Any]]:
        with connect(self.url) as conn:
            rows = conn.execute("SELECT id, policy, version, replaced, cycle_id, epoch, reason, created_at "
                                "FROM kaizen.promotion WHERE state = 'intent' AND (%(p)s::text IS NULL OR "
                                "policy = %(p)s) ORDER BY id", {"p": policy}).fetchall()
        keys = ("id", "policy", "version", "replaced", "cycle_id", "epoch", "reason", "created_at")
        return [dict(zip(keys, r, strict=True)) for r in rows]

    def reconcile(self, registry: Any, *, policy: str | None = None, older_than_seconds: float = 0.0
                  ) -> list[tuple[int, str]]:
        """Settle intents left open by a mover that died; [(intent id, "done" | "undone")]. Any host may run it."""
        out: list[tuple[int, str]] = []
        for it in self.open_intents(policy):
            with connect(self.url, autocommit=False) as conn:
                row = conn.execute("SELECT state, created_at < now() - %s * interval '1 second' FROM "
                                   "kaizen.promotion WHERE id = %s FOR UPDATE SKIP LOCKED",
                                   (older_than_seconds, it["id"])).fetchone()
                if row is None or row[0] != "intent" or not row[1]:
                    continue  # its mover is still at it (the row is locked), or settled meanwhile, or too young
                champ = registry.champion(it["policy"])
                if champ is not None and champ.version == it["version"]:
                    registry.settle_promotion(it["policy"], it["version"], it["replaced"], cycle_id=it["cycle_id"],
                                              reason=it["reason"] or f"replaced by version {it['version']} in "
                                                                     f"{it['cycle_id']}")
                    state = "done"
                else:
                    state = "undone"
                conn.execute("UPDATE kaizen.promotion SET state = %s, settled_at = now() WHERE id = %s",
                             (state, it["id"]))
                conn.commit()
            log.warning("promotion intent %s (%s v%s, %s) settled as %s", it["id"], it["policy"], it["version"],
                        it["cycle_id"], state)
            out.append((int(it["id"]), state))
        return out
