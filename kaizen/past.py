"""What earlier cycles of one policy saw: one definition of a *window*, the questions cycles ask of the log.

A cycle reads a bounded tail of the promotion log (:meth:`kaizen.ledger.Ledger.tail`) once and
asks it a handful of questions: how many windows since the last build, since the last report,
since a promotion or rejection; in how many windows in a row a signal fired; where the current
run of performance alarms began. Every such question is a method here, over one definition:

    A **window** is a ``cycle`` record that saw new batches and reached the trigger's decision:
    its ``trigger`` section holds the ``signals``. A cycle that found nothing new, one held by a
    data incident, one whose window was too small to judge (``trigger.judged`` false), one that
    failed before deciding, and every record of another kind (bootstrap, retrain, approval,
    rejection, rollback) are not windows.

Quick to import: plain Python over :class:`~kaizen.ledger.Record` values.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from kaizen.ledger import Record

__all__ = ["PERFORMANCE", "Past", "is_window", "signal"]

PERFORMANCE = "performance_drop"


def is_window(r: Record) -> bool:
    """The one definition of a window (module docstring)."""
    return r.kind == "cycle" and isinstance(r.trigger, Mapping) and "signals" in r.trigger


def signal(r: Record, rule: str) -> Mapping[str, Any] | None:
    """The record's ``rule`` signal (as written by :meth:`RuleResult.to_dict`), or None."""
    return next((s for s in (r.trigger or {}).get("signals", ()) if isinstance(s, Mapping) and s.get("rule") == rule),
                None)


class Past:
    """One policy's earlier records, oldest first (records of other policies are left out)."""

    def __init__(self, records: Iterable[Record], policy: str) -> None:
        self.policy = policy
        self.records: tuple[Record, ...] = tuple(r for r in records if r.policy == policy)

    def __len__(self) -> int:
        return len(self.records)

    def newest_first(self) -> Iterable[Record]:
        return reversed(self.records)

    def windows(self) -> list[Record]:
        return [r for r in self.records if is_window(r)]

    # -- the last cycle ------------------------------------------------------------------------------
    def last_cycle(self, *, judged: bool = False) -> Record | None:
        """The newest ``cycle`` record; ``judged``: skipping cycles ``held`` by a data incident before they
        monitored anything (they judged nothing, so "nothing new since" is measured from the cycle before)."""
        for r in self.newest_first():
            if r.kind == "cycle" and not (judged and r.decision == "held" and not is_window(r)):
                return r
        return None

    # -- counts of windows -----------------------------------------------------------------------------
    def windows_since(self, stop: Callable[[Record], bool]) -> int:
        """Windows newer than the newest record for which ``stop`` is true (all windows if none is)."""
        n = 0
        for r in self.newest_first():
            if stop(r):
                break
            n += is_window(r)
        return n

    def windows_since_build(self) -> int:
        """Windows since the last run that built a challenger or was not a cycle (a cycle with a ``challenger``
        section, a bootstrap, a retrain, a person's answer, a rollback)."""
        return self.windows_since(lambda r: r.kind != "cycle" or bool(r.challenger))

    def windows_since_report(self) -> int:
        """Windows since the last cycle that wrote an Evidently report."""
        return self.windows_since(lambda r: r.kind == "cycle" and bool(r.report))

    def idle_streak(self) -> int:
        """The earlier windows in a row, newest first, whose trigger fired without acting (``without_acting``)."""
        n = 0
        for r in self.newest_first():
            if not is_window(r):
                continue
            if not r.trigger.get("without_acting"):
                break
            n += 1
        return n

    def since_event(self, decisions: tuple[str, ...]) -> tuple[Record | None, int]:
        """(the newest non-bootstrap record with one of ``decisions``, windows after it); (None, 0) if none."""
        for i in range(len(self.records) - 1, -1, -1):
            r = self.records[i]
            if r.kind != "bootstrap" and r.decision in decisions:
                return r, sum(is_window(x) for x in self.records[i + 1:])
        return None, 0

    # -- runs of signals -------------------------------------------------------------------------------
    def streak(self, rule: str, enough: int) -> int:
        """Earlier windows in a row, newest first, in which ``rule`` fired raw with the current champion (a
        promotion ends the run; for the performance signal a re-baselining ends it too), up to ``enough``."""
        n = 0
        for r in self.newest_first():
            if n >= enough or r.decision == "promoted":
                break
            if not is_window(r):
                continue
            s = signal(r, rule)
            if s is None or not s.get("fired"):
                break
            n += 1
            if rule == PERFORMANCE and r.trigger.get("rebaseline") is not None:
                break
        return n

    def performance_run(self) -> list[Record]:
        """The windows of the current run of performance alarms (raw), newest first (this cycle not included)."""
        out: list[Record] = []
        for r in self.newest_first():
            if not is_window(r):
                continue
            s = signal(r, PERFORMANCE)
            if s is None or not s.get("fired"):
                break
            out.append(r)
        return out

    def failed_challengers(self) -> list[Record]:
        """The current run of challengers rejected by the improvement (or significance) gate while performance
        fired, newest first: a promotion, an approval request, a window whose performance did not fire raw, a
        re-baselining, a rejection for another reason, or a challenger that scored *better* than the champion
        on the holdout (only not significantly: a model can still do better, so the world did not get harder
        and the bar must not fall) ends it; skipped and failed cycles neither count nor end it."""
        out: list[Record] = []
        for r in self.newest_first():
            if r.kind != "cycle" or r.decision in ("promoted", "awaiting_approval", "rebaselined"):
                break
            if not is_window(r):
                continue
            perf = signal(r, PERFORMANCE)
            if perf is None or not perf.get("fired"):
                break
            if r.decision == "rejected":
                if not any(g.get("name") in ("improvement", "significance") and not g.get("passed") for g in r.gates):
                    break
                if _better(r):  # better on the holdout, only not significantly: no sign the world got harder
                    break
                out.append(r)
            if r.trigger.get("rebaseline") is not None:
                break
        return out

    # -- shadow ------------------------------------------------------------------------------------------
    def shadow_scores(self, version: str) -> list[Mapping[str, Any]]:
        """The live-window scores recorded so far for the shadow ``version``, oldest first."""
        return [s for r in self.records if r.kind == "cycle"
                and (s := (r.trigger or {}).get("shadow")) and s.get("version") == version]

    # -- the standing challenger (kaizen.cycle.prequential) ---------------------------------------------
    def prequential_scores(self, champion: str) -> list[Mapping[str, Any]]:
        """The windows' prequential scores for ``champion`` (``trigger.prequential``), oldest first, since the
        newest promotion."""
        out: list[Mapping[str, Any]] = []
        for r in self.newest_first():
            if r.decision == "promoted":
                break
            s = (r.trigger or {}).get("prequential") if r.kind == "cycle" and isinstance(r.trigger, Mapping) else None
            if isinstance(s, Mapping) and str(s.get("champion")) == str(champion) and s.get("batches"):
                out.append(s)
        return list(reversed(out))

    def champion_seen_batches(self, champion: str) -> set[str]:
        """Every batch the serving ``champion`` may have learned from: the batches named by the windows of the
        records up to the newest promotion (all records when none is in the tail)."""
        last = None
        for i in range(len(self.records) - 1, -1, -1):
            if self.records[i].decision == "promoted":
                last = i
                break
        upto = self.records if last is None else self.records[:last + 1]
        out: set[str] = set()
        for r in upto:
            w = r.window if isinstance(r.window, Mapping) else {}
            out.update(str(b) for b in w.get("batches") or ())
        return out


def _better(r: Record) -> bool:
    """Whether the record's challenger scored better than the champion on the holdout (point estimates)."""
    ch, cp = r.challenger or {}, r.champion or {}
    new, old, metric = ch.get("holdout_metric"), cp.get("holdout_metric"), ch.get("metric")
    if not isinstance(new, (int, float)) or not isinstance(old, (int, float)) or not metric:
        return False
    from kaizen.metrics import improvement

    try:
        return improvement(str(metric), float(new), float(old)) > 0
    except KeyError:
        return False
