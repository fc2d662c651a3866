"""What runs inside a worker's child process: one policy's tick, then the process ends.

The worker's fork server imports this module once (``preload``: the ML stack — MLflow, Evidently,
featuretools, Optuna, scikit-learn — and Kaizen's cycle); each job is a fork of it, so a cycle
starts with everything imported and gives every byte it allocated back when it exits. The child
watches a lifeline pipe whose other end only its worker holds: when the worker dies (even by
SIGKILL) the pipe reaches EOF and the child kills itself, so a dead worker leaves no cycle running —
its job is re-queued and the run recovered from the journal. (The fork server's own death would not
do: it outlives the worker while children exist.)
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
from pathlib import Path
from typing import Any

__all__ = ["PRELOAD", "main", "preload", "recover"]

log = logging.getLogger("kaizen.scale.worker")

#: what the fork server imports once (``multiprocessing.set_forkserver_preload``)
PRELOAD = ["kaizen.scale.child"]


def preload() -> None:
    """Import the ML stack (what a cycle needs) into this process."""
    from kaizen._env import prepare

    prepare()
    import evidently  # noqa: F401
    import featuretools  # noqa: F401
    import mlflow  # noqa: F401
    import optuna  # noqa: F401
    import sklearn.ensemble  # noqa: F401

    import kaizen.commands.tick  # noqa: F401
    import kaizen.cycle  # noqa: F401


def _die_with_worker(lifeline: Any) -> None:
    """Kill this process as soon as the worker's end of ``lifeline`` closes (the worker ended or was killed)."""
    def watch() -> None:
        try:
            lifeline.recv()
        except (EOFError, OSError):
            pass
        os.kill(os.getpid(), signal.SIGKILL)

    threading.Thread(target=watch, name="kaizen-lifeline", daemon=True).start()


def _setup(config_path: str, lifeline: Any) -> Any:
    from kaizen.config import load_config
    from kaizen.logs import configure

    _die_with_worker(lifeline)
    config = load_config(Path(config_path))
    configure(logging.INFO)
    return config


def main(config_path: str, policy_name: str, epoch: int | None, job_id: int | None, out: Any, lifeline: Any) -> None:
    """Run one tick of ``policy_name`` (its policy file read now) and send a summary through ``out``."""
    from kaizen.commands.tick import tick
    from kaizen.errors import KaizenError
    from kaizen.policy import load_policies, policy_files
    from kaizen.run.runtime import Runtime

    config = _setup(config_path, lifeline)
    summary: dict[str, Any] = {"policy": policy_name, "job": job_id, "epoch": epoch}
    try:
        good, bad = load_policies(policy_files(config.policies_dir))
        policy = next((p for p in good if p.name == policy_name), None)
        if policy is None:
            why = next((str(e) for e in bad if Path(e.path).stem == policy_name), "no such policy")
            raise KaizenError(f"policy {policy_name!r} cannot run on this worker: {why}")
        _settle_intents(config, policy_name)
        rec = tick(config, policy, runtime=Runtime(epoch=epoch), wait_seconds=config.coordination.lock_wait_seconds)
        summary.update(record=rec.id, decision=rec.decision, reason=rec.reasons[0] if rec.reasons else "")
    except KaizenError as exc:
        summary.update(error=str(exc), exit_code=exc.exit_code)
    except Exception as exc:  # a bug: the worker reports it and goes on with the next job
        log.exception("job %s of %s failed", job_id, policy_name)
        summary.update(error=f"{type(exc).__name__}: {exc}", exit_code=1)
    out.send(summary)
    out.close()
    sys.stdout.flush()


def _settle_intents(config: Any, policy_name: str) -> None:
    """Settle promotion intents of ``policy_name`` whose mover died between the intent and its commit
    (:meth:`kaizen.scale.fence.Fence.reconcile`: a live mover holds its row, so only dead ones are settled)."""
    from kaizen.scale.fence import Fence

    fence = Fence(config.coordination.url)
    if not fence.open_intents(policy_name):
        return
    from kaizen.registry import Registry

    fence.reconcile(Registry.from_config(config), policy=policy_name, older_than_seconds=60.0)


def recover(config_path: str, policy_name: str, out: Any, lifeline: Any) -> None:
    """Settle the journal of ``policy_name``'s run a deadline killed (its record: ``failed``, aborted)."""
    from kaizen.run.runner import recover_policy

    config = _setup(config_path, lifeline)
    written = recover_policy(config, policy_name)
    out.send({"policy": policy_name, "recovered": [r.id for r in written]})
    out.close()
