"""Regression tests a challenger must pass before it may replace the champion.

One gate per module, one contract (:class:`Gate` → :class:`GateResult`). Each gate module
declares on its class when the policy turns it on (:meth:`Gate.enabled`), its place in the suite
(``order``) and the ``[gates]`` settings it adds; the registry is the folder
(:func:`kaizen._plugins.discover`): :data:`GATES` holds every gate in order, :func:`gates_for`
those the policy turns on, :func:`run_gates` runs them and returns every verdict, passed or
not: a rejection names each gate that failed. Adding a gate is adding a module.

Order: ``sanity``; ``significance`` (``gates.promotion_test = "significance"``) or
``improvement`` (``"margin"``); ``golden``; then the gates the policy turns on, each by its
own settings (docs/policies.md, "The gates, in the order they run").

``judge`` is not a gate: it scores both models and builds the :class:`Evidence`.
"""

from __future__ import annotations

from kaizen._plugins import classes_in, discover
from kaizen.gates._base import Evidence, Gate, GateResult, Labelled, Scorer
from kaizen.policy import Policy

#: every gate, in the order it runs
GATES: tuple[Gate, ...] = tuple(sorted(
    discover(__name__, __path__, lambda m: [cls() for cls in classes_in(m, Gate, where=lambda c: c.name)],
             skip=("judge",)),
    key=lambda g: (g.order, g.name)))

# each gate's class by its class name (SanityGate, GoldenGate, ...), as the modules define them
globals().update({type(g).__name__: type(g) for g in GATES})

__all__ = ["Evidence", "GATES", "Gate", "GateResult", "Labelled", "Scorer", "gates_for", "run_gates",
           *sorted(type(g).__name__ for g in GATES)]


def gates_for(policy: Policy) -> tuple[Gate, ...]:
    """The gates ``policy`` asks for, in the order they run."""
    return tuple(g for g in GATES if g.enabled(policy.gates))


def run_gates(evidence: Evidence, gates: tuple[Gate, ...] | None = None) -> tuple[GateResult, ...]:
    """Every gate's verdict, in order (all gates run even after one fails); ``gates_for`` the policy by default."""
    return tuple(g.check(evidence) for g in (gates_for(evidence.policy) if gates is None else gates))
