"""Backtest: what would this policy have done over past batches, and what would it have cost?

- :mod:`kaizen.backtest.replay` — :func:`run_backtest`: the prequential replay of a folder of
  batches through the policy and three baselines (static, refit_every_batch,
  retrain_every_batch), in an isolated temporary state.
- :mod:`kaizen.backtest.peers` — :func:`run_peers`: streaming learners from river (the
  ``kaizen[river]`` extra) replayed as extra arms under the same protocol.
- :mod:`kaizen.backtest.report` — the summary table, the PNG plot, the timing-free view.
- :mod:`kaizen.backtest.tune` — :func:`~kaizen.backtest.tune.tune_policy` (``kaizen policy tune``): an
  Optuna study of backtests over the policy's settings (:mod:`~kaizen.backtest.space`), the chosen
  file (:mod:`~kaizen.backtest.tuned_file`), its table and plot (:mod:`~kaizen.backtest.tune_report`);
  see ``docs/policy-tuning.md``.

The result is one JSON-ready dict; its fields are documented in ``docs/backtest.md``.
Importing this package is cheap; MLflow and the build stack load when a backtest runs.
"""

from __future__ import annotations

from kaizen.backtest.replay import ARMS, EVERY_BATCH_SUFFIX, run_backtest
from kaizen.backtest.report import TIMING_KEYS, plot, summary_table, without_timings

__all__ = ["ARMS", "EVERY_BATCH_SUFFIX", "TIMING_KEYS", "plot", "run_backtest", "summary_table", "without_timings"]
