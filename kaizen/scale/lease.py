"""The scheduler's lease: exactly one ``kaizen run`` replica leads, and every takeover grows an epoch.

APScheduler 3 cannot share a job store between schedulers, and PostgreSQL's session advisory locks
vanish silently behind transaction pooling. So the replicas compete for one row of
``kaizen.lease`` with an expiry, in a single statement:

* no row, or the row's lease has expired: take it, ``epoch + 1`` (a takeover);
* the row is ours and has not expired: renew it (the epoch stays);
* the row is someone else's and alive: do nothing — we follow.

Every time comes from the database's clock (``now()``), so hosts' clocks never disagree about
who leads. The leader renews every ``ttl / 3``; a leader that cannot renew before its lease
expires stops scheduling at once (:meth:`Lease.acquire` says ``leader=False``), so two leaders
never act in the same instant. The epoch is the fencing token: work a leader enqueued carries it,
and a promotion is refused unless it is still the current one (:mod:`kaizen.scale.fence`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from kaizen.scale.db import connect, holder_id

__all__ = ["Lease", "Term"]

log = logging.getLogger("kaizen.scale.lease")

_TAKE = """
INSERT INTO kaizen.lease AS l (name, holder, epoch, acquired_at, renewed_at, expires_at)
VALUES (%(name)s, %(holder)s, 1, now(), now(), now() + %(ttl)s * interval '1 second')
ON CONFLICT (name) DO UPDATE SET
    holder = EXCLUDED.holder,
    epoch = CASE WHEN l.holder = EXCLUDED.holder AND l.expires_at > now() THEN l.epoch ELSE l.epoch + 1 END,
    acquired_at = CASE WHEN l.holder = EXCLUDED.holder AND l.expires_at > now() THEN l.acquired_at ELSE now() END,
    renewed_at = now(),
    expires_at = EXCLUDED.expires_at
WHERE l.holder = EXCLUDED.holder OR l.expires_at <= now()
RETURNING holder, epoch, acquired_at, expires_at
"""
_READ = "SELECT holder, epoch, acquired_at, expires_at FROM kaizen.lease WHERE name = %(name)s"


@dataclass(frozen=True)
class Term:
    """Who holds the lease now: ``leader`` is true when it is this process."""

    holder: str
    epoch: int
    acquired_at: datetime | None
    expires_at: datetime | None
    leader: bool

    def to_dict(self) -> dict[str, object]:
        return {"holder": self.holder, "epoch": self.epoch, "leader": self.leader,
                "acquired_at": self.acquired_at.isoformat() if self.acquired_at else None,
                "expires_at": self.expires_at.isoformat() if self.expires_at else None}


class Lease:
    """One named lease on ``url`` for ``holder`` (default ``host:pid``), valid ``ttl_seconds`` after each renewal."""

    def __init__(self, url: str, *, name: str = "scheduler", holder: str | None = None,
                 ttl_seconds: float = 15.0) -> None:
        if not ttl_seconds > 0:
            raise ValueError(f"The 'ttl_seconds' parameter of Lease must be > 0. Got {ttl_seconds!r} instead.")
        self.url, self.name, self.ttl = url, name, float(ttl_seconds)
        self.holder = holder or holder_id()

    def acquire(self) -> Term:
        """Take or renew the lease if it is free or ours; else report who holds it. One statement, atomic."""
        args = {"name": self.name, "holder": self.holder, "ttl": self.ttl}
        with connect(self.url) as conn:
            row = conn.execute(_TAKE, args).fetchone()
            if row is not None:
                return Term(row[0], int(row[1]), row[2], row[3], True)
            row = conn.execute(_READ, args).fetchone()
        if row is None:  # deleted between the two statements: nobody leads this instant
            return Term("", 0, None, None, False)
        return Term(row[0], int(row[1]), row[2], row[3], False)

    def release(self) -> None:
        """Give the lease up now if we hold it (a clean shutdown: the standby takes over at its next try)."""
        with connect(self.url) as conn:
            conn.execute("UPDATE kaizen.lease SET expires_at = now() WHERE name = %s AND holder = %s",
                         (self.name, self.holder))

    def current(self) -> Term | None:
        """The lease as the database holds it (None: never taken); ``leader`` says whether it is ours and alive."""
        with connect(self.url) as conn:
            row = conn.execute("SELECT holder, epoch, acquired_at, expires_at, expires_at > now() FROM kaizen.lease "
                               "WHERE name = %s", (self.name,)).fetchone()
        if row is None:
            return None
        return Term(row[0], int(row[1]), row[2], row[3], bool(row[4]) and row[0] == self.holder)
