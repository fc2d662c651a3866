"""Where a run's lock, journal, promotion log and webhooks live: this state folder (the embedded default) or PostgreSQL.

One place decides, from ``config.toml``: with ``[coordination] url`` (the scale-out path) a policy's
lock is a row lock in PostgreSQL and the crash journal a table there, so any host can run a policy
and recover another host's dead run, and webhooks go through an outbox there (:func:`outbox_for`);
without it, a file lock and a journal folder under ``[state] dir``, and webhooks sent by threads of
the deciding process. With ``[ledger] url`` the promotion log is table ``kaizen.record`` (:func:`ledger_for`,
and :func:`log_view_for` for the people who read it); without it, the JSON Lines file at ``[ledger] path``.
Everything that takes a policy's lock, reads the journal or reads or writes the live log asks here;
psycopg is imported only when a URL is set.
"""

from __future__ import annotations

from typing import Any

from kaizen.ledger import Ledger, PromotionLog
from kaizen.run.journal import Journal
from kaizen.run.locks import PolicyLock

__all__ = ["coordination_url", "journal_for", "ledger_for", "lock_for", "log_view_for", "outbox_for"]


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


def ledger_for(config: Any) -> PromotionLog:
    """The live promotion log: table ``kaizen.record`` at ``[ledger] url``, else the file at ``[ledger] path``."""
    url = getattr(config, "ledger_url", None)
    if url:
        from kaizen.scale.ledger import PgLedger

        return PgLedger(url)
    return Ledger(config.ledger_path)


def log_view_for(config: Any) -> Any:
    """The rows of the live log as ``kaizen log``, ``kaizen show`` and the review pages read them
    (``snapshot()``, ``record(row)``, ``raw_lines(rows)``, ``path``): :class:`kaizen.ui.logview.LogView` on the file
    (with its row cache under ``<state>/cache``), or :class:`kaizen.scale.logview.PgLogView` on the table."""
    url = getattr(config, "ledger_url", None)
    if url:
        from kaizen.scale.logview import PgLogView

        return PgLogView(url)
    from kaizen.ui.logview import LogView, cache_file

    return LogView(config.ledger_path, cache=cache_file(config))


def outbox_for(config: Any) -> Any:
    """Where a run queues its webhooks on the scale-out path (:class:`kaizen.scale.outbox.Outbox`); None on the
    embedded path, where the runner sends them from threads (:func:`kaizen.notify.dispatch`)."""
    url = coordination_url(config)
    if not url:
        return None
    from kaizen.scale.outbox import Outbox

    return Outbox(url, config)
