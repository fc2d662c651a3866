"""Data trust before training: is a challenger about to learn from poisoned rows?

An automated retrainer that learns from production labels is exactly what an attacker feeds.
Before a challenger trains on a window, :func:`check_training_rows` judges the *new* rows
(production rows in the training pool and the holdout) against the reference set and the
champion's predictions, one check per module:

==============  ========  ==================================================================
check           default   finds
==============  ========  ==================================================================
duplicates      drop      bursts of exact or near-duplicate rows beyond the reference's rate
outliers        drop      far more rows off the reference's manifold (IsolationForest) than
                          the reference itself has
label_shift     block     one segment's labels moved beyond what the champion predicts, while
                          the rest of the rows are still explained ("one segment relabelled")
label_noise     drop      labels that cross-validated models confidently contradict, more
                          often than in the reference
==============  ========  ==================================================================

The policy's ``[trust]`` table sets each check's action (``warn``, ``drop``, ``block``, ``off``)
and thresholds (docs/policies.md). Value checks on each batch (infinities, magnitudes, unknown
labels: :mod:`kaizen.data.checks`) come first and are not repeated here; these checks look for
rows that are plausible one by one and suspicious together. The golden-set gate stays the last
line of defence.
"""

from __future__ import annotations

from kaizen.trust._base import TrustCheck, TrustFinding, TrustInputs
from kaizen.trust._run import CHECKS, TrustResult, apply_drops, check_training_rows, pool_new_rows

__all__ = ["CHECKS", "TrustCheck", "TrustFinding", "TrustInputs", "TrustResult", "apply_drops",
           "check_training_rows", "pool_new_rows"]
