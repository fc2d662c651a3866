"""Regression tests a challenger must pass before it may replace the champion.

One gate per module, one contract (:class:`Gate` → :class:`GateResult`).
:func:`run_gates` runs the default suite in a fixed order and returns every
verdict, passed or not: a rejection names each gate that failed.
"""

from __future__ import annotations

from kaizen.gates._base import Evidence, Gate, GateResult, Labelled
from kaizen.gates.golden import GoldenGate
from kaizen.gates.improvement import ImprovementGate
from kaizen.gates.sanity import SanityGate

__all__ = ["DEFAULT_GATES", "Evidence", "Gate", "GateResult", "GoldenGate", "ImprovementGate", "Labelled",
           "SanityGate", "run_gates"]

DEFAULT_GATES: tuple[Gate, ...] = (SanityGate(), ImprovementGate(), GoldenGate())


def run_gates(evidence: Evidence, gates: tuple[Gate, ...] = DEFAULT_GATES) -> tuple[GateResult, ...]:
    """Every gate's verdict, in order (all gates run even after one fails)."""
    return tuple(g.check(evidence) for g in gates)
