"""The order of a cycle record's reasons, decided once, by a rule you can read.

Every step returns its sentences as values; the orchestrator files each under one kind, and the
record lists them kind by kind in this order (within a kind, in the order they were filed;
a sentence is listed once):

=========  ===================================================================================
ALERT      something outside Kaizen moved the champion (restored or adopted)
INCIDENT   a data incident: a batch whose column is corrupted was held back
OUTCOME    what the cycle did: promoted, waits for a person (ambiguous evidence first), shadowing,
           re-baselined, held, or the commit refused (a stale champion)
STOP       what stopped it: a guard that blocks (budget, cooldown, a shadow running), a trust block,
           too few holdout rows, the gates that failed and the ladder's attempts
IDLE       the trigger fired several windows in a row without acting (right after what stopped it)
NEWS       a batch rejected since the last cycle (a quiet cycle's news comes before its quiet reason)
QUIET      why there was nothing to do (no batch, nothing new)
DECISION   the trigger family's reasons, decisive one first (:mod:`kaizen.monitor.rules`)
NOTE       everything else worth reading: baseline notes, the holdout grown, batch warnings, trust
           findings that dropped rows or warned, the refit on the holdout, the shadow's scores
=========  ===================================================================================

So the first reason of a record answers "why is this the decision?" and never depends on which
step happened to write last.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import IntEnum

__all__ = ["Reasons", "Why"]


class Why(IntEnum):
    ALERT = 0
    INCIDENT = 1
    OUTCOME = 2
    STOP = 3
    IDLE = 4
    NEWS = 5
    QUIET = 6
    DECISION = 7
    NOTE = 8


class Reasons:
    """Sentences filed by kind; :meth:`ordered` lists them by the module's rule.

    ``target``: a list kept equal to :meth:`ordered` after every addition (the draft's reasons, so that
    a cycle that fails half way still records what it had found).
    """

    def __init__(self, target: list[str] | None = None) -> None:
        self._items: list[tuple[Why, str]] = [(Why.NOTE, t) for t in (target or [])]
        self._target = target

    def add(self, why: Why, *texts: str | None) -> None:
        self._items.extend((why, t) for t in texts if t)
        if self._target is not None:
            self._target[:] = self.ordered()

    def extend(self, why: Why, texts: Iterable[str | None]) -> None:
        self.add(why, *texts)

    def has(self, why: Why) -> bool:
        return any(w == why for w, _ in self._items)

    def ordered(self) -> list[str]:
        out: list[str] = []
        for _, text in sorted(self._items, key=lambda item: item[0]):  # sorted() is stable
            if text not in out:
                out.append(text)
        return out
