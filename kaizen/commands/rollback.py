"""``kaizen rollback``: restore a previous champion, logged like a promotion (body: :mod:`kaizen.cycle.rollback`)."""

from __future__ import annotations

import getpass
from typing import Any

from kaizen.config import Config
from kaizen.cycle.rollback import plan_rollback, rollback_body
from kaizen.errors import KaizenError
from kaizen.ledger import Record
from kaizen.run.backend import ledger_for
from kaizen.run.runner import RunContext, run

__all__ = ["rollback"]


def rollback(config: Config, policy_name: str, *, to: str | None = None, reason: str = "", actor: str | None = None,
             registry: Any = None, automatic: bool = False, force: bool = False, wait_seconds: float = 0.0,
             metric: str = "") -> Record:
    """Restore a previous champion of ``policy_name`` (the model name); return the ``rollback`` record.

    Raises :class:`RollbackRefused` before anything is written when the plan is refused (module
    docstring), and :class:`KaizenError` naming the failed record when the run failed under the lock
    (e.g. the model cannot be loaded). ``metric``: the policy's metric (read from the log if empty).
    """
    from kaizen.registry import reaching

    actor = actor or ("kaizen" if automatic else getpass.getuser())
    records = ledger_for(config).records()
    with reaching(config.tracking_uri, config.registry_uri):  # an unreachable registry is one line, not a traceback
        if registry is None:
            from kaizen.registry import Registry

            registry = Registry.from_config(config)
        plan_rollback(registry, policy_name, records, to=to, force=force)

    def body(ctx: RunContext) -> Record:
        return rollback_body(ctx, policy_name, to, reason, actor, force=force, automatic=automatic, metric=metric)

    out = run(config, policy_name, body, kind="rollback", registry=registry, wait_seconds=wait_seconds)
    if out.decision == "failed":
        raise KaizenError(f"rollback of {policy_name!r} failed ({out.id}): {out.error}")
    from kaizen.commands.review import _supersede_after

    _supersede_after(config, policy_name, registry=registry, wait_seconds=wait_seconds)  # a new champion
    return out
