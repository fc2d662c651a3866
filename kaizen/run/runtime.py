"""What one process carries from run to run, owned by whoever runs them — never module-level.

A ``kaizen`` command, the daemon, a backtest and (on the scale-out path) a worker each create one
:class:`Runtime` and hand it to every run (:func:`kaizen.run.runner.run`); the steps reach it through
their run context. Two runtimes share nothing, so two daemons (or two tests) in one process never
see each other's decisions or caches, and nothing is toggled process-wide from a worker thread.

Contract: every member is safe to use from several threads at once (each has its own lock); the
runtime is only ever *added to* — a member is never replaced after construction.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any

from kaizen.ledger import Record

__all__ = ["Kept", "ModelCache", "Runtime"]


class Kept:
    """Decisions neither the promotion log nor the journal could hold (a full disk), by (log path, record id).

    The runner keeps such a record here and appends it on the policy's next run in this process, or
    on the daemon's next tick (:func:`kaizen.run.runner.retry_unwritten`); crash recovery leaves their
    journal entries alone meanwhile (the process that decided is alive).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._items: dict[tuple[str, str], Record] = {}

    def keep(self, ledger_path: Any, record: Record) -> None:
        with self._lock:
            self._items[(str(ledger_path), record.id)] = record

    def records(self, ledger_path: Any = None) -> list[Record]:
        with self._lock:
            return [r for (path, _), r in self._items.items() if ledger_path is None or path == str(ledger_path)]

    def drop(self, ledger_path: Any, record_id: str) -> None:
        with self._lock:
            self._items.pop((str(ledger_path), record_id), None)


class ModelCache:
    """Loaded models by key, the ``size`` most recently used kept (a version's model never changes)."""

    def __init__(self, size: int = 8) -> None:
        if size < 0:
            raise ValueError(f"The 'size' parameter of ModelCache must be >= 0. Got {size!r} instead.")
        self.size = size
        self._lock = threading.Lock()
        self._items: OrderedDict[Hashable, Any] = OrderedDict()

    def get(self, key: Hashable, load: Callable[[], Any]) -> tuple[Any, bool]:
        """(model, from_cache): the model for ``key``, loaded by ``load()`` and kept when it was not there."""
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key], True
        model = load()
        with self._lock:
            if self.size:
                self._items[key] = model
                self._items.move_to_end(key)
                while len(self._items) > self.size:
                    self._items.popitem(last=False)
        return model, False

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)


class Runtime:
    """The per-process state of runs: kept decisions, loaded champions, monitoring runs, reference profiles."""

    def __init__(self, *, model_cache_size: int = 8, epoch: int | None = None) -> None:
        from kaizen.monitor.profile import ReferenceCache

        #: the scheduler epoch the work was enqueued under (scale-out: a promotion is fenced by it); None otherwise
        self.epoch = epoch
        self.kept = Kept()
        self.models = ModelCache(model_cache_size)
        #: (tracking URI, model, "policy") -> the policy's monitoring run id (kaizen.registry.Registry.monitoring_run)
        self.monitoring_runs: dict[tuple[str, str, str], str] = {}
        self.monitoring_lock = threading.Lock()
        self.reference_profiles = ReferenceCache()
