"""Backtest: what would this policy have done over past batches, and what would it have cost?

- :mod:`kaizen.backtest.replay` — :func:`run_backtest`: the prequential replay of a folder of
  batches through the policy and three baselines (static, refit_every_batch,
  retrain_every_batch), in an isolated temporary state.
- :mod:`kaizen.backtest.report` — the summary table, the PNG plot, the timing-free view.

The result is one JSON-ready dict; its fields are documented in ``docs/backtest.md``.
Importing this package is cheap; MLflow and the build stack load when a backtest runs.
"""

from __future__ import annotations

from kaizen.backtest.replay import ARMS, EVERY_BATCH_SUFFIX, run_backtest
from kaizen.backtest.report import TIMING_KEYS, plot, summary_table, without_timings

__all__ = ["ARMS", "EVERY_BATCH_SUFFIX", "TIMING_KEYS", "plot", "run_backtest", "summary_table", "without_timings"]
