"""Evidence that accumulates: a sequential test on the champion's per-row loss, across windows.

One window's metric has a standard error of several points at a few hundred rows, so a real decay
of 3–5 points spread over many windows never makes any one window's drop significant
(:mod:`kaizen.monitor.rules.performance_drop`). A sequential test adds the evidence up instead.

**The loss.** Per labelled row: ``1`` when the champion's label is wrong, ``0`` when right
(classification, whatever the policy's metric); the absolute error (regression).

**The test** (``trigger.sequential = "adwin"``): ADWIN's cut test (Bifet & Gavaldà, 2007) at batch
granularity. The state keeps, per batch fed since the champion started, the rows, the sum and the
sum of squares of the losses. Every split of that sequence into an *older* and a *newer* part
(each with at least ``min_rows`` rows) is a two-sample test of the mean loss:

    z = (mean_newer − mean_older − δ·sd) / (sd · √(1/n_older + 1/n_newer))

with ``sd`` the pooled standard deviation of the per-row loss; the test alarms when the largest
``z`` exceeds ``threshold`` **and still does with any one of the newer batches left out**
(``z_without``: the smallest such ``z``, each at its own best split; ``without_part``: the batch
whose removal gives it). No single batch can make the evidence alone: a batch an attacker
relabelled, or one an upstream bug broke, only adds to evidence the other batches carry too (an
abrupt change is the per-window rule's to catch; this test confirms it one batch later).
``δ`` (``trigger.sequential_delta``, in standard deviations) is a rise the test tolerates. Unlike a
test against one window, the newer part grows with every batch of a decay, and so does the
evidence; unlike Page-Hinkley against a running mean, the level it compares with is estimated from
all older rows, not from the first few.

Measured here (seeded simulations of 0/1 losses, 365-row batches, error rate 0.2): at the default
threshold 3.5 and δ = 0, false alarms in 30 stationary batches in 2 of 300 streams; a decay of half a
point per batch found after 12 batches (6 points) in the median; a step of 4 points found within
25 batches in two thirds of the streams (tighter thresholds find more and alarm more: `kaizen policy
tune` chooses on the model's own history).

The state is a small JSON-ready dict the cycle writes into its record (the ``sequential`` signal's
``details.state``) and the next cycle reads back: it survives restarts, and every alarm is
explained by numbers in the log. It belongs to one champion: a new champion starts a fresh state,
and so does a re-baselining. At most :data:`MAX_PARTS` parts are kept (the two oldest merge).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

__all__ = ["MAX_PARTS", "adwin", "fresh_state", "losses", "split_test"]

#: parts (batches) the state keeps; beyond it the two oldest merge (the split points among them are lost)
MAX_PARTS = 96


def fresh_state(champion: str | None) -> dict[str, Any]:
    """An empty state for ``champion``'s version."""
    return {"champion": champion, "parts": [], "n": 0, "z": 0.0, "split": None, "alarms": 0, "batches": []}


def losses(task: str, y: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Per-row loss of the champion: wrong (1) or right (0) for classifiers, the absolute error for regression."""
    y, labels = np.asarray(y), np.asarray(labels)
    if task == "regression":
        return np.abs(y.astype(float) - labels.astype(float))
    if labels.dtype != y.dtype:
        return (labels.astype(str) != y.astype(str)).astype(float)
    return (labels != y).astype(float)


def split_test(parts: Sequence[Sequence[float]], *, delta: float, min_rows: int) -> tuple[float, int | None, dict]:
    """(largest z, the index of the first newer part at it, the numbers there) over every split of ``parts``.

    ``parts``: (rows, sum, sum of squares) per batch, oldest first. (0.0, None, {}) when no split has
    ``min_rows`` rows on both sides.
    """
    s = np.asarray(parts, dtype=float).reshape(-1, 3)
    if len(s) < 2:
        return 0.0, None, {}
    cn, cs, cq = np.cumsum(s[:, 0]), np.cumsum(s[:, 1]), np.cumsum(s[:, 2])
    n, total, sq = cn[-1], cs[-1], cq[-1]
    var = max(sq / n - (total / n) ** 2, 0.0)
    sd = math.sqrt(var) if var > 1e-12 else 0.0
    n0, n1 = cn[:-1], n - cn[:-1]
    ok = (n0 >= min_rows) & (n1 >= min_rows)
    if not ok.any() or sd == 0.0:
        return 0.0, None, {}
    m0, m1 = cs[:-1] / n0, (total - cs[:-1]) / n1
    z = np.where(ok, (m1 - m0 - delta * sd) / (sd * np.sqrt(1 / n0 + 1 / n1)), -np.inf)
    i = int(np.argmax(z))
    return float(z[i]), i + 1, {"older_rows": int(n0[i]), "newer_rows": int(n1[i]), "older_mean": float(m0[i]),
                                "newer_mean": float(m1[i]), "sd": sd}


def adwin(state: Mapping[str, Any], x: np.ndarray, *, delta: float, threshold: float, min_rows: int,
          batch: str | None = None) -> tuple[dict[str, Any], bool]:
    """Feed one batch's losses ``x`` to ``state``; return the new state and whether the test alarms now.

    An alarm does not reset the state: the champion stays suspect until it is replaced (a new state)
    or the baseline is reset, so the signal stays armed while nothing is done about it.
    """
    out = {**state, "parts": [list(p) for p in state.get("parts") or ()]}
    x = np.asarray(x, dtype=float)
    x = x[np.isfinite(x)]
    if len(x):
        out["parts"].append([float(len(x)), float(x.sum()), float((x * x).sum())])
        while len(out["parts"]) > MAX_PARTS:
            a, b = out["parts"][0], out["parts"][1]
            out["parts"][:2] = [[a[0] + b[0], a[1] + b[1], a[2] + b[2]]]
        out["n"] = int(sum(p[0] for p in out["parts"]))
    z, at, numbers = split_test(out["parts"], delta=delta, min_rows=min_rows)
    out.update(z=z if math.isfinite(z) else 0.0, split=at, **numbers)
    fired = bool(at is not None and z > threshold)
    out["z_without"] = None
    if fired:  # no single batch may carry the evidence alone: the test must hold with any one batch left out
        worst, part = math.inf, None
        for j in range(at, len(out["parts"])):  # the batches on the newer side, which carry the rise
            zj, atj, _ = split_test(out["parts"][:j] + out["parts"][j + 1:], delta=delta, min_rows=min_rows)
            zj = zj if atj is not None else 0.0
            if zj < worst:
                worst, part = zj, j
        out.update(z_without=worst, without_part=part)
        fired = worst > threshold
    if fired:
        out["alarms"] = int(out.get("alarms") or 0) + 1
    return out, fired
