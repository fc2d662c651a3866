"""What a cycle's steps may use from the run: the registry, the work folder, the seed, the stop flag, the journal.

Not the record: steps return values and only the orchestrator (:mod:`kaizen.cycle`) writes the
record's sections and reasons. ``journal`` reports progress to the runner's crash journal
(:meth:`kaizen.run.runner.Draft.step`); ``registered`` journals a model version the step registered,
so that recovery can tag it if the process dies.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["Work"]


@dataclass(frozen=True)
class Work:
    config: Any
    registry: Any
    workdir: Path
    seed: int | None
    cycle_id: str
    journal: Callable[..., None]
    registered: Callable[[str], None]
    stop: threading.Event | None = None
    runtime: Any = None            # kaizen.run.runtime.Runtime: loaded champions, reference profiles
    runlog: Any = None             # kaizen.registry.runlog.RunLog of the cycle's MLflow run, once it is open

    @classmethod
    def of(cls, ctx: Any, runlog: Any = None) -> Work:
        """The steps' view of a :class:`kaizen.run.runner.RunContext` (and of its MLflow run, when open)."""
        d = ctx.draft
        return cls(ctx.config, ctx.registry, ctx.workdir, d.seed, d.id, d.step, d.note_registered, ctx.stop,
                   ctx.runtime, runlog)
