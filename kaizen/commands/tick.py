"""What runs for a policy when its time comes: answer the approvals that waited too long, then one cycle.

``kaizen once``, the daemon's schedule, the backtest and (on the scale-out path) a worker all run a
policy through :func:`tick`; :func:`kaizen.cycle.run_cycle` itself is only the cycle.
"""

from __future__ import annotations

import threading
from typing import Any

from kaizen.config import Config
from kaizen.ledger import Record
from kaizen.policy import Policy

__all__ = ["tick"]


def tick(config: Config, policy: Policy, *, seed: int | None = None, stop: threading.Event | None = None,
         registry: Any = None, day: str | None = None, on_step: Any = None, wait_seconds: float = 0.0,
         runtime: Any = None) -> Record:
    """Close ``policy``'s superseded approvals and expire those past ``promotion.approval_expires`` (each its own
    ``rejection`` record), then run one cycle and return its record; a cycle that leaves a newer challenger
    awaiting approval or a new champion then closes the approvals it superseded (kaizen/commands/review.py).
    Raises :class:`~kaizen.errors.BusyError` when another process holds the policy for longer than
    ``wait_seconds``."""
    from kaizen.commands.review import _supersede_after, expire_pending, supersede_stale
    from kaizen.cycle import HISTORY_RECORDS, run_cycle
    from kaizen.run.backend import ledger_for

    history = ledger_for(config).tail(policy.name, HISTORY_RECORDS)
    if supersede_stale(config, policy.name, history=history, registry=registry, wait_seconds=wait_seconds):
        history = ledger_for(config).tail(policy.name, HISTORY_RECORDS)  # the closed ones are answered now
    expire_pending(config, policy.name, policy=policy, registry=registry, wait_seconds=wait_seconds, history=history)
    rec = run_cycle(config, policy, seed=seed, stop=stop, registry=registry, day=day, on_step=on_step,
                    wait_seconds=wait_seconds, runtime=runtime)
    if rec.decision in ("awaiting_approval", "promoted"):
        _supersede_after(config, policy.name, registry=registry, wait_seconds=wait_seconds)
    return rec
