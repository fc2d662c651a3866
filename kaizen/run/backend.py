"""Where a run's lock and journal live: this state folder (the embedded default) or the coordination database.

One place decides, from ``config.toml``: with ``[coordination] url`` (the scale-out path) a policy's
lock is a row lock in PostgreSQL and the crash journal a table there, so any host can run a policy
and recover another host's dead run; without it, a file lock and a journal folder under ``[state] dir``.
Everything that takes a policy's lock or reads the journal asks here.
"""

from __future__ import annotations

from typing import Any

from kaizen.run.journal import Journal
from kaizen.run.locks import PolicyLock

__all__ = ["coordination_url", "journal_for", "lock_for"]


def coordination_url(config: Any) -> str | None:
    coord = getattr(config, "coordination", None)
    return getattr(coord, "url", None) or None


def lock_for(config: Any, policy: str, *, wait_seconds: float = 0.0) -> Any:
    """The lock of ``policy`` (a context manager with ``try_acquire``/``acquire``/``release``/``holder``)."""
    url = coordination_url(config)
    if url:
        from kaizen.scale.lock import PgPolicyLock

        return PgPolicyLock(url, policy, wait_seconds=wait_seconds)
    return PolicyLock(config.state_dir, policy, wait_seconds=wait_seconds)


def journal_for(config: Any) -> Journal:
    url = coordination_url(config)
    if url:
        from kaizen.scale.journal import PgJournal

        return PgJournal(url, config.ledger_path)
    return Journal(config.state_dir, config.ledger_path)
