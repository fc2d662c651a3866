"""Regression tests a challenger must pass before it may replace the champion.

One gate per module, one contract (:class:`Gate` → :class:`GateResult`).
:func:`gates_for` picks the suite the policy asks for, in a fixed order;
:func:`run_gates` runs it and returns every verdict, passed or not: a
rejection names each gate that failed.

Order: ``sanity``; ``significance`` (``gates.promotion_test = "significance"``)
or ``improvement`` (``"margin"``); ``golden``; then the gates the policy turns
on: ``slices`` (``[[gates.slices]]``), ``fairness`` (``gates.fairness_column``),
``behaviour`` (``gates.check_schema`` or ``[[gates.invariance]]``), ``latency``
(``gates.max_latency_ms_per_1000``) and ``size`` (``gates.max_model_mb``).
"""

from __future__ import annotations

from kaizen.gates._base import Evidence, Gate, GateResult, Labelled, Scorer
from kaizen.gates.behaviour import BehaviourGate
from kaizen.gates.fairness import FairnessGate
from kaizen.gates.golden import GoldenGate
from kaizen.gates.improvement import ImprovementGate
from kaizen.gates.latency import LatencyGate
from kaizen.gates.sanity import SanityGate
from kaizen.gates.significance import SignificanceGate
from kaizen.gates.size import SizeGate
from kaizen.gates.slices import SlicesGate
from kaizen.policy import Policy

__all__ = ["BehaviourGate", "Evidence", "FairnessGate", "Gate", "GateResult", "GoldenGate", "ImprovementGate",
           "Labelled", "LatencyGate", "SanityGate", "Scorer", "SignificanceGate", "SizeGate", "SlicesGate",
           "gates_for", "run_gates"]


def gates_for(policy: Policy) -> tuple[Gate, ...]:
    """The gates ``policy`` asks for, in the order they run."""
    g = policy.gates
    out: list[Gate] = [SanityGate(), SignificanceGate() if g.promotion_test == "significance" else ImprovementGate(),
                       GoldenGate()]
    if g.slices:
        out.append(SlicesGate())
    if g.fairness_column is not None:
        out.append(FairnessGate())
    if g.check_schema or g.invariance:
        out.append(BehaviourGate())
    if g.max_latency_ms_per_1000 is not None:
        out.append(LatencyGate())
    if g.max_model_mb is not None:
        out.append(SizeGate())
    return tuple(out)


def run_gates(evidence: Evidence, gates: tuple[Gate, ...] | None = None) -> tuple[GateResult, ...]:
    """Every gate's verdict, in order (all gates run even after one fails); ``gates_for`` the policy by default."""
    return tuple(g.check(evidence) for g in (gates_for(evidence.policy) if gates is None else gates))
